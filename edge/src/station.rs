//! A screening station: the screener, the audit log and the device's name together, so that
//! every screened image is logged before its result is shown.
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use shared::bundle::sha256;
use shared::device::{DeviceLayout, keys_in};

use crate::audit::record::{GENESIS, hex};
use crate::audit::writer::now_ms;
use crate::audit::{AuditLog, Record};
use crate::runtime::{Outcome, Screener};

/// Where a station finds its bundle, keys and log.
#[derive(Clone, Debug)]
pub struct StationPaths {
    /// The bundle to load.
    pub bundle: std::path::PathBuf,
    /// Folder of trusted `*.pub` keys.
    pub keys: std::path::PathBuf,
    /// The audit log.
    pub log: std::path::PathBuf,
    /// File holding the device's name (optional).
    pub device_id: std::path::PathBuf,
}

impl StationPaths {
    /// The paths of a device root.
    pub fn of(layout: &DeviceLayout) -> StationPaths {
        StationPaths {
            bundle: layout.current_bundle(),
            keys: layout.keys_dir(),
            log: layout.audit_log(),
            device_id: layout.device_id_file(),
        }
    }
}

/// A loaded screener with its audit log.
pub struct Station {
    /// The model and its manifest.
    pub screener: Screener,
    /// The audit log.
    pub log: AuditLog,
    device: String,
}

impl Station {
    /// Loads the bundle (verified against the keys) and opens the log.
    pub fn open(paths: &StationPaths) -> anyhow::Result<Station> {
        let keys = keys_in(&paths.keys)?;
        let screener = Screener::load(&paths.bundle, &keys)?;
        let log = AuditLog::open(&paths.log)?;
        let device = std::fs::read_to_string(&paths.device_id)
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unnamed".into());
        Ok(Station {
            screener,
            log,
            device,
        })
    }

    /// Screens the file at `path`, logs it, and returns the JSON line to print. `Ok(None)`
    /// when `skip_seen` and the same image bytes were screened before.
    /// With `heatmap_dir`, a gradable image's class activation overlay is written there as
    /// `<file name>.cam.png` and named in the line.
    pub fn screen_file(
        &mut self,
        path: &Path,
        skip_seen: bool,
        heatmap_dir: Option<&Path>,
    ) -> anyhow::Result<Option<Value>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let image_sha = hex(&sha256(&bytes));
        if skip_seen && self.log.has_image(&image_sha) {
            return Ok(None);
        }
        let name = path.display().to_string();
        let screened = self
            .screener
            .screen_bytes(&bytes, &name, heatmap_dir.is_some())?;
        let outcome: Outcome = screened.outcome;
        let record = self.log.append(Record {
            seq: 0,
            prev: GENESIS.into(),
            time_unix_ms: now_ms(),
            device: self.device.clone(),
            bundle_sha256: hex(&self.screener.bundle_sha256),
            model_sha256: hex(&self.screener.manifest.model_sha256),
            image_sha256: image_sha,
            quality: outcome.quality.clone(),
            probabilities: outcome.probabilities.clone(),
            threshold: outcome.threshold,
            result: outcome.finding,
        })?;
        let mut line = json!({ "file": name });
        if let (Value::Object(l), Value::Object(o)) = (&mut line, serde_json::to_value(&outcome)?) {
            l.extend(o);
            l.insert("audit_seq".into(), record.seq.into());
            if let (Some(dir), Some(img)) = (heatmap_dir, screened.heatmap) {
                let file = path
                    .file_name()
                    .map_or("image".into(), |n| n.to_string_lossy());
                let out = dir.join(format!("{file}.cam.png"));
                img.save(&out)
                    .with_context(|| format!("writing the heatmap {}", out.display()))?;
                l.insert("heatmap".into(), out.display().to_string().into());
            }
        }
        Ok(Some(line))
    }
}
