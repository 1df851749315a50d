//! A host core and simulated machines on one virtual line, in virtual time: no IO, no sleeps,
//! fully deterministic. For tests that want the whole protocol without a pty, and for the CPU
//! benchmark, which records what the host was given and replays it alone.
//!
//! Key decision: the line is modelled just enough for the protocol: every machine hears every
//! host message (with the wakeup bit on its first byte), a machine's answer reaches the host
//! after the host's message has left the wire plus a fixed answer delay, and faults (dropped or
//! damaged answers, silence) can be set per machine. What it does not model: collisions, baud
//! rate on the answers' bytes, real time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::machine::Egm;
use crate::codec::{Framed, HostFramer};
use crate::session::{HostCore, Output};
use crate::transport::RxByte;

/// Faults to apply to one machine's answers.
#[derive(Debug, Clone, Default)]
pub struct LineFaults {
    /// Drop the next N answers.
    pub drop: u32,
    /// Damage the CRC of the next N answers that have one.
    pub corrupt: u32,
    /// Say nothing at all.
    pub silent: bool,
}

/// One call made into the host core, for replay.
#[derive(Debug, Clone)]
pub enum HostCall {
    Transmit(Instant),
    Input(Instant, Vec<u8>),
    Timeout(Instant),
}

/// The virtual line. See the module documentation.
pub struct Loopback {
    pub host: HostCore,
    pub machines: Vec<Egm>,
    pub faults: Vec<LineFaults>,
    /// Everything the host reported, in order.
    pub outputs: Vec<Output>,
    /// When set, every call into the host is recorded here.
    pub transcript: Option<Vec<HostCall>>,
    /// A machine starts answering this long after the host's message has left the wire.
    pub answer_delay: Duration,
    now: Instant,
    framers: Vec<HostFramer>,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    next_tick: Instant,
}

/// Machines run their timers this often.
const TICK: Duration = Duration::from_millis(10);

impl Loopback {
    /// A line with these machines, starting at `now`.
    pub fn new(host: HostCore, machines: Vec<Egm>, now: Instant) -> Loopback {
        let n = machines.len();
        Loopback {
            host,
            machines,
            faults: vec![LineFaults::default(); n],
            outputs: Vec::new(),
            transcript: None,
            answer_delay: Duration::from_millis(2),
            now,
            framers: (0..n).map(|_| HostFramer::new(Duration::from_millis(5))).collect(),
            in_flight: VecDeque::new(),
            next_tick: now,
        }
    }

    /// Virtual now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Runs the line for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs the line until virtual time `until`.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.transmit();
            let next = [self.host.poll_timeout(), self.in_flight.front().map(|(t, _)| *t), Some(self.next_tick)]
                .into_iter()
                .flatten()
                .min()
                .expect("the tick is always there");
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            if self.in_flight.front().is_some_and(|(t, _)| *t <= now) {
                let (_, bytes) = self.in_flight.pop_front().expect("checked");
                self.record(HostCall::Input(now, bytes.clone()));
                self.host.handle_input(&bytes, now);
            } else if self.next_tick <= now {
                self.next_tick += TICK;
                for k in 0..self.machines.len() {
                    if let Some(chirp) = self.machines[k].tick(now)
                        && !self.faults[k].silent
                    {
                        deliver(&mut self.in_flight, now, vec![chirp]);
                    }
                }
            } else {
                self.record(HostCall::Timeout(now));
                self.host.handle_timeout(now);
            }
            self.collect();
        }
    }

    fn record(&mut self, call: HostCall) {
        if let Some(t) = &mut self.transcript {
            t.push(call);
        }
    }

    fn collect(&mut self) {
        while let Some(output) = self.host.poll_output() {
            self.outputs.push(output);
        }
    }

    fn transmit(&mut self) {
        loop {
            let now = self.now;
            let Some(bytes) = self.host.poll_transmit(now) else { break };
            self.record(HostCall::Transmit(now));
            let rx: Vec<RxByte> =
                bytes.iter().enumerate().map(|(i, &byte)| RxByte { byte, wakeup: Some(i == 0) }).collect();
            // Our message leaves the wire at 11 bits a byte, 19 200 baud.
            let arrives = now + Duration::from_micros(bytes.len() as u64 * 573) + self.answer_delay;
            for k in 0..self.machines.len() {
                for item in self.framers[k].push(&rx, now) {
                    let answer = match item {
                        Framed::Message(message) => self.machines[k].receive(&message, now),
                        Framed::Damaged { first_byte } => self.machines[k].refuse_damaged(first_byte),
                    };
                    let Some(mut answer) = answer else { continue };
                    let faults = &mut self.faults[k];
                    if faults.silent {
                        continue;
                    }
                    if faults.drop > 0 {
                        faults.drop -= 1;
                        continue;
                    }
                    if faults.corrupt > 0 && answer.len() >= 4 {
                        faults.corrupt -= 1;
                        *answer.last_mut().expect("long answer") ^= 0x5A;
                    }
                    deliver(&mut self.in_flight, arrives, answer);
                }
            }
        }
        self.collect();
    }
}

/// Queues bytes for the host in arrival order.
fn deliver(queue: &mut VecDeque<(Instant, Vec<u8>)>, at: Instant, bytes: Vec<u8>) {
    let position = queue.iter().position(|(t, _)| *t > at).unwrap_or(queue.len());
    queue.insert(position, (at, bytes));
}
