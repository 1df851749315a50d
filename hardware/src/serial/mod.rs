//! Serial card readers (RDM6300/EM4100, magnetic stripe track 2, configurable lines) on
//! `tokio-serial`.
//!
//! Key decision: one task per reader reads whatever the device delivers, feeds it byte by byte to
//! the pure decoder (`frame`) and the debouncer, and reopens the device every `reopen_interval`
//! while it is missing (a USB adapter unplugged, a pty gone). Serial readers do not report a card
//! leaving: a card counts as removed once no frame has named it for `hold` (an RDM6300 repeats its
//! frame while the tag is in the field; a stripe swipe is inserted, then removed after `hold`).
//! Rejected frames are counted in [`ReaderCounters::rejected_frames`](crate::ReaderCounters) and
//! never yield an id; reads are bounded, so a flood of garbage costs time in proportion and never
//! blocks the runtime.
//!
//! Not here: frame formats (`frame`).

pub mod frame;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tracing::{debug, info, warn};

pub use frame::{Charset, FrameDecoder, LineFormat, Rejection, SerialFormat};

use crate::Error;
use crate::card::CardEvent;
use crate::debounce::Debouncer;
use crate::reader::{CardReader, EVENT_QUEUE, ReaderCounters};

/// Bytes taken from the device per read.
const READ_CHUNK: usize = 256;

/// A serial reader's device, format and timing.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// The reader's name in its events.
    pub name: String,
    /// The device, for example `/dev/ttyUSB0` or `/dev/serial/by-id/…`.
    pub path: PathBuf,
    /// Line speed (RDM6300: 9600). Always 8 data bits, no parity, one stop bit.
    pub baud_rate: u32,
    /// The framing the reader sends.
    pub format: SerialFormat,
    /// A card counts as removed when no frame has named it for this long.
    pub hold: Duration,
    /// How often to try to open the device again while it is missing.
    pub reopen_interval: Duration,
}

impl SerialConfig {
    /// A reader named `name` on `path` sending `format`, at 9600 baud, a hold of 500 ms and a
    /// reopen interval of 500 ms.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, format: SerialFormat) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            baud_rate: 9600,
            format,
            hold: Duration::from_millis(500),
            reopen_interval: Duration::from_millis(500),
        }
    }
}

/// Card readers on a serial line.
pub struct SerialReader;

impl SerialReader {
    /// Starts the reader's task on the current Tokio runtime. The device need not exist yet.
    pub fn spawn(config: SerialConfig) -> CardReader {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let counters = Arc::new(ReaderCounters::default());
        let task = tokio::spawn(run(config, tx, Arc::clone(&counters)));
        CardReader::new(rx, counters, AbortOnDrop(task.abort_handle()))
    }
}

/// Stops the reader's task when the [`CardReader`] is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Task {
    config: SerialConfig,
    events: mpsc::Sender<CardEvent>,
    counters: Arc<ReaderCounters>,
    decoder: FrameDecoder,
    debouncer: Debouncer,
}

async fn run(config: SerialConfig, events: mpsc::Sender<CardEvent>, counters: Arc<ReaderCounters>) {
    let mut task = Task {
        decoder: FrameDecoder::new(&config.format),
        debouncer: Debouncer::new(config.name.clone(), config.hold),
        config,
        events,
        counters,
    };
    let mut missing_logged = false;
    loop {
        match open(&task.config) {
            Ok(port) => {
                info!(reader = %task.config.name, path = %task.config.path.display(), "serial reader open");
                missing_logged = false;
                task.counters.connected();
                task.decoder.reset();
                if task.read_until_gone(port).await.is_err() {
                    return;
                }
                task.debouncer.presence_unknown(std::time::Instant::now(), task.config.hold);
            }
            Err(e) if !missing_logged => {
                warn!(reader = %task.config.name, error = %e, "serial reader unavailable; retrying");
                missing_logged = true;
            }
            Err(_) => {}
        }
        if task.wait(Instant::now() + task.config.reopen_interval).await.is_err() {
            return;
        }
    }
}

fn open(config: &SerialConfig) -> Result<SerialStream, Error> {
    tokio_serial::new(config.path.to_string_lossy(), config.baud_rate)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|source| Error::Serial { path: config.path.display().to_string(), source })
}

/// The consumer is gone: the task ends.
struct Closed;

impl Task {
    /// Reads and decodes until the device fails or ends.
    async fn read_until_gone(&mut self, mut port: SerialStream) -> Result<(), Closed> {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            let removal = self.debouncer.poll_timeout();
            tokio::select! {
                read = port.read(&mut buf) => match read {
                    Ok(0) => {
                        info!(reader = %self.config.name, "serial device closed");
                        return Ok(());
                    }
                    Ok(n) => self.decode(&buf[..n]).await?,
                    Err(e) => {
                        warn!(reader = %self.config.name, error = %e, "serial device lost");
                        return Ok(());
                    }
                },
                () = sleep_until(removal) => {}
                () = self.events.closed() => return Err(Closed),
            }
            // Even under a flood that keeps `read` always ready, removals fire on time.
            self.fire_timeouts().await?;
        }
    }

    async fn decode(&mut self, bytes: &[u8]) -> Result<(), Closed> {
        let now = std::time::Instant::now();
        let mut events = Vec::new();
        for &byte in bytes {
            match self.decoder.push(byte) {
                Some(Ok(card)) => self.debouncer.card_sighted(card, now, &mut events),
                Some(Err(rejection)) => {
                    self.counters.frame_rejected();
                    debug!(reader = %self.config.name, ?rejection, "frame rejected");
                }
                None => {}
            }
        }
        self.send(events).await
    }

    /// Waits until `until`, reporting removals meanwhile.
    async fn wait(&mut self, until: Instant) -> Result<(), Closed> {
        loop {
            let removal = self.debouncer.poll_timeout().map(Instant::from_std).filter(|at| *at < until);
            let woke_for_removal = removal.is_some();
            tokio::select! {
                () = tokio::time::sleep_until(removal.unwrap_or(until)) => {}
                () = self.events.closed() => return Err(Closed),
            }
            self.fire_timeouts().await?;
            if !woke_for_removal {
                return Ok(());
            }
        }
    }

    async fn fire_timeouts(&mut self) -> Result<(), Closed> {
        let mut events = Vec::new();
        self.debouncer.handle_timeout(std::time::Instant::now(), &mut events);
        self.send(events).await
    }

    async fn send(&self, events: Vec<CardEvent>) -> Result<(), Closed> {
        for event in events {
            self.events.send(event).await.map_err(|_| Closed)?;
        }
        Ok(())
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
