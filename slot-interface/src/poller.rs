//! The host's SAS link layer for one serial line with machines at several addresses, as a pure
//! state machine: bytes and the time go in (`handle_input`, `handle_timeout`), bytes to send and
//! events come out (`poll_transmit`, `poll_event`), and `poll_timeout` says when to call back.
//!
//! Key decisions:
//! - The line is half duplex: one exchange at a time. Each machine gets a polling slot every
//!   200 ms (40 ms in real-time event mode): a general poll, then at most one queued long poll,
//!   which is also the implied ACK of the general poll's answer (§3.1).
//! - Implied ACK and NACK are about identical polls (§3.1, §3.2): a repeated poll asks the
//!   machine to send its answer again. So a poll is repeated on purpose to recover a lost or
//!   damaged answer (at most three sends in a slot, and again in the next slots while nothing
//!   comes back), and when the next poll would repeat an answered one, the poller first sends
//!   the synchronisation poll to address 0, the "poll to a different gaming machine" that
//!   acknowledges (§3.1). Acknowledging only what arrived means an answer lost on the line is
//!   never acknowledged, so a machine keeps its exception until it gets through. A machine
//!   that stays silent is sent a sync every few seconds anyway, in case it restarted and waits
//!   for one (§3.3), and at once when it chirps (§4.2).
//! - Silence is always a lost answer and is asked for again. In real-time mode an idle machine
//!   answers the event form of "no activity" (`addr FF 00 CRC`), as deployed SAS stacks do; a
//!   machine that reads §12.6 as "stay silent" still keeps its link up through a cheap long poll
//!   sent after a second without any answer.
//!
//! What it does not do: no IO, no clock (time is an `Instant` passed in), no money. Application
//! meaning (start-up sequence, denominations) is the session's job.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::{Event, Expect, HostMessage, LongPoll, ReadPoll, Response};
use crate::frame::{Address, ExceptionCode, SYNC_POLL};
use crate::Error;

/// Timing and retry parameters. The defaults are the SAS values.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Time between polling slots of one machine (200 ms to 5 s, §2.3.3).
    pub poll_interval: Duration,
    /// Slot interval in real-time event mode (40 ms, §12.2).
    pub rte_poll_interval: Duration,
    /// Slot interval for a machine whose link is down.
    pub down_poll_interval: Duration,
    /// How long the machine has to start answering once our message is on the wire (20 ms,
    /// §2.3.1).
    pub response_timeout: Duration,
    /// Longest gap between bytes of one message (5 ms, §2.3.2); also how long the line must be
    /// quiet before an answer that could continue is taken as complete.
    pub inter_byte_timeout: Duration,
    /// Line speed, to know when our own message has left the UART (19 200 baud, 11 bits a byte).
    pub baud: u32,
    /// How many times one poll is sent before giving up (3: the poll and two implied NACKs,
    /// §3.2).
    pub max_sends: u8,
    /// How many busy answers a long poll may get before it is reported as busy (§4.1).
    pub max_busy: u8,
    /// No valid answer for this long and the link is down (30 s, mirroring §4.3).
    pub link_down_after: Duration,
    /// In real-time mode, prove the link with a long poll after this much silence.
    pub liveness_interval: Duration,
    /// A machine not heard for this long is sent a synchronisation poll (at most this often),
    /// in case it restarted and waits for one (§3.3).
    pub resync_after: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            poll_interval: Duration::from_millis(200),
            rte_poll_interval: Duration::from_millis(40),
            down_poll_interval: Duration::from_secs(1),
            response_timeout: Duration::from_millis(20),
            inter_byte_timeout: Duration::from_millis(5),
            baud: 19_200,
            max_sends: 3,
            max_busy: 5,
            link_down_after: Duration::from_secs(30),
            liveness_interval: Duration::from_secs(1),
            resync_after: Duration::from_secs(5),
        }
    }
}

impl PollerConfig {
    /// Time for `bytes` to leave the UART: 11 bits each (start, 8 data, wakeup, stop).
    fn wire_time(&self, bytes: usize) -> Duration {
        Duration::from_micros(bytes as u64 * 11 * 1_000_000 / u64::from(self.baud.max(1)))
    }
}

/// Identifies a submitted long poll; its answer comes back in [`PollerEvent::Completed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

/// The state of the link to one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not heard from yet.
    Unknown,
    /// Answering.
    Up,
    /// Not answering for `link_down_after`.
    Down,
}

/// What the poller reports.
#[derive(Debug)]
pub enum PollerEvent {
    /// A machine answered for the first time, or again after being down.
    LinkUp(Address),
    /// A machine stopped answering; its queued long polls failed with [`Error::LinkDown`].
    LinkDown(Address),
    /// An exception (one byte, [`crate::codec::EventDetail::None`]) or a real-time event.
    Event { address: Address, event: Event },
    /// The machine answered a general poll with a one-byte exception while the poller believed
    /// it was in real-time mode: it left that mode (e.g. after a restart).
    RealTimeModeLost(Address),
    /// A ROM signature arrived (in answer to a general poll, §6.1).
    RomSignature { address: Address, signature: u16 },
    /// The outcome of a submitted long poll: the machine's answer (ACK, data, or a final NACK
    /// or busy), or a link error.
    Completed { id: RequestId, address: Address, result: Result<Response, Error> },
}

struct Pending {
    id: RequestId,
    poll: LongPoll,
    bytes: Vec<u8>,
    /// Sent by the poller itself (liveness); no `Completed` event.
    internal: bool,
    /// Sent in place of the general poll: set-up that must happen before more exceptions are
    /// read (e.g. switching real-time events on, so that they arrive with their data).
    first: bool,
}

struct Machine {
    address: Address,
    link: LinkState,
    real_time: bool,
    next_slot: Instant,
    last_heard: Option<Instant>,
    queue: VecDeque<Pending>,
    busy: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    General,
    /// The long poll at the front of the machine's queue.
    Long,
}

struct Exchange {
    machine: usize,
    kind: Kind,
    expect: Expect,
    bytes: Vec<u8>,
    sends: u8,
    rx: Vec<u8>,
    deadline: Instant,
    /// The answer was bad; waiting for the line to go quiet before retrying.
    failed: bool,
}

/// The host side of one SAS line. See the module documentation.
pub struct Poller {
    config: PollerConfig,
    machines: Vec<Machine>,
    /// The exchange on the line, waiting for its answer.
    waiting: Option<Exchange>,
    /// The next exchange to send, and whether it is a deliberate repeat (an implied NACK).
    ready: Option<(Exchange, bool)>,
    /// Whether the machine with this index is still in its slot (may get one long poll).
    in_slot: Option<usize>,
    last_sent: Vec<u8>,
    /// Whether the last exchange got a valid answer (only then is a repeat acknowledged).
    last_answered: bool,
    last_sync: Option<Instant>,
    /// A machine chirped: synchronise before the next poll.
    sync_wanted: bool,
    events: VecDeque<PollerEvent>,
    next_id: u64,
}

impl Poller {
    /// A poller for the machines at `addresses`, starting at `now`.
    pub fn new(config: PollerConfig, addresses: &[Address], now: Instant) -> Poller {
        let mut machines: Vec<Machine> = Vec::with_capacity(addresses.len());
        for &address in addresses {
            if machines.iter().all(|m| m.address != address) {
                machines.push(Machine {
                    address,
                    link: LinkState::Unknown,
                    real_time: false,
                    next_slot: now,
                    last_heard: None,
                    queue: VecDeque::new(),
                    busy: 0,
                });
            }
        }
        Poller {
            config,
            machines,
            waiting: None,
            ready: None,
            in_slot: None,
            last_sent: Vec::new(),
            last_answered: false,
            last_sync: None,
            sync_wanted: false,
            events: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// The addresses polled, in polling order.
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.machines.iter().map(|m| m.address)
    }

    /// The link state of a machine.
    pub fn link(&self, address: Address) -> Option<LinkState> {
        self.machine(address).map(|i| self.machines[i].link)
    }

    /// Whether the poller treats the machine as being in real-time event mode.
    pub fn real_time(&self, address: Address) -> bool {
        self.machine(address).is_some_and(|i| self.machines[i].real_time)
    }

    /// Queues a long poll. It goes out in the machine's next polling slot.
    pub fn submit(&mut self, address: Address, poll: LongPoll) -> Result<RequestId, Error> {
        let index = self.machine(address).ok_or(Error::UnknownMachine(address))?;
        if self.machines[index].link == LinkState::Down {
            return Err(Error::LinkDown(address));
        }
        let id = self.enqueue(index, poll, false, false)?;
        Ok(id)
    }

    /// Queues a long poll that goes out before the machine's next general poll, ahead of
    /// ordinary long polls: set-up that must happen before more exceptions are read.
    pub fn submit_first(&mut self, address: Address, poll: LongPoll) -> Result<RequestId, Error> {
        let index = self.machine(address).ok_or(Error::UnknownMachine(address))?;
        if self.machines[index].link == LinkState::Down {
            return Err(Error::LinkDown(address));
        }
        self.enqueue(index, poll, false, true)
    }

    /// Bytes received from the line.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        let Some(ex) = self.waiting.as_mut() else {
            // Nobody was asked: a chirp (a machine's address, §4.2) or noise. A chirping machine
            // whose link is down is polled at once.
            for &b in bytes {
                if let Some(i) = self.machines.iter().position(|m| m.address.value() == b && m.link != LinkState::Up) {
                    self.machines[i].next_slot = now;
                    self.sync_wanted = true;
                }
            }
            return;
        };
        ex.rx.extend_from_slice(bytes);
        ex.deadline = now + self.config.inter_byte_timeout;
        if !ex.failed {
            self.try_decode(now, false);
        }
    }

    /// Call when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.waiting.as_ref().is_some_and(|ex| now >= ex.deadline);
        if !due {
            return;
        }
        let Some(ex) = self.waiting.as_ref() else { return };
        if ex.failed || ex.rx.is_empty() {
            self.fail_attempt(now);
        } else {
            self.try_decode(now, true);
            // Still undecided with a quiet line means the answer is incomplete.
            if self.waiting.as_ref().is_some_and(|ex| now >= ex.deadline) {
                self.fail_attempt(now);
            }
        }
    }

    /// The next message to write to the line, if one is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.waiting.is_some() {
            return None;
        }
        if self.ready.is_none() {
            self.ready = self.next_exchange(now).map(|ex| (ex, false));
        }
        let (mut ex, repeat) = self.ready.take()?;
        let m = &self.machines[ex.machine];
        // Machines compare address and command (§3.1): a long poll with the same command, even
        // with other data, would be taken as a repeat.
        let acknowledge = same_poll(&ex.bytes, &self.last_sent) && self.last_answered;
        let silent = m.last_heard.is_none_or(|t| now.saturating_duration_since(t) >= self.config.resync_after);
        let resync = self.sync_wanted
            || (silent && self.last_sync.is_none_or(|t| now.saturating_duration_since(t) >= self.config.resync_after));
        if !repeat && (acknowledge || resync) && self.last_sent != [SYNC_POLL] {
            self.ready = Some((ex, false));
            self.last_sent = vec![SYNC_POLL];
            self.last_sync = Some(now);
            self.sync_wanted = false;
            return Some(vec![SYNC_POLL]);
        }
        ex.sends += 1;
        ex.rx.clear();
        ex.failed = false;
        ex.deadline = now + self.config.wire_time(ex.bytes.len()) + self.config.response_timeout;
        self.last_sent.clone_from(&ex.bytes);
        let bytes = ex.bytes.clone();
        self.waiting = Some(ex);
        Some(bytes)
    }

    /// When to call `handle_timeout` or `poll_transmit` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(ex) = &self.waiting {
            return Some(ex.deadline);
        }
        self.machines.iter().map(|m| m.next_slot).min()
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<PollerEvent> {
        self.events.pop_front()
    }

    // --- internals -------------------------------------------------------------------------

    fn machine(&self, address: Address) -> Option<usize> {
        self.machines.iter().position(|m| m.address == address)
    }

    fn enqueue(&mut self, index: usize, poll: LongPoll, internal: bool, first: bool) -> Result<RequestId, Error> {
        let address = self.machines[index].address;
        let bytes = HostMessage::LongPoll(address, poll.clone()).encode()?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let queue = &mut self.machines[index].queue;
        let at = if first { queue.iter().take_while(|p| p.first).count() } else { queue.len() };
        queue.insert(at, Pending { id, poll, bytes, internal, first });
        Ok(id)
    }

    fn interval(&self, m: &Machine) -> Duration {
        match (m.link, m.real_time) {
            (LinkState::Down, _) => self.config.down_poll_interval,
            (_, true) => self.config.rte_poll_interval,
            (_, false) => self.config.poll_interval,
        }
    }

    /// Picks the next exchange: the long poll of the current slot, or a new slot's general poll.
    fn next_exchange(&mut self, now: Instant) -> Option<Exchange> {
        // The long poll goes in the slot of the general poll it acknowledges, not later.
        if let Some(i) = self.in_slot.take()
            && !self.machines[i].queue.is_empty()
            && now < self.machines[i].next_slot
        {
            return Some(self.long_exchange(i, now));
        }
        let i = (0..self.machines.len())
            .filter(|&i| self.machines[i].next_slot <= now)
            .min_by_key(|&i| self.machines[i].next_slot)?;
        let interval = self.interval(&self.machines[i]);
        let m = &mut self.machines[i];
        m.next_slot = (m.next_slot + interval).max(now);
        if m.link == LinkState::Up
            && m.last_heard.is_some_and(|t| now.saturating_duration_since(t) >= self.config.link_down_after)
        {
            self.link_down(i);
        }
        let m = &self.machines[i];
        if m.real_time
            && m.queue.is_empty()
            && m.last_heard.is_some_and(|t| now.saturating_duration_since(t) >= self.config.liveness_interval)
        {
            // Cannot fail: a read poll always encodes.
            let _ = self.enqueue(i, LongPoll::Read(ReadPoll::CurrentCredits), true, false);
        }
        if self.machines[i].link == LinkState::Up && self.machines[i].queue.front().is_some_and(|p| p.first) {
            return Some(self.long_exchange(i, now));
        }
        let address = self.machines[i].address;
        Some(Exchange {
            machine: i,
            kind: Kind::General,
            expect: if self.machines[i].real_time { Expect::RealTimeGeneralPoll } else { Expect::GeneralPoll },
            bytes: vec![address.general_poll()],
            sends: 0,
            rx: Vec::new(),
            deadline: now,
            failed: false,
        })
    }

    fn long_exchange(&self, i: usize, now: Instant) -> Exchange {
        let front = self.machines[i].queue.front().expect("caller checked the queue");
        Exchange {
            machine: i,
            kind: Kind::Long,
            expect: Expect::for_message(&HostMessage::LongPoll(self.machines[i].address, front.poll.clone()))
                .expect("long polls are answered"),
            bytes: front.bytes.clone(),
            sends: 0,
            rx: Vec::new(),
            deadline: now,
            failed: false,
        }
    }

    fn try_decode(&mut self, now: Instant, quiet: bool) {
        let Some(ex) = self.waiting.as_mut() else { return };
        let address = self.machines[ex.machine].address;
        loop {
            match Response::decode(address, ex.expect, &ex.rx, quiet) {
                Ok(Some((response, _))) => {
                    let ex = self.waiting.take().expect("waiting");
                    self.answered(ex, response, now);
                    return;
                }
                Ok(None) => return,
                Err(Error::Frame { fault: crate::FrameFault::Garbage, skip }) => {
                    // Not the start of an answer (noise, a stray chirp): drop it and keep
                    // listening; the answer may still come.
                    ex.rx.drain(..skip.min(ex.rx.len()));
                    if ex.rx.is_empty() {
                        return;
                    }
                }
                Err(_) => {
                    // Wait for the line to go quiet, then send the poll again (implied NACK).
                    ex.failed = true;
                    ex.deadline = now + self.config.inter_byte_timeout;
                    return;
                }
            }
        }
    }

    fn heard(&mut self, i: usize, now: Instant) {
        let m = &mut self.machines[i];
        m.last_heard = Some(now);
        if m.link != LinkState::Up {
            m.link = LinkState::Up;
            m.real_time = false;
            m.next_slot = m.next_slot.min(now + self.config.poll_interval);
            self.events.push_back(PollerEvent::LinkUp(m.address));
        }
    }

    fn link_down(&mut self, i: usize) {
        let m = &mut self.machines[i];
        m.link = LinkState::Down;
        m.real_time = false;
        m.busy = 0;
        let address = m.address;
        let failed: Vec<Pending> = m.queue.drain(..).collect();
        self.events.push_back(PollerEvent::LinkDown(address));
        for p in failed.into_iter().filter(|p| !p.internal) {
            self.events.push_back(PollerEvent::Completed { id: p.id, address, result: Err(Error::LinkDown(address)) });
        }
        if self.in_slot == Some(i) {
            self.in_slot = None;
        }
    }

    fn answered(&mut self, ex: Exchange, response: Response, now: Instant) {
        self.last_answered = true;
        let i = ex.machine;
        let address = self.machines[i].address;
        self.heard(i, now);
        if let Response::RealTimeEvent(event) = response {
            if event.code != ExceptionCode::NO_ACTIVITY {
                self.events.push_back(PollerEvent::Event { address, event });
            }
            match ex.kind {
                Kind::General => self.after_general(i, now),
                // §12.4: an event answering a long poll means the poll was not processed; send it
                // again (after the sync that acknowledges the event).
                Kind::Long => self.ready = Some((self.long_exchange(i, now), false)),
            }
            return;
        }
        match ex.kind {
            Kind::General => {
                match response {
                    Response::Exception(code) if code.0 == 0 => {}
                    Response::Exception(code) => {
                        if self.machines[i].real_time {
                            self.machines[i].real_time = false;
                            self.events.push_back(PollerEvent::RealTimeModeLost(address));
                        }
                        self.events.push_back(PollerEvent::Event { address, event: Event::plain(code) });
                    }
                    Response::RomSignature(signature) => {
                        self.events.push_back(PollerEvent::RomSignature { address, signature });
                    }
                    _ => {}
                }
                self.after_general(i, now);
            }
            Kind::Long => match response {
                Response::Busy => {
                    let m = &mut self.machines[i];
                    m.busy += 1;
                    if m.busy >= self.config.max_busy {
                        self.finish_long(i, Ok(Response::Busy));
                    }
                }
                Response::Nack if ex.sends < self.config.max_sends => {
                    // Refused, not lost: send it again as a fresh poll.
                    let mut again = self.long_exchange(i, now);
                    again.sends = ex.sends;
                    self.ready = Some((again, false));
                }
                Response::RomSignature(signature) => {
                    self.events.push_back(PollerEvent::RomSignature { address, signature });
                    self.ready = Some((self.long_exchange(i, now), false));
                }
                other => {
                    if let (LongPoll::RealTimeEvents(on), Response::Ack) =
                        (&self.machines[i].queue.front().expect("in flight").poll, &other)
                    {
                        let on = *on;
                        let m = &mut self.machines[i];
                        m.real_time = on;
                        if on {
                            m.next_slot = m.next_slot.min(now + self.config.rte_poll_interval);
                        }
                    }
                    self.finish_long(i, Ok(other));
                }
            },
        }
    }

    fn after_general(&mut self, i: usize, _now: Instant) {
        self.in_slot = Some(i);
    }

    fn finish_long(&mut self, i: usize, result: Result<Response, Error>) {
        let m = &mut self.machines[i];
        m.busy = 0;
        let address = m.address;
        let p = m.queue.pop_front().expect("in flight");
        if !p.internal {
            self.events.push_back(PollerEvent::Completed { id: p.id, address, result });
        }
    }

    /// The answer was missing or bad.
    fn fail_attempt(&mut self, now: Instant) {
        self.last_answered = false;
        let ex = self.waiting.take().expect("waiting");
        if ex.sends < self.config.max_sends {
            self.ready = Some((ex, true));
            return;
        }
        let i = ex.machine;
        let address = self.machines[i].address;
        match ex.kind {
            // A machine that has never answered will not answer its long polls either: fail
            // them rather than keep callers waiting for a link that never came up.
            Kind::General if self.machines[i].link != LinkState::Up => {
                let failed: Vec<Pending> = self.machines[i].queue.drain(..).collect();
                for p in failed.into_iter().filter(|p| !p.internal) {
                    self.events.push_back(PollerEvent::Completed { id: p.id, address, result: Err(Error::NoResponse(address)) });
                }
            }
            Kind::General => {}
            Kind::Long => self.finish_long(i, Err(Error::NoResponse(address))),
        }
        let m = &self.machines[i];
        let silent_since = m.last_heard.unwrap_or(now);
        if m.link == LinkState::Up && now.saturating_duration_since(silent_since) >= self.config.link_down_after {
            self.link_down(i);
        }
    }
}

/// Whether two messages are the same poll as a machine sees it: address and command.
fn same_poll(a: &[u8], b: &[u8]) -> bool {
    a.iter().take(2).eq(b.iter().take(2))
}
