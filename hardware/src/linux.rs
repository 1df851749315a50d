//! Opening the real devices of a Linux terminal: the I2C bus of the LCD (`/dev/i2c-N`) and GPIO
//! lines through the character device (`/dev/gpiochipN`), with `linux-embedded-hal`.
//!
//! Key decision: only opening lives here; everything that drives the devices is generic over the
//! embedded-hal traits and tested without hardware. Output lines are requested with their idle
//! level already set (LEDs and buzzer off, keypad rows high), so nothing flashes or beeps at start.
//!
//! Not here: pull-up resistors. The GPIO v1 interface of `linux-embedded-hal` 0.5 cannot request a
//! bias, so keypad columns need external pull-ups or pull-ups set in the device tree.

use std::path::Path;

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::{CdevPin, Delay, I2cdev};

use crate::Error;
use crate::display::{LcdDisplay, LcdSize};
use crate::lights::Polarity;

/// Opens an I2C bus, for example `/dev/i2c-1`.
pub fn open_i2c(bus: &Path) -> Result<I2cdev, Error> {
    I2cdev::new(bus).map_err(|e| device_error(bus, e))
}

/// Opens and initialises an HD44780 LCD behind a PCF8574 at `address` on `bus`.
pub fn open_lcd(bus: &Path, address: u8, size: LcdSize) -> Result<LcdDisplay<I2cdev, Delay>, Error> {
    LcdDisplay::new(open_i2c(bus)?, address, size, Delay)
}

/// Requests GPIO `line` of `chip` (for example `/dev/gpiochip0`) as an output, initially off for
/// the given polarity. `consumer` names the user in the kernel's line list.
pub fn output_line(chip: &Path, line: u32, polarity: Polarity, consumer: &str) -> Result<CdevPin, Error> {
    let off = match polarity {
        Polarity::ActiveHigh => 0,
        Polarity::ActiveLow => 1,
    };
    request(chip, line, LineRequestFlags::OUTPUT, off, consumer)
}

/// Requests GPIO `line` of `chip` as an output idling high: a keypad row.
pub fn keypad_row(chip: &Path, line: u32, consumer: &str) -> Result<CdevPin, Error> {
    request(chip, line, LineRequestFlags::OUTPUT, 1, consumer)
}

/// Requests GPIO `line` of `chip` as an input: a keypad column (pulled up outside).
pub fn input_line(chip: &Path, line: u32, consumer: &str) -> Result<CdevPin, Error> {
    request(chip, line, LineRequestFlags::INPUT, 0, consumer)
}

fn request(chip: &Path, line: u32, flags: LineRequestFlags, value: u8, consumer: &str) -> Result<CdevPin, Error> {
    let mut opened = Chip::new(chip).map_err(|e| device_error(chip, e))?;
    let handle = opened
        .get_line(line)
        .and_then(|l| l.request(flags, value, consumer))
        .map_err(|e| device_error(chip, format!("line {line}: {e}")))?;
    CdevPin::new(handle).map_err(|e| device_error(chip, format!("line {line}: {e}")))
}

fn device_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Device { path: path.display().to_string(), reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_i2c_bus_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("i2c-9");
        match open_lcd(&bus, 0x27, LcdSize::Cols16Rows2) {
            Err(Error::Device { path, .. }) => assert!(path.ends_with("i2c-9"), "{path}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("opened a bus that does not exist"),
        }
    }

    #[test]
    fn a_missing_gpio_chip_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let chip = dir.path().join("gpiochip9");
        match output_line(&chip, 17, Polarity::ActiveHigh, "club-led") {
            Err(Error::Device { path, .. }) => assert!(path.ends_with("gpiochip9"), "{path}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("requested a line of a chip that does not exist"),
        }
        assert!(input_line(&chip, 4, "club-keypad").is_err());
    }
}
