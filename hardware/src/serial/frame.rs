//! Decoders for the byte streams of serial card readers, as pure state machines.
//!
//! Key decision: decoders take one byte at a time and keep a bounded buffer, so a frame split over
//! any number of reads decodes the same, a flood of garbage costs constant memory and time per byte,
//! and after a bad frame they resynchronise on the next start byte. A frame is either a checked card
//! id or a [`Rejection`]; bytes outside any frame are skipped silently.
//!
//! Formats:
//! - RDM6300 / EM4100: `02`, ten ASCII hex digits (2 version + 8 tag), two ASCII hex digits of
//!   checksum (XOR of the five data bytes), `03`.
//! - Magnetic stripe track 2 (ISO 7813): `;`, PAN (up to 19 digits), `=`, expiry, service code,
//!   discretionary data, `?`, and the LRC character when the reader sends it (configured: an LRC
//!   cannot be told from the next byte on the line otherwise).
//! - A configurable line: prefix, the id in hex or decimal digits, suffix (for example `\r\n`).
//!
//! The encoders ([`rdm6300_frame`], [`track2_frame`]) are for simulated readers, tests and benches.
//!
//! Not here: IO, timing, debouncing (`serial` and `debounce`).

use crate::Error;
use crate::card::CardId;

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The checksum (EM4100) or LRC (track 2) does not match.
    Checksum,
    /// A byte that has no place in the frame.
    Character,
    /// Too short or too long.
    Length,
    /// A new frame started before this one ended.
    Interrupted,
}

/// What one byte completed, if anything.
pub type Decoded = Option<Result<CardId, Rejection>>;

/// The alphabet of the id in a configurable line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Hexadecimal digits, either case (normalised to upper case).
    Hex,
    /// Decimal digits.
    Decimal,
}

/// A configurable line format: `prefix`, between `min_len` and `max_len` id characters, `suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFormat {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    charset: Charset,
    min_len: usize,
    max_len: usize,
}

impl LineFormat {
    /// A line format; the suffix must not be empty (it ends the frame) and the lengths must fit a
    /// card id (4 to 32 characters).
    pub fn new(
        prefix: &[u8],
        suffix: &[u8],
        charset: Charset,
        min_len: usize,
        max_len: usize,
    ) -> Result<Self, Error> {
        if suffix.is_empty() {
            return Err(Error::Config("a line format needs a suffix that ends each frame".into()));
        }
        if !(4..=32).contains(&min_len) || !(min_len..=32).contains(&max_len) {
            return Err(Error::Config("a line's id must be 4 to 32 characters, min ≤ max".into()));
        }
        Ok(Self { prefix: prefix.to_vec(), suffix: suffix.to_vec(), charset, min_len, max_len })
    }
}

/// The framing of a serial card reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialFormat {
    /// 125 kHz EM4100 tags in the RDM6300 frame (9600 baud, 8N1).
    Em4100,
    /// Magnetic stripe track 2; `lrc`: the reader sends the LRC character after the end sentinel.
    Track2 {
        /// Whether the reader sends the LRC character (then it is checked).
        lrc: bool,
    },
    /// A configurable line.
    Line(LineFormat),
}

/// Decodes the configured format byte by byte.
#[derive(Debug)]
pub struct FrameDecoder(Inner);

#[derive(Debug)]
enum Inner {
    Em4100(Em4100),
    Track2(Track2),
    Line(Line),
}

impl FrameDecoder {
    /// A decoder for `format`, waiting for the start of a frame.
    pub fn new(format: &SerialFormat) -> Self {
        Self(match format {
            SerialFormat::Em4100 => Inner::Em4100(Em4100::default()),
            SerialFormat::Track2 { lrc } => {
                Inner::Track2(Track2 { lrc: *lrc, state: Track2State::Idle, data: [0; TRACK2_MAX_DATA], len: 0 })
            }
            SerialFormat::Line(format) => Inner::Line(Line { format: format.clone(), buf: Vec::new(), discarding: false }),
        })
    }

    /// Feeds one byte.
    pub fn push(&mut self, byte: u8) -> Decoded {
        match &mut self.0 {
            Inner::Em4100(d) => d.push(byte),
            Inner::Track2(d) => d.push(byte),
            Inner::Line(d) => d.push(byte),
        }
    }

    /// Forgets a partial frame (the device was reopened).
    pub fn reset(&mut self) {
        match &mut self.0 {
            Inner::Em4100(d) => d.len = None,
            Inner::Track2(d) => d.state = Track2State::Idle,
            Inner::Line(d) => {
                d.buf.clear();
                d.discarding = false;
            }
        }
    }
}

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
/// Characters between STX and ETX: ten of data, two of checksum.
const EM4100_BODY: usize = 12;

#[derive(Debug, Default)]
struct Em4100 {
    body: [u8; EM4100_BODY],
    /// Characters collected since STX; `None` outside a frame.
    len: Option<usize>,
}

impl Em4100 {
    fn push(&mut self, byte: u8) -> Decoded {
        let Some(len) = self.len else {
            // outside a frame only STX matters
            if byte == STX {
                self.len = Some(0);
            }
            return None;
        };
        match byte {
            STX if len == 0 => None,
            STX => {
                self.len = Some(0);
                Some(Err(Rejection::Interrupted))
            }
            ETX => {
                self.len = None;
                Some(self.decode(len))
            }
            _ if len == EM4100_BODY => {
                self.len = None;
                Some(Err(Rejection::Length))
            }
            _ => {
                self.body[len] = byte;
                self.len = Some(len + 1);
                None
            }
        }
    }

    fn decode(&self, len: usize) -> Result<CardId, Rejection> {
        if len != EM4100_BODY {
            return Err(Rejection::Length);
        }
        let mut bytes = [0u8; 6];
        for (i, pair) in self.body.chunks_exact(2).enumerate() {
            bytes[i] = (hex_value(pair[0]).ok_or(Rejection::Character)? << 4)
                | hex_value(pair[1]).ok_or(Rejection::Character)?;
        }
        let checksum = bytes[..5].iter().fold(0, |acc, b| acc ^ b);
        if checksum != bytes[5] {
            return Err(Rejection::Checksum);
        }
        CardId::from_bytes(&bytes[..5]).map_err(|_| Rejection::Length)
    }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|v| v as u8)
}

/// Track 2 start sentinel.
const SS: u8 = b';';
/// Track 2 end sentinel.
const ES: u8 = b'?';
/// Track 2 field separator.
const FS: u8 = b'=';
/// A track 2 holds at most 40 characters including the sentinels and the LRC (ISO 7813).
const TRACK2_MAX_DATA: usize = 37;
/// Longest PAN (ISO 7813).
const PAN_MAX: usize = 19;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Track2State {
    #[default]
    Idle,
    Data,
    Lrc,
}

#[derive(Debug)]
struct Track2 {
    lrc: bool,
    state: Track2State,
    data: [u8; TRACK2_MAX_DATA],
    len: usize,
}

impl Track2 {
    fn push(&mut self, byte: u8) -> Decoded {
        match self.state {
            Track2State::Idle => {
                if byte == SS {
                    self.state = Track2State::Data;
                    self.len = 0;
                }
                None
            }
            Track2State::Data => match byte {
                SS => {
                    self.len = 0;
                    Some(Err(Rejection::Interrupted))
                }
                ES if self.lrc => {
                    self.state = Track2State::Lrc;
                    None
                }
                ES => {
                    self.state = Track2State::Idle;
                    Some(self.decode())
                }
                b'0'..=b'9' | FS if self.len < TRACK2_MAX_DATA => {
                    self.data[self.len] = byte;
                    self.len += 1;
                    None
                }
                b'0'..=b'9' | FS => {
                    self.state = Track2State::Idle;
                    Some(Err(Rejection::Length))
                }
                _ => {
                    self.state = Track2State::Idle;
                    Some(Err(Rejection::Character))
                }
            },
            Track2State::Lrc => {
                self.state = Track2State::Idle;
                if byte != 0x30 | track2_lrc(&self.data[..self.len]) {
                    return Some(Err(Rejection::Checksum));
                }
                Some(self.decode())
            }
        }
    }

    fn decode(&self) -> Result<CardId, Rejection> {
        let data = &self.data[..self.len];
        let pan_len = data.iter().position(|&c| c == FS).unwrap_or(data.len());
        let (pan, rest) = data.split_at(pan_len);
        // one field separator at most; the rest are digits
        if rest.iter().skip(1).any(|&c| c == FS) {
            return Err(Rejection::Character);
        }
        if pan.len() > PAN_MAX {
            return Err(Rejection::Length);
        }
        let pan = std::str::from_utf8(pan).map_err(|_| Rejection::Character)?;
        CardId::from_pan(pan).map_err(|_| Rejection::Length)
    }
}

#[derive(Debug)]
struct Line {
    format: LineFormat,
    buf: Vec<u8>,
    /// After an overlong line: skip to the next suffix.
    discarding: bool,
}

impl Line {
    fn push(&mut self, byte: u8) -> Decoded {
        self.buf.push(byte);
        let suffix = &self.format.suffix;
        if self.discarding {
            if self.buf.ends_with(suffix) {
                self.discarding = false;
                self.buf.clear();
            } else if self.buf.len() >= suffix.len() {
                self.buf.drain(..self.buf.len() + 1 - suffix.len());
            }
            return None;
        }
        if self.buf.ends_with(suffix) {
            let frame_len = self.buf.len() - suffix.len();
            let decoded = self.decode(&self.buf[..frame_len]);
            self.buf.clear();
            return Some(decoded);
        }
        if self.buf.len() >= self.format.prefix.len() + self.format.max_len + suffix.len() {
            self.buf.clear();
            self.discarding = true;
            return Some(Err(Rejection::Length));
        }
        None
    }

    fn decode(&self, frame: &[u8]) -> Result<CardId, Rejection> {
        let id = frame.strip_prefix(self.format.prefix.as_slice()).ok_or(Rejection::Character)?;
        let allowed = match self.format.charset {
            Charset::Hex => u8::is_ascii_hexdigit,
            Charset::Decimal => u8::is_ascii_digit,
        };
        if !id.iter().all(allowed) {
            return Err(Rejection::Character);
        }
        if !(self.format.min_len..=self.format.max_len).contains(&id.len()) {
            return Err(Rejection::Length);
        }
        let text = std::str::from_utf8(id).map_err(|_| Rejection::Character)?;
        CardId::parse(text).map_err(|_| Rejection::Length)
    }
}

/// The RDM6300 frame for a 5-byte EM4100 tag (version byte and 4-byte tag number).
pub fn rdm6300_frame(tag: [u8; 5]) -> [u8; EM4100_BODY + 2] {
    let checksum = tag.iter().fold(0, |acc, b| acc ^ b);
    let mut frame = [0u8; EM4100_BODY + 2];
    frame[0] = STX;
    for (i, byte) in tag.iter().chain(std::iter::once(&checksum)).enumerate() {
        frame[1 + 2 * i] = HEX_UPPER[usize::from(byte >> 4)];
        frame[2 + 2 * i] = HEX_UPPER[usize::from(byte & 0x0F)];
    }
    frame[1 + EM4100_BODY] = ETX;
    frame
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// A track 2 as a reader sends it: `;`, `data` (PAN, `=`, the rest), `?`, and the LRC character
/// when `lrc` is set.
pub fn track2_frame(data: &str, lrc: bool) -> Vec<u8> {
    let mut frame = Vec::with_capacity(data.len() + 3);
    frame.push(SS);
    frame.extend_from_slice(data.as_bytes());
    frame.push(ES);
    if lrc {
        frame.push(0x30 | track2_lrc(data.as_bytes()));
    }
    frame
}

/// The LRC of a track 2 over its data and both sentinels: XOR of the 4-bit character values.
fn track2_lrc(data: &[u8]) -> u8 {
    data.iter().fold((SS ^ ES) & 0x0F, |acc, c| acc ^ (c & 0x0F))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `input` decodes to, byte by byte.
    fn decode_all(format: &SerialFormat, input: &[u8]) -> Vec<Result<String, Rejection>> {
        let mut decoder = FrameDecoder::new(format);
        input.iter().filter_map(|&b| decoder.push(b)).map(|r| r.map(|id| id.expose().to_owned())).collect()
    }

    #[track_caller]
    fn check(format: &SerialFormat, input: &[u8], expected: &[Result<&str, Rejection>]) {
        let expected: Vec<_> = expected.iter().map(|r| r.map(str::to_owned)).collect();
        assert_eq!(decode_all(format, input), expected, "input {:?}", String::from_utf8_lossy(input));
    }

    /// The RDM6300 frame of a tag given as ten hex digits.
    fn rdm6300(id: &str) -> Vec<u8> {
        let tag: Vec<u8> = (0..5).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()).collect();
        rdm6300_frame(tag.try_into().unwrap()).to_vec()
    }

    const EM: SerialFormat = SerialFormat::Em4100;

    #[test]
    fn em4100_valid_frame() {
        // 0x0F ^ 0x00 ^ 0x28 ^ 0x5A ^ 0x3C = 0x41
        check(&EM, b"\x020F00285A3C41\x03", &[Ok("0F00285A3C")]);
        assert_eq!(rdm6300("0F00285A3C"), b"\x020F00285A3C41\x03");
    }

    #[test]
    fn em4100_lower_case_hex_reads_the_same_id() {
        check(&EM, b"\x020f00285a3c41\x03", &[Ok("0F00285A3C")]);
    }

    #[test]
    fn em4100_bad_checksum_is_rejected() {
        check(&EM, b"\x020F00285A3C42\x03", &[Err(Rejection::Checksum)]);
    }

    #[test]
    fn em4100_non_hex_is_rejected() {
        check(&EM, b"\x020F00285A3G41\x03", &[Err(Rejection::Character)]);
    }

    #[test]
    fn em4100_short_frame_is_rejected() {
        check(&EM, b"\x020F00285A3C4\x03", &[Err(Rejection::Length)]);
    }

    #[test]
    fn em4100_long_frame_is_rejected_and_the_next_one_read() {
        let mut input = b"\x020F00285A3C411\x03".to_vec();
        input.extend(rdm6300("1122334455"));
        check(&EM, &input, &[Err(Rejection::Length), Ok("1122334455")]);
    }

    #[test]
    fn em4100_restart_mid_frame_resynchronises() {
        let mut input = b"\x020F0028".to_vec();
        input.extend(rdm6300("1122334455"));
        check(&EM, &input, &[Err(Rejection::Interrupted), Ok("1122334455")]);
    }

    #[test]
    fn em4100_garbage_between_frames_is_skipped() {
        let mut input = b"\xFF\x00hello\x03\x03".to_vec();
        input.extend(rdm6300("1122334455"));
        input.extend(b"\r\n");
        input.extend(rdm6300("1122334455"));
        check(&EM, &input, &[Ok("1122334455"), Ok("1122334455")]);
    }

    /// Any single corrupted byte of a frame gives a rejection or the right id, never another id.
    #[test]
    fn em4100_single_byte_corruption_never_yields_a_wrong_id() {
        let frame = rdm6300("0F00285A3C");
        let mut accepted = 0;
        for pos in 0..frame.len() {
            for value in 0..=255u8 {
                let mut bad = frame.clone();
                bad[pos] = value;
                // a clean frame after it shows the decoder recovered
                bad.extend(rdm6300("1122334455"));
                let out = decode_all(&EM, &bad);
                assert_eq!(out.last(), Some(&Ok("1122334455".to_owned())), "pos {pos} value {value:#04x}");
                for id in out[..out.len() - 1].iter().flatten() {
                    assert_eq!(id, "0F00285A3C", "pos {pos} value {value:#04x}");
                    accepted += 1;
                }
            }
        }
        // the unchanged byte and the lower-case forms of A, C still read the right id
        assert!(accepted > 0);
    }

    const T2_LRC: SerialFormat = SerialFormat::Track2 { lrc: true };
    const T2: SerialFormat = SerialFormat::Track2 { lrc: false };

    #[test]
    fn track2_frame_encodes_the_lrc() {
        // ';' 0xB, '1' 1, '2' 2, '?' 0xF: 0xB ^ 1 ^ 2 ^ 0xF = 7
        assert_eq!(track2_frame("12", true), b";12?7");
        assert_eq!(track2_frame("12", false), b";12?");
    }

    #[test]
    fn track2_without_lrc() {
        check(&T2, b";6012345678901234=2912101123456789?\r\n", &[Ok("6012345678901234")]);
    }

    #[test]
    fn track2_with_lrc() {
        check(&T2_LRC, &track2_frame("6012345678901234=2912101123456789", true), &[Ok("6012345678901234")]);
    }

    #[test]
    fn track2_with_a_wrong_lrc_is_rejected() {
        let mut input = track2_frame("6012345678901234=2912101123456789", true);
        *input.last_mut().unwrap() ^= 0x01;
        check(&T2_LRC, &input, &[Err(Rejection::Checksum)]);
    }

    #[test]
    fn track2_lrc_catches_a_changed_digit() {
        let mut input = track2_frame("6012345678901234=2912101123456789", true);
        input[5] = b'9';
        check(&T2_LRC, &input, &[Err(Rejection::Checksum)]);
    }

    #[test]
    fn track2_card_without_expiry() {
        check(&T2, b";12345678?", &[Ok("12345678")]);
    }

    #[test]
    fn track2_letters_are_rejected() {
        check(&T2, b";60123A5678901234=2912?", &[Err(Rejection::Character)]);
    }

    #[test]
    fn track2_two_separators_are_rejected() {
        check(&T2, b";6012345678901234=29=12?", &[Err(Rejection::Character)]);
    }

    #[test]
    fn track2_pan_of_twenty_digits_is_rejected() {
        check(&T2, b";60123456789012345678=2912?", &[Err(Rejection::Length)]);
    }

    #[test]
    fn track2_pan_of_three_digits_is_rejected() {
        check(&T2, b";123=2912?", &[Err(Rejection::Length)]);
    }

    #[test]
    fn track2_overlong_is_rejected() {
        let input = format!(";6012345678901234={}?", "1".repeat(30));
        check(&T2, input.as_bytes(), &[Err(Rejection::Length)]);
    }

    #[test]
    fn track2_new_start_sentinel_restarts() {
        check(&T2, b";60123;12345678=29?", &[Err(Rejection::Interrupted), Ok("12345678")]);
    }

    fn line(prefix: &[u8], suffix: &[u8], charset: Charset, min: usize, max: usize) -> SerialFormat {
        SerialFormat::Line(LineFormat::new(prefix, suffix, charset, min, max).unwrap())
    }

    #[test]
    fn line_decimal_with_crlf() {
        let format = line(b"", b"\r\n", Charset::Decimal, 10, 10);
        check(&format, b"0012345678\r\n0012345679\r\n", &[Ok("0012345678"), Ok("0012345679")]);
    }

    #[test]
    fn line_hex_with_prefix_is_normalised() {
        let format = line(b"ID:", b"\n", Charset::Hex, 8, 14);
        check(&format, b"ID:04a1b2c3\n", &[Ok("04A1B2C3")]);
    }

    #[test]
    fn line_without_its_prefix_is_rejected() {
        let format = line(b"ID:", b"\n", Charset::Hex, 8, 14);
        check(&format, b"XX:04A1B2C3\n", &[Err(Rejection::Character)]);
    }

    #[test]
    fn line_wrong_length_or_characters_are_rejected() {
        let format = line(b"", b"\r\n", Charset::Decimal, 10, 10);
        check(&format, b"001234567\r\n", &[Err(Rejection::Length)]);
        check(&format, b"00123456A8\r\n", &[Err(Rejection::Character)]);
    }

    #[test]
    fn line_overlong_is_rejected_once_and_skipped_to_the_next_suffix() {
        let format = line(b"", b"\r\n", Charset::Decimal, 10, 10);
        let mut input = vec![b'7'; 500];
        input.extend(b"\r\n0012345678\r\n");
        check(&format, &input, &[Err(Rejection::Length), Ok("0012345678")]);
    }

    #[test]
    fn line_format_needs_a_suffix_and_sane_lengths() {
        assert!(LineFormat::new(b"", b"", Charset::Hex, 8, 8).is_err());
        assert!(LineFormat::new(b"", b"\n", Charset::Hex, 3, 8).is_err());
        assert!(LineFormat::new(b"", b"\n", Charset::Hex, 8, 7).is_err());
        assert!(LineFormat::new(b"", b"\n", Charset::Hex, 8, 33).is_err());
    }

    #[test]
    fn reset_forgets_a_partial_frame() {
        let cases: [(SerialFormat, &[u8], &[u8], &str); 3] = [
            (EM, b"\x020F00", b"285A3C41\x03", "0F00285A3C"),
            (T2, b";1234", b"5678?", "12345678"),
            (line(b"", b"\n", Charset::Hex, 4, 10), b"0F00", b"285A\n", "0F00285A"),
        ];
        for (format, partial, rest, joined) in cases {
            assert_eq!(decode_all(&format, &[partial, rest].concat()), [Ok(joined.to_owned())], "{format:?}");
            let mut decoder = FrameDecoder::new(&format);
            assert!(partial.iter().all(|&b| decoder.push(b).is_none()));
            decoder.reset();
            let after: Vec<_> = rest.iter().filter_map(|&b| decoder.push(b)).collect();
            assert!(after.iter().all(|r| r.as_ref().map_or(true, |id| id.expose() != joined)), "{format:?}: {after:?}");
        }
    }
}
