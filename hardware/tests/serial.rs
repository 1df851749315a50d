//! Serial readers over socat pty pairs: the reader opens one end by path, the test writes to the
//! other, and stops and restarts socat to make the device vanish and return.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{WAIT, next, until};
use hardware::serial::frame::{rdm6300_frame, track2_frame};
use hardware::serial::{Charset, LineFormat};
use hardware::{CardEvent, CardId, CardReader, SerialConfig, SerialFormat, SerialReader};
use tokio::time::timeout;

const TAG_A: [u8; 5] = [0x0F, 0x00, 0x28, 0x5A, 0x3C];
const ID_A: &str = "0F00285A3C";
const TAG_B: [u8; 5] = [0x11, 0x22, 0x33, 0x44, 0x55];
const ID_B: &str = "1122334455";
const HOLD: Duration = Duration::from_millis(300);
const NAME: &str = "slot-7";

/// `true` when socat is installed; otherwise prints `skipped: …`, or panics under
/// `CLUB_REQUIRE_ALL=1`.
fn socat_or_skip() -> bool {
    let found = Command::new("socat").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var_os("CLUB_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("CLUB_REQUIRE_ALL=1 and socat is not installed");
    }
    println!("skipped: socat is not installed (Debian package socat)");
    false
}

/// A socat pty pair: `reader` is the device the card reader opens, `writer` the test's end.
struct PtyPair {
    child: Option<Child>,
    reader: PathBuf,
    writer: PathBuf,
}

impl PtyPair {
    fn start(dir: &Path) -> Self {
        let mut pair = Self { child: None, reader: dir.join("reader"), writer: dir.join("writer") };
        pair.restart();
        pair
    }

    /// (Re)starts socat on the same paths and waits until both exist.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "socat still runs");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", self.reader.display()))
            .arg(format!("pty,raw,echo=0,link={}", self.writer.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !(self.reader.exists() && self.writer.exists()) {
            assert!(Instant::now() < deadline, "socat made no ptys");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops socat: both ptys vanish.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // socat killed outright leaves its links behind, dangling.
        let _ = std::fs::remove_file(&self.reader);
        let _ = std::fs::remove_file(&self.writer);
    }

    fn open_writer(&self) -> std::fs::File {
        std::fs::OpenOptions::new().write(true).open(&self.writer).expect("the writer end opens")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(pair: &PtyPair, format: SerialFormat) -> SerialConfig {
    SerialConfig {
        hold: HOLD,
        reopen_interval: Duration::from_millis(100),
        ..SerialConfig::new(NAME, &pair.reader, format)
    }
}

fn inserted(id: &str) -> CardEvent {
    CardEvent::Inserted { reader: NAME.into(), card: CardId::parse(id).unwrap() }
}

fn removed(id: &str) -> CardEvent {
    CardEvent::Removed { reader: NAME.into(), card: CardId::parse(id).unwrap() }
}

/// A reader on one end of a pty pair, with the device open.
struct Rig {
    reader: CardReader,
    pair: PtyPair,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `None` when the test is skipped.
    async fn start(format: SerialFormat) -> Option<Self> {
        if !socat_or_skip() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pair = PtyPair::start(dir.path());
        let reader = SerialReader::spawn(config(&pair, format));
        until("the reader has opened the device", || reader.counters().connections() == 1).await;
        Some(Self { reader, pair, _dir: dir })
    }
}

#[tokio::test]
async fn serial_em4100_tag_is_inserted_while_its_frames_repeat_and_removed_after_silence() {
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Em4100).await else { return };
    let mut out = pair.open_writer();
    let started = Instant::now();
    for _ in 0..3 {
        out.write_all(&rdm6300_frame(TAG_A)).unwrap();
    }
    assert_eq!(next(&mut reader).await, inserted(ID_A));
    assert_eq!(next(&mut reader).await, removed(ID_A));
    assert!(started.elapsed() >= HOLD, "removed before the hold time");
    assert_eq!(reader.counters().rejected_frames(), 0);
}

#[tokio::test]
async fn serial_corrupted_frames_are_rejected_counted_and_never_an_id() {
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Em4100).await else { return };
    let mut out = pair.open_writer();
    let good = rdm6300_frame(TAG_A).to_vec();
    let mut bad_checksum = good.clone();
    bad_checksum[12] = b'2';
    let mut bad_digit = good.clone();
    bad_digit[4] = b'1';
    let mut cut_short = good.clone();
    cut_short.remove(6);
    for frame in [&bad_checksum, &bad_digit, &cut_short, &good] {
        out.write_all(frame).unwrap();
    }
    assert_eq!(next(&mut reader).await, inserted(ID_A), "the first event is the good frame's");
    assert_eq!(reader.counters().rejected_frames(), 3);
}

#[tokio::test]
async fn serial_frames_split_across_reads_decode() {
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Em4100).await else { return };
    let mut out = pair.open_writer();
    // Byte by byte with pauses, so the reader gets the frame in many reads.
    for byte in rdm6300_frame(TAG_B) {
        out.write_all(&[byte]).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(next(&mut reader).await, inserted(ID_B));
}

#[tokio::test]
async fn serial_device_vanishing_and_returning_is_reopened() {
    if !socat_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pair = PtyPair::start(dir.path());
    pair.stop();
    // The reader starts while the device is missing, and opens it once it appears.
    let mut reader = SerialReader::spawn(config(&pair, SerialFormat::Em4100));
    pair.restart();
    until("the reader has opened the device", || reader.counters().connections() == 1).await;
    pair.open_writer().write_all(&rdm6300_frame(TAG_A)).unwrap();
    assert_eq!(next(&mut reader).await, inserted(ID_A));

    pair.stop();
    assert_eq!(next(&mut reader).await, removed(ID_A));
    pair.restart();
    until("the reader has reopened the device", || reader.counters().connections() == 2).await;
    pair.open_writer().write_all(&rdm6300_frame(TAG_B)).unwrap();
    assert_eq!(next(&mut reader).await, inserted(ID_B));
}

#[tokio::test]
async fn serial_garbage_flood_neither_starves_nor_crashes_the_reader() {
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Em4100).await else { return };

    // Another task on this (single-threaded) runtime, which a starving reader would stop.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(5));
            loop {
                every.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    // 4 MiB of pseudo-random bytes with a good frame after every 4 KiB, from a plain thread.
    let mut out = pair.open_writer();
    let flood = std::thread::spawn(move || {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut chunk = vec![0u8; 4096];
        for _ in 0..1024 {
            for b in &mut chunk {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            out.write_all(&chunk).unwrap();
            out.write_all(&rdm6300_frame(TAG_A)).unwrap();
        }
        out
    });
    let started = tokio::time::Instant::now();
    let ticks_before = ticks.load(Ordering::Relaxed);
    let mut events = Vec::new();
    while !flood.is_finished() {
        if let Ok(Some(event)) = timeout(Duration::from_millis(50), reader.next_event()).await {
            events.push(event);
        }
    }
    let flood_time = started.elapsed();
    let ticked = ticks.load(Ordering::Relaxed) - ticks_before;
    let mut out = flood.join().unwrap();

    assert!(events.iter().all(|e| e.card().expose() == ID_A), "only the good id: {events:?}");
    assert_eq!(events.first(), Some(&inserted(ID_A)));
    assert!(reader.counters().rejected_frames() > 0);
    // The ticker ran through the flood (at a quarter of its rate at least).
    let expected = flood_time.as_millis() as u64 / 5;
    assert!(ticked * 4 >= expected, "ticker ran {ticked} times in {flood_time:?}");
    // And the reader still reads.
    out.write_all(&rdm6300_frame(TAG_B)).unwrap();
    let tail = [next(&mut reader).await, next(&mut reader).await];
    assert!(tail.contains(&inserted(ID_B)), "{tail:?}");
    ticker.abort();
    eprintln!("flood: 4 MiB in {flood_time:?}, {} frames rejected, ticker ran {ticked} times", reader.counters().rejected_frames());
}

#[tokio::test]
async fn serial_track2_swipe_with_lrc() {
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Track2 { lrc: true }).await else { return };
    let mut swipe = track2_frame("6012345678901234=2912101123456789", true);
    swipe.extend(b"\r\n");
    let mut wrong = swipe.clone();
    wrong[3] = b'9';
    let mut out = pair.open_writer();
    out.write_all(&wrong).unwrap();
    out.write_all(&swipe).unwrap();
    assert_eq!(next(&mut reader).await, inserted("6012345678901234"));
    assert_eq!(reader.counters().rejected_frames(), 1);
    assert_eq!(next(&mut reader).await, removed("6012345678901234"), "a swipe is over after the hold time");
}

#[tokio::test]
async fn serial_line_format_reader() {
    let format = LineFormat::new(b"", b"\r\n", Charset::Decimal, 10, 10).unwrap();
    let Some(Rig { mut reader, pair, _dir }) = Rig::start(SerialFormat::Line(format)).await else { return };
    pair.open_writer().write_all(b"12345\r\n0004718592\r\n").unwrap();
    assert_eq!(next(&mut reader).await, inserted("0004718592"));
    assert_eq!(reader.counters().rejected_frames(), 1);
}
