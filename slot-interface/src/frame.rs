//! SAS wire primitives: machine addresses, the message CRC, packed BCD and binary fields, and the
//! code tables (long poll commands, exceptions, denominations, meters) that the codec builds on.
//!
//! Key decision: every field helper is a pure function over byte slices that reports bad input
//! as an [`Error`] instead of panicking, so the codec can run on arbitrary bytes from the line.
//! This module knows nothing about message layouts (that is `codec`) nor about time (`poller`).
//!
//! Section numbers (§) refer to the SAS 6.02 specification (GSA, 2005).

use club_rules::Money;

use crate::Error;

/// CRC-16/KERMIT (polynomial x^16+x^12+x^5+1, initial value 0, reflected), SAS §5. It covers the
/// whole message and is sent low byte first: `01 01` goes out as `01 01 51 08`.
pub const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_KERMIT);

/// The CRC of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// The CRC with the register preset to `seed`: the ROM signature algorithm of §6.
pub fn crc16_seeded(seed: u16, bytes: &[u8]) -> u16 {
    // The crc crate reflects the initial value for reflected algorithms; reflect it back so the
    // register really starts at `seed`.
    let mut digest = CRC.digest_with_initial(seed.reverse_bits());
    digest.update(bytes);
    digest.finalize()
}

/// Appends the CRC of everything already in `buf`, low byte first (§5.2).
pub fn append_crc(buf: &mut Vec<u8>) {
    let crc = crc16(buf);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// Whether the last two bytes of `frame` are the CRC of the bytes before them.
pub fn crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(body) => crc16(&frame[..body]).to_le_bytes() == [frame[body], frame[body + 1]],
        None => false,
    }
}

/// Encodes `value` as `len` bytes of packed BCD, most significant byte first (§2.2.3).
pub fn put_bcd(out: &mut Vec<u8>, value: u64, len: usize) -> Result<(), Error> {
    let start = out.len();
    out.resize(start + len, 0);
    let mut rest = value;
    for slot in out[start..].iter_mut().rev() {
        let low = (rest % 10) as u8;
        let high = ((rest / 10) % 10) as u8;
        *slot = (high << 4) | low;
        rest /= 100;
    }
    if rest != 0 {
        out.truncate(start);
        return Err(Error::BcdOverflow { value, bytes: len });
    }
    Ok(())
}

/// Decodes packed BCD, most significant byte first; a nibble above 9 is an error.
pub fn get_bcd(bytes: &[u8]) -> Result<u64, Error> {
    if bytes.len() > 9 {
        return Err(Error::BadBcd(bytes.to_vec()));
    }
    let mut value = 0u64;
    for &b in bytes {
        let (high, low) = (b >> 4, b & 0x0F);
        if high > 9 || low > 9 {
            return Err(Error::BadBcd(bytes.to_vec()));
        }
        value = value * 100 + u64::from(high) * 10 + u64::from(low);
    }
    Ok(value)
}

/// Encodes `value` as `len` binary bytes, least significant byte first (§2.2.3).
pub fn put_binary(out: &mut Vec<u8>, value: u64, len: usize) {
    out.extend((0..len).map(|i| (value >> (8 * i)) as u8));
}

/// Decodes binary, least significant byte first.
pub fn get_binary(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A gaming machine address on a SAS line, 1 to 127 (§2.1; 0 means "ignore the host").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(u8);

impl Address {
    /// The address, or an error for 0 and values above 127.
    pub fn new(value: u8) -> Result<Address, Error> {
        if (1..=127).contains(&value) {
            Ok(Address(value))
        } else {
            Err(Error::BadAddress(value))
        }
    }

    /// The address as a byte.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The general poll for this machine: the address ORed with 0x80 (§2.2.1).
    pub fn general_poll(self) -> u8 {
        self.0 | 0x80
    }

    /// The machine's negative acknowledgement of a long poll: the address with bit 7 set.
    pub fn nack(self) -> u8 {
        self.0 | 0x80
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// The general poll to address 0 that no machine answers. The host sends it as the "poll to a
/// different gaming machine" that is an implied ACK (§3.1) and as the synchronisation poll a
/// machine waits for after start-up or link loss (§3.3).
pub const SYNC_POLL: u8 = 0x80;

/// The event identifier that marks a real-time event response (§12.5).
pub const RTE_MARK: u8 = 0xFF;

/// Long poll command codes (Appendix B) used by this crate.
pub mod command {
    /// Shutdown: lock out play (§7.4.1), type S.
    pub const SHUTDOWN: u8 = 0x01;
    /// Startup: enable play again, type S.
    pub const STARTUP: u8 = 0x02;
    /// Enable/disable real-time event reporting (§12.1), type S.
    pub const REAL_TIME_EVENTS: u8 = 0x0E;
    /// Send meters 10 through 15 (§7.2), type R.
    pub const METERS_10_TO_15: u8 = 0x0F;
    /// Send cancelled credits meter, type R (single 4-byte meter).
    pub const CANCELLED_CREDITS: u8 = 0x10;
    /// Send total coin in meter.
    pub const COIN_IN: u8 = 0x11;
    /// Send total coin out meter.
    pub const COIN_OUT: u8 = 0x12;
    /// Send total drop meter.
    pub const DROP: u8 = 0x13;
    /// Send total jackpot meter.
    pub const JACKPOT: u8 = 0x14;
    /// Send games played meter.
    pub const GAMES_PLAYED: u8 = 0x15;
    /// Send games won meter.
    pub const GAMES_WON: u8 = 0x16;
    /// Send games lost meter.
    pub const GAMES_LOST: u8 = 0x17;
    /// Send games since last power up and slot door closure (§7.7).
    pub const GAMES_SINCE_POWER_UP: u8 = 0x18;
    /// Send meters 11 through 15 (coin in, coin out, drop, jackpot, games played).
    pub const METERS_11_TO_15: u8 = 0x19;
    /// Send current credits.
    pub const CURRENT_CREDITS: u8 = 0x1A;
    /// Send handpay information (§7.8).
    pub const HANDPAY_INFO: u8 = 0x1B;
    /// Send meters (coin in, coin out, drop, jackpot, games played, games won, door, power).
    pub const METERS: u8 = 0x1C;
    /// Send gaming machine ID and information (§7.10).
    pub const MACHINE_INFO: u8 = 0x1F;
    /// Send total dollar value of bills meter.
    pub const BILLS_VALUE: u8 = 0x20;
    /// ROM signature verification (§6).
    pub const ROM_SIGNATURE: u8 = 0x21;
    /// Send selected meters for game N (§7.3).
    pub const SELECTED_METERS: u8 = 0x2F;
    /// AFT transfer funds (§8.3).
    pub const AFT_TRANSFER: u8 = 0x72;
    /// AFT register gaming machine (§8.1).
    pub const AFT_REGISTER: u8 = 0x73;
    /// AFT game lock and status request (§8.2).
    pub const AFT_LOCK: u8 = 0x74;
    /// Initiate legacy bonus pay (§13.3).
    pub const LEGACY_BONUS: u8 = 0x8A;
}

/// A general poll exception code (Appendix A). Unknown codes are kept, never rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionCode(pub u8);

impl ExceptionCode {
    /// No activity (never sent in real-time mode, §12.6).
    pub const NO_ACTIVITY: Self = Self(0x00);
    /// Slot door opened.
    pub const SLOT_DOOR_OPENED: Self = Self(0x11);
    /// Slot door closed.
    pub const SLOT_DOOR_CLOSED: Self = Self(0x12);
    /// Drop door opened.
    pub const DROP_DOOR_OPENED: Self = Self(0x13);
    /// Drop door closed.
    pub const DROP_DOOR_CLOSED: Self = Self(0x14);
    /// Card cage opened.
    pub const CARD_CAGE_OPENED: Self = Self(0x15);
    /// Card cage closed.
    pub const CARD_CAGE_CLOSED: Self = Self(0x16);
    /// AC power was applied to the gaming machine.
    pub const POWER_APPLIED: Self = Self(0x17);
    /// AC power was lost from the gaming machine.
    pub const POWER_LOST: Self = Self(0x18);
    /// Cashbox door opened.
    pub const CASHBOX_DOOR_OPENED: Self = Self(0x19);
    /// Cashbox door closed.
    pub const CASHBOX_DOOR_CLOSED: Self = Self(0x1A);
    /// Belly door opened.
    pub const BELLY_DOOR_OPENED: Self = Self(0x1D);
    /// Belly door closed.
    pub const BELLY_DOOR_CLOSED: Self = Self(0x1E);
    /// Bill accepted (generic, non-RTE form).
    pub const BILL_ACCEPTED: Self = Self(0x4F);
    /// Handpay is pending (§7.8).
    pub const HANDPAY_PENDING: Self = Self(0x51);
    /// Handpay was reset.
    pub const HANDPAY_RESET: Self = Self(0x52);
    /// AFT transfer complete (§8.3).
    pub const AFT_COMPLETE: Self = Self(0x69);
    /// Game locked (§8.2), reissued every five seconds while locked.
    pub const GAME_LOCKED: Self = Self(0x6F);
    /// Exception buffer overflow (§2.2.1).
    pub const BUFFER_OVERFLOW: Self = Self(0x70);
    /// A legacy bonus pay was awarded (§13.5).
    pub const LEGACY_BONUS_AWARDED: Self = Self(0x7C);
    /// Game has started (§12.5.3).
    pub const GAME_STARTED: Self = Self(0x7E);
    /// Game has ended (§12.5.4).
    pub const GAME_ENDED: Self = Self(0x7F);
    /// Reel N has stopped (§12.5.5).
    pub const REEL_STOPPED: Self = Self(0x88);
    /// Game recall entry displayed (§12.5.6).
    pub const GAME_RECALL: Self = Self(0x8A);
    /// Card held/not held (§12.5.7).
    pub const CARD_HELD: Self = Self(0x8B);
    /// Game selected (§12.5.8).
    pub const GAME_SELECTED: Self = Self(0x8C);

    /// How many data bytes follow this code in a real-time event (§12.5); 0 for plain events.
    pub fn rte_data_len(self) -> usize {
        match self.0 {
            0x7E => 8,                       // credits wagered 2 BCD, coin in 4 BCD, wager type, group
            0x7F => 4,                       // game win 4 BCD
            0x7C => 10,                      // multiplier, multiplied win 4 BCD, tax status, bonus 4 BCD
            0x47..=0x50 => 6,                // country 1 BCD, denomination 1 BCD, bill meter 4 BCD
            0x88 => 2,                       // reel number, physical stop
            0x8A => 4,                       // game number 2 BCD, recall index 2 BCD
            0x8B => 1,                       // card number and held flag
            0x8C => 2,                       // game number 2 BCD
            _ => 0,
        }
    }

    /// A short English name for logs and traces.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "no activity",
            0x11 => "slot door opened",
            0x12 => "slot door closed",
            0x13 => "drop door opened",
            0x14 => "drop door closed",
            0x15 => "card cage opened",
            0x16 => "card cage closed",
            0x17 => "AC power applied",
            0x18 => "AC power lost",
            0x19 => "cashbox door opened",
            0x1A => "cashbox door closed",
            0x1D => "belly door opened",
            0x1E => "belly door closed",
            0x1F => "no activity, waiting for player",
            0x20 => "general tilt",
            0x47..=0x4E | 0x50 => "bill accepted (denomination)",
            0x4F => "bill accepted",
            0x51 => "handpay pending",
            0x52 => "handpay reset",
            0x66 => "cash out button pressed",
            0x69 => "AFT transfer complete",
            0x6A => "AFT request for host cashout",
            0x6C => "AFT request to register",
            0x6D => "AFT registration acknowledged",
            0x6E => "AFT registration cancelled",
            0x6F => "game locked",
            0x70 => "exception buffer overflow",
            0x7C => "legacy bonus pay awarded",
            0x7E => "game started",
            0x7F => "game ended",
            0x88 => "reel stopped",
            0x8A => "game recall entry displayed",
            0x8B => "card held/not held",
            0x8C => "game selected",
            _ => "exception",
        }
    }
}

/// A machine's accounting denomination: the value of one meter credit (Table C-4).
///
/// Only the whole-cent codes are accepted, so every conversion of credits to money is exact; the
/// fractional-cent codes (0x1B and above) are refused with [`Error::UnknownDenomination`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Denomination {
    code: u8,
    cents: u32,
}

/// Table C-4, whole-cent entries: (code, cents per credit).
const DENOMINATIONS: [(u8, u32); 26] = [
    (0x01, 1),
    (0x02, 5),
    (0x03, 10),
    (0x04, 25),
    (0x05, 50),
    (0x06, 100),
    (0x07, 500),
    (0x08, 1_000),
    (0x09, 2_000),
    (0x0A, 10_000),
    (0x0B, 20),
    (0x0C, 200),
    (0x0D, 250),
    (0x0E, 2_500),
    (0x0F, 5_000),
    (0x10, 20_000),
    (0x11, 25_000),
    (0x12, 50_000),
    (0x13, 100_000),
    (0x14, 200_000),
    (0x15, 250_000),
    (0x16, 500_000),
    (0x17, 2),
    (0x18, 3),
    (0x19, 15),
    (0x1A, 40),
];

impl Denomination {
    /// The denomination for a Table C-4 code.
    pub fn from_code(code: u8) -> Result<Denomination, Error> {
        DENOMINATIONS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, cents)| Denomination { code, cents })
            .ok_or(Error::UnknownDenomination(code))
    }

    /// The denomination worth `cents` per credit, if Table C-4 has one.
    pub fn from_cents(cents: u32) -> Result<Denomination, Error> {
        DENOMINATIONS
            .iter()
            .find(|(_, v)| *v == cents)
            .map(|&(code, cents)| Denomination { code, cents })
            .ok_or(Error::NoDenominationCode(cents))
    }

    /// The Table C-4 code.
    pub fn code(self) -> u8 {
        self.code
    }

    /// Cents per credit.
    pub fn cents(self) -> u32 {
        self.cents
    }

    /// The money value of a number of credits (exact: every accepted denomination is whole cents).
    pub fn money(self, credits: u64) -> Result<Money, Error> {
        i64::try_from(credits)
            .ok()
            .and_then(|c| c.checked_mul(i64::from(self.cents)))
            .map(Money::from_cents)
            .ok_or(Error::AmountOutOfRange(credits))
    }

    /// How many credits `cents` buys, or `None` if it is not a whole number of credits (AFT
    /// status 0x85, §8.3).
    pub fn credits_for_cents(self, cents: u64) -> Option<u64> {
        cents.is_multiple_of(u64::from(self.cents)).then(|| cents / u64::from(self.cents))
    }
}

/// What a meter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterUnit {
    /// Credits of the accounting denomination.
    Credits,
    /// Cents.
    Cents,
    /// Occurrences (games, doors).
    Count,
}

/// A meter code of Table C-7, as used by long poll 0x2F.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterCode(pub u8);

impl MeterCode {
    /// Total coin in (credits wagered).
    pub const TOTAL_COIN_IN: Self = Self(0x00);
    /// Total coin out (credits won and paid by the machine).
    pub const TOTAL_COIN_OUT: Self = Self(0x01);
    /// Total jackpot (hand paid wins).
    pub const TOTAL_JACKPOT: Self = Self(0x02);
    /// Total hand paid cancelled credits.
    pub const TOTAL_HANDPAID_CANCELLED: Self = Self(0x03);
    /// Total cancelled credits.
    pub const TOTAL_CANCELLED: Self = Self(0x04);
    /// Games played.
    pub const GAMES_PLAYED: Self = Self(0x05);
    /// Games won.
    pub const GAMES_WON: Self = Self(0x06);
    /// Games lost.
    pub const GAMES_LOST: Self = Self(0x07);
    /// Total credits from bills accepted.
    pub const BILLS_ACCEPTED: Self = Self(0x0B);
    /// Current credits.
    pub const CURRENT_CREDITS: Self = Self(0x0C);
    /// Total electronic transfers to the gaming machine.
    pub const ELECTRONIC_IN: Self = Self(0x17);
    /// Total restricted amount played.
    pub const RESTRICTED_PLAYED: Self = Self(0x19);
    /// Total nonrestricted amount played.
    pub const NONRESTRICTED_PLAYED: Self = Self(0x1A);
    /// Current restricted credits.
    pub const CURRENT_RESTRICTED: Self = Self(0x1B);
    /// Total drop.
    pub const TOTAL_DROP: Self = Self(0x24);
    /// Games since last power reset.
    pub const GAMES_SINCE_POWER_RESET: Self = Self(0x25);

    /// Meter size in BCD bytes and unit, for the codes this crate knows (Table C-7 "min size").
    pub fn layout(self) -> Option<(usize, MeterUnit)> {
        use MeterUnit::*;
        Some(match self.0 {
            0x00..=0x04 => (4, Credits),
            0x05..=0x07 => (4, Count),
            0x08..=0x0C => (4, Credits),
            0x0D..=0x10 => (5, Cents),
            0x11..=0x14 => (4, Count),
            0x15..=0x24 => (4, Credits),
            0x25..=0x26 => (4, Count),
            _ => return None,
        })
    }

    /// A short English name for logs, traces and reports.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "total coin in",
            0x01 => "total coin out",
            0x02 => "total jackpot",
            0x03 => "total hand paid cancelled credits",
            0x04 => "total cancelled credits",
            0x05 => "games played",
            0x06 => "games won",
            0x07 => "games lost",
            0x08 => "credits from coin acceptor",
            0x09 => "credits paid from hopper",
            0x0A => "credits from coins to drop",
            0x0B => "credits from bills accepted",
            0x0C => "current credits",
            0x0D..=0x10 => "SAS ticket amount (cents)",
            0x11..=0x14 => "SAS ticket count",
            0x15 => "total ticket in",
            0x16 => "total ticket out",
            0x17 => "electronic transfers to machine",
            0x18 => "electronic transfers to host",
            0x19 => "restricted amount played",
            0x1A => "nonrestricted amount played",
            0x1B => "current restricted credits",
            0x1C => "machine paid paytable win",
            0x1D => "machine paid progressive win",
            0x1E => "machine paid external bonus",
            0x1F => "attendant paid paytable win",
            0x20 => "attendant paid progressive win",
            0x21 => "attendant paid external bonus",
            0x22 => "total won credits",
            0x23 => "total hand paid credits",
            0x24 => "total drop",
            0x25 => "games since power reset",
            0x26 => "games since slot door closure",
            _ => "unknown meter",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_crc(message: &[u8], expected: [u8; 2]) {
        let mut framed = message.to_vec();
        append_crc(&mut framed);
        assert_eq!(framed[message.len()..], expected, "CRC of {message:02X?}");
        assert!(crc_ok(&framed));
    }

    #[test]
    fn crc_of_01_01_is_sent_as_51_08() {
        check_crc(&[0x01, 0x01], [0x51, 0x08]);
    }

    #[test]
    fn crc_of_a_legacy_bonus_frame_captured_on_a_real_machine() {
        // `01 8A 00 00 00 10 00 E8 26`, an ACKed legacy bonus of 10 credits on a WMS machine.
        check_crc(&[0x01, 0x8A, 0x00, 0x00, 0x00, 0x10, 0x00], [0xE8, 0x26]);
    }

    #[test]
    fn crc_check_rejects_a_flipped_bit_and_short_frames() {
        assert!(!crc_ok(&[0x01, 0x01, 0x51, 0x09]));
        assert!(!crc_ok(&[0x51]));
        assert!(!crc_ok(&[]));
    }

    #[test]
    fn seeded_crc_with_seed_zero_is_the_plain_crc() {
        assert_eq!(crc16_seeded(0, b"123456789"), crc16(b"123456789"));
        assert_eq!(crc16(b"123456789"), 0x2189, "the catalogue check value of CRC-16/KERMIT");
        assert_ne!(crc16_seeded(0x1234, b"123456789"), crc16(b"123456789"));
    }

    #[test]
    fn bcd_is_packed_most_significant_byte_first() {
        let mut out = Vec::new();
        put_bcd(&mut out, 12_345_678, 4).unwrap();
        assert_eq!(out, [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(get_bcd(&out).unwrap(), 12_345_678);
        let mut out = Vec::new();
        put_bcd(&mut out, 7, 2).unwrap();
        assert_eq!(out, [0x00, 0x07]);
    }

    #[test]
    fn bcd_that_does_not_fit_is_refused_and_writes_nothing() {
        let mut out = vec![0xAA];
        assert!(matches!(put_bcd(&mut out, 100_000_000, 4), Err(Error::BcdOverflow { value: 100_000_000, bytes: 4 })));
        assert_eq!(out, [0xAA]);
    }

    #[test]
    fn bcd_with_a_nibble_above_nine_is_refused() {
        assert!(matches!(get_bcd(&[0x1A]), Err(Error::BadBcd(_))));
        assert!(matches!(get_bcd(&[0xA1]), Err(Error::BadBcd(_))));
    }

    #[test]
    fn binary_fields_are_least_significant_byte_first() {
        let mut out = Vec::new();
        put_binary(&mut out, 0x1234_5678, 4);
        assert_eq!(out, [0x78, 0x56, 0x34, 0x12]);
        assert_eq!(get_binary(&out), 0x1234_5678);
    }

    #[test]
    fn addresses_are_1_to_127() {
        assert!(Address::new(0).is_err());
        assert!(Address::new(128).is_err());
        let a = Address::new(1).unwrap();
        assert_eq!((a.general_poll(), a.nack()), (0x81, 0x81));
        assert_eq!(Address::new(127).unwrap().general_poll(), 0xFF);
    }

    #[test]
    fn denominations_convert_credits_to_exact_money() {
        let cent = Denomination::from_code(0x01).unwrap();
        assert_eq!(cent.money(250).unwrap().to_string(), "EUR 2.50");
        let quarter = Denomination::from_cents(25).unwrap();
        assert_eq!(quarter.code(), 0x04);
        assert_eq!(quarter.money(3).unwrap().to_string(), "EUR 0.75");
        assert!(matches!(quarter.money(u64::MAX), Err(Error::AmountOutOfRange(_))));
        assert_eq!(quarter.credits_for_cents(100), Some(4));
        assert_eq!(quarter.credits_for_cents(110), None);
    }

    #[test]
    fn fractional_cent_and_unknown_denominations_are_refused() {
        assert!(matches!(Denomination::from_code(0x1B), Err(Error::UnknownDenomination(0x1B))));
        assert!(matches!(Denomination::from_code(0x00), Err(Error::UnknownDenomination(0x00))));
        assert!(matches!(Denomination::from_cents(7), Err(Error::NoDenominationCode(7))));
    }

    #[test]
    fn cents_meters_are_five_bytes_and_credit_meters_four() {
        assert_eq!(MeterCode::TOTAL_COIN_IN.layout(), Some((4, MeterUnit::Credits)));
        assert_eq!(MeterCode(0x0D).layout(), Some((5, MeterUnit::Cents)));
        assert_eq!(MeterCode::GAMES_PLAYED.layout(), Some((4, MeterUnit::Count)));
        assert_eq!(MeterCode(0xF0).layout(), None);
    }
}
