//! Indicator LEDs and the buzzer, on embedded-hal `OutputPin`s, with logging stand-ins for
//! terminals without them.
//!
//! Key decision: a beep is a fixed on/off pattern played with the caller's `DelayNs` (blocking, a
//! fraction of a second; an async caller uses `spawn_blocking`), and whatever happens the buzzer is
//! left silent: after a pin error the driver still tries to switch it off. Polarity (active high or
//! low) is configuration, so wiring differences never reach the agent.
//!
//! Not here: which light means what (the agent), opening GPIO lines (`linux`).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{Error as _, OutputPin};
use tracing::info;

use crate::Error;

/// How a pin is wired: which level switches the LED or buzzer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// High is on.
    ActiveHigh,
    /// Low is on (the LED or transistor is wired to the supply).
    ActiveLow,
}

/// Drives `pin` to the level that means `on`.
fn drive<P: OutputPin>(pin: &mut P, polarity: Polarity, on: bool) -> Result<(), Error> {
    let high = on == (polarity == Polarity::ActiveHigh);
    let result = if high { pin.set_high() } else { pin.set_low() };
    result.map_err(|e| Error::Gpio(e.kind()))
}

/// A light the terminal switches on and off (session open, refused, call attendant…).
pub trait Indicator: Send {
    /// Switches the light on or off.
    fn set(&mut self, on: bool) -> Result<(), Error>;
}

/// An LED on a GPIO output.
pub struct GpioIndicator<P: OutputPin> {
    pin: P,
    polarity: Polarity,
}

impl<P: OutputPin> GpioIndicator<P> {
    /// An LED on `pin` wired with `polarity`. The pin is not driven until the first `set`.
    pub fn new(pin: P, polarity: Polarity) -> Self {
        Self { pin, polarity }
    }

    /// Gives the pin back.
    pub fn destroy(self) -> P {
        self.pin
    }
}

impl<P: OutputPin + Send> Indicator for GpioIndicator<P> {
    fn set(&mut self, on: bool) -> Result<(), Error> {
        drive(&mut self.pin, self.polarity, on)
    }
}

/// An indicator for terminals without LEDs: it logs its changes.
#[derive(Debug)]
pub struct LogIndicator {
    name: String,
    on: Option<bool>,
}

impl LogIndicator {
    /// A light called `name` in the log.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), on: None }
    }
}

impl Indicator for LogIndicator {
    fn set(&mut self, on: bool) -> Result<(), Error> {
        if self.on != Some(on) {
            info!(indicator = %self.name, on, "indicator");
            self.on = Some(on);
        }
        Ok(())
    }
}

/// The sounds a terminal makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beep {
    /// A key press or a card read: one short beep.
    Click,
    /// Accepted (card-in, PIN correct): two short beeps.
    Accept,
    /// Refused or failed: one long beep.
    Refuse,
    /// Attention (card left in the slot): three short beeps.
    Alert,
}

impl Beep {
    /// The pattern as (on, off) milliseconds.
    pub fn pattern(self) -> &'static [(u32, u32)] {
        match self {
            Beep::Click => &[(40, 0)],
            Beep::Accept => &[(80, 80), (80, 0)],
            Beep::Refuse => &[(600, 0)],
            Beep::Alert => &[(120, 120), (120, 120), (120, 0)],
        }
    }
}

/// A buzzer that plays [`Beep`]s.
pub trait Buzzer: Send {
    /// Plays `beep` to the end (blocking).
    fn beep(&mut self, beep: Beep) -> Result<(), Error>;
}

/// An active buzzer (it sounds while powered) on a GPIO output.
pub struct GpioBuzzer<P: OutputPin, D: DelayNs> {
    pin: P,
    polarity: Polarity,
    delay: D,
}

impl<P: OutputPin, D: DelayNs> GpioBuzzer<P, D> {
    /// A buzzer on `pin` wired with `polarity`, timed by `delay`.
    pub fn new(pin: P, polarity: Polarity, delay: D) -> Self {
        Self { pin, polarity, delay }
    }

    /// Gives the pin and the delay back.
    pub fn destroy(self) -> (P, D) {
        (self.pin, self.delay)
    }

    fn play(&mut self, beep: Beep) -> Result<(), Error> {
        for &(on, off) in beep.pattern() {
            drive(&mut self.pin, self.polarity, true)?;
            self.delay.delay_ms(on);
            drive(&mut self.pin, self.polarity, false)?;
            if off > 0 {
                self.delay.delay_ms(off);
            }
        }
        Ok(())
    }
}

impl<P: OutputPin + Send, D: DelayNs + Send> Buzzer for GpioBuzzer<P, D> {
    fn beep(&mut self, beep: Beep) -> Result<(), Error> {
        let played = self.play(beep);
        if played.is_err() {
            // Never leave it sounding; the first error is the one to report.
            let _ = drive(&mut self.pin, self.polarity, false);
        }
        played
    }
}

/// A buzzer for terminals without one: it logs the beeps.
#[derive(Debug, Default)]
pub struct LogBuzzer;

impl Buzzer for LogBuzzer {
    fn beep(&mut self, beep: Beep) -> Result<(), Error> {
        info!(?beep, "beep");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as Delay};
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Pin};
    use embedded_hal_mock::eh1::MockError;

    use super::*;

    fn failing(state: State) -> Pin {
        Pin::set(state).with_error(MockError::Io(std::io::ErrorKind::Other))
    }

    #[test]
    fn indicator_active_high() {
        let mut pin = PinMock::new(&[Pin::set(State::High), Pin::set(State::Low)]);
        let mut led = GpioIndicator::new(pin.clone(), Polarity::ActiveHigh);
        led.set(true).unwrap();
        led.set(false).unwrap();
        pin.done();
    }

    #[test]
    fn indicator_active_low_inverts() {
        let mut pin = PinMock::new(&[Pin::set(State::Low), Pin::set(State::High)]);
        let mut led = GpioIndicator::new(pin.clone(), Polarity::ActiveLow);
        led.set(true).unwrap();
        led.set(false).unwrap();
        pin.done();
    }

    #[test]
    fn indicator_pin_error_is_reported() {
        let mut pin = PinMock::new(&[failing(State::High)]);
        let mut led = GpioIndicator::new(pin.clone(), Polarity::ActiveHigh);
        assert!(matches!(led.set(true), Err(Error::Gpio(_))));
        pin.done();
    }

    #[test]
    fn accept_is_two_short_beeps() {
        let mut pin = PinMock::new(&[
            Pin::set(State::High),
            Pin::set(State::Low),
            Pin::set(State::High),
            Pin::set(State::Low),
        ]);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(80), Delay::delay_ms(80), Delay::delay_ms(80)]);
        let mut buzzer = GpioBuzzer::new(pin.clone(), Polarity::ActiveHigh, delay.clone());
        buzzer.beep(Beep::Accept).unwrap();
        pin.done();
        delay.done();
    }

    #[test]
    fn refuse_is_one_long_beep_on_an_active_low_buzzer() {
        let mut pin = PinMock::new(&[Pin::set(State::Low), Pin::set(State::High)]);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(600)]);
        let mut buzzer = GpioBuzzer::new(pin.clone(), Polarity::ActiveLow, delay.clone());
        buzzer.beep(Beep::Refuse).unwrap();
        pin.done();
        delay.done();
    }

    #[test]
    fn buzzer_is_switched_off_after_a_pin_error() {
        // Switching off after the first beep fails; the driver tries once more and reports the error.
        let mut pin = PinMock::new(&[Pin::set(State::High), failing(State::Low), Pin::set(State::Low)]);
        let mut buzzer = GpioBuzzer::new(pin.clone(), Polarity::ActiveHigh, NoopDelay::new());
        assert!(matches!(buzzer.beep(Beep::Alert), Err(Error::Gpio(_))));
        pin.done();
    }
}
