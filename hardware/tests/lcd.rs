//! The LCD driver against a fake HD44780 behind a PCF8574: the fake latches the nibbles the way the
//! controller does (on the falling edge of E) and keeps the display memory, so the tests assert the
//! text on the screen rather than hundreds of bus writes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use embedded_hal::i2c::{ErrorKind, I2c, Operation};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cTransaction};
use hardware::display::{LcdSize, PCF8574_ADDRESS};
use hardware::{Display, Error, LcdDisplay};

/// PCF8574 pins of the usual backpack: P0 RS, P1 RW, P2 E, P3 backlight, P4–P7 D4–D7.
const RS: u8 = 0x01;
const RW: u8 = 0x02;
const E: u8 = 0x04;
const BACKLIGHT: u8 = 0x08;

/// The controller's state, shared so the test can look at it while the driver owns the bus.
#[derive(Debug)]
struct Hd44780 {
    expander: u8,
    four_bit: bool,
    high_nibble: Option<u8>,
    ddram: [u8; 0x80],
    address: u8,
    increment: bool,
    display_on: bool,
    /// Data goes to the character generator RAM (after a CGRAM address) instead of the display.
    cgram: bool,
    /// Display shifts since the last clear; the screen is read unshifted, so tests expect none.
    display_shifts: usize,
    /// Bytes written to the expander.
    writes: usize,
}

impl Default for Hd44780 {
    fn default() -> Self {
        Self {
            expander: 0,
            four_bit: false,
            high_nibble: None,
            ddram: [b' '; 0x80],
            address: 0,
            increment: true,
            display_on: false,
            cgram: false,
            display_shifts: 0,
            writes: 0,
        }
    }
}

impl Hd44780 {
    fn expander_write(&mut self, byte: u8) {
        self.writes += 1;
        let falling_edge = self.expander & E != 0 && byte & E == 0;
        let latched = self.expander;
        self.expander = byte;
        if !falling_edge {
            return;
        }
        assert_eq!(latched & RW, 0, "the driver only writes");
        let nibble = latched >> 4;
        let rs = latched & RS != 0;
        if !self.four_bit {
            // 8-bit interface at power-up: D0–D3 are not wired and read as 0.
            assert!(!rs, "data before the interface is set up");
            self.execute(nibble << 4);
            return;
        }
        match self.high_nibble.take() {
            None => self.high_nibble = Some(nibble),
            Some(high) if rs => self.write_data((high << 4) | nibble),
            Some(high) => self.execute((high << 4) | nibble),
        }
    }

    fn execute(&mut self, command: u8) {
        match command {
            0x00 => {}
            0x01 => {
                self.ddram = [b' '; 0x80];
                self.address = 0;
                self.increment = true;
                self.cgram = false;
                self.display_shifts = 0;
            }
            0x02..=0x03 => {
                self.address = 0;
                self.cgram = false;
            }
            0x04..=0x07 => self.increment = command & 0x02 != 0,
            0x08..=0x0F => self.display_on = command & 0x04 != 0,
            0x10..=0x1F if command & 0x08 != 0 => self.display_shifts += 1,
            0x10..=0x1F => self.step_address(command & 0x04 != 0),
            0x20..=0x3F => self.four_bit = command & 0x10 == 0,
            0x40..=0x7F => self.cgram = true,
            _ => {
                self.address = command & 0x7F;
                self.cgram = false;
            }
        }
    }

    fn write_data(&mut self, byte: u8) {
        if self.cgram {
            return;
        }
        self.ddram[usize::from(self.address)] = byte;
        self.step_address(self.increment);
    }

    fn step_address(&mut self, forward: bool) {
        self.address = match (forward, self.address) {
            (true, 0x27) => 0x40,
            (true, 0x67) => 0x00,
            (true, a) => a + 1,
            (false, 0x00) => 0x67,
            (false, 0x40) => 0x27,
            (false, a) => a - 1,
        };
    }

    /// The text of each row, in ROM codes (as `char`s of the same value).
    fn screen(&self, cols: usize, rows: usize) -> Vec<String> {
        assert_eq!(self.display_shifts, 0, "the display was shifted");
        [0x00, 0x40, 0x14, 0x54][..rows]
            .iter()
            .map(|&start| self.ddram[start..start + cols].iter().map(|&b| char::from(b)).collect())
            .collect()
    }
}

#[derive(Clone, Default)]
struct FakeLcd(Arc<Mutex<Hd44780>>);

impl FakeLcd {
    fn state(&self) -> std::sync::MutexGuard<'_, Hd44780> {
        self.0.lock().unwrap()
    }
}

impl embedded_hal::i2c::ErrorType for FakeLcd {
    type Error = Infallible;
}

impl I2c for FakeLcd {
    fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), Infallible> {
        assert_eq!(address, PCF8574_ADDRESS);
        let mut state = self.state();
        for operation in operations {
            match operation {
                Operation::Write(bytes) => bytes.iter().for_each(|&b| state.expander_write(b)),
                Operation::Read(buffer) => buffer.fill(0),
            }
        }
        Ok(())
    }
}

fn lcd(size: LcdSize) -> (FakeLcd, LcdDisplay<FakeLcd, NoopDelay>) {
    let fake = FakeLcd::default();
    let display = LcdDisplay::new(fake.clone(), PCF8574_ADDRESS, size, NoopDelay::new()).unwrap();
    (fake, display)
}

#[test]
fn lcd_16x2_shows_two_lines_with_the_backlight_on() {
    let (fake, mut display) = lcd(LcdSize::Cols16Rows2);
    display.show(&["Welcome Anna", "Points: 1200"]).unwrap();
    let state = fake.state();
    assert_eq!(state.screen(16, 2), ["Welcome Anna    ", "Points: 1200    "]);
    assert!(state.display_on);
    assert_ne!(state.expander & BACKLIGHT, 0);
}

#[test]
fn lcd_20x4_blanks_the_rows_not_given() {
    let (fake, mut display) = lcd(LcdSize::Cols20Rows4);
    display.show(&["1", "2", "3", "4"]).unwrap();
    display.show(&["Card not valid", "See reception"]).unwrap();
    assert_eq!(
        fake.state().screen(20, 4),
        ["Card not valid      ", "See reception       ", "                    ", "                    "]
    );
}

#[test]
fn lcd_long_lines_are_cut_at_the_width_not_wrapped() {
    let (fake, mut display) = lcd(LcdSize::Cols16Rows2);
    display.show(&["Welcome back, Maximilian", "x"]).unwrap();
    assert_eq!(fake.state().screen(16, 2), ["Welcome back, Ma", "x               "]);
}

#[test]
fn lcd_text_uses_the_rom_codes_of_umlauts() {
    let (fake, mut display) = lcd(LcdSize::Cols16Rows2);
    display.show(&["Grüße", "25°"]).unwrap();
    let screen = fake.state().screen(16, 2);
    assert_eq!(screen[0].chars().take(5).map(|c| c as u8).collect::<Vec<_>>(), [b'G', b'r', 0xF5, 0xE2, b'e']);
    assert_eq!(screen[1].chars().take(3).map(|c| c as u8).collect::<Vec<_>>(), [b'2', b'5', 0xDF]);
}

#[test]
fn lcd_rows_that_do_not_change_are_not_sent_again() {
    let (fake, mut display) = lcd(LcdSize::Cols16Rows2);
    display.show(&["Session open", "0 pts"]).unwrap();
    let before = fake.state().writes;
    display.show(&["Session open", "0 pts"]).unwrap();
    assert_eq!(fake.state().writes, before, "an identical screen costs no bus traffic");
    display.show(&["Session open", "15 pts"]).unwrap();
    // one row: the cursor command and 16 characters, two nibbles each, E high then low
    assert_eq!(fake.state().writes - before, 17 * 4);
    assert_eq!(fake.state().screen(16, 2), ["Session open    ", "15 pts          "]);
}

#[test]
fn lcd_refuses_more_lines_than_rows_without_touching_the_screen() {
    let (fake, mut display) = lcd(LcdSize::Cols16Rows2);
    display.show(&["keep", "this"]).unwrap();
    let before = fake.state().writes;
    assert!(matches!(display.show(&["a", "b", "c"]), Err(Error::Display(_))));
    assert_eq!(fake.state().writes, before);
    assert_eq!(fake.state().screen(16, 2), ["keep            ", "this            "]);
}

#[test]
fn lcd_bus_error_at_start_is_reported() {
    // The first write of the HD44780 reset sequence (nibble 3 with E high) fails: no device.
    let mut bus = I2cMock::new(&[I2cTransaction::write(PCF8574_ADDRESS, vec![0b0011_0100]).with_error(ErrorKind::Other)]);
    let result = LcdDisplay::new(bus.clone(), PCF8574_ADDRESS, LcdSize::Cols16Rows2, NoopDelay::new());
    assert!(matches!(result, Err(Error::I2c(ErrorKind::Other))));
    bus.done();
}

#[test]
fn lcd_bus_error_while_showing_is_reported_and_the_next_screen_is_whole_again() {
    let fake = FakeLcd::default();
    let mut bus = FlakyBus { inner: fake.clone(), fail_after: None };
    let mut display = LcdDisplay::new(bus.clone_handle(), PCF8574_ADDRESS, LcdSize::Cols16Rows2, NoopDelay::new()).unwrap();
    display.show(&["first", "second"]).unwrap();
    // Fail in the middle of a character: the controller is left holding half a byte.
    bus.fail_after_writes(10);
    assert!(matches!(display.show(&["third", "second"]), Err(Error::I2c(ErrorKind::Bus))));
    bus.heal();
    display.show(&["third", "second"]).unwrap();
    assert_eq!(fake.state().screen(16, 2), ["third           ", "second          "]);
}

/// A bus that can be told to fail after some writes, to interrupt the driver mid-row.
#[derive(Clone)]
struct FlakyBus {
    inner: FakeLcd,
    fail_after: Option<Arc<Mutex<Option<usize>>>>,
}

impl FlakyBus {
    fn clone_handle(&mut self) -> Self {
        let shared = self.fail_after.get_or_insert_with(|| Arc::new(Mutex::new(None))).clone();
        Self { inner: self.inner.clone(), fail_after: Some(shared) }
    }

    fn fail_after_writes(&self, n: usize) {
        *self.fail_after.as_ref().unwrap().lock().unwrap() = Some(n);
    }

    fn heal(&self) {
        *self.fail_after.as_ref().unwrap().lock().unwrap() = None;
    }
}

impl embedded_hal::i2c::ErrorType for FlakyBus {
    type Error = ErrorKind;
}

impl I2c for FlakyBus {
    fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        if let Some(limit) = &self.fail_after {
            let mut limit = limit.lock().unwrap();
            match *limit {
                Some(0) => return Err(ErrorKind::Bus),
                Some(n) => *limit = Some(n - 1),
                None => {}
            }
        }
        let Ok(()) = self.inner.transaction(address, operations);
        Ok(())
    }
}
