//! A simulated panel for a desktop, a training session or a test: the same `ui::Panel` state
//! machine as on the board, on pins that live in a folder instead of GPIO lines.
//!
//! ```text
//!  DIR/leds.jsonl   appended on every LED write: {"t_ms":1520,"led":"amber","on":true}
//!                   (t_ms counted from opening the panel; the LED driver writes only changes)
//!  DIR/button       the button is held down while this file exists
//! ```
//! `edge run --sim-panel DIR` uses it; nothing on a board does.
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use anyhow::Context;
use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};

use crate::ui::{Debouncer, Leds, Panel};

/// The LED trace file inside the panel folder.
pub const LEDS_FILE: &str = "leds.jsonl";
/// The file whose presence holds the button down.
pub const BUTTON_FILE: &str = "button";

/// A failed write of the LED trace (the file and the I/O error).
pub struct SimError(String);

impl std::fmt::Debug for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl embedded_hal::digital::Error for SimError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

struct Trace {
    file: File,
    path: PathBuf,
    t0: Instant,
}

/// One simulated LED: each write is a line of the trace.
pub struct SimLed {
    name: &'static str,
    trace: Rc<RefCell<Trace>>,
}

impl ErrorType for SimLed {
    type Error = SimError;
}

impl SimLed {
    fn write(&mut self, on: bool) -> Result<(), SimError> {
        let mut t = self.trace.borrow_mut();
        let line = serde_json::json!({
            "t_ms": t.t0.elapsed().as_millis() as u64,
            "led": self.name,
            "on": on,
        });
        let path = t.path.display().to_string();
        writeln!(t.file, "{line}").map_err(|e| SimError(format!("{path}: {e}")))
    }
}

impl OutputPin for SimLed {
    fn set_low(&mut self) -> Result<(), SimError> {
        self.write(false)
    }

    fn set_high(&mut self) -> Result<(), SimError> {
        self.write(true)
    }
}

/// The simulated button: pressed while its file exists.
pub struct SimButton {
    path: PathBuf,
}

impl ErrorType for SimButton {
    type Error = SimError;
}

impl InputPin for SimButton {
    fn is_high(&mut self) -> Result<bool, SimError> {
        Ok(self.path.exists())
    }

    fn is_low(&mut self) -> Result<bool, SimError> {
        Ok(!self.path.exists())
    }
}

/// The panel on simulated pins.
pub type SimPanel = Panel<SimButton, SimLed, SimLed, SimLed>;

/// Opens (creating) the panel folder `dir`; the LED trace is appended to.
pub fn open(dir: &Path, debounce_ms: u64) -> anyhow::Result<SimPanel> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LEDS_FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening the LED trace {}", path.display()))?;
    let trace = Rc::new(RefCell::new(Trace {
        file,
        path,
        t0: Instant::now(),
    }));
    let led = |name| SimLed {
        name,
        trace: trace.clone(),
    };
    let button = SimButton {
        path: dir.join(BUTTON_FILE),
    };
    Ok(Panel::new(
        Debouncer::new(button, false, debounce_ms),
        Leds::new(led("green"), led("amber"), led("red")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Finding;
    use crate::ui::Indication;

    fn trace(dir: &Path) -> Vec<(String, bool)> {
        std::fs::read_to_string(dir.join(LEDS_FILE))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["led"].as_str().unwrap().to_owned(),
                    v["on"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn led_writes_are_traced_and_the_button_file_presses() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("panel");
        let mut p = open(&d, 30).unwrap();
        p.show(Indication::Busy, 0).unwrap();
        p.show(Indication::Result(Finding::Referable), 10).unwrap();
        let on = |s: &str| (s.to_owned(), true);
        let off = |s: &str| (s.to_owned(), false);
        assert_eq!(
            trace(&d),
            [
                off("green"),
                on("amber"),
                off("red"),
                off("amber"),
                on("red")
            ]
        );
        // Held for 40 ms ≥ 30 ms: acknowledged, back to Ready.
        std::fs::write(d.join(BUTTON_FILE), "").unwrap();
        p.tick(20).unwrap();
        p.tick(60).unwrap();
        assert_eq!(p.state(), Indication::Ready);
        std::fs::remove_file(d.join(BUTTON_FILE)).unwrap();
        p.tick(100).unwrap();
        assert_eq!(p.state(), Indication::Ready);
    }
}
