//! `edge screen IMAGE…`: screen captures one-shot; one JSON line per image, each logged.
//!
//! Exit status: 0 when every image was screened (whatever the findings), 1 when any file
//! could not be read or decoded (its line carries the error; the others are still screened),
//! 2 when the bundle, keys or log cannot be used.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::device_args::DeviceArgs;
use crate::station::Station;

/// Arguments of `edge screen`.
#[derive(clap::Args)]
pub struct Args {
    /// Captures (PNG, JPEG, TIFF, BMP or DICOM).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `edge screen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut station = Station::open(&args.device.paths())?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for path in &args.images {
        let line = match station.screen_file(path, false) {
            Ok(Some(line)) => line,
            Ok(None) => continue,
            Err(e) => {
                failed = true;
                json!({ "file": path.display().to_string(), "error": format!("{e:#}") })
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
