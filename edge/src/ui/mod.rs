//! The operator panel: one button and three LEDs, through `embedded-hal` 1.0 pin traits only,
//! so the same logic drives Linux GPIO lines on the board and mock pins in tests.
//!
//! ```text
//!  state        green       amber        red          entered by
//!  Ready        blink 1 Hz  off          off          start, button after a result
//!  ExamOpen     off         blink 1 Hz   off          button in Ready: waiting for a capture
//!  Busy         off         on           off          a capture is being screened
//!  NotReferable on          off          off          result
//!  Referable    off         off          on           result
//!  Ungradable   off         blink 4 Hz   off          result: retake the photograph
//!  Fault        off         off          blink 2 Hz   a capture could not be read, or a device error
//! ```
//! A result (or fault) stays shown until the button acknowledges it.
pub mod button;
pub mod leds;

use embedded_hal::digital::{InputPin, OutputPin};

pub use button::Debouncer;
pub use leds::Leds;

use crate::runtime::Finding;

/// What the panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indication {
    /// Idle, ready for an exam.
    Ready,
    /// The operator opened an exam; waiting for the capture.
    ExamOpen,
    /// Screening a capture.
    Busy,
    /// A screening result, shown until acknowledged.
    Result(Finding),
    /// Something went wrong, shown until acknowledged.
    Fault,
}

/// Button + LEDs + the exam state machine.
pub struct Panel<B, G, A, R> {
    button: Debouncer<B>,
    leds: Leds<G, A, R>,
    state: Indication,
}

impl<B: InputPin, G: OutputPin, A: OutputPin, R: OutputPin> Panel<B, G, A, R> {
    /// A panel in the Ready state.
    pub fn new(button: Debouncer<B>, leds: Leds<G, A, R>) -> Self {
        Panel {
            button,
            leds,
            state: Indication::Ready,
        }
    }

    /// The current indication.
    pub fn state(&self) -> Indication {
        self.state
    }

    /// Shows `state` now (and at `now_ms`).
    pub fn show(&mut self, state: Indication, now_ms: u64) -> anyhow::Result<()> {
        self.state = state;
        self.leds.show(state, now_ms)
    }

    /// Samples the button and refreshes the LEDs; call every few milliseconds. A debounced
    /// press opens an exam from Ready and acknowledges a result or fault.
    pub fn tick(&mut self, now_ms: u64) -> anyhow::Result<()> {
        if self.button.sample(now_ms)? {
            self.state = match self.state {
                Indication::Ready => Indication::ExamOpen,
                Indication::ExamOpen => Indication::Ready,
                Indication::Result(_) | Indication::Fault => Indication::Ready,
                Indication::Busy => Indication::Busy,
            };
        }
        self.leds.show(self.state, now_ms)
    }

    /// The pins back (tests call `.done()` on mocks).
    #[cfg(test)]
    pub fn release(self) -> (B, G, A, R) {
        let (g, a, r) = self.leds.release();
        (self.button.release(), g, a, r)
    }
}

/// A panel whatever its pins are (board GPIO or the simulated folder), as `edge run` drives it.
pub trait Ui {
    /// See [`Panel::show`].
    fn show(&mut self, state: Indication, now_ms: u64) -> anyhow::Result<()>;
    /// See [`Panel::tick`].
    fn tick(&mut self, now_ms: u64) -> anyhow::Result<()>;
    /// See [`Panel::state`].
    fn state(&self) -> Indication;
}

impl<B: InputPin, G: OutputPin, A: OutputPin, R: OutputPin> Ui for Panel<B, G, A, R> {
    fn show(&mut self, state: Indication, now_ms: u64) -> anyhow::Result<()> {
        Panel::show(self, state, now_ms)
    }

    fn tick(&mut self, now_ms: u64) -> anyhow::Result<()> {
        Panel::tick(self, now_ms)
    }

    fn state(&self) -> Indication {
        Panel::state(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

    #[test]
    fn an_exam_from_button_to_result_to_acknowledgement() {
        // Button (active low): released, then pressed at 100–160 ms, released; pressed again
        // at 400–460 ms after the result.
        let levels = [
            (0, State::High),
            (100, State::Low),
            (110, State::Low),
            (140, State::Low),
            (200, State::High),
            (300, State::High),
            (400, State::Low),
            (450, State::Low),
            (500, State::High),
        ];
        let button = Mock::new(&levels.map(|(_, s)| T::get(s)));
        // LEDs: only changes are written (after the first state).
        // Green: Ready blinks (on at 0), off in ExamOpen, on again in Ready at 450 ms, and
        // off at 500 ms (the 1 Hz blink's dark half).
        let green = Mock::new(&[
            T::set(State::High),
            T::set(State::Low),
            T::set(State::High),
            T::set(State::Low),
        ]);
        let amber = Mock::new(&[T::set(State::Low), T::set(State::High), T::set(State::Low)]);
        let red = Mock::new(&[T::set(State::Low), T::set(State::High), T::set(State::Low)]);
        let mut panel = Panel::new(
            Debouncer::new(button, true, 30),
            Leds::new(green, amber, red),
        );
        let mut states = Vec::new();
        for (t, _) in levels {
            if t == 300 {
                panel
                    .show(Indication::Result(Finding::Referable), t)
                    .unwrap();
            }
            panel.tick(t).unwrap();
            states.push(panel.state());
        }
        use Indication::*;
        assert_eq!(
            states,
            [
                Ready,
                Ready,
                Ready,
                ExamOpen, // pressed for 40 ms ≥ 30 ms
                ExamOpen,
                Result(Finding::Referable),
                Result(Finding::Referable),
                Ready, // acknowledged
                Ready,
            ]
        );
        let (mut b, mut g, mut a, mut r) = panel.release();
        b.done();
        g.done();
        a.done();
        r.done();
    }
}
