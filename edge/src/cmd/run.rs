//! `edge run`: the service mode — watch the camera's export folder and screen each new
//! capture once, logging every result; bad files are reported and the service goes on.
//! A file that does not decode is retried until unchanged for `--settle-ms` (a writer that
//! paused mid-file), then reported as an error line. With GPIO (board.toml), the panel shows
//! Ready / Busy / the result / Fault and the button acknowledges (see `ui`).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use shared::device::DeviceLayout;

use super::device_args::DeviceArgs;
use crate::board::{self, BoardConfig};
use crate::station::Station;
use crate::ui::{Indication, Ui};
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
    /// Run without the button and LEDs (a desktop); otherwise the device's board.toml (or
    /// --board) names the GPIO lines.
    #[arg(long)]
    no_gpio: bool,
    /// Board file instead of the device's board.toml.
    #[arg(long, conflicts_with = "no_gpio")]
    board: Option<PathBuf>,
    /// A simulated panel instead of GPIO (a desktop, a demo, a test): every LED change is
    /// appended to DIR/leds.jsonl, and the button is held while DIR/button exists.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["no_gpio", "board"])]
    sim_panel: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The panel, if any: board GPIO or the simulated folder.
type Gpio = Option<Box<dyn Ui>>;

/// Shows `state` on the panel, if any.
fn show(panel: &mut Gpio, state: Indication, t0: Instant) -> anyhow::Result<()> {
    match panel {
        Some(p) => p.show(state, t0.elapsed().as_millis() as u64),
        None => Ok(()),
    }
}

/// Runs `edge run` until killed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.device.apply_threads()?;
    let dir = args
        .watch
        .clone()
        .unwrap_or_else(|| DeviceLayout::new(&args.device.device).inbox());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut panel: Gpio = if args.no_gpio {
        None
    } else if let Some(dir) = &args.sim_panel {
        Some(Box::new(board::sim::open(dir, board::DEFAULT_DEBOUNCE_MS)?))
    } else {
        let path = args
            .board
            .clone()
            .unwrap_or_else(|| DeviceLayout::new(&args.device.device).board_file());
        let cfg = BoardConfig::read(&path).context("GPIO (use --no-gpio on a desktop)")?;
        Some(Box::new(board::open(&cfg)?))
    };
    let t0 = Instant::now();
    let mut station = match Station::open(&args.device.paths()) {
        Ok(s) => s,
        Err(e) => {
            // A device that cannot screen says so on its panel before exiting.
            show(&mut panel, Indication::Fault, t0)?;
            return Err(e);
        }
    };
    show(&mut panel, Indication::Ready, t0)?;
    eprintln!(
        "edge: screening with {} ({} {}), watching {}",
        station.screener.bundle_path.display(),
        station.screener.manifest.variant,
        station.screener.manifest.task.name(),
        dir.display()
    );
    let mut watcher = Watcher::new(&dir);
    let mut out = std::io::stdout();
    let mut next_poll = Instant::now();
    loop {
        if let Some(p) = panel.as_mut() {
            p.tick(t0.elapsed().as_millis() as u64)?;
        }
        if Instant::now() < next_poll {
            std::thread::sleep(Duration::from_millis(TICK_MS));
            continue;
        }
        next_poll = Instant::now() + Duration::from_millis(args.poll_ms);
        let ready = watcher
            .poll()
            .with_context(|| format!("listing {}", dir.display()))?;
        for path in ready {
            show(&mut panel, Indication::Busy, t0)?;
            let (line, shown) = match station.screen_file(&path, true, None) {
                Ok(Some(line)) => {
                    let finding = serde_json::from_value(line["finding"].clone())?;
                    (line, Indication::Result(finding))
                }
                // Screened before (same bytes in the audit log): a restart is silent about it.
                Ok(None) => continue,
                Err(_) if !settled(&path, args.settle_ms) => {
                    watcher.retry(&path);
                    continue;
                }
                Err(e) => (
                    json!({ "file": path.display().to_string(), "error": format!("{e:#}") }),
                    Indication::Fault,
                ),
            };
            show(&mut panel, shown, t0)?;
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        if let Some(p) = panel.as_ref()
            && p.state() == Indication::Busy
        {
            // Only the retried files were taken: back to waiting.
            show(&mut panel, Indication::Ready, t0)?;
        }
    }
}

/// Panel refresh period: button sampling and LED blinking.
const TICK_MS: u64 = 10;

/// Whether `path` was last modified at least `settle_ms` ago (a vanished file counts as
/// settled, so its error is reported).
fn settled(path: &std::path::Path, settle_ms: u64) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age >= Duration::from_millis(settle_ms))
}
