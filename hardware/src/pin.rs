//! PINs and the PIN sources a terminal reads them from.
//!
//! Key decision: a [`Pin`] lives in a `secrecy` box and never prints (`Debug` shows `Pin(****)`), and
//! the digits typed so far are kept in a buffer that is wiped when dropped. Entry rules (length, clear,
//! cancel, time limit) are one pure state machine, [`PinEntry`], fed keys and the time by the shells:
//! the matrix keypad (`keypad`) and the console ([`ConsolePinPad`]).
//!
//! Not here: checking the PIN (the floor server does) and counting failed attempts.

use std::fmt;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use crate::Error;

/// Fewest digits a PIN may have.
pub const MIN_PIN_DIGITS: usize = 4;
/// Most digits a PIN may have.
pub const MAX_PIN_DIGITS: usize = 12;

/// A PIN of 4 to 12 decimal digits. It never prints; [`Pin::expose`] gives the digits to whoever must
/// send them on.
pub struct Pin(SecretString);

impl Pin {
    /// Validates a PIN given as text (for example from the console).
    pub fn parse(text: &str) -> Result<Self, Error> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidPin("only decimal digits are allowed"));
        }
        if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&text.len()) {
            return Err(Error::InvalidPin("a PIN has 4 to 12 digits"));
        }
        // `String::from(&str)` allocates exactly the length, so the secret box takes it over
        // without leaving a reallocated copy behind.
        Ok(Self(SecretString::from(String::from(text))))
    }

    /// The digits, for the protocol to the floor server. Never log them.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// How a PIN entry ended.
#[derive(Debug)]
pub enum PinOutcome {
    /// The player confirmed a PIN of valid length.
    Entered(Pin),
    /// The player cancelled.
    Cancelled,
    /// The time limit passed first.
    TimedOut,
}

/// A source of PINs: the keypad of a terminal, or the console of a terminal without one.
///
/// `read_pin` blocks (keypads are scanned, consoles are read); an async caller runs it in
/// `tokio::task::spawn_blocking`. `progress` is called with the number of digits typed after every
/// key, so the caller can show asterisks or beep.
pub trait PinPad: Send {
    /// Reads one PIN, giving up after `limit`.
    fn read_pin(
        &mut self,
        limit: Duration,
        progress: &mut dyn FnMut(usize),
    ) -> Result<PinOutcome, Error>;
}

/// A key of a PIN pad, after the key map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A decimal digit, 0 to 9.
    Digit(u8),
    /// Confirm the PIN.
    Enter,
    /// Erase the last digit; on an empty entry, cancel.
    Back,
    /// Abandon the entry.
    Cancel,
}

/// The rules of typing a PIN, as a pure state machine: keys and the time go in, an outcome comes
/// out once. Enter with fewer than [`MIN_PIN_DIGITS`] digits is ignored; digits beyond
/// [`MAX_PIN_DIGITS`] are ignored.
pub struct PinEntry {
    digits: Zeroizing<String>,
    deadline: Instant,
}

impl PinEntry {
    /// Starts an entry at `now` that times out after `limit`.
    pub fn new(now: Instant, limit: Duration) -> Self {
        Self { digits: Zeroizing::new(String::with_capacity(MAX_PIN_DIGITS)), deadline: now + limit }
    }

    /// How many digits have been typed.
    pub fn len(&self) -> usize {
        self.digits.len()
    }

    /// Whether nothing has been typed yet.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }

    /// When the entry times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Applies one key pressed at `now`; `Some` when the entry is over.
    pub fn key(&mut self, key: Key, now: Instant) -> Option<PinOutcome> {
        if now >= self.deadline {
            return Some(PinOutcome::TimedOut);
        }
        match key {
            Key::Digit(d) if d <= 9 && self.digits.len() < MAX_PIN_DIGITS => {
                self.digits.push(char::from(b'0' + d));
                None
            }
            Key::Digit(_) => None,
            Key::Enter if self.digits.len() >= MIN_PIN_DIGITS => {
                Pin::parse(&self.digits).ok().map(PinOutcome::Entered)
            }
            Key::Enter => None,
            Key::Back if self.digits.is_empty() => Some(PinOutcome::Cancelled),
            Key::Back => {
                self.digits.pop();
                None
            }
            Key::Cancel => Some(PinOutcome::Cancelled),
        }
    }

    /// `Some(TimedOut)` once `now` has reached the deadline.
    pub fn poll_timeout(&self, now: Instant) -> Option<PinOutcome> {
        (now >= self.deadline).then_some(PinOutcome::TimedOut)
    }
}

/// A PIN source for terminals without a keypad: one line of text per PIN (digits, then Enter); an
/// empty line cancels. Lines are read on a thread of their own so the time limit holds even while
/// nothing is typed.
pub struct ConsolePinPad {
    lines: mpsc::Receiver<std::io::Result<Zeroizing<String>>>,
}

impl ConsolePinPad {
    /// Reads PINs from the process's standard input.
    pub fn stdin() -> Self {
        Self::new(std::io::BufReader::new(std::io::stdin()))
    }

    /// Reads PINs from any line source (a pipe, a test's buffer).
    pub fn new(input: impl BufRead + Send + 'static) -> Self {
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("console-pin".into())
            .spawn(move || {
                for line in input.lines() {
                    // Wrapped at once so the typed digits are wiped wherever the line ends up.
                    if tx.send(line.map(Zeroizing::new)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning a thread only fails when the process is out of resources");
        Self { lines }
    }
}

impl PinPad for ConsolePinPad {
    fn read_pin(
        &mut self,
        limit: Duration,
        progress: &mut dyn FnMut(usize),
    ) -> Result<PinOutcome, Error> {
        let line = match self.lines.recv_timeout(limit) {
            Ok(line) => line?,
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(PinOutcome::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(Error::PinSourceClosed),
        };
        let text = line.trim();
        if text.is_empty() {
            return Ok(PinOutcome::Cancelled);
        }
        let pin = Pin::parse(text)?;
        progress(pin.expose().len());
        Ok(PinOutcome::Entered(pin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    /// Types `keys` one per second from a fresh entry and returns how it ended, if it did.
    #[track_caller]
    fn type_keys(keys: &[Key]) -> Option<PinOutcome> {
        let start = Instant::now();
        let mut entry = PinEntry::new(start, LIMIT);
        for (i, &key) in keys.iter().enumerate() {
            let now = start + Duration::from_secs(i as u64);
            if let Some(outcome) = entry.key(key, now) {
                return Some(outcome);
            }
        }
        None
    }

    fn digits(text: &str) -> Vec<Key> {
        text.bytes().map(|b| Key::Digit(b - b'0')).collect()
    }

    #[track_caller]
    fn check_entered(keys: &[Key], expected: &str) {
        match type_keys(keys) {
            Some(PinOutcome::Entered(pin)) => assert_eq!(pin.expose(), expected),
            other => panic!("expected a PIN, got {other:?}"),
        }
    }

    #[test]
    fn four_digits_and_enter_give_the_pin() {
        check_entered(&[digits("1234"), vec![Key::Enter]].concat(), "1234");
    }

    #[test]
    fn enter_before_four_digits_is_ignored() {
        check_entered(&[digits("123"), vec![Key::Enter], digits("4"), vec![Key::Enter]].concat(), "1234");
    }

    #[test]
    fn back_erases_the_last_digit() {
        check_entered(&[digits("129"), vec![Key::Back], digits("34"), vec![Key::Enter]].concat(), "1234");
    }

    #[test]
    fn digits_beyond_twelve_are_ignored() {
        check_entered(&[digits("1234567890123"), vec![Key::Enter]].concat(), "123456789012");
    }

    #[test]
    fn back_on_an_empty_entry_cancels() {
        assert!(matches!(type_keys(&[Key::Back]), Some(PinOutcome::Cancelled)));
    }

    #[test]
    fn cancel_abandons_a_started_entry() {
        assert!(matches!(type_keys(&[digits("12"), vec![Key::Cancel]].concat()), Some(PinOutcome::Cancelled)));
    }

    #[test]
    fn a_key_after_the_limit_times_out() {
        let start = Instant::now();
        let mut entry = PinEntry::new(start, LIMIT);
        assert!(entry.key(Key::Digit(1), start + LIMIT - Duration::from_millis(1)).is_none());
        assert!(matches!(entry.key(Key::Enter, start + LIMIT), Some(PinOutcome::TimedOut)));
    }

    #[test]
    fn poll_timeout_fires_at_the_deadline_only() {
        let start = Instant::now();
        let entry = PinEntry::new(start, LIMIT);
        assert!(entry.poll_timeout(start + LIMIT - Duration::from_millis(1)).is_none());
        assert!(matches!(entry.poll_timeout(start + LIMIT), Some(PinOutcome::TimedOut)));
    }

    #[test]
    fn a_pin_never_prints() {
        let pin = Pin::parse("4711").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        let outcome = format!("{:?}", PinOutcome::Entered(pin));
        assert!(!outcome.contains("4711"), "{outcome}");
    }

    #[track_caller]
    fn check_parse_refused(text: &str) {
        assert!(matches!(Pin::parse(text), Err(Error::InvalidPin(_))), "{text:?}");
    }

    #[test]
    fn pin_parse_refuses_bad_input() {
        check_parse_refused("123");
        check_parse_refused("1234567890123");
        check_parse_refused("12a4");
        check_parse_refused("");
    }

    fn console(input: &str) -> ConsolePinPad {
        ConsolePinPad::new(std::io::Cursor::new(input.to_owned()))
    }

    #[test]
    fn console_reads_one_pin_per_line() {
        let mut pad = console("4711\n  0815 \n");
        let mut shown = Vec::new();
        for expected in ["4711", "0815"] {
            match pad.read_pin(LIMIT, &mut |n| shown.push(n)).unwrap() {
                PinOutcome::Entered(pin) => assert_eq!(pin.expose(), expected),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(shown, [4, 4]);
    }

    #[test]
    fn console_empty_line_cancels() {
        assert!(matches!(console("\n").read_pin(LIMIT, &mut |_| {}), Ok(PinOutcome::Cancelled)));
    }

    #[test]
    fn console_bad_line_is_a_clear_error() {
        assert!(matches!(console("12x4\n").read_pin(LIMIT, &mut |_| {}), Err(Error::InvalidPin(_))));
    }

    #[test]
    fn console_closed_input_is_an_error_not_a_pin() {
        assert!(matches!(console("").read_pin(LIMIT, &mut |_| {}), Err(Error::PinSourceClosed)));
    }

    #[test]
    fn console_times_out_while_nothing_is_typed() {
        // A pipe whose writer stays open: the reader thread blocks, as on a silent terminal.
        let (reader, _writer) = std::io::pipe().unwrap();
        let mut pad = ConsolePinPad::new(std::io::BufReader::new(reader));
        let outcome = pad.read_pin(Duration::from_millis(50), &mut |_| {}).unwrap();
        assert!(matches!(outcome, PinOutcome::TimedOut));
    }
}
