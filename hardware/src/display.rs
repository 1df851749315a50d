//! Text displays: a character LCD (HD44780 behind a PCF8574 I2C expander, 16×2 or 20×4) and a
//! console stand-in for terminals without one.
//!
//! Key decision: the agent hands whole screens (`&[&str]`, one string per row) to a small
//! object-safe [`Display`] trait; layout is one pure function ([`layout`]: cut to the width, pad,
//! blank the rows not given) and more lines than rows is an error rather than a silently lost line.
//! The LCD driver is the maintained `i2c-character-display` crate (embedded-hal 1.0); text is mapped
//! to the HD44780's ROM A00 first (`ä ö ü ß ° µ` have glyphs there, other non-ASCII shows `?`),
//! because that driver sends each `char` truncated to a byte. Unchanged rows are not re-sent. A bus
//! error can cost the controller a nibble and leave its 4-bit interface out of step, so after one
//! the next screen starts with the full initialisation sequence, which brings it back in step.
//!
//! Not here: what to show (the agent), opening `/dev/i2c-N` (`linux`).

use std::io::Write;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{Error as _, I2c};
use i2c_character_display::{CharacterDisplayError, CharacterDisplayPCF8574T, LcdDisplayType};

use crate::Error;

/// A text display of a few rows.
pub trait Display: Send {
    /// Columns and rows.
    fn size(&self) -> (usize, usize);

    /// Shows one screen: `lines[i]` on row `i`, cut to the width; rows without a line are blank.
    /// More lines than rows is an error and changes nothing.
    fn show(&mut self, lines: &[&str]) -> Result<(), Error>;
}

/// Lays `lines` out on a `cols` × `rows` screen: each row exactly `cols` characters.
pub fn layout(lines: &[&str], cols: usize, rows: usize) -> Result<Vec<String>, Error> {
    if lines.len() > rows {
        return Err(Error::Display("more lines than the display has rows"));
    }
    Ok((0..rows)
        .map(|row| {
            let line = lines.get(row).copied().unwrap_or("");
            let mut text: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).take(cols).collect();
            let width = text.chars().count();
            text.extend(std::iter::repeat_n(' ', cols - width));
            text
        })
        .collect())
}

/// The console display: draws each screen in a frame on a writer (stdout by default). It is the
/// terminal's screen, not its log: what it shows is for the player.
pub struct ConsoleDisplay<W: Write + Send = std::io::Stdout> {
    out: W,
    cols: usize,
    rows: usize,
}

impl ConsoleDisplay {
    /// A `cols` × `rows` display on standard output.
    pub fn stdout(cols: usize, rows: usize) -> Self {
        Self::new(std::io::stdout(), cols, rows)
    }
}

impl<W: Write + Send> ConsoleDisplay<W> {
    /// A `cols` × `rows` display drawn on `out`.
    pub fn new(out: W, cols: usize, rows: usize) -> Self {
        Self { out, cols, rows }
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Display for ConsoleDisplay<W> {
    fn size(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    fn show(&mut self, lines: &[&str]) -> Result<(), Error> {
        let rows = layout(lines, self.cols, self.rows)?;
        let border = format!("+{}+\n", "-".repeat(self.cols));
        let mut screen = border.clone();
        for row in rows {
            screen.push('|');
            screen.push_str(&row);
            screen.push_str("|\n");
        }
        screen.push_str(&border);
        self.out.write_all(screen.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

/// The character LCD sizes supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcdSize {
    /// 16 columns, 2 rows.
    Cols16Rows2,
    /// 20 columns, 4 rows.
    Cols20Rows4,
}

impl LcdSize {
    fn cols_rows(self) -> (usize, usize) {
        match self {
            LcdSize::Cols16Rows2 => (16, 2),
            LcdSize::Cols20Rows4 => (20, 4),
        }
    }

    fn driver_type(self) -> LcdDisplayType {
        match self {
            LcdSize::Cols16Rows2 => LcdDisplayType::Lcd16x2,
            LcdSize::Cols20Rows4 => LcdDisplayType::Lcd20x4,
        }
    }
}

/// The usual I2C address of a PCF8574 LCD backpack (A0–A2 open).
pub const PCF8574_ADDRESS: u8 = 0x27;

/// An HD44780 character LCD behind a PCF8574 I2C expander.
pub struct LcdDisplay<I2C: I2c, D: DelayNs> {
    lcd: CharacterDisplayPCF8574T<I2C, D>,
    size: LcdSize,
    /// What each row shows now, to skip rows that do not change.
    shown: Vec<Option<String>>,
    /// A bus error happened: initialise again before the next screen.
    stale: bool,
}

impl<I2C: I2c, D: DelayNs> LcdDisplay<I2C, D> {
    /// Initialises the LCD at `address` on `i2c`, clears it and turns the backlight on.
    pub fn new(i2c: I2C, address: u8, size: LcdSize, delay: D) -> Result<Self, Error> {
        let lcd = CharacterDisplayPCF8574T::new_with_address(i2c, address, size.driver_type(), delay);
        let rows = size.cols_rows().1;
        let mut this = Self { lcd, size, shown: vec![None; rows], stale: true };
        this.initialise()?;
        Ok(this)
    }

    /// Runs the controller's initialisation (which also clears it) and turns the backlight on.
    fn initialise(&mut self) -> Result<(), Error> {
        self.shown.fill(None);
        self.lcd.init().map_err(lcd_error)?;
        self.lcd.backlight(true).map_err(lcd_error)?;
        self.stale = false;
        Ok(())
    }

    fn write_row(&mut self, row: usize, text: &str) -> Result<(), Error> {
        self.lcd.set_cursor(0, row as u8).map_err(lcd_error)?;
        self.lcd.print(&to_rom_a00(text)).map_err(lcd_error)?;
        Ok(())
    }
}

impl<I2C, D> Display for LcdDisplay<I2C, D>
where
    I2C: I2c + Send,
    D: DelayNs + Send,
{
    fn size(&self) -> (usize, usize) {
        self.size.cols_rows()
    }

    fn show(&mut self, lines: &[&str]) -> Result<(), Error> {
        let (cols, rows) = self.size.cols_rows();
        let screen = layout(lines, cols, rows)?;
        if self.stale {
            self.initialise()?;
        }
        for (row, text) in screen.into_iter().enumerate() {
            if self.shown[row].as_ref() == Some(&text) {
                continue;
            }
            if let Err(e) = self.write_row(row, &text) {
                self.stale = true;
                return Err(e);
            }
            self.shown[row] = Some(text);
        }
        Ok(())
    }
}

fn lcd_error<I2C: I2c>(e: CharacterDisplayError<I2C>) -> Error {
    match e {
        CharacterDisplayError::I2cError(e) => Error::I2c(e.kind()),
        other => Error::Display(From::from(&other)),
    }
}

/// Maps text to the HD44780 character ROM A00, one `char` per ROM code (the driver sends each
/// `char` as its low byte). ASCII stays, except `\` and `~`, whose codes show `¥` and `→`.
pub fn to_rom_a00(text: &str) -> String {
    text.chars()
        .map(|c| {
            let code = match c {
                '\\' => b'/',
                '~' => b'-',
                ' '..='}' => c as u8,
                'ä' => 0xE1,
                'ß' => 0xE2,
                'µ' => 0xE4,
                'ö' => 0xEF,
                'ü' => 0xF5,
                '°' => 0xDF,
                'Ä' => b'A',
                'Ö' => b'O',
                'Ü' => b'U',
                _ => b'?',
            };
            char::from(code)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_layout(lines: &[&str], cols: usize, rows: usize, expected: &[&str]) {
        assert_eq!(layout(lines, cols, rows).unwrap(), expected);
    }

    #[test]
    fn layout_pads_and_blanks_missing_rows() {
        check_layout(&["Hello"], 8, 2, &["Hello   ", "        "]);
    }

    #[test]
    fn layout_cuts_long_lines_at_the_width() {
        check_layout(&["Welcome back, Maximilian"], 16, 1, &["Welcome back, Ma"]);
    }

    #[test]
    fn layout_counts_characters_not_bytes() {
        check_layout(&["Grüße"], 6, 1, &["Grüße "]);
    }

    #[test]
    fn layout_turns_control_characters_into_spaces() {
        check_layout(&["a\tb\nc"], 5, 1, &["a b c"]);
    }

    #[test]
    fn layout_refuses_more_lines_than_rows() {
        assert!(matches!(layout(&["1", "2", "3"], 16, 2), Err(Error::Display(_))));
    }

    #[test]
    fn rom_mapping() {
        let mapped: Vec<u8> = to_rom_a00("Grüße 5° a\\b~ €").chars().map(|c| c as u8).collect();
        assert_eq!(mapped, [b'G', b'r', 0xF5, 0xE2, b'e', b' ', b'5', 0xDF, b' ', b'a', b'/', b'b', b'-', b' ', b'?']);
    }

    #[test]
    fn console_display_draws_a_framed_screen() {
        let mut display = ConsoleDisplay::new(Vec::new(), 10, 2);
        display.show(&["Welcome", "1200 pts"]).unwrap();
        let drawn = String::from_utf8(display.into_inner()).unwrap();
        assert_eq!(drawn, "+----------+\n|Welcome   |\n|1200 pts  |\n+----------+\n");
    }

    #[test]
    fn console_display_refusal_draws_nothing() {
        let mut display = ConsoleDisplay::new(Vec::new(), 10, 2);
        assert!(display.show(&["1", "2", "3"]).is_err());
        assert!(display.into_inner().is_empty());
    }
}
