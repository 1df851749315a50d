//! Runs a simulated machine on a serial port with tokio: frames host messages, answers them,
//! plays games on a timer, saves meters after every change, and obeys a control channel.
//!
//! Control commands (one per line on `egm-sim`'s stdin, or [`SimHandle::command`]); each is
//! answered `ok ...` or `err ...`:
//!
//! | command | effect |
//! |---|---|
//! | `play N` | play N games now |
//! | `auto MS` / `auto off` | play a game every MS milliseconds / stop |
//! | `insert CENTS` | insert a bill |
//! | `door slot\|drop\|cage\|cashbox\|belly open\|close` | a door event |
//! | `handpay CREDITS` / `handpay reset` | jackpot lockup / attendant reset |
//! | `power-cycle` | AC power lost and applied |
//! | `drop N` | send nothing for the next N answers |
//! | `corrupt N` | damage the CRC of the next N answers |
//! | `slow MS N` | send the next N answers a byte every MS milliseconds |
//! | `silent on\|off` / `silent MS` | no output at all (no answers, no chirps) |
//! | `chirp N` | chirp N times now, polled or not |
//! | `busy N` | answer the next N long polls busy |
//! | `refuse-aft` | refuse the next AFT transfer (status 0x87) |
//! | `status` | `ok {json}` with meters and state |
//! | `quit` | stop |
//!
//! Key decision: transmission faults live here, around the pure [`Egm`], so the model stays
//! honest (it believes it answered) and the host must recover exactly as from a noisy line.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::machine::Egm;
use super::store::Store;
use crate::codec::{Framed, HostFramer};
use crate::session::Door;
use crate::transport::SasPort;
use crate::Error;

/// One control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Play(u32),
    Auto(Option<Duration>),
    Insert(u64),
    Door(Door, bool),
    Handpay(u64),
    HandpayReset,
    PowerCycle,
    Drop(u32),
    Corrupt(u32),
    Slow { gap: Duration, answers: u32 },
    /// `Some(None)`: silent until told otherwise; `Some(Some(d))`: for `d`; `None`: speak.
    Silent(Option<Option<Duration>>),
    Chirp(u32),
    Busy(u32),
    RefuseAft,
    Status,
    Quit,
}

impl Control {
    /// Parses one command line.
    pub fn parse(line: &str) -> Result<Control, Error> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = || Error::Control(line.trim().to_string());
        let num = |i: usize| -> Result<u64, Error> { words.get(i).ok_or_else(bad)?.parse().map_err(|_| bad()) };
        let count = |i: usize| -> Result<u32, Error> { u32::try_from(num(i)?).map_err(|_| bad()) };
        let millis = |i: usize| -> Result<Duration, Error> { num(i).map(Duration::from_millis) };
        let control = match words.as_slice() {
            ["play", _] => Control::Play(count(1)?),
            ["auto", "off"] => Control::Auto(None),
            ["auto", _] => Control::Auto(Some(millis(1)?).filter(|d| !d.is_zero())),
            ["insert", _] => Control::Insert(num(1)?),
            ["door", which, state] => {
                let door = match *which {
                    "slot" => Door::Slot,
                    "drop" => Door::Drop,
                    "cage" => Door::CardCage,
                    "cashbox" => Door::Cashbox,
                    "belly" => Door::Belly,
                    _ => return Err(bad()),
                };
                let open = match *state {
                    "open" => true,
                    "close" => false,
                    _ => return Err(bad()),
                };
                Control::Door(door, open)
            }
            ["handpay", "reset"] => Control::HandpayReset,
            ["handpay", _] => Control::Handpay(num(1)?),
            ["power-cycle"] => Control::PowerCycle,
            ["drop", _] => Control::Drop(count(1)?),
            ["corrupt", _] => Control::Corrupt(count(1)?),
            ["slow", _, _] => Control::Slow { gap: millis(1)?, answers: count(2)? },
            ["silent", "on"] => Control::Silent(Some(None)),
            ["silent", "off"] => Control::Silent(None),
            ["silent", _] => Control::Silent(Some(Some(millis(1)?))),
            ["chirp", _] => Control::Chirp(count(1)?),
            ["busy", _] => Control::Busy(count(1)?),
            ["refuse-aft"] => Control::RefuseAft,
            ["status"] => Control::Status,
            ["quit"] => Control::Quit,
            _ => return Err(bad()),
        };
        Ok(control)
    }
}

/// How the runner behaves on the line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A gap this long ends a partial message (5 ms, §2.3.2).
    pub inter_byte: Duration,
    /// Play a game this often by itself.
    pub auto_play: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { inter_byte: Duration::from_millis(5), auto_play: None }
    }
}

#[derive(Default)]
struct Faults {
    drop: u32,
    corrupt: u32,
    slow: Option<(Duration, u32)>,
    silent: Option<Option<Instant>>,
    chirps: u32,
}

impl Faults {
    fn silent(&mut self, now: Instant) -> bool {
        match self.silent {
            Some(Some(until)) if now >= until => {
                self.silent = None;
                false
            }
            Some(_) => true,
            None => false,
        }
    }
}

type Request = (Control, oneshot::Sender<Result<String, Error>>);

/// Controls a running simulator.
#[derive(Clone)]
pub struct SimHandle {
    requests: mpsc::UnboundedSender<Request>,
}

impl SimHandle {
    /// Sends a command; the answer is the text after `ok`.
    pub async fn send(&self, control: Control) -> Result<String, Error> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((control, reply)).map_err(|_| Error::HostStopped)?;
        answer.await.map_err(|_| Error::HostStopped)?
    }

    /// Parses and sends a command line.
    pub async fn command(&self, line: &str) -> Result<String, Error> {
        self.send(Control::parse(line)?).await
    }
}

/// Starts the simulator on a tokio task.
pub fn spawn(egm: Egm, port: SasPort, store: Option<Store>, options: RunOptions) -> (SimHandle, JoinHandle<Result<(), Error>>) {
    let (requests, control) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(egm, port, store, options, control));
    (SimHandle { requests }, task)
}

/// Runs until `quit` or until every [`SimHandle`] is dropped.
pub async fn run(
    mut egm: Egm,
    mut port: SasPort,
    store: Option<Store>,
    options: RunOptions,
    mut control: mpsc::UnboundedReceiver<Request>,
) -> Result<(), Error> {
    let mut framer = HostFramer::new(options.inter_byte);
    let mut faults = Faults::default();
    let mut auto = options.auto_play;
    let mut next_game = auto.map(|d| Instant::now() + d);
    let mut rx = Vec::with_capacity(256);
    let tick = Duration::from_millis(10);
    // An answer going out slowly, a byte at a time.
    let mut slow = SlowAnswer::default();
    loop {
        let slow_due = slow.due();
        tokio::select! {
            received = port.recv(&mut rx) => {
                received?;
                let now = Instant::now();
                // The host is talking: stop transmitting at once (collision rule, §4.5).
                slow.abort();
                let framed = framer.push(&rx, now);
                rx.clear();
                for item in framed {
                    let answer = match item {
                        Framed::Message(message) => egm.receive(&message, now),
                        Framed::Damaged { first_byte } => egm.refuse_damaged(first_byte),
                    };
                    if let Some(bytes) = answer {
                        send_answer(&mut port, &mut faults, &mut slow, bytes, now).await?;
                    }
                }
            }
            () = slow_due => {
                if let Some(byte) = slow.next(Instant::now()) {
                    port.send_data(&[byte]).await?;
                }
            }
            () = tokio::time::sleep(tick) => {
                let now = Instant::now();
                let wall = chrono::Local::now();
                let date: u32 = wall.format("%m%d%Y").to_string().parse().unwrap_or(0);
                let time: u32 = wall.format("%H%M%S").to_string().parse().unwrap_or(0);
                egm.set_wall_clock(date, time);
                let chirp = egm.tick(now);
                let silent = faults.silent(now);
                if !silent {
                    if let Some(byte) = chirp {
                        port.send_chirp(byte).await?;
                    } else if faults.chirps > 0 {
                        faults.chirps -= 1;
                        port.send_chirp(egm.config().address.value()).await?;
                    }
                }
                if let (Some(every), Some(at)) = (auto, next_game)
                    && now >= at
                {
                    if let Err(reason) = egm.play() {
                        tracing::debug!(reason, "auto play paused");
                    }
                    next_game = Some(at.max(now - every) + every);
                }
            }
            request = control.recv() => {
                let Some((command, reply)) = request else { return Ok(()) };
                let quit = command == Control::Quit;
                let result = apply(&mut egm, &mut faults, &mut auto, command);
                next_game = auto.map(|d| Instant::now() + d);
                let _ = reply.send(result);
                if quit {
                    save(&mut egm, store.as_ref())?;
                    return Ok(());
                }
            }
        }
        save(&mut egm, store.as_ref())?;
    }
}

fn save(egm: &mut Egm, store: Option<&Store>) -> Result<(), Error> {
    if let (Some(state), Some(store)) = (egm.take_changes(), store) {
        store.save(state)?;
    }
    Ok(())
}

fn apply(egm: &mut Egm, faults: &mut Faults, auto: &mut Option<Duration>, command: Control) -> Result<String, Error> {
    match command {
        Control::Play(n) => {
            let mut won = 0;
            for _ in 0..n {
                won += egm.play().map_err(|reason| Error::Control(reason.to_string()))?;
            }
            return Ok(format!("played {n} won {won}"));
        }
        Control::Auto(every) => *auto = every,
        Control::Insert(cents) => egm.insert_bill(cents),
        Control::Door(door, open) => egm.door(door, open),
        Control::Handpay(credits) => egm.handpay(credits),
        Control::HandpayReset => egm.handpay_reset(),
        Control::PowerCycle => egm.power_cycle(Instant::now()),
        Control::Drop(n) => faults.drop = n,
        Control::Corrupt(n) => faults.corrupt = n,
        Control::Slow { gap, answers } => faults.slow = Some((gap, answers)),
        Control::Silent(mode) => faults.silent = mode.map(|d| d.map(|d| Instant::now() + d)),
        Control::Chirp(n) => faults.chirps = n,
        Control::Busy(n) => egm.busy(n),
        Control::RefuseAft => egm.refuse_next_transfer(),
        Control::Status => return Ok(egm.status().to_string()),
        Control::Quit => {}
    }
    Ok(String::new())
}

/// The rest of an answer sent a byte at a time, and when the next byte is due.
#[derive(Default)]
struct SlowAnswer {
    bytes: std::collections::VecDeque<u8>,
    gap: Duration,
    next_at: Option<Instant>,
}

impl SlowAnswer {
    fn due(&self) -> impl std::future::Future<Output = ()> + use<> {
        let at = self.next_at;
        async move {
            match at {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        }
    }

    fn next(&mut self, now: Instant) -> Option<u8> {
        let byte = self.bytes.pop_front();
        self.next_at = (!self.bytes.is_empty()).then(|| now + self.gap);
        byte
    }

    fn abort(&mut self) {
        self.bytes.clear();
        self.next_at = None;
    }
}

async fn send_answer(
    port: &mut SasPort,
    faults: &mut Faults,
    slow: &mut SlowAnswer,
    mut bytes: Vec<u8>,
    now: Instant,
) -> Result<(), Error> {
    if faults.silent(now) {
        return Ok(());
    }
    if faults.drop > 0 {
        faults.drop -= 1;
        return Ok(());
    }
    // Only answers with a CRC are damaged: a one-byte answer has no CRC to get wrong.
    if faults.corrupt > 0 && bytes.len() >= 4 {
        faults.corrupt -= 1;
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x5A;
        }
    }
    match &mut faults.slow {
        Some((gap, answers)) if *answers > 0 => {
            *answers -= 1;
            slow.gap = *gap;
            slow.bytes = bytes.into();
            let first = slow.next(now);
            port.send_data(&[first.expect("answers are never empty")]).await
        }
        _ => port.send_data(&bytes).await,
    }
}
