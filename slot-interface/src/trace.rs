//! Decodes captured SAS traffic into one readable line per message, with a CRC verdict: the
//! library behind `sas-trace`, for people debugging real machines.
//!
//! Input: one capture line per chunk, `[time] DIRECTION hex bytes`, where DIRECTION is `H`,
//! `HOST`, `TX`, `>` for host to machine and `M`, `EGM`, `RX`, `<` for machine to host (case
//! does not matter, a trailing `:` is allowed), the time is any token with a digit and a `:` or
//! `.` in it, and the bytes are hex, spaced or not. `#` starts a comment. A message may span
//! several lines of the same direction.
//!
//! Key decision: machine answers are decoded against the last host message, as the host does
//! (SAS answers are not self-describing); an answer ends when the host speaks again. Bytes that
//! make no message are printed as they are, never dropped. What it does not do: no timing
//! checks (captures rarely have byte times).

use std::fmt::Write as _;

use crate::aft::TransferFunds;
use crate::codec::{EventDetail, Expect, HostMessage, LongPoll, Response};
use crate::frame::{crc_ok, Address};
use crate::{Error, FrameFault};

/// Direction of a capture line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Host,
    Machine,
}

/// One capture line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureLine {
    pub time: Option<String>,
    pub direction: Direction,
    pub bytes: Vec<u8>,
}

/// Parses one capture line; `Ok(None)` for blank lines and comments.
pub fn parse_line(line: &str) -> Result<Option<CaptureLine>, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut tokens = line.split_whitespace().peekable();
    let mut time = None;
    if let Some(first) = tokens.peek()
        && first.chars().any(|c| c.is_ascii_digit())
        && first.contains([':', '.'])
    {
        time = tokens.next().map(str::to_string);
    }
    let word = tokens.next().ok_or_else(|| format!("no direction in {line:?}"))?;
    let direction = match word.trim_end_matches(':').to_ascii_uppercase().as_str() {
        "H" | "HOST" | "TX" | ">" | "->" => Direction::Host,
        "M" | "EGM" | "RX" | "<" | "<-" => Direction::Machine,
        other => return Err(format!("unknown direction {other:?} in {line:?}")),
    };
    let hex: String = tokens.collect::<Vec<_>>().concat();
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {line:?}"));
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| format!("not hex: {:?} in {line:?}", &hex[i..i + 2])))
        .collect::<Result<Vec<u8>, String>>()?;
    Ok(Some(CaptureLine { time, direction, bytes }))
}

/// Turns capture lines into decoded lines.
#[derive(Debug, Default)]
pub struct Decoder {
    host: Vec<u8>,
    machine: Vec<u8>,
    /// The last host message with an answer, and who it was for.
    asked: Option<(Address, Expect)>,
    time: Option<String>,
    out: Vec<String>,
}

impl Decoder {
    /// A decoder with nothing seen yet.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Feeds one capture line; returns the decoded lines it completes.
    pub fn feed(&mut self, line: &CaptureLine) -> Vec<String> {
        match line.direction {
            Direction::Host => {
                self.flush_machine(true);
                self.time.clone_from(&line.time);
                self.host.extend_from_slice(&line.bytes);
                self.decode_host();
            }
            Direction::Machine => {
                self.flush_host();
                self.time.clone_from(&line.time);
                self.machine.extend_from_slice(&line.bytes);
                self.flush_machine(false);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Ends the capture; returns whatever was still pending.
    pub fn finish(&mut self) -> Vec<String> {
        self.flush_host();
        self.flush_machine(true);
        std::mem::take(&mut self.out)
    }

    fn emit(&mut self, arrow: &str, address: Option<Address>, text: &str, verdict: &str) {
        let mut line = String::new();
        if let Some(t) = &self.time {
            let _ = write!(line, "{t}  ");
        }
        let who = address.map_or("--".to_string(), |a| a.to_string());
        let _ = write!(line, "{arrow} {who}  {text:<60} {verdict}");
        self.out.push(line.trim_end().to_string());
    }

    fn decode_host(&mut self) {
        while !self.host.is_empty() {
            match HostMessage::decode(&self.host) {
                Ok(Some((message, used))) => {
                    let verdict = match &message {
                        HostMessage::LongPoll(_, poll) if !matches!(poll, LongPoll::Read(_)) => "crc ok",
                        _ => "no crc",
                    };
                    self.asked = message.address().zip(Expect::for_message(&message));
                    let text = describe_host(&message);
                    self.emit("H>", message.address(), &text, verdict);
                    self.host.drain(..used);
                }
                Ok(None) => return,
                Err(Error::Frame { fault, skip }) => {
                    let bytes: Vec<u8> = self.host.drain(..skip.min(self.host.len())).collect();
                    let (text, verdict) = match fault {
                        FrameFault::Crc => (format!("damaged long poll {}", hex(&bytes)), "crc BAD"),
                        FrameFault::Unsupported(c) => (format!("long poll {c:02X} (not decoded) {}", hex(&bytes)), "-"),
                        _ => (format!("unrecognised {}", hex(&bytes)), "-"),
                    };
                    self.asked = None;
                    self.emit("H>", Address::new(bytes[0]).ok(), &text, verdict);
                }
                Err(_) => return,
            }
        }
    }

    fn flush_host(&mut self) {
        if !self.host.is_empty() {
            let bytes = std::mem::take(&mut self.host);
            self.emit("H>", None, &format!("incomplete {}", hex(&bytes)), "-");
        }
    }

    fn flush_machine(&mut self, quiet: bool) {
        while !self.machine.is_empty() {
            let Some((address, expect)) = self.asked else {
                let bytes = std::mem::take(&mut self.machine);
                let text = if bytes.len() == 1 { format!("unsolicited byte {:02X} (a chirp?)", bytes[0]) } else { format!("unsolicited {}", hex(&bytes)) };
                self.emit("M<", None, &text, "-");
                return;
            };
            match Response::decode(address, expect, &self.machine, quiet) {
                Ok(Some((response, used))) => {
                    let verdict = if used > 2 { "crc ok" } else { "no crc" };
                    let text = describe_response(&response);
                    self.emit("M<", Some(address), &text, verdict);
                    self.machine.drain(..used);
                    // One answer per poll; anything after it is not an answer.
                    self.asked = None;
                }
                Ok(None) if !quiet => return,
                Ok(None) => {
                    let bytes = std::mem::take(&mut self.machine);
                    self.emit("M<", Some(address), &format!("incomplete answer {}", hex(&bytes)), "-");
                }
                Err(Error::Frame { fault, skip }) => {
                    if !quiet && fault != FrameFault::Garbage {
                        // It may still be an answer of another length: wait for the host.
                        return;
                    }
                    let bytes: Vec<u8> = self.machine.drain(..skip.min(self.machine.len())).collect();
                    let verdict = if bytes.len() > 2 && !crc_ok(&bytes) { "crc BAD" } else { "-" };
                    self.emit("M<", Some(address), &format!("bad answer {}", hex(&bytes)), verdict);
                }
                Err(_) => return,
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// A host message in words.
pub fn describe_host(message: &HostMessage) -> String {
    let poll = match message {
        HostMessage::GeneralPoll(_) => return "general poll".to_string(),
        HostMessage::Sync => return "sync (general poll to address 0)".to_string(),
        HostMessage::LongPoll(_, poll) => poll,
    };
    let command = poll.command();
    let what = match poll {
        LongPoll::Shutdown => "shutdown (lock out play)".to_string(),
        LongPoll::Startup => "startup (enable play)".to_string(),
        LongPoll::RealTimeEvents(on) => format!("real-time events {}", if *on { "on" } else { "off" }),
        LongPoll::Read(read) => format!("send {read:?}"),
        LongPoll::RomSignature { seed } => format!("ROM signature, seed {seed:04X}"),
        LongPoll::SelectedMeters { game, meters } => {
            let codes: Vec<String> = meters.iter().map(|m| format!("{:02X} {}", m.0, m.name())).collect();
            format!("selected meters, game {game}: {}", codes.join(", "))
        }
        LongPoll::AftTransfer(TransferFunds::Request(r)) => format!(
            "AFT transfer {} type {:02X} cashable {} restricted {} nonrestricted {} cents, asset {}",
            r.transaction_id, r.transfer_type, r.cashable_cents, r.restricted_cents, r.nonrestricted_cents, r.asset_number
        ),
        LongPoll::AftTransfer(TransferFunds::Interrogate { index, .. }) => format!("AFT interrogate, index {index:02X}"),
        LongPoll::AftTransfer(TransferFunds::Cancel) => "AFT cancel transfer".to_string(),
        LongPoll::AftTransfer(TransferFunds::Unsupported(code)) => format!("AFT transfer code {code:02X}"),
        LongPoll::AftRegister(r) => format!("AFT register, code {:02X}, asset {}", r.code, r.asset_number),
        LongPoll::AftLock(l) => format!("AFT lock, code {:02X}, condition {:02X}, timeout {} cs", l.code, l.condition, l.timeout_hundredths),
        LongPoll::LegacyBonus { credits, tax } => format!("legacy bonus {credits} credits ({tax:?})"),
    };
    format!("long poll {command:02X} {what}")
}

/// A machine answer in words.
pub fn describe_response(response: &Response) -> String {
    match response {
        Response::Ack => "ACK".to_string(),
        Response::Nack => "NACK".to_string(),
        Response::Busy => "busy".to_string(),
        Response::Exception(code) => format!("exception {:02X} {}", code.0, code.name()),
        Response::RealTimeEvent(event) => {
            let detail = match &event.detail {
                EventDetail::None => String::new(),
                EventDetail::GameStarted { credits_wagered, coin_in, .. } => {
                    format!(": wager {credits_wagered} credits, coin in {coin_in}")
                }
                EventDetail::GameEnded { win } => format!(": win {win} credits"),
                EventDetail::LegacyBonus { bonus, .. } => format!(": bonus {bonus} credits"),
                EventDetail::BillAccepted { denomination, count, .. } => format!(": denomination code {denomination}, count {count}"),
                EventDetail::Raw(data) => format!(": {}", hex(data)),
            };
            format!("event {:02X} {}{detail}", event.code.0, event.code.name())
        }
        Response::RomSignature(sig) => format!("ROM signature {sig:04X}"),
        Response::Meter { poll, value } => format!("{poll:?} {value}"),
        Response::Meters10To15(m) => format!("{m:?}"),
        Response::GamesSincePowerUp { power_up, door_closure } => {
            format!("games since power up {power_up}, since door closure {door_closure}")
        }
        Response::Meters11To15(m) => format!("{m:?}"),
        Response::HandpayInfo(h) => format!("{h:?}"),
        Response::BasicMeters(m) => format!("{m:?}"),
        Response::MachineInfo(i) => format!(
            "machine {} {}, denomination code {:02X}, max bet {}, paytable {}, base {}%",
            i.game_id(),
            String::from_utf8_lossy(&i.additional_id),
            i.denomination,
            i.max_bet,
            i.paytable_id(),
            String::from_utf8_lossy(&i.base_percent)
        ),
        Response::SelectedMeters { game, meters } => {
            let values: Vec<String> = meters.iter().map(|(c, v)| format!("{} {v}", c.name())).collect();
            format!("meters, game {game}: {}", values.join(", "))
        }
        Response::AftTransfer(t) => {
            let id = t.record.as_ref().map(|r| format!(" {} restricted {} cents", r.transaction_id, r.restricted_cents));
            format!("AFT transfer status {:02X} {}{}", t.status.0, t.status.name(), id.unwrap_or_default())
        }
        Response::AftRegistration(r) => format!("AFT registration status {:02X}, asset {}", r.status, r.asset_number),
        Response::AftStatus(s) => format!(
            "AFT status: lock {:02X}, available {:02X}, status {:02X}, restricted {} cents, limit {} cents",
            s.lock_status, s.available_transfers, s.aft_status, s.restricted_cents, s.transfer_limit_cents
        ),
    }
}

/// Decodes a whole capture. Lines that do not parse are reported in place.
pub fn decode_capture(text: &str) -> Vec<String> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(capture)) => out.extend(decoder.feed(&capture)),
            Ok(None) => {}
            Err(e) => out.push(format!("line {}: {e}", n + 1)),
        }
    }
    out.extend(decoder.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_and_without_time_and_spaces() {
        assert_eq!(
            parse_line("12:00:01.234 H: 01 1A").unwrap(),
            Some(CaptureLine { time: Some("12:00:01.234".into()), direction: Direction::Host, bytes: vec![0x01, 0x1A] })
        );
        assert_eq!(
            parse_line("rx 011A00001234452D  # credits").unwrap().unwrap().bytes,
            [0x01, 0x1A, 0x00, 0x00, 0x12, 0x34, 0x45, 0x2D]
        );
        assert_eq!(parse_line("   # nothing").unwrap(), None);
        assert!(parse_line("X 01").is_err());
        assert!(parse_line("H 0").is_err());
        assert!(parse_line("H zz").is_err());
    }

    #[test]
    fn a_poll_and_its_answer_become_two_lines_with_crc_verdicts() {
        let out = decode_capture("H 80 81\nM 00\nH 01 1A\nM 01 1A 00 00 12 34 45 2D\n");
        assert_eq!(out.len(), 5, "{out:#?}");
        assert!(out[0].starts_with("H> --  sync"), "{}", out[0]);
        assert!(out[1].starts_with("H> 01  general poll") && out[1].ends_with("no crc"));
        assert!(out[2].contains("exception 00 no activity"));
        assert!(out[3].contains("long poll 1A send CurrentCredits"));
        assert!(out[4].contains("CurrentCredits 1234") && out[4].ends_with("crc ok"), "{}", out[4]);
    }

    #[test]
    fn a_damaged_answer_is_shown_with_a_bad_crc_verdict() {
        let out = decode_capture("H 01 1A\nM 01 1A 00 00 12 34 45 2E\nH 81\n");
        assert!(out[1].contains("bad answer 01 1A 00 00 12 34 45 2E") && out[1].ends_with("crc BAD"), "{out:#?}");
    }

    #[test]
    fn an_answer_split_over_lines_is_joined() {
        let out = decode_capture("10.000 > 81\n10.001 < 01 FF 7F 00\n10.002 < 00 00 20 F2 3C\n");
        assert!(out[1].starts_with("10.002  M< 01  event 7F game ended: win 20 credits"), "{out:#?}");
    }

    #[test]
    fn a_chirp_is_an_unsolicited_byte() {
        let out = decode_capture("M 01\n");
        assert!(out[0].contains("unsolicited byte 01 (a chirp?)"), "{out:#?}");
    }
}
