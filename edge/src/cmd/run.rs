//! `edge run`: the service mode — watch the camera's export folder and screen each new
//! capture once, logging every result; bad files are reported and the service goes on.
//! A file that does not decode is retried until unchanged for `--settle-ms` (a writer that
//! paused mid-file), then reported as an error line.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use shared::device::DeviceLayout;

use super::device_args::DeviceArgs;
use crate::station::Station;
use crate::watch::Watcher;

/// Arguments of `edge run`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder the camera exports into (default: the device's inbox/).
    #[arg(long)]
    watch: Option<PathBuf>,
    /// Poll interval in milliseconds (a file must be unchanged for one interval).
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// A file that fails to decode is retried until it has been unchanged this long (ms):
    /// a writer may pause mid-file. Only then is the error reported.
    #[arg(long, default_value_t = 3000)]
    settle_ms: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `edge run` until killed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = args
        .watch
        .clone()
        .unwrap_or_else(|| DeviceLayout::new(&args.device.device).inbox());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut station = Station::open(&args.device.paths())?;
    eprintln!(
        "edge: screening with {} ({} {}), watching {}",
        station.screener.bundle_path.display(),
        station.screener.manifest.variant,
        station.screener.manifest.task.name(),
        dir.display()
    );
    let mut watcher = Watcher::new(&dir);
    let mut out = std::io::stdout();
    loop {
        let ready = watcher
            .poll()
            .with_context(|| format!("listing {}", dir.display()))?;
        for path in ready {
            let line = match station.screen_file(&path, true) {
                Ok(Some(line)) => line,
                // Screened before (same bytes in the audit log): a restart is silent about it.
                Ok(None) => continue,
                Err(_) if !settled(&path, args.settle_ms) => {
                    watcher.retry(&path);
                    continue;
                }
                Err(e) => json!({ "file": path.display().to_string(), "error": format!("{e:#}") }),
            };
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        std::thread::sleep(Duration::from_millis(args.poll_ms));
    }
}

/// Whether `path` was last modified at least `settle_ms` ago (a vanished file counts as
/// settled, so its error is reported).
fn settled(path: &std::path::Path, settle_ms: u64) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age >= Duration::from_millis(settle_ms))
}
