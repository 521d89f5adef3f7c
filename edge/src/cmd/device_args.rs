//! Where `edge screen` and `edge run` find the bundle, keys and audit log: a device root
//! (`shared::device` layout), with each path overridable.
use std::path::PathBuf;

use shared::device::DeviceLayout;

use crate::station::StationPaths;

/// Device paths shared by the screening commands.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Device root (bundle/current.fovea, keys/, log/audit.jsonl, device-id).
    #[arg(long, env = "FOVEA_DEVICE", default_value = "/var/lib/fovea")]
    pub device: PathBuf,
    /// Bundle to load instead of the device's current one.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Folder of trusted public keys instead of the device's keys/.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Audit log instead of the device's log/audit.jsonl.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Threads for each inference (tract's matrix products and the depthwise convs).
    #[arg(long, env = "FOVEA_THREADS", default_value_t = 1)]
    pub threads: usize,
}

impl DeviceArgs {
    /// Applies `--threads` to the runtime ([`crate::runtime::model::set_threads`]).
    pub fn apply_threads(&self) -> anyhow::Result<()> {
        crate::runtime::model::set_threads(self.threads)
    }

    /// The resolved paths.
    pub fn paths(&self) -> StationPaths {
        let mut p = StationPaths::of(&DeviceLayout::new(&self.device));
        if let Some(b) = &self.bundle {
            p.bundle = b.clone();
        }
        if let Some(k) = &self.keys {
            p.keys = k.clone();
        }
        if let Some(l) = &self.log {
            p.log = l.clone();
        }
        p
    }
}
