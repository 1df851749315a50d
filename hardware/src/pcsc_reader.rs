//! PC/SC card readers through pcscd and the `pcsc` crate.
//!
//! Key decision: one thread per [`PcscReader`] watches all its readers with a single blocking
//! `SCardGetStatusChange` that includes the PnP pseudo-reader, so card and reader changes wake it and
//! nothing polls; its timeout is only the next debounce deadline. `Context::cancel` wakes it to stop.
//! When pcscd goes away the thread re-establishes its context every `retry` interval (pcscd offers no
//! notice of its return); cards seen before count as inserted for `outage_grace`, so a daemon
//! restart or a reader replugged does not end a player's session. A reader that has just appeared
//! (or pcscd that has just come back) reports "empty" before it has looked for a card, so for
//! `settle` such a report does not count as the card leaving. A card is read once per insertion
//! (the reader's event counter tells a swap between two wake-ups).
//!
//! Not here: how a card is identified from its ATR and answers (`apdu`), debouncing (`debounce`).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::Error;
use crate::apdu::Identification;
use crate::card::{CardEvent, CardId};
use crate::debounce::Debouncer;
use crate::reader::{CardReader, EVENT_QUEUE, ReaderCounters};

/// Longest wait in `SCardGetStatusChange`. Only a safety net: a `cancel` that lands between two
/// waits is not remembered by pcsc-lite, so the thread looks at its stop flag at least this often.
const SAFETY_WAKE: Duration = Duration::from_secs(10);

/// What a [`PcscReader`] watches and how it debounces.
#[derive(Debug, Clone)]
pub struct PcscConfig {
    /// Watch only readers whose name starts with one of these; empty: every reader.
    pub readers: Vec<String>,
    /// How cards are identified.
    pub identification: Identification,
    /// A card counts as removed after the reader has reported it absent for this long.
    pub hold: Duration,
    /// While pcscd is unreachable or a reader is unplugged, its card counts as inserted this long.
    pub outage_grace: Duration,
    /// How long a reader that has just appeared may report "empty" before it has looked for the
    /// card (pcscd polls vpcd every 400 ms; USB readers report at once).
    pub settle: Duration,
    /// How often to try to reach pcscd again while it is gone.
    pub retry: Duration,
}

impl Default for PcscConfig {
    fn default() -> Self {
        Self {
            readers: Vec::new(),
            identification: Identification::default(),
            hold: Duration::from_millis(500),
            outage_grace: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            retry: Duration::from_millis(500),
        }
    }
}

/// Card readers on pcscd.
pub struct PcscReader;

impl PcscReader {
    /// Starts watching the configured readers. pcscd need not be running yet.
    pub fn spawn(config: PcscConfig) -> Result<CardReader, Error> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let counters = Arc::new(ReaderCounters::default());
        let control = Arc::new(Control::default());
        let watcher = Watcher {
            config,
            control: Arc::clone(&control),
            events: tx,
            counters: Arc::clone(&counters),
            slots: HashMap::new(),
        };
        std::thread::Builder::new().name("pcsc-reader".into()).spawn(move || watcher.run())?;
        Ok(CardReader::new(rx, counters, Stopper(control)))
    }
}

/// Shared between the watcher thread and the handle that stops it.
#[derive(Default)]
struct Control {
    state: Mutex<ControlState>,
    wake: Condvar,
}

#[derive(Default)]
struct ControlState {
    stop: bool,
    /// The context the thread waits on, so a stop can cancel the wait.
    context: Option<Context>,
}

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Sleeps up to `limit` unless stopped; whether to go on.
    fn pause(&self, limit: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) =
            self.wake.wait_timeout_while(guard, limit, |s| !s.stop).unwrap_or_else(PoisonError::into_inner);
        !guard.stop
    }
}

/// Stops the watcher thread when the [`CardReader`] is dropped.
struct Stopper(Arc<Control>);

impl Drop for Stopper {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.stop = true;
        if let Some(ctx) = &state.context {
            let _ = ctx.cancel();
        }
        self.0.wake.notify_all();
    }
}

/// One watched reader: its debouncer and the event count at which its card was last read.
struct Slot {
    debouncer: Debouncer,
    read_at_count: Option<u32>,
    /// Until then, "empty" may only mean the reader has not looked yet.
    settle_until: Option<Instant>,
}

/// The slot of the reader called `name`, made on first use.
fn slot<'a>(slots: &'a mut HashMap<String, Slot>, name: &str, hold: Duration) -> &'a mut Slot {
    slots.entry(name.to_owned()).or_insert_with(|| Slot {
        debouncer: Debouncer::new(name, hold),
        read_at_count: None,
        settle_until: None,
    })
}

/// Why watching stopped.
enum Ended {
    Stopped,
    Lost(pcsc::Error),
}

struct Watcher {
    config: PcscConfig,
    control: Arc<Control>,
    events: mpsc::Sender<CardEvent>,
    counters: Arc<ReaderCounters>,
    slots: HashMap<String, Slot>,
}

impl Watcher {
    fn run(mut self) {
        let mut outage_logged = false;
        loop {
            if self.control.stopped() {
                return;
            }
            let ctx = match Context::establish(Scope::User) {
                Ok(ctx) => ctx,
                Err(e) => {
                    if !outage_logged {
                        warn!(error = %e, "pcscd unreachable; retrying");
                        outage_logged = true;
                    }
                    if !self.wait_for_retry() {
                        return;
                    }
                    continue;
                }
            };
            {
                let mut state = self.control.lock();
                if state.stop {
                    return;
                }
                state.context = Some(ctx.clone());
            }
            self.counters.connected();
            info!("connected to pcscd");
            let ended = self.watch(&ctx);
            self.control.lock().context = None;
            match ended {
                Ended::Stopped => return,
                Ended::Lost(e) => {
                    warn!(error = %e, "lost pcscd; cards count as inserted for the outage grace time");
                    let now = Instant::now();
                    for slot in self.slots.values_mut() {
                        slot.debouncer.presence_unknown(now, self.config.outage_grace);
                        slot.read_at_count = None;
                    }
                    outage_logged = true;
                    if !self.wait_for_retry() {
                        return;
                    }
                }
            }
        }
    }

    /// Waits `retry` (or less, to report a removal on time); whether to go on.
    fn wait_for_retry(&mut self) -> bool {
        let wait = self.next_deadline().map_or(self.config.retry, |at| {
            at.saturating_duration_since(Instant::now()).min(self.config.retry)
        });
        self.control.pause(wait) && self.fire_timeouts()
    }

    /// Watches readers on `ctx` until pcscd is lost or the reader is stopped.
    fn watch(&mut self, ctx: &Context) -> Ended {
        let mut states = vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)];
        if let Err(e) = self.refresh_readers(ctx, &mut states) {
            return Ended::Lost(e);
        }
        loop {
            let timeout = self
                .next_deadline()
                .map_or(SAFETY_WAKE, |at| at.saturating_duration_since(Instant::now()).min(SAFETY_WAKE));
            match ctx.get_status_change(timeout, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) | Err(pcsc::Error::Cancelled) => {}
                Err(pcsc::Error::UnknownReader) | Err(pcsc::Error::ReaderUnavailable) => {
                    if let Err(e) = self.refresh_readers(ctx, &mut states) {
                        return Ended::Lost(e);
                    }
                    continue;
                }
                Err(e) => return Ended::Lost(e),
            }
            if self.control.stopped() {
                return Ended::Stopped;
            }
            let mut readers_changed = false;
            let mut events = Vec::new();
            for state in &mut states {
                if !state.event_state().contains(State::CHANGED) {
                    continue;
                }
                if state.name() == pcsc::PNP_NOTIFICATION() {
                    readers_changed = true;
                } else {
                    self.reader_changed(ctx, state, &mut events);
                }
                state.sync_current_state();
            }
            if readers_changed && let Err(e) = self.refresh_readers(ctx, &mut states) {
                return Ended::Lost(e);
            }
            if !self.send(events) || !self.fire_timeouts() {
                return Ended::Stopped;
            }
        }
    }

    /// Brings the watched list in line with the readers pcscd lists now.
    fn refresh_readers(&mut self, ctx: &Context, states: &mut Vec<ReaderState>) -> Result<(), pcsc::Error> {
        let listed = match ctx.list_readers_owned() {
            Ok(listed) => listed,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(e),
        };
        let wanted: Vec<CString> = listed.into_iter().filter(|name| self.wanted(name)).collect();
        let now = Instant::now();
        states.retain(|state| {
            let keep = state.name() == pcsc::PNP_NOTIFICATION() || wanted.iter().any(|w| w.as_c_str() == state.name());
            if !keep {
                let name = state.name().to_string_lossy();
                info!(reader = %name, "reader gone");
                if let Some(slot) = self.slots.get_mut(name.as_ref()) {
                    slot.debouncer.presence_unknown(now, self.config.outage_grace);
                    slot.read_at_count = None;
                }
            }
            keep
        });
        for name in wanted {
            if states.iter().all(|s| s.name() != name.as_c_str()) {
                let text = name.to_string_lossy().into_owned();
                info!(reader = %text, "reader found");
                slot(&mut self.slots, &text, self.config.hold).settle_until = Some(now + self.config.settle);
                states.push(ReaderState::new(name, State::UNAWARE));
            }
        }
        Ok(())
    }


    fn wanted(&self, name: &CStr) -> bool {
        let name = name.to_string_lossy();
        self.config.readers.is_empty() || self.config.readers.iter().any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Handles a change of one reader's state.
    fn reader_changed(&mut self, ctx: &Context, state: &ReaderState, events: &mut Vec<CardEvent>) {
        let name = state.name().to_string_lossy().into_owned();
        let now = Instant::now();
        let grace = self.config.outage_grace;
        let slot = slot(&mut self.slots, &name, self.config.hold);
        let flags = state.event_state();
        if flags.intersects(State::UNKNOWN | State::UNAVAILABLE | State::IGNORE) {
            slot.debouncer.presence_unknown(now, grace);
            slot.read_at_count = None;
        } else if flags.contains(State::PRESENT) {
            let count = state.event_count();
            if slot.read_at_count == Some(count) {
                return; // the same insertion; only INUSE or similar changed
            }
            slot.read_at_count = Some(count);
            if flags.contains(State::MUTE) {
                self.counters.card_unreadable();
                warn!(reader = %name, "card does not answer (mute)");
                slot.debouncer.card_absent(now);
                return;
            }
            match read_card(ctx, state.name(), state.atr(), &self.config.identification) {
                Ok(card) => {
                    debug!(reader = %name, card = %card, "card identified");
                    slot.debouncer.card_present(card, events);
                }
                Err(e) => {
                    self.counters.card_unreadable();
                    warn!(reader = %name, error = %e, "card present but not identified");
                    slot.debouncer.card_absent(now);
                }
            }
        } else if flags.contains(State::EMPTY) {
            slot.read_at_count = None;
            let looked = slot.settle_until.filter(|until| *until > now).unwrap_or(now);
            slot.debouncer.card_absent(looked);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.slots.values().filter_map(|s| s.debouncer.poll_timeout()).min()
    }

    /// Reports removals whose time has come; whether to go on.
    fn fire_timeouts(&mut self) -> bool {
        let now = Instant::now();
        let mut events = Vec::new();
        for slot in self.slots.values_mut() {
            slot.debouncer.handle_timeout(now, &mut events);
        }
        self.send(events)
    }

    /// Hands events to the consumer; `false` once it is gone.
    fn send(&self, events: Vec<CardEvent>) -> bool {
        events.into_iter().all(|event| self.events.blocking_send(event).is_ok())
    }
}

/// Connects to the card in `reader` and identifies it.
fn read_card(ctx: &Context, reader: &CStr, atr: &[u8], how: &Identification) -> Result<CardId, Error> {
    let mut card = ctx.connect(reader, ShareMode::Shared, Protocols::ANY)?;
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut id = how.identify(atr, |apdu| Ok(card.transmit(apdu, &mut buffer)?.to_vec()));
    if matches!(id, Err(Error::Pcsc(pcsc::Error::ResetCard))) {
        // Another application reset the card between our connect and our command (seen with two
        // clients on one reader); the card is still there, so reconnect once and ask again.
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)?;
        id = how.identify(atr, |apdu| Ok(card.transmit(apdu, &mut buffer)?.to_vec()));
    }
    let _ = card.disconnect(Disposition::LeaveCard);
    id
}
