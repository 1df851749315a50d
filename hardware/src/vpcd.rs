//! A virtual club card for vsmartcard's virtual reader (vpcd), and helpers that find, start, stop
//! and restart pcscd: for the tests of this and other crates, and for the demo floor.
//!
//! Key decision: the card is our own small emulator on `std::net::TcpStream` (Debian's `vicc` does
//! not run as packaged). vpcd's protocol: each message is a 2-byte big-endian length and a payload;
//! from the reader, 1-byte controls (`00` power off, `01` power on, `02` reset: no reply; `04` get
//! ATR: reply with the ATR) or a command APDU, answered by the response APDU. A card is present
//! while its client is connected and answers get-ATR. The card reconnects by itself when pcscd
//! restarts, like a physical card that stays in the slot; dropping the [`VirtualCard`] (or
//! [`VirtualCard::remove`]) takes it out.
//!
//! pcscd is found through its pid file, started detached (`setsid --fork pcscd --foreground`, its
//! output appended to `$PCSCD_LOG`, by default `/var/log/pcscd-club.log`), and stopped by its pid.
//! One pcscd and its two virtual readers serve the whole machine: tests that use them are named
//! `pcsc_…` so nextest runs them one at a time.
//!
//! Not here: a real card's file system or cryptography. vpcd listens on 0.0.0.0: never install it on
//! a real terminal.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;
use crate::apdu::GET_UID;

/// Where the card connects to vpcd (see [`connect`] for why not 127.0.0.1).
const VPCD_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);

/// TCP port of vpcd's first virtual reader.
pub const PORT_0: u16 = 35963;
/// TCP port of vpcd's second virtual reader.
pub const PORT_1: u16 = 35964;

/// The ATR a PC/SC reader presents for a contactless storage card (PC/SC part 3).
pub const CONTACTLESS_ATR: [u8; 20] =
    [0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x6A];

/// Answer to a command the card does not know: "instruction not supported" (ISO 7816-4).
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];

const PCSCD: &str = "/usr/sbin/pcscd";
const PCSCD_PID_FILE: &str = "/run/pcscd/pcscd.pid";
const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
const VPCD_CONFIG: &str = "/etc/reader.conf.d/vpcd";
/// How long pcscd may take to start and list its readers.
const PCSCD_START_LIMIT: Duration = Duration::from_secs(20);
/// How long a running pcscd may take to list its readers before it counts as broken.
const PCSCD_READERS_LIMIT: Duration = Duration::from_secs(3);
/// How long pcscd may take to exit after SIGTERM before it gets SIGKILL.
const PCSCD_STOP_LIMIT: Duration = Duration::from_secs(10);
/// How often a condition is re-checked while waiting for it.
const RECHECK: Duration = Duration::from_millis(50);

/// The PC/SC name of the vpcd reader listening on `port`.
pub fn reader_name(port: u16) -> String {
    format!("Virtual PCD 00 {:02}", port.saturating_sub(PORT_0))
}

/// What a virtual card answers.
#[derive(Debug, Clone)]
pub struct CardProfile {
    atr: Vec<u8>,
    answers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CardProfile {
    /// A contactless card with this UID: the PC/SC contactless ATR, and the UID for GET DATA.
    pub fn contactless(uid: &[u8]) -> Self {
        let mut answer = uid.to_vec();
        answer.extend_from_slice(&[0x90, 0x00]);
        Self { atr: CONTACTLESS_ATR.to_vec(), answers: vec![(GET_UID.to_vec(), answer)] }
    }

    /// A card with this ATR that answers nothing yet (add answers with [`CardProfile::answer`]).
    pub fn with_atr(atr: &[u8]) -> Self {
        Self { atr: atr.to_vec(), answers: Vec::new() }
    }

    /// Answers `command` with `response` (data and status bytes, sent as given).
    pub fn answer(mut self, command: &[u8], response: &[u8]) -> Self {
        self.answers.push((command.to_vec(), response.to_vec()));
        self
    }

    fn respond(&self, command: &[u8]) -> &[u8] {
        self.answers.iter().find(|(c, _)| c == command).map_or(&SW_INS_NOT_SUPPORTED, |(_, r)| r)
    }
}

/// A card in a vpcd reader, until it is dropped or removed.
pub struct VirtualCard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    removed: AtomicBool,
    /// The live connection, so `remove` can cut it while the card thread waits on it.
    stream: Mutex<Option<TcpStream>>,
}

impl VirtualCard {
    /// Inserts a contactless card with this UID into the reader on `port`.
    pub fn insert(port: u16, uid: &[u8]) -> Result<Self, Error> {
        Self::insert_profile(port, CardProfile::contactless(uid))
    }

    /// Inserts a card that answers as `profile` says. Returns once vpcd has taken the connection.
    pub fn insert_profile(port: u16, profile: CardProfile) -> Result<Self, Error> {
        let first = connect(port).map_err(|e| Error::Pcscd(format!("vpcd does not listen on port {port}: {e}")))?;
        let shared = Arc::new(Shared { removed: AtomicBool::new(false), stream: Mutex::new(None) });
        let card_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-card-{port}"))
            .spawn(move || serve(port, &profile, &card_shared, first))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Takes the card out of the reader.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        self.shared.removed.store(true, Ordering::SeqCst);
        if let Some(stream) = self.shared.stream.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves the card on `first`, then reconnects whenever vpcd drops it (pcscd restarted) until the
/// card is removed.
fn serve(port: u16, profile: &CardProfile, shared: &Shared, first: TcpStream) {
    let mut next = Some(first);
    while !shared.removed.load(Ordering::SeqCst) {
        let stream = match next.take() {
            Some(stream) => stream,
            None => match connect(port) {
                Ok(stream) => stream,
                Err(_) => {
                    std::thread::sleep(RECHECK);
                    continue;
                }
            },
        };
        let Ok(handle) = stream.try_clone() else { continue };
        *shared.stream.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        // Removed between the check above and publishing the handle: nobody will cut it.
        if shared.removed.load(Ordering::SeqCst) {
            return;
        }
        let _ = answer_reader(stream, profile);
        shared.stream.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// Connects to vpcd on `port`.
///
/// The vpcd ports lie in Linux's ephemeral range: while nothing listens, a connection to
/// 127.0.0.1 can get the same port as its source and connect to itself (TCP simultaneous open,
/// seen here on 35964 after some ten thousand attempts), and even closed, it then blocks pcscd's
/// bind for the TIME_WAIT minute. vpcd listens on all addresses, so the card connects to 127.0.0.2,
/// which the kernel reaches from source 127.0.0.1: source and destination can never be equal.
fn connect(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect((VPCD_HOST, port))
}

/// Answers vpcd's messages until the connection ends.
fn answer_reader(mut stream: TcpStream, profile: &CardProfile) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut message)?;
        let reply = match message.as_slice() {
            [0x00] | [0x01] | [0x02] => continue, // power off, power on, reset: no reply
            [0x04] => &profile.atr[..],
            [_] => continue,
            command => profile.respond(command),
        };
        let mut frame = Vec::with_capacity(2 + reply.len());
        frame.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        frame.extend_from_slice(reply);
        stream.write_all(&frame)?;
    }
}

/// The pid of the running pcscd, from its pid file, if that process is alive.
pub fn pcscd_pid() -> Option<u32> {
    let text = std::fs::read(PCSCD_PID_FILE).ok()?;
    // pcscd pads its pid file with a NUL.
    let digits: String = text.iter().filter(|b| b.is_ascii_digit()).map(|&b| char::from(b)).collect();
    let pid: u32 = digits.parse().ok()?;
    is_alive(pid).then_some(pid)
}

/// Whether `pid` is a live (not zombie) process.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Why pcscd with vpcd cannot be used on this machine, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    if !Path::new(PCSCD).exists() {
        Some("pcscd is not installed (Debian package pcscd)")
    } else if !Path::new(VPCD_CONFIG).exists() {
        Some("vsmartcard's virtual reader is not installed (Debian package vsmartcard-vpcd)")
    } else {
        None
    }
}

/// Makes sure pcscd runs and lists both virtual readers: starts it if none runs, restarts it if
/// the one running does not list them (its virtual reader failed to start).
pub fn ensure_pcscd() -> Result<(), Error> {
    if let Some(why) = unavailable() {
        return Err(Error::Pcscd(why.into()));
    }
    if pcscd_pid().is_none() {
        return start_pcscd();
    }
    if wait_for_readers(PCSCD_READERS_LIMIT).is_ok() {
        return Ok(());
    }
    restart_pcscd()
}

/// Starts pcscd (detached, in the foreground mode that logs to a file) and waits for its readers.
pub fn start_pcscd() -> Result<(), Error> {
    if pcscd_pid().is_some() {
        return Err(Error::Pcscd("already running".into()));
    }
    // A pid file or socket left by a killed daemon stops a new one from starting.
    let _ = std::fs::remove_file(PCSCD_PID_FILE);
    let _ = std::fs::remove_file(PCSCD_SOCKET);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pcscd_log())
        .map_err(|e| Error::Pcscd(format!("cannot open its log {}: {e}", pcscd_log().display())))?;
    let status = Command::new("setsid")
        .args(["--fork", PCSCD, "--foreground"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .map_err(|e| Error::Pcscd(format!("cannot run setsid: {e}")))?;
    if !status.success() {
        return Err(Error::Pcscd(format!("setsid pcscd exited with {status}")));
    }
    wait_for_readers(PCSCD_START_LIMIT)
}

/// Stops pcscd: SIGTERM, then SIGKILL if it has not exited in time. Does nothing if none runs.
pub fn stop_pcscd() -> Result<(), Error> {
    let Some(pid) = pcscd_pid() else { return Ok(()) };
    signal(pid, "-TERM")?;
    if wait_until(PCSCD_STOP_LIMIT, || !is_alive(pid)) {
        return Ok(());
    }
    signal(pid, "-KILL")?;
    if wait_until(PCSCD_STOP_LIMIT, || !is_alive(pid)) {
        return Ok(());
    }
    Err(Error::Pcscd(format!("pid {pid} survived SIGKILL")))
}

/// Stops pcscd and starts it again, as after a crash or an update.
pub fn restart_pcscd() -> Result<(), Error> {
    stop_pcscd()?;
    start_pcscd()
}

/// For tests: `true` when pcscd with both virtual readers is ready. Otherwise prints
/// `skipped: <why>` and returns `false`, or panics when `CLUB_REQUIRE_ALL=1` (CI) is set.
pub fn ready_or_skip() -> bool {
    let why = match ensure_pcscd() {
        Ok(()) => return true,
        Err(e) => e.to_string(),
    };
    if std::env::var_os("CLUB_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("CLUB_REQUIRE_ALL=1 and the PC/SC test set-up is missing: {why}");
    }
    println!("skipped: {why}");
    false
}

/// Waits until `reader` reports no card, so a test does not start with a card another one left
/// behind.
pub fn wait_until_empty(reader: &str, limit: Duration) -> Result<(), Error> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let name = CString::new(reader).map_err(|_| Error::Pcscd("reader name contains NUL".into()))?;
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(left, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Err(Error::Pcscd(format!("{reader} still holds a card"))),
            Err(e) => return Err(e.into()),
        }
        if states[0].event_state().contains(pcsc::State::EMPTY) {
            return Ok(());
        }
        states[0].sync_current_state();
    }
}

fn pcscd_log() -> PathBuf {
    std::env::var_os("PCSCD_LOG").map_or_else(|| PathBuf::from("/var/log/pcscd-club.log"), PathBuf::from)
}

fn signal(pid: u32, which: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .map_err(|e| Error::Pcscd(format!("cannot run kill: {e}")))?;
    // A failure because the process just exited is fine: the caller checks for that.
    if !status.success() && is_alive(pid) {
        return Err(Error::Pcscd(format!("kill {which} {pid} failed: {status}")));
    }
    Ok(())
}

/// Waits until pcscd answers and lists both virtual readers.
fn wait_for_readers(limit: Duration) -> Result<(), Error> {
    let wanted = [reader_name(PORT_0), reader_name(PORT_1)];
    let listed = || -> bool {
        let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) else { return false };
        let Ok(readers) = ctx.list_readers_owned() else { return false };
        wanted.iter().all(|w| readers.iter().any(|r| r.to_bytes() == w.as_bytes()))
    };
    if wait_until(limit, listed) {
        Ok(())
    } else {
        Err(Error::Pcscd(format!("did not list {wanted:?} within {limit:?}; see {}", pcscd_log().display())))
    }
}

/// Re-checks `condition` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(RECHECK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener where the card connects, on a port other than the real vpcd's.
    fn fake_vpcd() -> (std::net::TcpListener, u16) {
        loop {
            let listener = std::net::TcpListener::bind((VPCD_HOST, 0)).unwrap();
            let port = listener.local_addr().unwrap().port();
            if !(PORT_0..=PORT_1).contains(&port) {
                return (listener, port);
            }
        }
    }

    #[test]
    fn reader_names_follow_the_ports() {
        assert_eq!(reader_name(PORT_0), "Virtual PCD 00 00");
        assert_eq!(reader_name(PORT_1), "Virtual PCD 00 01");
    }

    #[test]
    fn profile_answers_known_commands_and_refuses_others() {
        let profile = CardProfile::contactless(&[1, 2, 3, 4]);
        assert_eq!(profile.respond(&GET_UID), [1, 2, 3, 4, 0x90, 0x00]);
        assert_eq!(profile.respond(&[0x00, 0xA4, 0x04, 0x00]), SW_INS_NOT_SUPPORTED);
    }

    /// The card's side of the vpcd protocol, against a fake vpcd on a local socket.
    #[test]
    fn card_speaks_the_vpcd_protocol() {
        let (listener, port) = fake_vpcd();
        let card = VirtualCard::insert(port, &[0x04, 0xA1, 0xB2, 0xC3]).unwrap();
        let (mut vpcd, _) = listener.accept().unwrap();
        let mut ask = |payload: &[u8]| -> Vec<u8> {
            let mut msg = (payload.len() as u16).to_be_bytes().to_vec();
            msg.extend_from_slice(payload);
            vpcd.write_all(&msg).unwrap();
            let mut len = [0u8; 2];
            vpcd.read_exact(&mut len).unwrap();
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            vpcd.read_exact(&mut reply).unwrap();
            reply
        };
        assert_eq!(ask(&[0x04]), CONTACTLESS_ATR);
        // power on gets no reply: the next reply must be the APDU's
        let mut power_on = vec![0x00, 0x01, 0x01];
        power_on.extend_from_slice(&[0x00, 0x05]);
        power_on.extend_from_slice(&GET_UID);
        vpcd.write_all(&power_on).unwrap();
        let mut reply = [0u8; 8];
        vpcd.read_exact(&mut reply).unwrap();
        assert_eq!(reply, [0x00, 0x06, 0x04, 0xA1, 0xB2, 0xC3, 0x90, 0x00]);
        card.remove();
        let mut rest = Vec::new();
        assert_eq!(vpcd.read_to_end(&mut rest).unwrap(), 0, "removing the card closes the connection");
    }

    #[test]
    fn card_reconnects_when_the_reader_drops_it() {
        let (listener, port) = fake_vpcd();
        let _card = VirtualCard::insert(port, &[0x04, 0xA1, 0xB2, 0xC3]).unwrap();
        let (first, _) = listener.accept().unwrap();
        drop(first);
        let (mut second, _) = listener.accept().unwrap();
        second.write_all(&[0x00, 0x01, 0x04]).unwrap();
        let mut reply = [0u8; 22];
        second.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[2..], CONTACTLESS_ATR);
    }

    #[test]
    fn inserting_into_a_closed_port_is_a_clear_error() {
        let port = {
            let (_listener, port) = fake_vpcd();
            port
        };
        assert!(matches!(VirtualCard::insert(port, &[1, 2, 3, 4]), Err(Error::Pcscd(_))));
    }
}
