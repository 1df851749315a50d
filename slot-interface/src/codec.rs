//! Typed SAS messages in both directions and their byte encodings.
//!
//! Host to machine: [`HostMessage`] (general poll, synchronisation poll, long polls). Machine to
//! host: [`Response`] (ACK, NACK, busy, exceptions and real-time events, long poll data).
//!
//! Key decision: both decoders frame by content, so they work on a line without the wakeup bit
//! (a pty, a plain serial link). They return `Ok(None)` for a partial frame, `Ok(Some((message,
//! consumed)))` for a frame, and [`Error::Frame`] with the number of bytes to drop to
//! resynchronise after garbage or a bad CRC. A machine response is decoded against the poll it
//! answers ([`Expect`]) because SAS responses are not self-describing (a lone byte is an ACK, an
//! exception or the start of an event depending on what was asked), and a few answers are only
//! complete once the line has gone quiet (`quiet`). This module does no IO and keeps no time.

use crate::aft::{LockRequest, LockStatus, RegistrationRequest, RegistrationResponse, TransferFunds, TransferResponse};
use crate::frame::{
    append_crc, command as cmd, crc_ok, get_bcd, get_binary, put_bcd, put_binary, Address, ExceptionCode, MeterCode,
    RTE_MARK, SYNC_POLL,
};
use crate::{Error, FrameFault};

/// A message from the host to the machines on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMessage {
    /// General poll of one machine (§2.2.1).
    GeneralPoll(Address),
    /// General poll of address 0: an implied ACK and synchronisation poll, never answered.
    Sync,
    /// A long poll to one machine (§2.2.2).
    LongPoll(Address, LongPoll),
}

/// The read-only (type R) long polls: address and command, no CRC (§2.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadPoll {
    /// 0x0F: cancelled credits, coin in, coin out, drop, jackpot, games played.
    Meters10To15,
    /// 0x10: total cancelled credits.
    CancelledCredits,
    /// 0x11: total coin in.
    CoinIn,
    /// 0x12: total coin out.
    CoinOut,
    /// 0x13: total drop.
    Drop,
    /// 0x14: total jackpot.
    Jackpot,
    /// 0x15: games played.
    GamesPlayed,
    /// 0x16: games won.
    GamesWon,
    /// 0x17: games lost.
    GamesLost,
    /// 0x18: games since last power up and since last slot door closure.
    GamesSincePowerUp,
    /// 0x19: coin in, coin out, drop, jackpot, games played.
    Meters11To15,
    /// 0x1A: current credits.
    CurrentCredits,
    /// 0x1B: handpay information.
    HandpayInfo,
    /// 0x1C: the eight basic meters.
    Meters,
    /// 0x1F: machine ID and information.
    MachineInfo,
    /// 0x20: total value of bills accepted.
    BillsValue,
}

impl ReadPoll {
    /// Every read poll, in command order.
    pub const ALL: [ReadPoll; 16] = [
        ReadPoll::Meters10To15,
        ReadPoll::CancelledCredits,
        ReadPoll::CoinIn,
        ReadPoll::CoinOut,
        ReadPoll::Drop,
        ReadPoll::Jackpot,
        ReadPoll::GamesPlayed,
        ReadPoll::GamesWon,
        ReadPoll::GamesLost,
        ReadPoll::GamesSincePowerUp,
        ReadPoll::Meters11To15,
        ReadPoll::CurrentCredits,
        ReadPoll::HandpayInfo,
        ReadPoll::Meters,
        ReadPoll::MachineInfo,
        ReadPoll::BillsValue,
    ];

    /// The command byte.
    pub fn command(self) -> u8 {
        match self {
            ReadPoll::Meters10To15 => cmd::METERS_10_TO_15,
            ReadPoll::CancelledCredits => cmd::CANCELLED_CREDITS,
            ReadPoll::CoinIn => cmd::COIN_IN,
            ReadPoll::CoinOut => cmd::COIN_OUT,
            ReadPoll::Drop => cmd::DROP,
            ReadPoll::Jackpot => cmd::JACKPOT,
            ReadPoll::GamesPlayed => cmd::GAMES_PLAYED,
            ReadPoll::GamesWon => cmd::GAMES_WON,
            ReadPoll::GamesLost => cmd::GAMES_LOST,
            ReadPoll::GamesSincePowerUp => cmd::GAMES_SINCE_POWER_UP,
            ReadPoll::Meters11To15 => cmd::METERS_11_TO_15,
            ReadPoll::CurrentCredits => cmd::CURRENT_CREDITS,
            ReadPoll::HandpayInfo => cmd::HANDPAY_INFO,
            ReadPoll::Meters => cmd::METERS,
            ReadPoll::MachineInfo => cmd::MACHINE_INFO,
            ReadPoll::BillsValue => cmd::BILLS_VALUE,
        }
    }

    /// The read poll with this command byte.
    pub fn from_command(command: u8) -> Option<ReadPoll> {
        ReadPoll::ALL.into_iter().find(|p| p.command() == command)
    }

    /// Whether the answer is one 4-byte BCD meter.
    fn is_single_meter(self) -> bool {
        matches!(
            self,
            ReadPoll::CancelledCredits
                | ReadPoll::CoinIn
                | ReadPoll::CoinOut
                | ReadPoll::Drop
                | ReadPoll::Jackpot
                | ReadPoll::GamesPlayed
                | ReadPoll::GamesWon
                | ReadPoll::GamesLost
                | ReadPoll::CurrentCredits
                | ReadPoll::BillsValue
        )
    }

    /// Total length of the machine's answer, address to CRC.
    fn response_len(self) -> usize {
        match self {
            ReadPoll::Meters10To15 => 28,
            ReadPoll::GamesSincePowerUp => 8,
            ReadPoll::Meters11To15 => 24,
            ReadPoll::HandpayInfo => 24,
            ReadPoll::Meters => 36,
            ReadPoll::MachineInfo => 24,
            _ => 8,
        }
    }
}

/// Tax status of a legacy bonus (§13.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxStatus {
    /// Deductible (the usual case).
    Deductible = 0,
    /// Non-deductible.
    NonDeductible = 1,
    /// Wager match.
    WagerMatch = 2,
}

/// The long polls this crate speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LongPoll {
    /// 0x01: lock out play (§7.4.1).
    Shutdown,
    /// 0x02: enable play.
    Startup,
    /// 0x0E: enable (`true`) or disable real-time event reporting (§12.1).
    RealTimeEvents(bool),
    /// A type R poll.
    Read(ReadPoll),
    /// 0x21: ROM signature verification with a seed (§6). ACKed; the signature comes later in
    /// answer to a general poll.
    RomSignature { seed: u16 },
    /// 0x2F: up to ten meters of Table C-7 for a game (0 = the whole machine) (§7.3).
    SelectedMeters { game: u16, meters: Vec<MeterCode> },
    /// 0x72: AFT transfer funds or interrogation (§8.3).
    AftTransfer(TransferFunds),
    /// 0x73: AFT register gaming machine (§8.1).
    AftRegister(RegistrationRequest),
    /// 0x74: AFT game lock and status request (§8.2).
    AftLock(LockRequest),
    /// 0x8A: initiate legacy bonus pay, in credits (§13.3).
    LegacyBonus { credits: u32, tax: TaxStatus },
}

impl LongPoll {
    /// The command byte.
    pub fn command(&self) -> u8 {
        match self {
            LongPoll::Shutdown => cmd::SHUTDOWN,
            LongPoll::Startup => cmd::STARTUP,
            LongPoll::RealTimeEvents(_) => cmd::REAL_TIME_EVENTS,
            LongPoll::Read(p) => p.command(),
            LongPoll::RomSignature { .. } => cmd::ROM_SIGNATURE,
            LongPoll::SelectedMeters { .. } => cmd::SELECTED_METERS,
            LongPoll::AftTransfer(_) => cmd::AFT_TRANSFER,
            LongPoll::AftRegister(_) => cmd::AFT_REGISTER,
            LongPoll::AftLock(_) => cmd::AFT_LOCK,
            LongPoll::LegacyBonus { .. } => cmd::LEGACY_BONUS,
        }
    }

    /// Whether a correct answer is a bare ACK (type S polls that ask for no data).
    pub fn answered_by_ack(&self) -> bool {
        matches!(
            self,
            LongPoll::Shutdown
                | LongPoll::Startup
                | LongPoll::RealTimeEvents(_)
                | LongPoll::RomSignature { .. }
                | LongPoll::LegacyBonus { .. }
        )
    }
}

impl HostMessage {
    /// The bytes on the wire. The wakeup bit (first byte only) is the transport's business.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(8);
        match self {
            HostMessage::GeneralPoll(a) => out.push(a.general_poll()),
            HostMessage::Sync => out.push(SYNC_POLL),
            HostMessage::LongPoll(a, poll) => {
                out.push(a.value());
                out.push(poll.command());
                match poll {
                    LongPoll::Read(_) => return Ok(out),
                    LongPoll::Shutdown | LongPoll::Startup => {}
                    LongPoll::RealTimeEvents(on) => out.push(u8::from(*on)),
                    LongPoll::RomSignature { seed } => put_binary(&mut out, u64::from(*seed), 2),
                    LongPoll::SelectedMeters { game, meters } => {
                        if meters.is_empty() || meters.len() > 10 {
                            return Err(Error::Encode("0x2F asks for 1 to 10 meters"));
                        }
                        out.push(2 + meters.len() as u8);
                        put_bcd(&mut out, u64::from(*game), 2)?;
                        out.extend(meters.iter().map(|m| m.0));
                    }
                    LongPoll::AftTransfer(t) => with_length(&mut out, |body| t.encode(body))?,
                    LongPoll::AftRegister(r) => with_length(&mut out, |body| {
                        r.encode(body);
                        Ok(())
                    })?,
                    LongPoll::AftLock(l) => l.encode(&mut out)?,
                    LongPoll::LegacyBonus { credits, tax } => {
                        put_bcd(&mut out, u64::from(*credits), 4)?;
                        out.push(*tax as u8);
                    }
                }
                append_crc(&mut out);
            }
        }
        Ok(out)
    }

    /// The machine this message is for (`None` for the synchronisation poll).
    pub fn address(&self) -> Option<Address> {
        match self {
            HostMessage::GeneralPoll(a) | HostMessage::LongPoll(a, _) => Some(*a),
            HostMessage::Sync => None,
        }
    }

    /// Decodes one host message from the start of `buf` (the machine's side of the line).
    pub fn decode(buf: &[u8]) -> Result<Option<(HostMessage, usize)>, Error> {
        let Some(&first) = buf.first() else { return Ok(None) };
        if first & 0x80 != 0 {
            let message = match Address::new(first & 0x7F) {
                Ok(a) => HostMessage::GeneralPoll(a),
                Err(_) => HostMessage::Sync,
            };
            return Ok(Some((message, 1)));
        }
        let Ok(address) = Address::new(first) else {
            // Address 0 with the top bit clear is a global broadcast (type G, §2.2.2.4); none is
            // implemented, and its length is unknown: drop what we have.
            return Err(frame_error(FrameFault::Unsupported(buf.get(1).copied().unwrap_or(0)), buf.len()));
        };
        let Some(&command) = buf.get(1) else { return Ok(None) };
        if let Some(read) = ReadPoll::from_command(command) {
            return Ok(Some((HostMessage::LongPoll(address, LongPoll::Read(read)), 2)));
        }
        let total = match command {
            cmd::SHUTDOWN | cmd::STARTUP => 4,
            cmd::REAL_TIME_EVENTS => 5,
            cmd::ROM_SIGNATURE => 6,
            cmd::AFT_LOCK => 8,
            cmd::LEGACY_BONUS => 9,
            cmd::SELECTED_METERS | cmd::AFT_TRANSFER | cmd::AFT_REGISTER => match buf.get(2) {
                Some(&len) => 3 + usize::from(len) + 2,
                None => return Ok(None),
            },
            other => return Err(frame_error(FrameFault::Unsupported(other), buf.len())),
        };
        if buf.len() < total {
            return Ok(None);
        }
        let frame = &buf[..total];
        if !crc_ok(frame) {
            return Err(frame_error(FrameFault::Crc, total));
        }
        let poll = decode_long_poll(command, &frame[2..total - 2]).map_err(|f| frame_error(f, total))?;
        Ok(Some((HostMessage::LongPoll(address, poll), total)))
    }
}

/// Writes a length byte, then the body, then patches the length (for 0x72 and 0x73).
fn with_length(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> Result<(), Error> {
    let at = out.len();
    out.push(0);
    body(out)?;
    out[at] = u8::try_from(out.len() - at - 1).map_err(|_| Error::Encode("message longer than 255 bytes"))?;
    Ok(())
}

fn frame_error(fault: FrameFault, skip: usize) -> Error {
    Error::Frame { fault, skip: skip.max(1) }
}

/// The bytes between command and CRC of a host long poll.
fn decode_long_poll(command: u8, body: &[u8]) -> Result<LongPoll, FrameFault> {
    let mut f = Fields::new(body);
    let poll = match command {
        cmd::SHUTDOWN => LongPoll::Shutdown,
        cmd::STARTUP => LongPoll::Startup,
        cmd::REAL_TIME_EVENTS => match f.u8()? {
            0 => LongPoll::RealTimeEvents(false),
            1 => LongPoll::RealTimeEvents(true),
            _ => return Err(FrameFault::Field("real-time event flag")),
        },
        cmd::ROM_SIGNATURE => LongPoll::RomSignature { seed: f.binary(2)? as u16 },
        cmd::SELECTED_METERS => {
            let len = usize::from(f.u8()?);
            let game = f.bcd(2)? as u16;
            let meters: Vec<MeterCode> = f.bytes(len.checked_sub(2).ok_or(FrameFault::Field("0x2F length"))?)?
                .iter()
                .map(|&c| MeterCode(c))
                .collect();
            if meters.is_empty() || meters.len() > 10 {
                return Err(FrameFault::Field("0x2F meter count"));
            }
            LongPoll::SelectedMeters { game, meters }
        }
        cmd::AFT_TRANSFER => {
            f.u8()?;
            LongPoll::AftTransfer(TransferFunds::decode(&mut f)?)
        }
        cmd::AFT_REGISTER => {
            f.u8()?;
            LongPoll::AftRegister(RegistrationRequest::decode(&mut f)?)
        }
        cmd::AFT_LOCK => LongPoll::AftLock(LockRequest::decode(&mut f)?),
        cmd::LEGACY_BONUS => {
            let credits = f.bcd(4)? as u32;
            let tax = match f.u8()? {
                0 => TaxStatus::Deductible,
                1 => TaxStatus::NonDeductible,
                2 => TaxStatus::WagerMatch,
                _ => return Err(FrameFault::Field("tax status")),
            };
            LongPoll::LegacyBonus { credits, tax }
        }
        _ => return Err(FrameFault::Unsupported(command)),
    };
    if !f.is_empty() {
        return Err(FrameFault::Field("trailing bytes"));
    }
    Ok(poll)
}

/// A reader over the fields of one checked frame.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameFault> {
        if self.buf.len() < n {
            return Err(FrameFault::Field("field runs past the end"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameFault> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn bcd(&mut self, n: usize) -> Result<u64, FrameFault> {
        get_bcd(self.bytes(n)?).map_err(|_| FrameFault::Field("BCD"))
    }

    pub(crate) fn binary(&mut self, n: usize) -> Result<u64, FrameFault> {
        Ok(get_binary(self.bytes(n)?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameFault> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }
}

/// A general poll exception or real-time event (Appendix A, §12.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The exception code.
    pub code: ExceptionCode,
    /// The data of a real-time event; [`EventDetail::None`] for a one-byte exception.
    pub detail: EventDetail,
}

/// The data that some real-time events carry (§12.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDetail {
    /// A one-byte exception, or an event without data.
    None,
    /// 0x7E game started: credits wagered, the coin in meter after the wager, wager type and
    /// progressive group (§12.5.3).
    GameStarted { credits_wagered: u32, coin_in: u64, wager_type: u8, progressive_group: u8 },
    /// 0x7F game ended: the win in credits, bonuses excluded (§12.5.4).
    GameEnded { win: u64 },
    /// 0x7C legacy bonus awarded (§12.5.2).
    LegacyBonus { multiplier: u8, multiplied_win: u64, tax_status: u8, bonus: u64 },
    /// Bill accepted: country code, denomination code, number of bills of this kind (§12.5.1).
    BillAccepted { country: u8, denomination: u8, count: u64 },
    /// Any other event data, kept as sent.
    Raw(Vec<u8>),
}

impl Event {
    /// An exception without data.
    pub fn plain(code: ExceptionCode) -> Event {
        Event { code, detail: EventDetail::None }
    }

    fn encode_data(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match &self.detail {
            EventDetail::None => {}
            EventDetail::GameStarted { credits_wagered, coin_in, wager_type, progressive_group } => {
                put_bcd(out, u64::from(*credits_wagered), 2)?;
                put_bcd(out, *coin_in, 4)?;
                out.push(*wager_type);
                out.push(*progressive_group);
            }
            EventDetail::GameEnded { win } => put_bcd(out, *win, 4)?,
            EventDetail::LegacyBonus { multiplier, multiplied_win, tax_status, bonus } => {
                out.push(*multiplier);
                put_bcd(out, *multiplied_win, 4)?;
                out.push(*tax_status);
                put_bcd(out, *bonus, 4)?;
            }
            EventDetail::BillAccepted { country, denomination, count } => {
                put_bcd(out, u64::from(*country), 1)?;
                put_bcd(out, u64::from(*denomination), 1)?;
                put_bcd(out, *count, 4)?;
            }
            EventDetail::Raw(data) => out.extend_from_slice(data),
        }
        Ok(())
    }

    fn decode_data(code: ExceptionCode, data: &[u8]) -> Result<EventDetail, FrameFault> {
        let mut f = Fields::new(data);
        Ok(match (code, data.len()) {
            (_, 0) => EventDetail::None,
            (ExceptionCode::GAME_STARTED, 8) => EventDetail::GameStarted {
                credits_wagered: f.bcd(2)? as u32,
                coin_in: f.bcd(4)?,
                wager_type: f.u8()?,
                progressive_group: f.u8()?,
            },
            (ExceptionCode::GAME_ENDED, 4) => EventDetail::GameEnded { win: f.bcd(4)? },
            (ExceptionCode::LEGACY_BONUS_AWARDED, 10) => EventDetail::LegacyBonus {
                multiplier: f.u8()?,
                multiplied_win: f.bcd(4)?,
                tax_status: f.u8()?,
                bonus: f.bcd(4)?,
            },
            (ExceptionCode(0x47..=0x50), 6) => EventDetail::BillAccepted {
                country: f.bcd(1)? as u8,
                denomination: f.bcd(1)? as u8,
                count: f.bcd(4)?,
            },
            _ => EventDetail::Raw(data.to_vec()),
        })
    }
}

/// Cancelled credits, coin in, coin out, drop, jackpot and games played (0x0F).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meters10To15 {
    pub cancelled_credits: u64,
    pub coin_in: u64,
    pub coin_out: u64,
    pub drop: u64,
    pub jackpot: u64,
    pub games_played: u64,
}

/// Coin in, coin out, drop, jackpot and games played (0x19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meters11To15 {
    pub coin_in: u64,
    pub coin_out: u64,
    pub drop: u64,
    pub jackpot: u64,
    pub games_played: u64,
}

/// The eight meters of long poll 0x1C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicMeters {
    pub coin_in: u64,
    pub coin_out: u64,
    pub drop: u64,
    pub jackpot: u64,
    pub games_played: u64,
    pub games_won: u64,
    pub slot_door_opened: u64,
    pub power_reset: u64,
}

/// Handpay information (0x1B, §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandpayInfo {
    pub progressive_group: u8,
    pub level: u8,
    /// The handpay amount (5 BCD), in the machine's reporting unit.
    pub amount: u64,
    /// Partial pay (2 BCD).
    pub partial_pay: u64,
    pub reset_id: u8,
}

/// Gaming machine ID and information (0x1F, §7.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineInfo {
    /// Game ID, 2 ASCII characters (manufacturer code of Table C-1).
    pub game_id: [u8; 2],
    /// Additional ID, 3 ASCII characters.
    pub additional_id: [u8; 3],
    /// Accounting denomination code (Table C-4).
    pub denomination: u8,
    /// Largest configured bet, in credits.
    pub max_bet: u8,
    pub progressive_group: u8,
    pub game_options: u16,
    /// Paytable ID, 6 ASCII characters.
    pub paytable_id: [u8; 6],
    /// Base percentage, 4 ASCII digits with two implied decimals ("9500" = 95.00 %).
    pub base_percent: [u8; 4],
}

impl MachineInfo {
    /// The accounting denomination.
    pub fn accounting_denomination(&self) -> Result<crate::Denomination, Error> {
        crate::Denomination::from_code(self.denomination)
    }

    /// The base percentage in basis points, if the field holds four digits.
    pub fn base_percent_bp(&self) -> Option<u32> {
        std::str::from_utf8(&self.base_percent).ok()?.parse().ok()
    }

    /// The game ID as text.
    pub fn game_id(&self) -> String {
        String::from_utf8_lossy(&self.game_id).into_owned()
    }

    /// The paytable ID as text.
    pub fn paytable_id(&self) -> String {
        String::from_utf8_lossy(&self.paytable_id).into_owned()
    }
}

/// A machine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The machine's address alone: the long poll was accepted (§2.2.2.2).
    Ack,
    /// Address with bit 7 set: the long poll was refused.
    Nack,
    /// `addr 00`: busy, try later (§4.1).
    Busy,
    /// A one-byte exception, the answer to a general poll outside real-time mode (§2.2.1).
    Exception(ExceptionCode),
    /// A real-time event, `addr FF code data CRC` (§12.5), the answer to a general poll or, in
    /// real-time mode, to a long poll (§12.3).
    RealTimeEvent(Event),
    /// The ROM signature (`addr 21 sig CRC`), sent after the calculation completes (§6.2).
    RomSignature(u16),
    /// 0x0F.
    Meters10To15(Meters10To15),
    /// A single-meter read poll and its value.
    Meter { poll: ReadPoll, value: u64 },
    /// 0x18: games since last power up and since slot door closure.
    GamesSincePowerUp { power_up: u64, door_closure: u64 },
    /// 0x19.
    Meters11To15(Meters11To15),
    /// 0x1B.
    HandpayInfo(HandpayInfo),
    /// 0x1C.
    BasicMeters(BasicMeters),
    /// 0x1F.
    MachineInfo(MachineInfo),
    /// 0x2F: (meter, value) pairs, value in the unit of Table C-7.
    SelectedMeters { game: u16, meters: Vec<(MeterCode, u64)> },
    /// 0x72.
    AftTransfer(TransferResponse),
    /// 0x73.
    AftRegistration(RegistrationResponse),
    /// 0x74.
    AftStatus(LockStatus),
}

/// What the host is waiting for, which decides how a response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The answer to a general poll.
    GeneralPoll,
    /// The answer to a general poll of a machine in real-time mode: an event frame, so a lone
    /// byte equal to the address is the start of one, never a complete answer.
    RealTimeGeneralPoll,
    /// The answer to a long poll with this command; `ack` when a bare ACK is the answer.
    LongPoll { command: u8, ack: bool },
}

impl Expect {
    /// What a host message's answer looks like; `None` for messages nobody answers.
    pub fn for_message(message: &HostMessage) -> Option<Expect> {
        match message {
            HostMessage::GeneralPoll(_) => Some(Expect::GeneralPoll),
            HostMessage::Sync => None,
            HostMessage::LongPoll(_, poll) => Some(Expect::LongPoll { command: poll.command(), ack: poll.answered_by_ack() }),
        }
    }
}

impl Response {
    /// The bytes a machine at `address` sends for this response.
    pub fn encode(&self, address: Address) -> Result<Vec<u8>, Error> {
        let a = address.value();
        let mut out = Vec::with_capacity(16);
        match self {
            Response::Ack => return Ok(vec![a]),
            Response::Nack => return Ok(vec![address.nack()]),
            Response::Busy => return Ok(vec![a, 0x00]),
            Response::Exception(code) => return Ok(vec![code.0]),
            Response::RealTimeEvent(event) => {
                out.extend([a, RTE_MARK, event.code.0]);
                event.encode_data(&mut out)?;
            }
            Response::RomSignature(sig) => {
                out.extend([a, cmd::ROM_SIGNATURE]);
                put_binary(&mut out, u64::from(*sig), 2);
            }
            Response::Meters10To15(m) => {
                out.extend([a, cmd::METERS_10_TO_15]);
                for v in [m.cancelled_credits, m.coin_in, m.coin_out, m.drop, m.jackpot, m.games_played] {
                    put_bcd(&mut out, v, 4)?;
                }
            }
            Response::Meter { poll, value } => {
                if !poll.is_single_meter() {
                    return Err(Error::Encode("not a single-meter read poll"));
                }
                out.extend([a, poll.command()]);
                put_bcd(&mut out, *value, 4)?;
            }
            Response::GamesSincePowerUp { power_up, door_closure } => {
                out.extend([a, cmd::GAMES_SINCE_POWER_UP]);
                put_bcd(&mut out, *power_up, 2)?;
                put_bcd(&mut out, *door_closure, 2)?;
            }
            Response::Meters11To15(m) => {
                out.extend([a, cmd::METERS_11_TO_15]);
                for v in [m.coin_in, m.coin_out, m.drop, m.jackpot, m.games_played] {
                    put_bcd(&mut out, v, 4)?;
                }
            }
            Response::HandpayInfo(h) => {
                out.extend([a, cmd::HANDPAY_INFO, h.progressive_group, h.level]);
                put_bcd(&mut out, h.amount, 5)?;
                put_bcd(&mut out, h.partial_pay, 2)?;
                out.push(h.reset_id);
                out.extend([0u8; 10]);
            }
            Response::BasicMeters(m) => {
                out.extend([a, cmd::METERS]);
                for v in [
                    m.coin_in,
                    m.coin_out,
                    m.drop,
                    m.jackpot,
                    m.games_played,
                    m.games_won,
                    m.slot_door_opened,
                    m.power_reset,
                ] {
                    put_bcd(&mut out, v, 4)?;
                }
            }
            Response::MachineInfo(i) => {
                out.extend([a, cmd::MACHINE_INFO]);
                out.extend(i.game_id);
                out.extend(i.additional_id);
                out.extend([i.denomination, i.max_bet, i.progressive_group]);
                put_binary(&mut out, u64::from(i.game_options), 2);
                out.extend(i.paytable_id);
                out.extend(i.base_percent);
            }
            Response::SelectedMeters { game, meters } => {
                out.extend([a, cmd::SELECTED_METERS, 0]);
                put_bcd(&mut out, u64::from(*game), 2)?;
                for (code, value) in meters {
                    let (size, _) = code.layout().ok_or(Error::Encode("meter code without a known size"))?;
                    out.push(code.0);
                    put_bcd(&mut out, *value, size)?;
                }
                out[2] = u8::try_from(out.len() - 3).map_err(|_| Error::Encode("too many meters"))?;
            }
            Response::AftTransfer(t) => {
                out.extend([a, cmd::AFT_TRANSFER]);
                with_length(&mut out, |body| t.encode(body))?;
            }
            Response::AftRegistration(r) => {
                out.extend([a, cmd::AFT_REGISTER]);
                with_length(&mut out, |body| {
                    r.encode(body);
                    Ok(())
                })?;
            }
            Response::AftStatus(s) => {
                out.extend([a, cmd::AFT_LOCK]);
                with_length(&mut out, |body| s.encode(body))?;
            }
        }
        append_crc(&mut out);
        Ok(out)
    }

    /// Decodes the machine's answer at the start of `buf`.
    ///
    /// `quiet` says the line has been silent for the inter-byte time since the last byte, so no
    /// more bytes of this answer will come; it resolves the answers that are a prefix of others
    /// (a bare ACK, a one-byte exception equal to the address).
    pub fn decode(address: Address, expect: Expect, buf: &[u8], quiet: bool) -> Result<Option<(Response, usize)>, Error> {
        let a = address.value();
        let Some(&first) = buf.first() else { return Ok(None) };
        if let Expect::GeneralPoll | Expect::RealTimeGeneralPoll = expect
            && first != a
        {
            // In real-time mode too: a one-byte exception means the machine left that mode.
            return Ok(Some((Response::Exception(ExceptionCode(first)), 1)));
        }
        if let Expect::LongPoll { .. } = expect {
            if first == address.nack() {
                return Ok(Some((Response::Nack, 1)));
            }
            if first != a {
                // Not the start of an answer from this machine: resynchronise on the next byte.
                let skip = buf.iter().position(|&b| b == a || b == address.nack()).unwrap_or(buf.len());
                return Err(frame_error(FrameFault::Garbage, skip));
            }
        }
        let Some(&second) = buf.get(1) else {
            return Ok(match (expect, quiet) {
                (_, false) => None,
                (Expect::GeneralPoll, true) => Some((Response::Exception(ExceptionCode(first)), 1)),
                (Expect::RealTimeGeneralPoll, true) => return Err(frame_error(FrameFault::Garbage, 1)),
                (Expect::LongPoll { ack: true, .. }, true) => Some((Response::Ack, 1)),
                (Expect::LongPoll { ack: false, .. }, true) => return Err(frame_error(FrameFault::Garbage, 1)),
            });
        };
        match (expect, second) {
            (_, RTE_MARK) => decode_rte(buf, quiet),
            (Expect::LongPoll { .. }, 0x00) => Ok(Some((Response::Busy, 2))),
            (_, cmd::ROM_SIGNATURE) => decode_fixed(buf, 6, |f| Ok(Response::RomSignature(f.binary(2)? as u16))),
            (Expect::GeneralPoll, _) => Ok(Some((Response::Exception(ExceptionCode(first)), 1))),
            // In real-time mode the address starts an event frame; an address byte followed by
            // anything else is noise such as a chirp (§4.2): resynchronise on the next byte.
            (Expect::RealTimeGeneralPoll, _) => Err(frame_error(FrameFault::Garbage, 1)),
            (Expect::LongPoll { command, ack }, c) if c == command && !ack => decode_data(buf, command),
            (Expect::LongPoll { ack: true, .. }, _) => Ok(Some((Response::Ack, 1))),
            (Expect::LongPoll { .. }, _) => Err(frame_error(FrameFault::Garbage, 1)),
        }
    }
}

/// `addr FF code data CRC`; the data length comes from the code, or, for codes this crate does
/// not know, from the quiet line.
fn decode_rte(buf: &[u8], quiet: bool) -> Result<Option<(Response, usize)>, Error> {
    let Some(&code) = buf.get(2) else { return Ok(None) };
    let code = ExceptionCode(code);
    let known = 3 + code.rte_data_len() + 2;
    let total = if buf.len() >= known && crc_ok(&buf[..known]) {
        known
    } else if buf.len() < known && !quiet {
        return Ok(None);
    } else if quiet && buf.len() >= 5 && crc_ok(buf) {
        buf.len()
    } else if !quiet {
        return Ok(None);
    } else {
        return Err(frame_error(FrameFault::Crc, buf.len()));
    };
    let detail = Event::decode_data(code, &buf[3..total - 2]).map_err(|f| frame_error(f, total))?;
    Ok(Some((Response::RealTimeEvent(Event { code, detail }), total)))
}

fn decode_fixed(
    buf: &[u8],
    total: usize,
    parse: impl FnOnce(&mut Fields<'_>) -> Result<Response, FrameFault>,
) -> Result<Option<(Response, usize)>, Error> {
    if buf.len() < total {
        return Ok(None);
    }
    if !crc_ok(&buf[..total]) {
        return Err(frame_error(FrameFault::Crc, total));
    }
    let mut f = Fields::new(&buf[2..total - 2]);
    let response = parse(&mut f).map_err(|fault| frame_error(fault, total))?;
    if !f.is_empty() {
        return Err(frame_error(FrameFault::Field("trailing bytes"), total));
    }
    Ok(Some((response, total)))
}

/// A long poll's data answer, `addr cmd ... CRC`.
fn decode_data(buf: &[u8], command: u8) -> Result<Option<(Response, usize)>, Error> {
    if let Some(read) = ReadPoll::from_command(command) {
        return decode_fixed(buf, read.response_len(), |f| decode_read(read, f));
    }
    let Some(&len) = buf.get(2) else { return Ok(None) };
    let total = 3 + usize::from(len) + 2;
    decode_fixed(buf, total, |f| {
        f.u8()?;
        Ok(match command {
            cmd::SELECTED_METERS => {
                let game = f.bcd(2)? as u16;
                let mut meters = Vec::new();
                while !f.is_empty() {
                    let code = MeterCode(f.u8()?);
                    let (size, _) = code.layout().ok_or(FrameFault::Field("meter code without a known size"))?;
                    meters.push((code, f.bcd(size)?));
                }
                Response::SelectedMeters { game, meters }
            }
            cmd::AFT_TRANSFER => Response::AftTransfer(TransferResponse::decode(f)?),
            cmd::AFT_REGISTER => Response::AftRegistration(RegistrationResponse::decode(f)?),
            cmd::AFT_LOCK => Response::AftStatus(LockStatus::decode(f)?),
            other => return Err(FrameFault::Unsupported(other)),
        })
    })
}

fn decode_read(read: ReadPoll, f: &mut Fields<'_>) -> Result<Response, FrameFault> {
    Ok(match read {
        ReadPoll::Meters10To15 => Response::Meters10To15(Meters10To15 {
            cancelled_credits: f.bcd(4)?,
            coin_in: f.bcd(4)?,
            coin_out: f.bcd(4)?,
            drop: f.bcd(4)?,
            jackpot: f.bcd(4)?,
            games_played: f.bcd(4)?,
        }),
        ReadPoll::GamesSincePowerUp => Response::GamesSincePowerUp { power_up: f.bcd(2)?, door_closure: f.bcd(2)? },
        ReadPoll::Meters11To15 => Response::Meters11To15(Meters11To15 {
            coin_in: f.bcd(4)?,
            coin_out: f.bcd(4)?,
            drop: f.bcd(4)?,
            jackpot: f.bcd(4)?,
            games_played: f.bcd(4)?,
        }),
        ReadPoll::HandpayInfo => {
            let info = HandpayInfo {
                progressive_group: f.u8()?,
                level: f.u8()?,
                amount: f.bcd(5)?,
                partial_pay: f.bcd(2)?,
                reset_id: f.u8()?,
            };
            f.bytes(10)?;
            Response::HandpayInfo(info)
        }
        ReadPoll::Meters => Response::BasicMeters(BasicMeters {
            coin_in: f.bcd(4)?,
            coin_out: f.bcd(4)?,
            drop: f.bcd(4)?,
            jackpot: f.bcd(4)?,
            games_played: f.bcd(4)?,
            games_won: f.bcd(4)?,
            slot_door_opened: f.bcd(4)?,
            power_reset: f.bcd(4)?,
        }),
        ReadPoll::MachineInfo => Response::MachineInfo(MachineInfo {
            game_id: f.array()?,
            additional_id: f.array()?,
            denomination: f.u8()?,
            max_bet: f.u8()?,
            progressive_group: f.u8()?,
            game_options: f.binary(2)? as u16,
            paytable_id: f.array()?,
            base_percent: f.array()?,
        }),
        single => Response::Meter { poll: single, value: f.bcd(4)? },
    })
}

/// Frames host messages on the machine's side of the line, by the wakeup bit when the line
/// carries it and by content and timing when it does not (a gap longer than the inter-byte
/// time ends whatever was partial, §2.3.2).
#[derive(Debug)]
pub struct HostFramer {
    buf: Vec<u8>,
    gap: std::time::Duration,
    last: Option<std::time::Instant>,
    /// A wakeup byte started a message that is not complete yet.
    open: bool,
    /// An unsupported message of unknown length is being skipped until the line goes quiet.
    discarding: bool,
}

/// A framed host message, or a damaged one (bad CRC or field) with its first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    Message(HostMessage),
    Damaged { first_byte: u8 },
}

impl HostFramer {
    /// A framer that drops a partial message after `gap` of silence.
    pub fn new(gap: std::time::Duration) -> HostFramer {
        HostFramer { buf: Vec::new(), gap, last: None, open: false, discarding: false }
    }

    /// Adds received bytes (`wakeup` is `None` on a line without the ninth bit) and returns the
    /// messages they complete.
    pub fn push(&mut self, bytes: &[crate::transport::RxByte], now: std::time::Instant) -> Vec<Framed> {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) > self.gap) {
            self.buf.clear();
            self.discarding = false;
        }
        self.last = Some(now);
        let mut out = Vec::new();
        for b in bytes {
            match b.wakeup {
                Some(true) => {
                    self.buf.clear();
                    self.open = true;
                    self.discarding = false;
                }
                Some(false) if !self.open => continue,
                _ if self.discarding => continue,
                _ => {}
            }
            self.buf.push(b.byte);
            self.drain(&mut out);
        }
        out
    }

    fn drain(&mut self, out: &mut Vec<Framed>) {
        while !self.buf.is_empty() {
            match HostMessage::decode(&self.buf) {
                Ok(Some((message, used))) => {
                    out.push(Framed::Message(message));
                    self.buf.drain(..used);
                    self.open = false;
                }
                Ok(None) => return,
                Err(Error::Frame { fault, skip }) => {
                    match fault {
                        FrameFault::Crc | FrameFault::Field(_) => out.push(Framed::Damaged { first_byte: self.buf[0] }),
                        // Its length is unknown: whatever follows until the line is quiet is
                        // part of it, not a new message.
                        FrameFault::Unsupported(_) | FrameFault::Garbage => self.discarding = true,
                    }
                    self.buf.drain(..skip.min(self.buf.len()));
                    self.open = false;
                    if self.discarding {
                        self.buf.clear();
                        return;
                    }
                }
                Err(_) => {
                    self.buf.clear();
                    return;
                }
            }
        }
    }
}
