//! The card reader handle the terminal agent holds, whatever reads the cards.
//!
//! Key decision: every reader (PC/SC, serial, injected) runs on its own task or thread and hands its
//! debounced events to one type, [`CardReader`], through a bounded channel; events are never
//! dropped, a slow consumer slows the reader down instead. Dropping the `CardReader` stops the reader.
//!
//! Not here: the readers themselves (`pcsc_reader`, `serial`), debouncing (`debounce`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::Error;
use crate::card::{CardEvent, CardId};
use crate::debounce::Debouncer;

/// How many events may wait for the consumer before the reader waits too.
pub(crate) const EVENT_QUEUE: usize = 64;

/// Counters a reader keeps for monitoring; read them at any time through [`CardReader::counters`].
#[derive(Debug, Default)]
pub struct ReaderCounters {
    rejected_frames: AtomicU64,
    unreadable_cards: AtomicU64,
    connections: AtomicU64,
}

impl ReaderCounters {
    /// Serial frames refused (bad checksum or LRC, bad characters, wrong length, cut short).
    pub fn rejected_frames(&self) -> u64 {
        self.rejected_frames.load(Ordering::Relaxed)
    }

    /// Cards that were present but could not be identified (error status, short answer, no
    /// identifier configured for contact cards).
    pub fn unreadable_cards(&self) -> u64 {
        self.unreadable_cards.load(Ordering::Relaxed)
    }

    /// Times the reader (re)connected to its device or to pcscd; more than one means it recovered.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn frame_rejected(&self) {
        self.rejected_frames.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn card_unreadable(&self) {
        self.unreadable_cards.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running card reader: a stream of debounced [`CardEvent`]s.
pub struct CardReader {
    events: mpsc::Receiver<CardEvent>,
    counters: Arc<ReaderCounters>,
    /// Stops the reader's task or thread when dropped.
    _stop: Box<dyn Send + Sync>,
}

impl CardReader {
    pub(crate) fn new(
        events: mpsc::Receiver<CardEvent>,
        counters: Arc<ReaderCounters>,
        stop: impl Send + Sync + 'static,
    ) -> Self {
        Self { events, counters, _stop: Box::new(stop) }
    }

    /// The next event; `None` once the reader has stopped for good.
    pub async fn next_event(&mut self) -> Option<CardEvent> {
        self.events.recv().await
    }

    /// The reader's counters.
    pub fn counters(&self) -> &ReaderCounters {
        &self.counters
    }
}

impl std::fmt::Debug for CardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardReader").field("counters", &self.counters).finish_non_exhaustive()
    }
}

/// A reader whose cards are inserted and removed by the program: for the demo floor and for tests
/// of other crates, which run without pcscd. It behaves like a physical reader: inserting a card
/// while another is in first removes that one.
pub struct ChannelReader {
    events: mpsc::Sender<CardEvent>,
    debouncer: Debouncer,
}

impl ChannelReader {
    /// A reader named `reader`, and the [`CardReader`] that receives its events.
    pub fn new(reader: impl Into<String>) -> (Self, CardReader) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let this = Self { events: tx, debouncer: Debouncer::new(reader, std::time::Duration::ZERO) };
        (this, CardReader::new(rx, Arc::default(), ()))
    }

    /// Puts `card` into the reader.
    pub async fn insert(&mut self, card: CardId) -> Result<(), Error> {
        let mut events = Vec::new();
        self.debouncer.card_present(card, &mut events);
        self.send(events).await
    }

    /// Takes the card out, if one is in.
    pub async fn remove(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let mut events = Vec::new();
        self.debouncer.card_absent(now);
        self.debouncer.handle_timeout(now, &mut events);
        self.send(events).await
    }

    async fn send(&self, events: Vec<CardEvent>) -> Result<(), Error> {
        for event in events {
            self.events.send(event).await.map_err(|_| Error::ReaderClosed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(text: &str) -> CardId {
        CardId::parse(text).unwrap()
    }

    #[tokio::test]
    async fn channel_reader_behaves_like_a_slot() {
        let (mut slot, mut reader) = ChannelReader::new("demo-1");
        slot.insert(card("AAAA1111")).await.unwrap();
        slot.insert(card("AAAA1111")).await.unwrap();
        slot.insert(card("BBBB2222")).await.unwrap();
        slot.remove().await.unwrap();
        slot.remove().await.unwrap();
        drop(slot);
        let mut seen = Vec::new();
        while let Some(event) = reader.next_event().await {
            seen.push(event);
        }
        let reader_name = "demo-1".to_owned();
        assert_eq!(
            seen,
            [
                CardEvent::Inserted { reader: reader_name.clone(), card: card("AAAA1111") },
                CardEvent::Removed { reader: reader_name.clone(), card: card("AAAA1111") },
                CardEvent::Inserted { reader: reader_name.clone(), card: card("BBBB2222") },
                CardEvent::Removed { reader: reader_name, card: card("BBBB2222") },
            ]
        );
    }

    #[tokio::test]
    async fn channel_reader_reports_a_dropped_consumer() {
        let (mut slot, reader) = ChannelReader::new("demo-1");
        drop(reader);
        assert!(matches!(slot.insert(card("AAAA1111")).await, Err(Error::ReaderClosed)));
    }
}
