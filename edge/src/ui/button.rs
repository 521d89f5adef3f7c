//! Debouncing the panel button: a level counts only after it has held for `debounce_ms`, and a
//! press is reported once, on the debounced transition to pressed.
use anyhow::anyhow;
use embedded_hal::digital::InputPin;

/// A debounced button on an input pin.
pub struct Debouncer<P> {
    pin: P,
    active_low: bool,
    debounce_ms: u64,
    stable: bool,
    candidate: bool,
    since_ms: u64,
}

impl<P: InputPin> Debouncer<P> {
    /// `active_low`: pressed reads low (a button to ground with a pull-up).
    pub fn new(pin: P, active_low: bool, debounce_ms: u64) -> Self {
        Debouncer {
            pin,
            active_low,
            debounce_ms,
            stable: false,
            candidate: false,
            since_ms: 0,
        }
    }

    /// Reads the pin at `now_ms`; true once per debounced press.
    pub fn sample(&mut self, now_ms: u64) -> anyhow::Result<bool> {
        let low = self
            .pin
            .is_low()
            .map_err(|e| anyhow!("reading the button: {e:?}"))?;
        let pressed = low == self.active_low;
        if pressed != self.candidate {
            self.candidate = pressed;
            self.since_ms = now_ms;
        }
        if self.candidate != self.stable && now_ms - self.since_ms >= self.debounce_ms {
            self.stable = self.candidate;
            return Ok(self.stable);
        }
        Ok(false)
    }

    /// The pin back.
    #[cfg(test)]
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

    #[test]
    fn contact_bounce_gives_one_press() {
        // ms:       0     5    8     11    14    20    45    60    70   100
        let levels = [
            (0, State::High),
            (5, State::Low),
            (8, State::High), // bounce
            (11, State::Low),
            (14, State::High), // bounce
            (20, State::Low),
            (45, State::Low), // held 25 ms: not yet
            (60, State::Low), // held 40 ms: press
            (70, State::High),
            (100, State::High), // released for 30 ms: release (no event)
        ];
        let pin = Mock::new(&levels.map(|(_, s)| T::get(s)));
        let mut b = Debouncer::new(pin, true, 30);
        let events: Vec<bool> = levels.iter().map(|&(t, _)| b.sample(t).unwrap()).collect();
        assert_eq!(
            events,
            [
                false, false, false, false, false, false, false, true, false, false
            ]
        );
        b.release().done();
    }
}
