//! Per-machine application logic on top of the poller, still sans-IO: when a machine comes up,
//! learn its accounting denomination (0x1F) and switch on real-time events (0x0E); turn
//! exceptions into typed [`Event`]s with wagers and wins in money.
//!
//! Key decision: money is derived from the accounting denomination the machine reports, never
//! from configuration, so a re-configured machine cannot silently skew wagers. Events that
//! arrive before the denomination is known are held, then released in order. A machine that
//! will not do real-time events still yields game events: on a one-byte game start or game end
//! the session reads coin in, coin out, games played, won and lost (0x2F) and reports the
//! change since the last reading (§10.3), so the amounts are exact; a start or end event then
//! covers every game played between two readings.
//!
//! What it does not do: no IO, no clock, no club rules (points belong to the terminal agent).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use club_rules::Money;

use crate::codec::{EventDetail, LongPoll, MachineInfo, ReadPoll, Response};
use crate::frame::{Address, Denomination, ExceptionCode, MeterCode};
use crate::poller::{LinkState, Poller, PollerConfig, PollerEvent, RequestId};
use crate::Error;

/// Which door an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Slot,
    Drop,
    CardCage,
    Cashbox,
    Belly,
}

/// What the terminal agent hears from a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The machine answers and its identity and accounting denomination are known.
    LinkUp { address: Address, info: MachineInfo, denomination: Denomination },
    /// The machine stopped answering (§4.3).
    LinkDown { address: Address },
    /// The machine answers but cannot be used: e.g. its denomination is a fraction of a cent.
    Unsupported { address: Address, reason: String },
    /// A game started: the wager in money and in credits, and the coin in meter after it.
    GameStarted { address: Address, wager: Money, wager_credits: u64, coin_in_credits: u64 },
    /// A game ended with this win (zero for a loss).
    GameEnded { address: Address, win: Money, win_credits: u64 },
    /// A door opened or closed.
    Door { address: Address, door: Door, open: bool },
    /// AC power applied (`on`) or lost.
    Power { address: Address, on: bool },
    /// A handpay is pending, or was reset.
    Handpay { address: Address, pending: bool },
    /// An AFT transfer completed (exception 0x69).
    AftComplete { address: Address },
    /// The machine is locked for AFT (exception 0x6F).
    GameLocked { address: Address },
    /// The machine lost exceptions from its queue (exception 0x70).
    EventsLost { address: Address },
    /// Any other exception, as sent.
    Other { address: Address, code: ExceptionCode, detail: EventDetail },
}

/// Host configuration for one serial line.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The machines on the line.
    pub addresses: Vec<Address>,
    /// Link-layer timing.
    pub poller: PollerConfig,
    /// Ask machines for real-time events (0x0E).
    pub real_time_events: bool,
    /// AFT registration key and timing (used by the async host's free play).
    pub aft: crate::aft::AftSettings,
}

impl HostConfig {
    /// SAS defaults for these machines, with real-time events on.
    pub fn new(addresses: Vec<Address>) -> HostConfig {
        HostConfig { addresses, poller: PollerConfig::default(), real_time_events: true, aft: Default::default() }
    }
}

/// What the core produces besides bytes.
#[derive(Debug)]
pub enum Output {
    /// An event for the terminal agent.
    Event(Event),
    /// The answer to a request submitted with [`HostCore::submit`].
    Reply { id: RequestId, result: Result<Response, Error> },
    /// A ROM signature arrived.
    RomSignature { address: Address, signature: u16 },
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Info,
    RealTime,
    /// Game meters: a baseline (`false`) or a reading whose change is reported (`true`).
    Meters(bool),
}

struct Session {
    address: Address,
    info: Option<(MachineInfo, Denomination)>,
    held: VecDeque<(ExceptionCode, EventDetail)>,
    /// Coin in, coin out, games played and games ended at the last reading, for machines
    /// without real-time events.
    baseline: Option<[u64; 4]>,
}

/// The meters read when a machine gives no real-time events: coin in, coin out, games played,
/// games won, games lost (Table C-7).
const GAME_METERS: [MeterCode; 5] =
    [MeterCode::TOTAL_COIN_IN, MeterCode::TOTAL_COIN_OUT, MeterCode::GAMES_PLAYED, MeterCode::GAMES_WON, MeterCode::GAMES_LOST];

/// At most this many events are held while the denomination is being learnt.
const HELD_EVENTS: usize = 256;

/// The host's sans-IO core for one line: the poller plus a session per machine.
pub struct HostCore {
    poller: Poller,
    real_time_events: bool,
    sessions: Vec<Session>,
    internal: HashMap<RequestId, (usize, Step)>,
    outputs: VecDeque<Output>,
}

impl HostCore {
    /// A core for the configured line, starting at `now`.
    pub fn new(config: HostConfig, now: Instant) -> HostCore {
        let poller = Poller::new(config.poller, &config.addresses, now);
        let sessions = poller
            .addresses()
            .map(|address| Session { address, info: None, held: VecDeque::new(), baseline: None })
            .collect();
        HostCore { poller, real_time_events: config.real_time_events, sessions, internal: HashMap::new(), outputs: VecDeque::new() }
    }

    /// The machine's identity and denomination, once known.
    pub fn machine_info(&self, address: Address) -> Option<(MachineInfo, Denomination)> {
        self.sessions.iter().find(|s| s.address == address).and_then(|s| s.info)
    }

    /// The link state of a machine.
    pub fn link(&self, address: Address) -> Option<LinkState> {
        self.poller.link(address)
    }

    /// Queues a long poll for the caller; the answer comes as [`Output::Reply`].
    pub fn submit(&mut self, address: Address, poll: LongPoll) -> Result<RequestId, Error> {
        self.poller.submit(address, poll)
    }

    /// Bytes from the line.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.poller.handle_input(bytes, now);
        self.drain();
    }

    /// Call when [`HostCore::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.poller.handle_timeout(now);
        self.drain();
    }

    /// The next message for the line.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let bytes = self.poller.poll_transmit(now);
        self.drain();
        bytes
    }

    /// When to call back.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poller.poll_timeout()
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn internal_poll(&mut self, index: usize, poll: LongPoll, step: Step) {
        let address = self.sessions[index].address;
        // Set-up goes before the next general poll, so that exceptions read after it arrive
        // with their real-time data or against a baseline.
        let submitted = match step {
            Step::RealTime | Step::Meters(false) => self.poller.submit_first(address, poll),
            Step::Info | Step::Meters(true) => self.poller.submit(address, poll),
        };
        // Only fails while the link is down, and then the link-up will ask again.
        if let Ok(id) = submitted {
            self.internal.insert(id, (index, step));
        }
    }

    fn game_meters() -> LongPoll {
        LongPoll::SelectedMeters { game: 0, meters: GAME_METERS.to_vec() }
    }

    fn index(&self, address: Address) -> usize {
        self.sessions.iter().position(|s| s.address == address).expect("the poller only reports its own machines")
    }

    fn drain(&mut self) {
        while let Some(event) = self.poller.poll_event() {
            match event {
                PollerEvent::LinkUp(address) => {
                    let i = self.index(address);
                    self.sessions[i].info = None;
                    self.sessions[i].baseline = None;
                    self.internal_poll(i, LongPoll::Read(ReadPoll::MachineInfo), Step::Info);
                    self.start_events(i);
                }
                PollerEvent::LinkDown(address) => {
                    let i = self.index(address);
                    let was_up = self.sessions[i].info.take().is_some();
                    self.sessions[i].held.clear();
                    self.internal.retain(|_, (index, _)| *index != i);
                    if was_up {
                        self.outputs.push_back(Output::Event(Event::LinkDown { address }));
                    }
                }
                PollerEvent::RealTimeModeLost(address) => {
                    let i = self.index(address);
                    self.start_events(i);
                }
                PollerEvent::Event { address, event } => {
                    let i = self.index(address);
                    self.exception(i, event.code, event.detail);
                }
                PollerEvent::RomSignature { address, signature } => {
                    self.outputs.push_back(Output::RomSignature { address, signature });
                }
                PollerEvent::Completed { id, result, .. } => match self.internal.remove(&id) {
                    Some((i, step)) => self.internal_done(i, step, result),
                    None => self.outputs.push_back(Output::Reply { id, result }),
                },
            }
        }
    }

    /// Real-time events if wanted; otherwise (or until they are on) a coin meter baseline.
    fn start_events(&mut self, i: usize) {
        if self.real_time_events {
            self.internal_poll(i, LongPoll::RealTimeEvents(true), Step::RealTime);
        }
        self.internal_poll(i, Self::game_meters(), Step::Meters(false));
    }

    fn internal_done(&mut self, i: usize, step: Step, result: Result<Response, Error>) {
        let address = self.sessions[i].address;
        match (step, result) {
            (Step::Info, Ok(Response::MachineInfo(info))) => match info.accounting_denomination() {
                Ok(denomination) => {
                    self.sessions[i].info = Some((info, denomination));
                    self.outputs.push_back(Output::Event(Event::LinkUp { address, info, denomination }));
                    while let Some((code, detail)) = self.sessions[i].held.pop_front() {
                        self.exception(i, code, detail);
                    }
                }
                Err(e) => {
                    self.sessions[i].held.clear();
                    self.outputs.push_back(Output::Event(Event::Unsupported { address, reason: e.to_string() }));
                }
            },
            (Step::Info, Err(Error::LinkDown(_))) => {}
            (Step::Info, _) => self.internal_poll(i, LongPoll::Read(ReadPoll::MachineInfo), Step::Info),
            (Step::RealTime, _) => {}
            (Step::Meters(report), Ok(Response::SelectedMeters { meters, .. })) => {
                let value = |code| meters.iter().find(|(c, _)| *c == code).map(|(_, v)| *v);
                let values: Option<Vec<u64>> = GAME_METERS.iter().map(|&code| value(code)).collect();
                let Some(&[coin_in, coin_out, played, won, lost]) = values.as_deref() else { return };
                let now = [coin_in, coin_out, played, won + lost];
                let before = self.sessions[i].baseline.replace(now);
                if let (Some(before), true) = (before, report) {
                    let delta = |k: usize| now[k].saturating_sub(before[k]);
                    if delta(2) > 0 {
                        self.game_started(i, delta(0), coin_in);
                    }
                    if delta(3) > 0 {
                        self.game_ended(i, delta(1));
                    }
                }
            }
            (Step::Meters(_), _) => {}
        }
    }

    fn exception(&mut self, i: usize, code: ExceptionCode, detail: EventDetail) {
        let address = self.sessions[i].address;
        if self.sessions[i].info.is_none() {
            if self.sessions[i].held.len() < HELD_EVENTS {
                self.sessions[i].held.push_back((code, detail));
            }
            return;
        }
        let event = match (code, detail) {
            (ExceptionCode::GAME_STARTED, EventDetail::GameStarted { credits_wagered, coin_in, .. }) => {
                self.sessions[i].baseline = None;
                return self.game_started(i, u64::from(credits_wagered), coin_in);
            }
            (ExceptionCode::GAME_ENDED, EventDetail::GameEnded { win }) => {
                self.sessions[i].baseline = None;
                return self.game_ended(i, win);
            }
            (ExceptionCode::GAME_STARTED | ExceptionCode::GAME_ENDED, EventDetail::None) => {
                // No real-time data: learn the amounts from the change of the game meters.
                // Without a baseline (real-time events just stopped) this game cannot be
                // measured; take one, so no wager is ever counted twice.
                let report = self.sessions[i].baseline.is_some();
                self.internal_poll(i, Self::game_meters(), Step::Meters(report));
                return;
            }
            (code, _) if door(code).is_some() => {
                let (door, open) = door(code).expect("checked");
                Event::Door { address, door, open }
            }
            (ExceptionCode::POWER_APPLIED, _) => Event::Power { address, on: true },
            (ExceptionCode::POWER_LOST, _) => Event::Power { address, on: false },
            (ExceptionCode::HANDPAY_PENDING, _) => Event::Handpay { address, pending: true },
            (ExceptionCode::HANDPAY_RESET, _) => Event::Handpay { address, pending: false },
            (ExceptionCode::AFT_COMPLETE, _) => Event::AftComplete { address },
            (ExceptionCode::GAME_LOCKED, _) => Event::GameLocked { address },
            (ExceptionCode::BUFFER_OVERFLOW, _) => Event::EventsLost { address },
            (code, detail) => Event::Other { address, code, detail },
        };
        self.outputs.push_back(Output::Event(event));
    }

    fn money(&mut self, i: usize, credits: u64) -> Option<Money> {
        let (_, denomination) = self.sessions[i].info?;
        match denomination.money(credits) {
            Ok(m) => Some(m),
            Err(e) => {
                let address = self.sessions[i].address;
                self.outputs.push_back(Output::Event(Event::Unsupported { address, reason: e.to_string() }));
                None
            }
        }
    }

    fn game_started(&mut self, i: usize, wager_credits: u64, coin_in_credits: u64) {
        if let Some(wager) = self.money(i, wager_credits) {
            let address = self.sessions[i].address;
            self.outputs.push_back(Output::Event(Event::GameStarted { address, wager, wager_credits, coin_in_credits }));
        }
    }

    fn game_ended(&mut self, i: usize, win_credits: u64) {
        if let Some(win) = self.money(i, win_credits) {
            let address = self.sessions[i].address;
            self.outputs.push_back(Output::Event(Event::GameEnded { address, win, win_credits }));
        }
    }
}

/// The door and whether it opened, for door exceptions (Appendix A).
fn door(code: ExceptionCode) -> Option<(Door, bool)> {
    Some(match code.0 {
        0x11 => (Door::Slot, true),
        0x12 => (Door::Slot, false),
        0x13 => (Door::Drop, true),
        0x14 => (Door::Drop, false),
        0x15 => (Door::CardCage, true),
        0x16 => (Door::CardCage, false),
        0x19 => (Door::Cashbox, true),
        0x1A => (Door::Cashbox, false),
        0x1D => (Door::Belly, true),
        0x1E => (Door::Belly, false),
        _ => return None,
    })
}
