//! A matrix keypad for PIN entry, on embedded-hal `OutputPin` rows and `InputPin` columns.
//!
//! Key decision: three layers, two of them pure. [`Keypad::read`] scans the matrix once (each row
//! driven low in turn, columns read with pull-ups: low is pressed) and says which key is down, or
//! that several are (ghosting: nothing is trusted). [`KeyDebouncer`] reports a key once it has read
//! the same for `stable_scans` scans in a row, and only after a stable release, so a bouncing
//! contact or a held key gives one digit. [`KeypadPinPad`] runs the scan loop and feeds
//! [`PinEntry`]; its clock is the delays it makes itself (`scan_interval` per scan), which makes the
//! time limit exact under test and, on a terminal, a little longer than set by the scanning time.
//!
//! Not here: opening GPIO lines (`linux`), the PIN rules (`pin`). Rows must idle high (request the
//! lines as outputs with initial value high).

use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{Error as _, InputPin, OutputPin};

use crate::Error;
use crate::pin::{Key, PinEntry, PinOutcome, PinPad};

/// The telephone layout of a 3×4 keypad: `*` erases (cancels when empty), `#` confirms.
pub const KEYMAP_3X4: [[Option<Key>; 3]; 4] = [
    [Some(Key::Digit(1)), Some(Key::Digit(2)), Some(Key::Digit(3))],
    [Some(Key::Digit(4)), Some(Key::Digit(5)), Some(Key::Digit(6))],
    [Some(Key::Digit(7)), Some(Key::Digit(8)), Some(Key::Digit(9))],
    [Some(Key::Back), Some(Key::Digit(0)), Some(Key::Enter)],
];

/// A 4×4 keypad: as [`KEYMAP_3X4`], with `C` (third row, last column) cancelling; `A`, `B`, `D`
/// do nothing.
pub const KEYMAP_4X4: [[Option<Key>; 4]; 4] = [
    [Some(Key::Digit(1)), Some(Key::Digit(2)), Some(Key::Digit(3)), None],
    [Some(Key::Digit(4)), Some(Key::Digit(5)), Some(Key::Digit(6)), None],
    [Some(Key::Digit(7)), Some(Key::Digit(8)), Some(Key::Digit(9)), Some(Key::Cancel)],
    [Some(Key::Back), Some(Key::Digit(0)), Some(Key::Enter), None],
];

/// What one scan of the matrix found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// No mapped key is down.
    Released,
    /// Exactly one key is down.
    Pressed(Key),
    /// More than one key is down.
    Ambiguous,
}

/// A `ROWS` × `COLS` matrix keypad.
pub struct Keypad<R, C, const ROWS: usize, const COLS: usize> {
    rows: [R; ROWS],
    cols: [C; COLS],
    keymap: [[Option<Key>; COLS]; ROWS],
}

impl<R: OutputPin, C: InputPin, const ROWS: usize, const COLS: usize> Keypad<R, C, ROWS, COLS> {
    /// A keypad with these row outputs, column inputs (pulled up) and key map.
    pub fn new(rows: [R; ROWS], cols: [C; COLS], keymap: [[Option<Key>; COLS]; ROWS]) -> Self {
        Self { rows, cols, keymap }
    }

    /// Gives the pins back.
    pub fn destroy(self) -> ([R; ROWS], [C; COLS]) {
        (self.rows, self.cols)
    }

    /// Scans the matrix once.
    pub fn read(&mut self) -> Result<Reading, Error> {
        let mut down = 0;
        let mut found = None;
        for (r, row) in self.rows.iter_mut().enumerate() {
            row.set_low().map_err(|e| Error::Gpio(e.kind()))?;
            let mut scanned = Ok(());
            for (c, col) in self.cols.iter_mut().enumerate() {
                match col.is_low() {
                    Ok(true) => {
                        down += 1;
                        found = self.keymap[r][c];
                    }
                    Ok(false) => {}
                    Err(e) => {
                        scanned = Err(Error::Gpio(e.kind()));
                        break;
                    }
                }
            }
            // Release the row even when a column failed, so the matrix is left idle.
            row.set_high().map_err(|e| Error::Gpio(e.kind()))?;
            scanned?;
        }
        Ok(match (down, found) {
            (0, _) | (1, None) => Reading::Released,
            (1, Some(key)) => Reading::Pressed(key),
            _ => Reading::Ambiguous,
        })
    }
}

/// Turns raw scans into key presses.
#[derive(Debug)]
pub struct KeyDebouncer {
    stable_scans: u8,
    candidate: Reading,
    count: u8,
    /// A key was reported (or the debouncer just started): wait for a stable release.
    latched: bool,
}

impl KeyDebouncer {
    /// A debouncer that trusts a reading after `stable_scans` equal scans (at least 1). It starts
    /// latched: a key already down when entry begins is ignored until released.
    pub fn new(stable_scans: u8) -> Self {
        Self { stable_scans: stable_scans.max(1), candidate: Reading::Released, count: 0, latched: true }
    }

    /// Takes one scan; `Some` when it completes a key press.
    pub fn update(&mut self, reading: Reading) -> Option<Key> {
        if reading == self.candidate {
            self.count = self.count.saturating_add(1);
        } else {
            self.candidate = reading;
            self.count = 1;
        }
        if self.count != self.stable_scans {
            return None;
        }
        match self.candidate {
            Reading::Released => {
                self.latched = false;
                None
            }
            Reading::Pressed(key) if !self.latched => {
                self.latched = true;
                Some(key)
            }
            Reading::Pressed(_) | Reading::Ambiguous => None,
        }
    }
}

/// A PIN pad on a matrix keypad.
pub struct KeypadPinPad<R, C, D, const ROWS: usize, const COLS: usize> {
    keypad: Keypad<R, C, ROWS, COLS>,
    delay: D,
    scan_interval_ms: u32,
    stable_scans: u8,
}

impl<R, C, D, const ROWS: usize, const COLS: usize> KeypadPinPad<R, C, D, ROWS, COLS>
where
    R: OutputPin,
    C: InputPin,
    D: DelayNs,
{
    /// Scans `keypad` every 5 ms and trusts a key after 4 equal scans (20 ms).
    pub fn new(keypad: Keypad<R, C, ROWS, COLS>, delay: D) -> Self {
        Self::with_timing(keypad, delay, 5, 4)
    }

    /// Scans every `scan_interval_ms` (at least 1) and trusts a key after `stable_scans` equal scans.
    pub fn with_timing(keypad: Keypad<R, C, ROWS, COLS>, delay: D, scan_interval_ms: u32, stable_scans: u8) -> Self {
        Self { keypad, delay, scan_interval_ms: scan_interval_ms.max(1), stable_scans }
    }

    /// Gives the keypad and the delay back.
    pub fn destroy(self) -> (Keypad<R, C, ROWS, COLS>, D) {
        (self.keypad, self.delay)
    }
}

impl<R, C, D, const ROWS: usize, const COLS: usize> PinPad for KeypadPinPad<R, C, D, ROWS, COLS>
where
    R: OutputPin + Send,
    C: InputPin + Send,
    D: DelayNs + Send,
{
    fn read_pin(&mut self, limit: Duration, progress: &mut dyn FnMut(usize)) -> Result<PinOutcome, Error> {
        let origin = Instant::now();
        let mut now = origin;
        let mut entry = PinEntry::new(origin, limit);
        let mut debouncer = KeyDebouncer::new(self.stable_scans);
        loop {
            if let Some(key) = debouncer.update(self.keypad.read()?) {
                if let Some(outcome) = entry.key(key, now) {
                    return Ok(outcome);
                }
                progress(entry.len());
            }
            if let Some(outcome) = entry.poll_timeout(now) {
                return Ok(outcome);
            }
            self.delay.delay_ms(self.scan_interval_ms);
            now += Duration::from_millis(u64::from(self.scan_interval_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::MockError;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as Delay};
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Pin};

    use super::*;

    /// Expected pin transactions for a 4×3 keypad over a series of scans, each with the
    /// (row, col) positions held down.
    struct Script {
        rows: [Vec<Pin>; 4],
        cols: [Vec<Pin>; 3],
    }

    impl Script {
        fn new() -> Self {
            Self { rows: Default::default(), cols: Default::default() }
        }

        fn scan(&mut self, down: &[(usize, usize)]) -> &mut Self {
            for r in 0..4 {
                self.rows[r].push(Pin::set(State::Low));
                for c in 0..3 {
                    let level = if down.contains(&(r, c)) { State::Low } else { State::High };
                    self.cols[c].push(Pin::get(level));
                }
                self.rows[r].push(Pin::set(State::High));
            }
            self
        }

        fn scans(&mut self, n: usize, down: &[(usize, usize)]) -> &mut Self {
            for _ in 0..n {
                self.scan(down);
            }
            self
        }

        /// Presses the key at `pos` for three scans and releases it for three.
        fn tap(&mut self, pos: (usize, usize)) -> &mut Self {
            self.scans(3, &[pos]).scans(3, &[])
        }

        fn pins(&self) -> ([PinMock; 4], [PinMock; 3]) {
            (self.rows.each_ref().map(PinMock::new), self.cols.each_ref().map(PinMock::new))
        }
    }

    fn done(rows: &mut [PinMock; 4], cols: &mut [PinMock; 3]) {
        rows.iter_mut().chain(cols.iter_mut()).for_each(PinMock::done);
    }

    const ONE: (usize, usize) = (0, 0);
    const TWO: (usize, usize) = (0, 1);
    const THREE: (usize, usize) = (0, 2);
    const FOUR: (usize, usize) = (1, 0);
    const STAR: (usize, usize) = (3, 0);
    const HASH: (usize, usize) = (3, 2);

    fn pad(rows: &[PinMock; 4], cols: &[PinMock; 3]) -> KeypadPinPad<PinMock, PinMock, NoopDelay, 4, 3> {
        let keypad = Keypad::new(rows.clone(), cols.clone(), KEYMAP_3X4);
        KeypadPinPad::with_timing(keypad, NoopDelay::new(), 5, 2)
    }

    #[test]
    fn one_scan_reads_the_key_held_down() {
        let (mut rows, mut cols) = Script::new().scan(&[(2, 1)]).pins();
        let mut keypad = Keypad::new(rows.clone(), cols.clone(), KEYMAP_3X4);
        assert_eq!(keypad.read().unwrap(), Reading::Pressed(Key::Digit(8)));
        done(&mut rows, &mut cols);
    }

    #[test]
    fn two_keys_down_are_ambiguous() {
        let (mut rows, mut cols) = Script::new().scan(&[ONE, FOUR]).pins();
        let mut keypad = Keypad::new(rows.clone(), cols.clone(), KEYMAP_3X4);
        assert_eq!(keypad.read().unwrap(), Reading::Ambiguous);
        done(&mut rows, &mut cols);
    }

    #[test]
    fn a_failing_column_releases_its_row_and_reports() {
        let rows_t = [vec![Pin::set(State::Low), Pin::set(State::High)], vec![], vec![], vec![]];
        let cols_t = [vec![Pin::get(State::High).with_error(MockError::Io(std::io::ErrorKind::Other))], vec![], vec![]];
        let mut rows = rows_t.each_ref().map(PinMock::new);
        let mut cols = cols_t.each_ref().map(PinMock::new);
        let mut keypad = Keypad::new(rows.clone(), cols.clone(), KEYMAP_3X4);
        assert!(matches!(keypad.read(), Err(Error::Gpio(_))));
        done(&mut rows, &mut cols);
    }

    #[test]
    fn four_taps_and_hash_give_the_pin() {
        let mut script = Script::new();
        script.scans(2, &[]).tap(ONE).tap(TWO).tap(THREE).tap(FOUR).scans(2, &[HASH]);
        let (mut rows, mut cols) = script.pins();
        let mut shown = Vec::new();
        let outcome = pad(&rows, &cols).read_pin(Duration::from_secs(30), &mut |n| shown.push(n)).unwrap();
        match outcome {
            PinOutcome::Entered(pin) => assert_eq!(pin.expose(), "1234"),
            other => panic!("{other:?}"),
        }
        assert_eq!(shown, [1, 2, 3, 4]);
        done(&mut rows, &mut cols);
    }

    #[test]
    fn a_bouncing_contact_gives_one_digit() {
        let mut script = Script::new();
        script
            .scans(2, &[])
            .scan(&[ONE])
            .scan(&[])
            .scan(&[ONE])
            .scans(5, &[ONE])
            .scan(&[])
            .scan(&[ONE])
            .scans(2, &[])
            .scans(2, &[STAR])
            .scans(2, &[])
            .scans(2, &[STAR]);
        let (mut rows, mut cols) = script.pins();
        let mut shown = Vec::new();
        let outcome = pad(&rows, &cols).read_pin(Duration::from_secs(30), &mut |n| shown.push(n)).unwrap();
        // one digit, erased by the first star; the second star on the empty entry cancels
        assert!(matches!(outcome, PinOutcome::Cancelled), "{outcome:?}");
        assert_eq!(shown, [1, 0]);
        done(&mut rows, &mut cols);
    }

    #[test]
    fn a_key_held_when_entry_starts_is_ignored_until_released() {
        let mut script = Script::new();
        script.scans(4, &[ONE]).scans(2, &[]).scans(2, &[STAR]);
        let (mut rows, mut cols) = script.pins();
        let outcome = pad(&rows, &cols).read_pin(Duration::from_secs(30), &mut |_| {}).unwrap();
        assert!(matches!(outcome, PinOutcome::Cancelled), "{outcome:?}");
        done(&mut rows, &mut cols);
    }

    #[test]
    fn ghosted_keys_are_not_read() {
        let mut script = Script::new();
        script.scans(2, &[]).scans(4, &[ONE, FOUR]).scans(2, &[]).scans(2, &[STAR]);
        let (mut rows, mut cols) = script.pins();
        let mut shown = Vec::new();
        let outcome = pad(&rows, &cols).read_pin(Duration::from_secs(30), &mut |n| shown.push(n)).unwrap();
        assert!(matches!(outcome, PinOutcome::Cancelled), "{outcome:?}");
        assert!(shown.is_empty(), "{shown:?}");
        done(&mut rows, &mut cols);
    }

    #[test]
    fn the_limit_is_counted_in_scan_intervals() {
        // 100 ms at 5 ms per scan: scans at 0, 5, …, 100 ms, the last one times out.
        let (mut rows, mut cols) = Script::new().scans(21, &[]).pins();
        let mut delay = CheckedDelay::new(&vec![Delay::delay_ms(5); 20]);
        let keypad = Keypad::new(rows.clone(), cols.clone(), KEYMAP_3X4);
        let mut pad = KeypadPinPad::with_timing(keypad, delay.clone(), 5, 2);
        let outcome = pad.read_pin(Duration::from_millis(100), &mut |_| {}).unwrap();
        assert!(matches!(outcome, PinOutcome::TimedOut), "{outcome:?}");
        done(&mut rows, &mut cols);
        delay.done();
    }

    #[test]
    fn debouncer_needs_a_release_between_presses() {
        let mut d = KeyDebouncer::new(2);
        let one = Reading::Pressed(Key::Digit(1));
        let seen: Vec<_> = [Reading::Released, Reading::Released, one, one, one, one, Reading::Released, Reading::Released, one, one]
            .into_iter()
            .filter_map(|r| d.update(r))
            .collect();
        assert_eq!(seen, [Key::Digit(1), Key::Digit(1)]);
    }
}
