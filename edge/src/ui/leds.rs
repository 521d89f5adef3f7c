//! The three LEDs and their patterns (see the table in the `ui` module). Pins are written only
//! when their level changes, so a pattern costs no GPIO traffic while it holds.
use anyhow::anyhow;
use embedded_hal::digital::{OutputPin, PinState};

use super::Indication;
use crate::runtime::Finding;

/// Green, amber and red levels for `state` at `now_ms`.
pub fn pattern(state: Indication, now_ms: u64) -> [bool; 3] {
    let blink = |period_ms: u64| now_ms % period_ms < period_ms / 2;
    match state {
        Indication::Ready => [blink(1000), false, false],
        Indication::ExamOpen => [false, blink(1000), false],
        Indication::Busy => [false, true, false],
        Indication::Result(Finding::NotReferable) => [true, false, false],
        Indication::Result(Finding::Referable) => [false, false, true],
        Indication::Result(Finding::Ungradable) => [false, blink(250), false],
        Indication::Fault => [false, false, blink(500)],
    }
}

/// Green, amber and red LED pins (high = lit).
pub struct Leds<G, A, R> {
    green: G,
    amber: A,
    red: R,
    lit: Option<[bool; 3]>,
}

impl<G: OutputPin, A: OutputPin, R: OutputPin> Leds<G, A, R> {
    /// The LEDs, state unknown until the first [`Leds::show`].
    pub fn new(green: G, amber: A, red: R) -> Self {
        Leds {
            green,
            amber,
            red,
            lit: None,
        }
    }

    /// Shows `state` as of `now_ms`, writing only the pins that change.
    pub fn show(&mut self, state: Indication, now_ms: u64) -> anyhow::Result<()> {
        let want = pattern(state, now_ms);
        let old = self.lit;
        let changed = |i: usize| old.is_none_or(|o: [bool; 3]| o[i] != want[i]);
        if changed(0) {
            let level = PinState::from(want[0]);
            self.green
                .set_state(level)
                .map_err(|e| anyhow!("driving the green LED: {e:?}"))?;
        }
        if changed(1) {
            let level = PinState::from(want[1]);
            self.amber
                .set_state(level)
                .map_err(|e| anyhow!("driving the amber LED: {e:?}"))?;
        }
        if changed(2) {
            let level = PinState::from(want[2]);
            self.red
                .set_state(level)
                .map_err(|e| anyhow!("driving the red LED: {e:?}"))?;
        }
        self.lit = Some(want);
        Ok(())
    }

    /// The pins back.
    #[cfg(test)]
    pub fn release(self) -> (G, A, R) {
        (self.green, self.amber, self.red)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

    #[test]
    fn each_result_lights_its_colour_and_ungradable_blinks_amber() {
        let on = State::High;
        let off = State::Low;
        // Referable (red), then NotReferable (green), then Ungradable at 0, 125, 250 ms
        // (amber on, off, on), then Busy (amber steady: no write, it is already on).
        let green = Mock::new(&[T::set(off), T::set(on), T::set(off)]);
        let amber = Mock::new(&[T::set(off), T::set(on), T::set(off), T::set(on)]);
        let red = Mock::new(&[T::set(on), T::set(off)]);
        let mut leds = Leds::new(green, amber, red);
        leds.show(Indication::Result(Finding::Referable), 0)
            .unwrap();
        leds.show(Indication::Result(Finding::NotReferable), 0)
            .unwrap();
        for t in [0, 125, 250] {
            leds.show(Indication::Result(Finding::Ungradable), t)
                .unwrap();
        }
        leds.show(Indication::Busy, 300).unwrap();
        let (mut g, mut a, mut r) = leds.release();
        g.done();
        a.done();
        r.done();
        assert_eq!(pattern(Indication::Fault, 100), [false, false, true]);
        assert_eq!(pattern(Indication::Fault, 300), [false, false, false]);
        assert_eq!(pattern(Indication::Ready, 600), [false, false, false]);
    }
}
