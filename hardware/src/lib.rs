//! Everything a club terminal touches at a machine, a bar or a table: card readers, the display,
//! indicator lights, the buzzer and the PIN pad.
//!
//! Key decisions:
//! - Every card reader, whatever its kind, is consumed the same way: a [`CardReader`] yielding
//!   debounced [`CardEvent`]s that carry the reader's name and a normalised [`CardId`]. Readers run
//!   on their own thread (PC/SC, which blocks) or task (serial) and recover by themselves when
//!   pcscd restarts or a device disappears and returns.
//! - Protocols and rules are pure: APDU checks (`apdu`), serial frame decoders (`serial::frame`),
//!   debouncing, key scanning and PIN entry take bytes, keys and `now`, and do no IO.
//! - Output and input devices are generic over the embedded-hal 1.0 traits and are offered to the
//!   agent as small object-safe traits ([`Display`], [`Indicator`], [`Buzzer`], [`PinPad`]) with a
//!   console stand-in for terminals without them; `linux` opens the real devices.
//! - Card ids and PINs never print in clear ([`CardId`], [`Pin`]).
//!
//! Not here: what the terminal does with a card (the `terminal-agent` crate) or whether the card
//! is valid (the floor server).

#![warn(missing_docs)]

pub mod apdu;
pub mod card;
pub mod debounce;
pub mod display;
pub mod keypad;
pub mod lights;
pub mod linux;
pub mod pcsc_reader;
pub mod pin;
pub mod reader;
pub mod serial;
pub mod vpcd;

pub use card::{CardEvent, CardId};
pub use display::{ConsoleDisplay, Display, LcdDisplay};
pub use keypad::KeypadPinPad;
pub use lights::{Beep, Buzzer, GpioBuzzer, GpioIndicator, Indicator};
pub use pcsc_reader::{PcscConfig, PcscReader};
pub use pin::{ConsolePinPad, Pin, PinOutcome, PinPad};
pub use reader::{CardReader, ChannelReader, ReaderCounters};
pub use serial::{SerialConfig, SerialFormat, SerialReader};

/// Everything that can go wrong in this crate. Variants never carry a card id or a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A card id failed validation; the reason, never the value.
    #[error("invalid card id: {0}")]
    InvalidCardId(&'static str),
    /// A PIN failed validation; the reason, never the value.
    #[error("invalid PIN: {0}")]
    InvalidPin(&'static str),
    /// The PIN source has no more input (its stream closed).
    #[error("the PIN source closed")]
    PinSourceClosed,
    /// The consumer of a reader's events is gone.
    #[error("the card reader was dropped")]
    ReaderClosed,
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The PC/SC service or a reader failed.
    #[error("PC/SC: {0}")]
    Pcsc(#[from] pcsc::Error),
    /// A card's answer was shorter than its two status bytes.
    #[error("card answer of {0} bytes has no status word")]
    ShortResponse(usize),
    /// A card answered with an error status.
    #[error("card answered status {sw1:02X} {sw2:02X}")]
    CardStatus {
        /// First status byte.
        sw1: u8,
        /// Second status byte.
        sw2: u8,
    },
    /// A card is present but there is no way to identify it.
    #[error("card not identified: {0}")]
    UnidentifiedCard(&'static str),
    /// Starting, stopping or reaching pcscd (the test and demo helpers of `vpcd`).
    #[error("pcscd: {0}")]
    Pcscd(String),
    /// A serial device could not be opened or configured.
    #[error("serial device {path}: {source}")]
    Serial {
        /// The device path.
        path: String,
        /// What the serial layer reported.
        source: tokio_serial::Error,
    },
    /// A Linux device (I2C bus, GPIO chip) could not be opened.
    #[error("device {path}: {reason}")]
    Device {
        /// The device path.
        path: String,
        /// What the kernel interface reported.
        reason: String,
    },
    /// An I2C transfer failed.
    #[error("I2C: {0}")]
    I2c(embedded_hal::i2c::ErrorKind),
    /// A GPIO line could not be read or driven.
    #[error("GPIO: {0}")]
    Gpio(embedded_hal::digital::ErrorKind),
    /// The character display refused an operation.
    #[error("display: {0}")]
    Display(&'static str),
    /// Input/output outside the cases above.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
