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
    /// Write each gradable image's class activation map (where the model saw the evidence
    /// for the positive classes) over the prepared photograph to `DIR/<file>.cam.png`.
    #[arg(long, value_name = "DIR")]
    heatmap: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `edge screen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.device.apply_threads()?;
    let mut station = Station::open(&args.device.paths())?;
    if let Some(dir) = &args.heatmap {
        anyhow::ensure!(
            station.screener.has_heatmap(),
            "--heatmap: the bundle's model has no features output (only GAP → linear heads \
             exported by `host export` have class activation maps)"
        );
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for path in &args.images {
        let line = match station.screen_file(path, false, args.heatmap.as_deref()) {
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
