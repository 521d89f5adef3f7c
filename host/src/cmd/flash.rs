//! `host flash BUNDLE --to DEVICE_ROOT [--trust KEY.pub…]`: install a bundle onto a device
//! folder (the board's data partition or its SD card mounted here), keeping the previous one.
use std::path::PathBuf;
use std::process::ExitCode;

use shared::bundle::VerifyingKey;
use shared::device::{DeviceLayout, install};

/// Arguments of `host flash`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle (from `host bundle`).
    bundle: PathBuf,
    /// The device root.
    #[arg(long)]
    to: PathBuf,
    /// Public keys to add to the device's trusted keys first (needed on first install).
    #[arg(long)]
    trust: Vec<PathBuf>,
}

/// Runs `host flash`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let trust = args
        .trust
        .iter()
        .map(|p| VerifyingKey::read_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let layout = DeviceLayout::new(&args.to);
    let done = install(&layout, &args.bundle, &trust)?;
    let m = &done.bundle.manifest;
    println!(
        "flashed {} → {} ({} {}, signer {}){}",
        args.bundle.display(),
        layout.current_bundle().display(),
        m.variant,
        m.task.name(),
        done.bundle.signer.key_id(),
        if done.kept_previous {
            format!("; previous kept as {}", layout.previous_bundle().display())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
