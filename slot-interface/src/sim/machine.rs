//! The simulated gaming machine as a pure state machine: a decoded host message in, the bytes
//! of its answer out; games, doors and handpays as method calls; time passed in.
//!
//! Key decisions: it follows the machine's side of the link rules the host relies on, so the
//! host is tested against them: it waits for a synchronisation poll after start-up (§3.3),
//! answers a repeated poll with the same bytes (implied NACK, §3.2) and takes any other poll as
//! the acknowledgement (§3.1), stays silent to general polls in real-time mode when idle
//! (§12.6), answers a long poll with a pending real-time event instead (§12.3), keeps a 20-entry
//! exception queue that reports 0x70 on overflow (§2.2.1), chirps when not polled (§4.2), and
//! plays restricted credits before cashable ones (§8). Transmission faults (dropped or damaged
//! answers, slow bytes, silence) are the runner's, not this model's.
//!
//! What it does not do: no multi-game, tickets, progressives or bill validator detail.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use club_rules::MachineType;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use super::game::Paytable;
use super::store::{StoredTransfer, Stored};
use crate::aft::{
    lock_code, lock_status, registration_code, registration_status, LockRequest, LockStatus, RegistrationRequest,
    RegistrationResponse, TransferFunds, TransferRecord, TransferRequest, TransferResponse, TransferStatus,
    CONDITION_TO_MACHINE, FLAG_ONLY_IF_LOCKED, NO_RECEIPT, TRANSFER_IN_HOUSE_TO_MACHINE,
};
use crate::codec::{
    BasicMeters, Event, EventDetail, HandpayInfo, HostMessage, LongPoll, MachineInfo, Meters10To15, Meters11To15, ReadPoll,
    Response,
};
use crate::frame::{crc16_seeded, Address, Denomination, ExceptionCode, MeterCode};
use crate::session::Door;
use crate::Error;

/// How the simulated machine is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub address: Address,
    /// Accounting denomination.
    pub denomination: Denomination,
    pub game: MachineType,
    /// Return to player in basis points (9500 = 95.00 %).
    pub rtp_bp: u32,
    /// Credits wagered per game.
    pub bet_credits: u32,
    /// AFT asset number (non-zero for AFT).
    pub asset_number: u32,
    /// Seed of the game outcomes.
    pub seed: u64,
    /// Whether long poll 0x0E is supported (otherwise it is ignored, §4.4).
    pub real_time_capable: bool,
    /// Largest AFT transfer to the credit meter, cents.
    pub transfer_limit_cents: u64,
    /// What the simulated player inserts when out of credits, cents.
    pub bill_cents: u64,
    /// Chirp after this long without an address byte (5 s, §4.2) ...
    pub chirp_after: Duration,
    /// ... every this often (200 ms).
    pub chirp_every: Duration,
    /// How long an accepted AFT transfer stays pending.
    pub transfer_delay: Duration,
}

impl SimConfig {
    /// A 1-cent slot machine at 95 % that bets 5 credits.
    pub fn new(address: Address) -> SimConfig {
        SimConfig {
            address,
            denomination: Denomination::from_cents(1).expect("1 cent is in Table C-4"),
            game: MachineType::Slot,
            rtp_bp: 9_500,
            bet_credits: 5,
            asset_number: 1000 + u32::from(address.value()),
            seed: 1,
            real_time_capable: true,
            transfer_limit_cents: 1_000_000,
            bill_cents: 2_000,
            chirp_after: Duration::from_secs(5),
            chirp_every: Duration::from_millis(200),
            transfer_delay: Duration::from_millis(100),
        }
    }
}

/// Exception queue length (§2.2.1).
const QUEUE: usize = 20;
/// AFT history length (§8.6).
const HISTORY: usize = 127;
/// Meters roll over at their BCD width (4 bytes).
const METER_LIMIT: u64 = 100_000_000;
/// Cent meters are 5 BCD bytes.
const CENTS_LIMIT: u64 = 10_000_000_000;
/// "Game locked" is reported again this often while locked (§8.2).
const LOCKED_REPORT: Duration = Duration::from_secs(5);

/// What an answer carried that the machine may only forget once the host acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Exception,
    Overflow,
    RomSignature,
}

struct LastAnswer {
    /// Address and command of the poll (§3.1 compares these).
    key: Vec<u8>,
    answer: Vec<u8>,
}

/// The simulated machine. See the module documentation.
pub struct Egm {
    config: SimConfig,
    paytable: Paytable,
    state: Stored,
    rng: StdRng,
    dirty: bool,
    real_time: bool,
    synced: bool,
    enabled: bool,
    exceptions: VecDeque<Event>,
    overflow: bool,
    /// Sent and not yet acknowledged: kept until the implied ACK (§3.1).
    awaiting_ack: Option<Sent>,
    last: Option<LastAnswer>,
    last_address_seen: Instant,
    last_chirp: Option<Instant>,
    lock_until: Option<Instant>,
    locked_reported: Instant,
    transfer_done_at: Option<Instant>,
    rom_signature: Option<u16>,
    handpay: Option<u64>,
    busy_next: u32,
    refuse_next_aft: bool,
    games_since_power_up: u64,
    games_since_door_closed: u64,
    wall_clock: (u32, u32),
}

impl Egm {
    /// A machine with this saved state, powering up at `now`.
    pub fn new(config: SimConfig, state: Stored, now: Instant) -> Result<Egm, Error> {
        let paytable = Paytable::new(config.game, config.rtp_bp)
            .ok_or_else(|| Error::Control(format!("return {} bp is not possible for {:?}", config.rtp_bp, config.game)))?;
        if config.bet_credits == 0 || config.bet_credits > 9_999 {
            return Err(Error::Control("bet must be 1 to 9999 credits".into()));
        }
        let rng = StdRng::seed_from_u64(config.seed ^ state.meters.games_played);
        let mut egm = Egm {
            config,
            paytable,
            state,
            rng,
            dirty: false,
            real_time: false,
            synced: false,
            enabled: true,
            exceptions: VecDeque::new(),
            overflow: false,
            awaiting_ack: None,
            last: None,
            last_address_seen: now,
            last_chirp: None,
            lock_until: None,
            locked_reported: now,
            transfer_done_at: None,
            rom_signature: None,
            handpay: None,
            busy_next: 0,
            refuse_next_aft: false,
            games_since_power_up: 0,
            games_since_door_closed: 0,
            wall_clock: (1_012_000, 0),
        };
        egm.push(Event::plain(ExceptionCode::POWER_APPLIED));
        Ok(egm)
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The persistent state, if it changed since the last call (for the runner to save).
    pub fn take_changes(&mut self) -> Option<&Stored> {
        std::mem::take(&mut self.dirty).then_some(&self.state)
    }

    /// The persistent state.
    pub fn state(&self) -> &Stored {
        &self.state
    }

    /// Sets the calendar date and time (MMDDYYYY, HHMMSS) used in AFT records.
    pub fn set_wall_clock(&mut self, date: u32, time: u32) {
        self.wall_clock = (date, time);
    }

    // --- the link ----------------------------------------------------------------------------

    /// Handles one message from the host; returns the bytes to answer with, if any.
    pub fn receive(&mut self, message: &HostMessage, now: Instant) -> Option<Vec<u8>> {
        if message.address() != Some(self.config.address) {
            // A poll to another machine or address 0: synchronisation (§3.3) and the implied ACK
            // of our last answer (§3.1). Any address byte also stops chirping (§4.2).
            self.synced = true;
            self.acknowledge();
            self.last = None;
            self.last_address_seen = now;
            return None;
        }
        self.last_address_seen = now;
        if !self.synced {
            return None;
        }
        let key = message.encode().ok()?.into_iter().take(2).collect::<Vec<u8>>();
        if let Some(last) = &self.last
            && last.key == key
        {
            // The same poll again: the host did not get our answer (implied NACK, §3.2).
            return Some(last.answer.clone());
        }
        self.acknowledge();
        let answer = self.answer(message, now);
        self.last = match &answer {
            // A NACK is not data to repeat: the next poll is processed afresh.
            Some(bytes) if *bytes != [self.config.address.nack()] => Some(LastAnswer { key, answer: bytes.clone() }),
            _ => None,
        };
        answer
    }

    /// The answer to a long poll that arrived damaged (bad CRC or field) for this machine.
    pub fn refuse_damaged(&self, first_byte: u8) -> Option<Vec<u8>> {
        (self.synced && first_byte == self.config.address.value()).then(|| vec![self.config.address.nack()])
    }

    /// Timers: lock expiry, transfer completion, the locked reminder, chirping. Returns a byte
    /// to send with the wakeup bit when the machine chirps.
    pub fn tick(&mut self, now: Instant) -> Option<u8> {
        if self.transfer_done_at.is_some_and(|t| now >= t) {
            self.transfer_done_at = None;
            self.lock_until = None;
            self.push(Event::plain(ExceptionCode::AFT_COMPLETE));
        }
        if let Some(until) = self.lock_until {
            if now >= until {
                self.lock_until = None;
            } else if now.duration_since(self.locked_reported) >= LOCKED_REPORT {
                self.locked_reported = now;
                self.push(Event::plain(ExceptionCode::GAME_LOCKED));
            }
        }
        let silent = now.saturating_duration_since(self.last_address_seen);
        if silent < self.config.chirp_after {
            return None;
        }
        // Link down (§4.3): resynchronise before answering again.
        self.synced = false;
        self.real_time = false;
        if self.last_chirp.is_some_and(|t| now.saturating_duration_since(t) < self.config.chirp_every) {
            return None;
        }
        self.last_chirp = Some(now);
        Some(self.config.address.value())
    }

    fn push(&mut self, event: Event) {
        if self.exceptions.len() >= QUEUE {
            self.exceptions.pop_front();
            self.overflow = true;
        }
        self.exceptions.push_back(event);
    }

    /// The exception to report next. It stays queued until the host acknowledges the answer
    /// that carried it, so an answer lost on the line is sent again.
    fn next_exception(&mut self) -> Option<Event> {
        if self.overflow {
            self.awaiting_ack = Some(Sent::Overflow);
            return Some(Event::plain(ExceptionCode::BUFFER_OVERFLOW));
        }
        let event = self.exceptions.front().cloned()?;
        self.awaiting_ack = Some(Sent::Exception);
        Some(event)
    }

    /// The host took our last answer (any poll but a repeat of the same one).
    fn acknowledge(&mut self) {
        match self.awaiting_ack.take() {
            Some(Sent::Exception) => {
                self.exceptions.pop_front();
            }
            Some(Sent::Overflow) => self.overflow = false,
            Some(Sent::RomSignature) => self.rom_signature = None,
            None => {}
        }
    }

    fn encode(&self, response: Response) -> Option<Vec<u8>> {
        // Values are kept within their BCD widths, so encoding cannot fail; if it did, saying
        // nothing is what a machine does with a poll it cannot answer.
        response.encode(self.config.address).ok()
    }

    fn answer(&mut self, message: &HostMessage, now: Instant) -> Option<Vec<u8>> {
        let HostMessage::LongPoll(_, poll) = message else {
            if let Some(signature) = self.rom_signature {
                self.awaiting_ack = Some(Sent::RomSignature);
                return self.encode(Response::RomSignature(signature));
            }
            // An idle machine in real-time mode answers the event form of "no activity", as
            // deployed SAS stacks do, so that silence always means a lost answer.
            let event = self.next_exception().unwrap_or(Event::plain(ExceptionCode::NO_ACTIVITY));
            return match self.real_time {
                true => self.encode(Response::RealTimeEvent(event)),
                false => self.encode(Response::Exception(event.code)),
            };
        };
        if self.real_time
            && let Some(event) = self.next_exception()
        {
            return self.encode(Response::RealTimeEvent(event));
        }
        if self.busy_next > 0 {
            self.busy_next -= 1;
            return self.encode(Response::Busy);
        }
        let response = match poll {
            LongPoll::Shutdown => {
                self.enabled = false;
                Response::Ack
            }
            LongPoll::Startup => {
                self.enabled = true;
                Response::Ack
            }
            LongPoll::RealTimeEvents(on) => {
                if !self.config.real_time_capable {
                    return None;
                }
                self.real_time = *on;
                Response::Ack
            }
            LongPoll::Read(read) => self.read(*read),
            LongPoll::RomSignature { seed } => {
                self.rom_signature = Some(self.signature(*seed));
                Response::Ack
            }
            LongPoll::SelectedMeters { game, meters } => Response::SelectedMeters {
                game: *game,
                meters: meters.iter().filter_map(|&code| self.meter(code).map(|v| (code, v))).collect(),
            },
            LongPoll::AftRegister(request) => Response::AftRegistration(self.register(request)),
            LongPoll::AftLock(request) => Response::AftStatus(self.lock(request, now)),
            LongPoll::AftTransfer(funds) => Response::AftTransfer(self.transfer(funds, now)),
            LongPoll::LegacyBonus { credits, tax } => {
                if !self.enabled || self.handpay.is_some() {
                    return self.encode(Response::Busy);
                }
                let credits = u64::from(*credits);
                self.state.credits += credits;
                self.state.meters.legacy_bonus += credits;
                self.state.meters.coin_out = (self.state.meters.coin_out + credits) % METER_LIMIT;
                self.dirty = true;
                self.push(Event {
                    code: ExceptionCode::LEGACY_BONUS_AWARDED,
                    detail: EventDetail::LegacyBonus { multiplier: 0, multiplied_win: 0, tax_status: *tax as u8, bonus: credits },
                });
                Response::Ack
            }
        };
        self.encode(response)
    }

    /// The ROM signature for `seed` (§6): the CRC of what stands for program memory here, the
    /// simulator's version, game type, return and bet.
    pub fn signature(&self, seed: u16) -> u16 {
        let image = format!("egm-sim {} {:?} {} {}", env!("CARGO_PKG_VERSION"), self.config.game, self.config.rtp_bp, self.config.bet_credits);
        crc16_seeded(seed, image.as_bytes())
    }

    fn meter(&self, code: MeterCode) -> Option<u64> {
        let m = &self.state.meters;
        let value = match code {
            MeterCode::TOTAL_COIN_IN => m.coin_in,
            MeterCode::TOTAL_COIN_OUT => m.coin_out,
            MeterCode::TOTAL_JACKPOT => m.jackpot,
            MeterCode::TOTAL_HANDPAID_CANCELLED => 0,
            MeterCode::TOTAL_CANCELLED => m.cancelled_credits,
            MeterCode::GAMES_PLAYED => m.games_played,
            MeterCode::GAMES_WON => m.games_won,
            MeterCode::GAMES_LOST => m.games_lost,
            MeterCode::BILLS_ACCEPTED => m.bills_credits,
            MeterCode::CURRENT_CREDITS => self.state.credits + self.state.restricted_credits,
            MeterCode::ELECTRONIC_IN => m.electronic_in,
            MeterCode::RESTRICTED_PLAYED => m.restricted_played,
            MeterCode::NONRESTRICTED_PLAYED => m.nonrestricted_played,
            MeterCode::CURRENT_RESTRICTED => self.state.restricted_credits,
            MeterCode(0x22) => m.coin_out + m.jackpot,
            MeterCode::TOTAL_DROP => m.drop,
            MeterCode::GAMES_SINCE_POWER_RESET => self.games_since_power_up,
            MeterCode(0x26) => self.games_since_door_closed,
            _ => return None,
        };
        let limit = if code.layout().is_some_and(|(size, _)| size == 5) { CENTS_LIMIT } else { METER_LIMIT };
        Some(value % limit)
    }

    fn read(&self, read: ReadPoll) -> Response {
        let m = &self.state.meters;
        let r = |v: u64| v % METER_LIMIT;
        match read {
            ReadPoll::Meters10To15 => Response::Meters10To15(Meters10To15 {
                cancelled_credits: r(m.cancelled_credits),
                coin_in: r(m.coin_in),
                coin_out: r(m.coin_out),
                drop: r(m.drop),
                jackpot: r(m.jackpot),
                games_played: r(m.games_played),
            }),
            ReadPoll::GamesSincePowerUp => Response::GamesSincePowerUp {
                power_up: self.games_since_power_up % 10_000,
                door_closure: self.games_since_door_closed % 10_000,
            },
            ReadPoll::Meters11To15 => Response::Meters11To15(Meters11To15 {
                coin_in: r(m.coin_in),
                coin_out: r(m.coin_out),
                drop: r(m.drop),
                jackpot: r(m.jackpot),
                games_played: r(m.games_played),
            }),
            ReadPoll::HandpayInfo => Response::HandpayInfo(HandpayInfo {
                amount: self.handpay.unwrap_or(0) % CENTS_LIMIT,
                ..HandpayInfo::default()
            }),
            ReadPoll::Meters => Response::BasicMeters(BasicMeters {
                coin_in: r(m.coin_in),
                coin_out: r(m.coin_out),
                drop: r(m.drop),
                jackpot: r(m.jackpot),
                games_played: r(m.games_played),
                games_won: r(m.games_won),
                slot_door_opened: r(m.slot_door_opened),
                power_reset: r(m.power_reset),
            }),
            ReadPoll::MachineInfo => Response::MachineInfo(self.info()),
            single => {
                let value = match single {
                    ReadPoll::CancelledCredits => m.cancelled_credits,
                    ReadPoll::CoinIn => m.coin_in,
                    ReadPoll::CoinOut => m.coin_out,
                    ReadPoll::Drop => m.drop,
                    ReadPoll::Jackpot => m.jackpot,
                    ReadPoll::GamesPlayed => m.games_played,
                    ReadPoll::GamesWon => m.games_won,
                    ReadPoll::GamesLost => m.games_lost,
                    ReadPoll::CurrentCredits => self.state.credits + self.state.restricted_credits,
                    // Whole currency units of bills accepted.
                    _ => m.bills_credits * u64::from(self.config.denomination.cents()) / 100,
                };
                Response::Meter { poll: single, value: r(value) }
            }
        }
    }

    /// The 0x1F answer. Game ID "SM" marks the simulator; the additional ID and paytable name
    /// say which game type it plays.
    pub fn info(&self) -> MachineInfo {
        let (kind, paytable) = match self.config.game {
            MachineType::Slot => (*b"SLT", *b"SLOT01"),
            MachineType::ElectronicRoulette => (*b"ROU", *b"ROUL01"),
            MachineType::VideoPoker => (*b"VPK", *b"POKR01"),
        };
        let percent = format!("{:04}", self.config.rtp_bp.min(9_999));
        let mut base_percent = [b'0'; 4];
        base_percent.copy_from_slice(&percent.as_bytes()[..4]);
        MachineInfo {
            game_id: *b"SM",
            additional_id: kind,
            denomination: self.config.denomination.code(),
            max_bet: u8::try_from(self.config.bet_credits).unwrap_or(u8::MAX),
            progressive_group: 0,
            game_options: 0,
            paytable_id: paytable,
            base_percent,
        }
    }

    // --- AFT -----------------------------------------------------------------------------------

    fn register(&mut self, request: &RegistrationRequest) -> RegistrationResponse {
        match request.code {
            registration_code::INITIALIZE => self.state.registration_status = registration_status::READY,
            registration_code::REGISTER
                if request.asset_number == self.config.asset_number
                    && matches!(self.state.registration_status, registration_status::READY | registration_status::REGISTERED) =>
            {
                self.state.registration_status = registration_status::REGISTERED;
                self.state.registration_key = request.registration_key.0;
                self.state.pos_id = request.pos_id;
            }
            registration_code::UNREGISTER => {
                self.state.registration_status = registration_status::NOT_REGISTERED;
                self.state.registration_key = [0; 20];
            }
            _ => {}
        }
        self.dirty = true;
        let registered = self.state.registration_status == registration_status::REGISTERED;
        RegistrationResponse {
            status: self.state.registration_status,
            asset_number: self.config.asset_number,
            registration_key: if registered { self.state.key() } else { Default::default() },
            pos_id: self.state.pos_id,
        }
    }

    fn can_transfer(&self) -> bool {
        self.enabled && self.handpay.is_none()
    }

    fn lock(&mut self, request: &LockRequest, now: Instant) -> LockStatus {
        match request.code {
            lock_code::REQUEST if self.can_transfer() && request.condition & CONDITION_TO_MACHINE != 0 => {
                if self.lock_until.is_none() {
                    self.locked_reported = now;
                    self.push(Event::plain(ExceptionCode::GAME_LOCKED));
                }
                self.lock_until = Some(now + Duration::from_millis(u64::from(request.timeout_hundredths) * 10));
            }
            lock_code::CANCEL => self.lock_until = None,
            _ => {}
        }
        self.aft_status()
    }

    fn aft_status(&self) -> LockStatus {
        let cents = u64::from(self.config.denomination.cents());
        let registered = self.state.registration_status == registration_status::REGISTERED;
        LockStatus {
            asset_number: self.config.asset_number,
            lock_status: if self.lock_until.is_some() { lock_status::LOCKED } else { lock_status::NOT_LOCKED },
            available_transfers: if self.can_transfer() { CONDITION_TO_MACHINE } else { 0 },
            host_cashout_status: 0,
            // Any AFT enabled, in-house transfers enabled, registered.
            aft_status: 0x80 | 0x10 | if registered { 0x08 } else { 0 },
            max_buffer_index: HISTORY as u8,
            cashable_cents: (self.state.credits * cents) % CENTS_LIMIT,
            restricted_cents: (self.state.restricted_credits * cents) % CENTS_LIMIT,
            nonrestricted_cents: 0,
            transfer_limit_cents: self.config.transfer_limit_cents,
            restricted_expiration: 0,
            restricted_pool_id: self.state.restricted_pool_id,
        }
    }

    fn transfer(&mut self, funds: &TransferFunds, now: Instant) -> TransferResponse {
        match funds {
            TransferFunds::Interrogate { index, .. } => self.interrogate(*index, now),
            TransferFunds::Request(request) => {
                let status = self.check_transfer(request);
                let (date, time) = self.wall_clock;
                let attempt = StoredTransfer {
                    status: status.0,
                    record: TransferRecord {
                        transfer_type: request.transfer_type,
                        cashable_cents: request.cashable_cents,
                        restricted_cents: request.restricted_cents,
                        nonrestricted_cents: request.nonrestricted_cents,
                        flags: request.flags,
                        asset_number: self.config.asset_number,
                        transaction_id: request.transaction_id.clone(),
                        date,
                        time,
                        expiration: request.expiration,
                        pool_id: request.pool_id,
                        cumulative: [None; 3],
                    },
                };
                if status == TransferStatus::NOT_UNIQUE {
                    // The earlier transfer with this id stays the current one.
                    return TransferResponse {
                        buffer_position: 0,
                        status,
                        receipt_status: Some(NO_RECEIPT),
                        record: Some(attempt.record),
                    };
                }
                if status.is_success() {
                    self.apply(&attempt);
                    if self.config.transfer_delay.is_zero() {
                        self.lock_until = None;
                        self.push(Event::plain(ExceptionCode::AFT_COMPLETE));
                    } else {
                        self.transfer_done_at = Some(now + self.config.transfer_delay);
                    }
                }
                self.state.current_transfer = Some(attempt);
                self.dirty = true;
                self.interrogate(0, now)
            }
            TransferFunds::Cancel => {
                TransferResponse { buffer_position: 0, status: TransferStatus::CANCELLED, receipt_status: None, record: None }
            }
            TransferFunds::Unsupported(_) => TransferResponse {
                buffer_position: 0,
                status: TransferStatus::UNSUPPORTED_CODE,
                receipt_status: None,
                record: None,
            },
        }
    }

    fn check_transfer(&mut self, r: &TransferRequest) -> TransferStatus {
        let cents = u64::from(self.config.denomination.cents());
        let total = r.cashable_cents + r.restricted_cents + r.nonrestricted_cents;
        let last_success = self.state.history.last().map(|t| t.record.transaction_id.as_str());
        if self.state.registration_status != registration_status::REGISTERED {
            TransferStatus::NOT_REGISTERED
        } else if r.registration_key != self.state.key() {
            TransferStatus::KEY_MISMATCH
        } else if r.asset_number != self.config.asset_number {
            TransferStatus::ASSET_MISMATCH
        } else if last_success == Some(r.transaction_id.as_str()) {
            TransferStatus::NOT_UNIQUE
        } else if std::mem::take(&mut self.refuse_next_aft) || !self.can_transfer() {
            TransferStatus::UNABLE_NOW
        } else if r.flags & FLAG_ONLY_IF_LOCKED != 0 && self.lock_until.is_none() {
            TransferStatus::NOT_LOCKED
        } else if r.transfer_type != TRANSFER_IN_HOUSE_TO_MACHINE {
            TransferStatus::INVALID_FUNCTION
        } else if total == 0 {
            TransferStatus::INVALID_AMOUNT
        } else if total > self.config.transfer_limit_cents {
            TransferStatus::EXCEEDS_LIMIT
        } else if [r.cashable_cents, r.restricted_cents, r.nonrestricted_cents].iter().any(|c| c % cents != 0) {
            TransferStatus::NOT_MULTIPLE
        } else if r.restricted_cents > 0 && self.state.restricted_credits > 0 && r.pool_id != self.state.restricted_pool_id {
            TransferStatus::OTHER_POOL
        } else {
            TransferStatus::FULL
        }
    }

    fn apply(&mut self, stored: &StoredTransfer) {
        let t = &stored.record;
        let cents = u64::from(self.config.denomination.cents());
        let (cashable, restricted) = ((t.cashable_cents + t.nonrestricted_cents) / cents, t.restricted_cents / cents);
        self.state.credits += cashable;
        self.state.restricted_credits += restricted;
        if restricted > 0 {
            self.state.restricted_pool_id = t.pool_id;
        }
        let m = &mut self.state.meters;
        m.electronic_in += cashable + restricted;
        m.aft_restricted_in_cents += t.restricted_cents;
        m.aft_cashable_in_cents += t.cashable_cents + t.nonrestricted_cents;
        self.state.history.push(stored.clone());
        if self.state.history.len() > HISTORY {
            self.state.history.remove(0);
        }
    }

    fn interrogate(&self, index: u8, now: Instant) -> TransferResponse {
        let none = TransferResponse {
            buffer_position: index,
            status: TransferStatus::NO_INFO,
            receipt_status: Some(NO_RECEIPT),
            record: None,
        };
        let h = &self.state.history;
        let found = match index {
            0 => self.state.current_transfer.as_ref(),
            1..=0x7F => h.get(usize::from(index) - 1),
            _ => h.len().checked_sub(usize::from(index - 0x80)).and_then(|i| h.get(i)),
        };
        let Some(t) = found else { return none };
        let pending = index == 0 && self.transfer_done_at.is_some_and(|done| now < done);
        let status = if pending { TransferStatus::PENDING } else { TransferStatus(t.status) };
        let m = &self.state.meters;
        let cumulative = if status.is_success() {
            [Some(m.aft_cashable_in_cents % CENTS_LIMIT), Some(m.aft_restricted_in_cents % CENTS_LIMIT), Some(0)]
        } else {
            [None; 3]
        };
        let record = TransferRecord { cumulative, ..t.record.clone() };
        TransferResponse { buffer_position: index, status, receipt_status: Some(NO_RECEIPT), record: Some(record) }
    }

    // --- the player and the operator ----------------------------------------------------------

    /// Plays one game at the configured bet. The player inserts a bill when out of credits.
    pub fn play(&mut self) -> Result<u64, &'static str> {
        if !self.enabled {
            return Err("disabled by the host (shutdown)");
        }
        if self.lock_until.is_some() {
            return Err("locked for an AFT transfer");
        }
        if self.handpay.is_some() {
            return Err("waiting for a handpay");
        }
        let bet = u64::from(self.config.bet_credits);
        if self.state.credits + self.state.restricted_credits < bet {
            self.insert_bill(self.config.bill_cents.max(u64::from(self.config.denomination.cents()) * bet));
        }
        // Restricted credits are played first (§8).
        let restricted = bet.min(self.state.restricted_credits);
        self.state.restricted_credits -= restricted;
        self.state.credits -= bet - restricted;
        let win = self.paytable.play(bet, &mut self.rng);
        let m = &mut self.state.meters;
        m.coin_in = (m.coin_in + bet) % METER_LIMIT;
        m.restricted_played += restricted;
        m.nonrestricted_played += bet - restricted;
        m.games_played += 1;
        let coin_in = m.coin_in;
        self.games_since_power_up += 1;
        self.games_since_door_closed += 1;
        self.push(Event {
            code: ExceptionCode::GAME_STARTED,
            detail: EventDetail::GameStarted { credits_wagered: bet as u32, coin_in, wager_type: 0, progressive_group: 0 },
        });
        let m = &mut self.state.meters;
        if win > 0 {
            m.games_won += 1;
            m.coin_out = (m.coin_out + win) % METER_LIMIT;
            self.state.credits += win;
        } else {
            m.games_lost += 1;
        }
        self.push(Event { code: ExceptionCode::GAME_ENDED, detail: EventDetail::GameEnded { win } });
        self.dirty = true;
        Ok(win)
    }

    /// A bill goes into the validator: credits and drop go up.
    pub fn insert_bill(&mut self, cents: u64) {
        let credits = cents / u64::from(self.config.denomination.cents());
        self.state.credits += credits;
        let m = &mut self.state.meters;
        m.bills_credits += credits;
        m.drop = (m.drop + credits) % METER_LIMIT;
        self.dirty = true;
        self.push(Event {
            code: ExceptionCode::BILL_ACCEPTED,
            detail: EventDetail::BillAccepted { country: 0, denomination: 0, count: 0 },
        });
    }

    /// A door opens or closes.
    pub fn door(&mut self, door: Door, open: bool) {
        let (opened, closed) = match door {
            Door::Slot => (ExceptionCode::SLOT_DOOR_OPENED, ExceptionCode::SLOT_DOOR_CLOSED),
            Door::Drop => (ExceptionCode::DROP_DOOR_OPENED, ExceptionCode::DROP_DOOR_CLOSED),
            Door::CardCage => (ExceptionCode::CARD_CAGE_OPENED, ExceptionCode::CARD_CAGE_CLOSED),
            Door::Cashbox => (ExceptionCode::CASHBOX_DOOR_OPENED, ExceptionCode::CASHBOX_DOOR_CLOSED),
            Door::Belly => (ExceptionCode::BELLY_DOOR_OPENED, ExceptionCode::BELLY_DOOR_CLOSED),
        };
        if door == Door::Slot {
            if open {
                self.state.meters.slot_door_opened += 1;
                self.dirty = true;
            } else {
                self.games_since_door_closed = 0;
            }
        }
        self.push(Event::plain(if open { opened } else { closed }));
    }

    /// A jackpot locks the machine up for a handpay of `credits` (§7.8).
    pub fn handpay(&mut self, credits: u64) {
        self.handpay = Some(credits);
        self.push(Event::plain(ExceptionCode::HANDPAY_PENDING));
    }

    /// The attendant pays and resets the handpay.
    pub fn handpay_reset(&mut self) {
        if let Some(credits) = self.handpay.take() {
            self.state.meters.jackpot = (self.state.meters.jackpot + credits) % METER_LIMIT;
            self.dirty = true;
            self.push(Event::plain(ExceptionCode::HANDPAY_RESET));
        }
    }

    /// Power off and on: real-time mode and synchronisation are lost; meters are kept.
    pub fn power_cycle(&mut self, now: Instant) {
        self.push(Event::plain(ExceptionCode::POWER_LOST));
        self.real_time = false;
        self.synced = false;
        self.lock_until = None;
        self.last = None;
        self.games_since_power_up = 0;
        self.state.meters.power_reset += 1;
        self.dirty = true;
        self.last_address_seen = now;
        self.push(Event::plain(ExceptionCode::POWER_APPLIED));
    }

    /// Answer the next `n` long polls with busy (§4.1).
    pub fn busy(&mut self, n: u32) {
        self.busy_next = n;
    }

    /// Refuse the next AFT transfer as "unable to transfer now" (0x87).
    pub fn refuse_next_transfer(&mut self) {
        self.refuse_next_aft = true;
    }

    /// Whether the machine is in real-time event mode.
    pub fn real_time(&self) -> bool {
        self.real_time
    }

    /// A summary for the control channel.
    pub fn status(&self) -> serde_json::Value {
        json!({
            "address": self.config.address.value(),
            "meters": self.state.meters,
            "credits": self.state.credits,
            "restricted_credits": self.state.restricted_credits,
            "real_time": self.real_time,
            "synced": self.synced,
            "enabled": self.enabled,
            "locked": self.lock_until.is_some(),
            "registered": self.state.registration_status == registration_status::REGISTERED,
            "queued_exceptions": self.exceptions.len(),
            "transfers": self.state.history.len(),
        })
    }
}
