//! Card identities and the events a card reader reports.
//!
//! Key decision: a [`CardId`] is validated and normalised once, where it enters the program (upper-case
//! hex, 4 to 32 characters: a contactless UID, the digits of a track 2 PAN, the ten hex digits of an
//! EM4100 tag), and it never prints in clear: `Debug` and `Display` show only its last four characters.
//! The clear value is reachable only through [`CardId::expose`], for the wire to the floor server.
//!
//! Not here: how a reader obtains the id (see `pcsc_reader` and `serial`), and whether the card is valid
//! for the club (the floor server decides).

use std::fmt;

use crate::Error;

/// Shortest accepted card id, in characters.
const MIN_LEN: usize = 4;
/// Longest accepted card id, in characters (a 16-byte identifier read from a contact card).
const MAX_LEN: usize = 32;
/// Characters of the id left visible in `Debug` and `Display`.
const VISIBLE: usize = 4;

/// A club card's identifier, normalised as upper-case hexadecimal characters.
///
/// Two readings of the same card compare equal. `Debug` and `Display` redact all but the last four
/// characters, so a `CardId` can be traced safely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardId(String);

impl CardId {
    /// Parses an id given as text (from configuration, the floor server or a test): hexadecimal
    /// digits in either case, 4 to 32 of them. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidCardId("only hexadecimal digits are allowed"));
        }
        Self::checked(text.to_ascii_uppercase())
    }

    /// A contactless card's UID (4, 7 or 10 bytes in ISO 14443; 4 to 16 bytes are accepted).
    pub fn from_uid(uid: &[u8]) -> Result<Self, Error> {
        if uid.len() < 4 {
            return Err(Error::InvalidCardId("a UID has at least 4 bytes"));
        }
        Self::from_bytes(uid)
    }

    /// Binary identifier bytes (a UID or an identifier read from a contact card), as upper-case hex.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut text = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            text.push(hex_digit(b >> 4));
            text.push(hex_digit(b & 0x0F));
        }
        Self::checked(text)
    }

    /// The primary account number of a magnetic stripe (track 2): 4 to 19 decimal digits.
    pub fn from_pan(digits: &str) -> Result<Self, Error> {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidCardId("a PAN has only decimal digits"));
        }
        if digits.len() > 19 {
            return Err(Error::InvalidCardId("a PAN has at most 19 digits"));
        }
        Self::checked(digits.to_owned())
    }

    /// The clear identifier, for the protocol to the floor server. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn checked(text: String) -> Result<Self, Error> {
        match text.len() {
            n if n < MIN_LEN => Err(Error::InvalidCardId("shorter than 4 characters")),
            n if n > MAX_LEN => Err(Error::InvalidCardId("longer than 32 characters")),
            _ => Ok(Self(text)),
        }
    }

    fn redacted(&self) -> &str {
        &self.0[self.0.len() - VISIBLE..]
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0x0F)])
}

impl fmt::Debug for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardId(…{})", self.redacted())
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "…{}", self.redacted())
    }
}

/// What a card reader reports. The `reader` is the reader's name (a PC/SC reader name or the name a
/// serial reader was configured with), so one consumer can tell several readers apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// A card arrived and was identified.
    Inserted {
        /// The reader's name.
        reader: String,
        /// The card that arrived.
        card: CardId,
    },
    /// The card left the reader (or the reader lost it for longer than its debounce time).
    Removed {
        /// The reader's name.
        reader: String,
        /// The card that left.
        card: CardId,
    },
}

impl CardEvent {
    /// The name of the reader the event comes from.
    pub fn reader(&self) -> &str {
        match self {
            CardEvent::Inserted { reader, .. } | CardEvent::Removed { reader, .. } => reader,
        }
    }

    /// The card the event is about.
    pub fn card(&self) -> &CardId {
        match self {
            CardEvent::Inserted { card, .. } | CardEvent::Removed { card, .. } => card,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_parse(input: &str, expected: Option<&str>) {
        assert_eq!(CardId::parse(input).ok().as_ref().map(CardId::expose), expected, "{input:?}");
    }

    #[test]
    fn parse_normalises_to_upper_case() {
        check_parse("04a1b2c3", Some("04A1B2C3"));
    }

    #[test]
    fn parse_ignores_surrounding_whitespace() {
        check_parse("  0123456789\r\n", Some("0123456789"));
    }

    #[test]
    fn parse_rejects_non_hex() {
        check_parse("04A1B2G3", None);
        check_parse("04 A1 B2", None);
    }

    #[test]
    fn parse_rejects_too_short_and_too_long() {
        check_parse("ABC", None);
        check_parse("", None);
        check_parse(&"A".repeat(33), None);
        check_parse(&"A".repeat(32), Some(&"A".repeat(32)));
    }

    #[test]
    fn uid_bytes_become_upper_case_hex() {
        let id = CardId::from_uid(&[0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0x5E, 0x80]).unwrap();
        assert_eq!(id.expose(), "04A1B2C3D45E80");
    }

    #[test]
    fn uid_of_fewer_than_four_bytes_is_refused() {
        assert!(CardId::from_uid(&[0x04, 0xA1, 0xB2]).is_err());
    }

    #[test]
    fn pan_keeps_its_digits() {
        assert_eq!(CardId::from_pan("6012345678901234").unwrap().expose(), "6012345678901234");
        assert!(CardId::from_pan("60123456789012345678").is_err(), "20 digits");
        assert!(CardId::from_pan("6012A").is_err());
    }

    #[test]
    fn debug_and_display_show_only_the_last_four_characters() {
        let id = CardId::parse("6012345678901234").unwrap();
        assert_eq!(format!("{id:?}"), "CardId(…1234)");
        assert_eq!(format!("{id}"), "…1234");
        let event = CardEvent::Inserted { reader: "bar".into(), card: id };
        let debug = format!("{event:?}");
        assert!(!debug.contains("60123456789"), "{debug}");
    }
}
