//! The board file (`board.toml` on the device root) and the Linux GPIO lines it names — the only
//! module that knows `linux-embedded-hal`; everything else sees `embedded-hal` pins.
//!
//! ```toml
//! chip = "/dev/gpiochip0"   # GPIO character device
//! button = 17               # line offsets on that chip
//! green = 22
//! amber = 23
//! red = 24
//! button_active_low = true  # button to ground with a pull-up (default)
//! debounce_ms = 30          # default
//! ```
//! `sim` is the same panel on a folder instead of GPIO lines (desktops, demos, tests).
pub mod sim;

use std::path::{Path, PathBuf};

use anyhow::Context;
use linux_embedded_hal::CdevPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use serde::Deserialize;

use crate::ui::{Debouncer, Leds, Panel};

/// The board file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// GPIO character device.
    pub chip: PathBuf,
    /// Button line.
    pub button: u32,
    /// Green LED line.
    pub green: u32,
    /// Amber LED line.
    pub amber: u32,
    /// Red LED line.
    pub red: u32,
    /// Pressed reads low.
    #[serde(default = "yes")]
    pub button_active_low: bool,
    /// Debounce time of the button.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
}

fn yes() -> bool {
    true
}

/// Debounce time of a board file without `debounce_ms`, and of the simulated panel.
pub const DEFAULT_DEBOUNCE_MS: u64 = 30;

fn default_debounce_ms() -> u64 {
    DEFAULT_DEBOUNCE_MS
}

impl BoardConfig {
    /// Reads and checks a board file.
    pub fn read(path: &Path) -> anyhow::Result<BoardConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the board file {}", path.display()))?;
        let cfg: BoardConfig = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid board file", path.display()))?;
        let lines = [cfg.button, cfg.green, cfg.amber, cfg.red];
        for (i, l) in lines.iter().enumerate() {
            anyhow::ensure!(
                !lines[..i].contains(l),
                "{}: GPIO line {l} is used twice",
                path.display()
            );
        }
        Ok(cfg)
    }
}

/// The panel on real GPIO lines.
pub type BoardPanel = Panel<CdevPin, CdevPin, CdevPin, CdevPin>;

/// Opens the chip and requests the four lines (LEDs start dark).
pub fn open(cfg: &BoardConfig) -> anyhow::Result<BoardPanel> {
    let mut chip = Chip::new(&cfg.chip)
        .with_context(|| format!("opening GPIO chip {}", cfg.chip.display()))?;
    let mut line = |offset: u32, flags: LineRequestFlags| -> anyhow::Result<CdevPin> {
        let handle = chip
            .get_line(offset)
            .and_then(|l| l.request(flags, 0, "fovea-edge"))
            .with_context(|| format!("requesting GPIO line {offset} on {}", cfg.chip.display()))?;
        CdevPin::new(handle).with_context(|| format!("GPIO line {offset}"))
    };
    let button = line(cfg.button, LineRequestFlags::INPUT)?;
    let green = line(cfg.green, LineRequestFlags::OUTPUT)?;
    let amber = line(cfg.amber, LineRequestFlags::OUTPUT)?;
    let red = line(cfg.red, LineRequestFlags::OUTPUT)?;
    Ok(Panel::new(
        Debouncer::new(button, cfg.button_active_low, cfg.debounce_ms),
        Leds::new(green, amber, red),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_file_parses_with_defaults_and_rejects_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("board.toml");
        std::fs::write(
            &p,
            "chip = \"/dev/gpiochip0\"\nbutton = 17\ngreen = 22\namber = 23\nred = 24\n",
        )
        .unwrap();
        let cfg = BoardConfig::read(&p).unwrap();
        assert_eq!(
            (cfg.button, cfg.red, cfg.button_active_low, cfg.debounce_ms),
            (17, 24, true, 30)
        );
        std::fs::write(
            &p,
            "chip = \"/dev/gpiochip0\"\nbutton = 17\ngreen = 17\namber = 23\nred = 24\n",
        )
        .unwrap();
        let err = BoardConfig::read(&p).unwrap_err().to_string();
        assert!(err.contains("line 17 is used twice"), "{err}");
        std::fs::write(&p, "chip = \"/dev/gpiochip0\"\nbuton = 17\n").unwrap();
        let err = format!("{:#}", BoardConfig::read(&p).unwrap_err());
        assert!(err.contains("board.toml") && err.contains("buton"), "{err}");
        // No such chip here: a clear error, not a panic.
        let err = format!(
            "{:#}",
            open(&BoardConfig {
                chip: dir.path().join("gpiochip9"),
                ..cfg
            })
            .err()
            .unwrap()
        );
        assert!(err.contains("gpiochip9"), "{err}");
    }
}
