//! `edge rollback`: make the previous bundle current again (verified first), keeping the
//! current one as previous.
use std::path::PathBuf;
use std::process::ExitCode;

use shared::device::{DeviceLayout, rollback};

/// Arguments of `edge rollback`.
#[derive(clap::Args)]
pub struct Args {
    /// Device root.
    #[arg(long, env = "FOVEA_DEVICE", default_value = "/var/lib/fovea")]
    device: PathBuf,
}

/// Runs `edge rollback`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let layout = DeviceLayout::new(&args.device);
    let done = rollback(&layout)?;
    let m = &done.bundle.manifest;
    println!(
        "rolled back: {} is now {} {} (signer {}), created {}",
        layout.current_bundle().display(),
        m.variant,
        m.task.name(),
        done.bundle.signer.key_id(),
        m.created_unix
    );
    Ok(ExitCode::SUCCESS)
}
