//! Debouncing of one reader's card presence, as a pure state machine.
//!
//! Key decision: an arrival is reported at once (a player waits for the greeting), a departure only
//! after the card has stayed away for a hold time, so a contactless card wobbling at the edge of the
//! field, a serial reader that repeats its frame while a tag is near, or a short service outage do
//! not end a session. A different card seen while one is held replaces it at once (removed, then
//! inserted). Time is an input: callers pass `now` and ask [`Debouncer::poll_timeout`] when to call
//! back.
//!
//! Not here: reading cards, clocks, channels.

use std::time::{Duration, Instant};

use crate::card::{CardEvent, CardId};

/// Debounces the presence of cards in one reader.
#[derive(Debug)]
pub struct Debouncer {
    reader: String,
    hold: Duration,
    present: Option<CardId>,
    /// When the present card counts as removed, unless it is seen again before.
    removal_at: Option<Instant>,
}

impl Debouncer {
    /// A debouncer for the reader named `reader` that reports a removal after `hold` without the card.
    pub fn new(reader: impl Into<String>, hold: Duration) -> Self {
        Self { reader: reader.into(), hold, present: None, removal_at: None }
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card currently reported as inserted.
    pub fn present(&self) -> Option<&CardId> {
        self.present.as_ref()
    }

    /// The reader sees `card` and will report when it leaves (a PC/SC reader).
    pub fn card_present(&mut self, card: CardId, events: &mut Vec<CardEvent>) {
        self.removal_at = None;
        if self.present.as_ref() == Some(&card) {
            return;
        }
        if let Some(old) = self.present.take() {
            events.push(CardEvent::Removed { reader: self.reader.clone(), card: old });
        }
        events.push(CardEvent::Inserted { reader: self.reader.clone(), card: card.clone() });
        self.present = Some(card);
    }

    /// The reader reports no card at `now`: the card counts as removed after the hold time unless
    /// it is seen again. An earlier pending removal is kept.
    pub fn card_absent(&mut self, now: Instant) {
        self.remove_by(now + self.hold);
    }

    /// The reader can no longer tell whether the card is there (pcscd gone, reader unplugged, serial
    /// device vanished): the card counts as removed after `grace` unless it is seen again. An
    /// earlier pending removal is kept.
    pub fn presence_unknown(&mut self, now: Instant, grace: Duration) {
        self.remove_by(now + grace);
    }

    fn remove_by(&mut self, at: Instant) {
        if self.present.is_some() {
            self.removal_at = Some(self.removal_at.map_or(at, |pending| pending.min(at)));
        }
    }

    /// The reader saw `card` once at `now` and will not report its departure (a serial reader
    /// repeating a frame, a magnetic stripe swipe): it counts as removed after the hold time
    /// without another sighting.
    pub fn card_sighted(&mut self, card: CardId, now: Instant, events: &mut Vec<CardEvent>) {
        self.card_present(card, events);
        self.removal_at = Some(now + self.hold);
    }

    /// When [`Debouncer::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.removal_at
    }

    /// Reports the removal whose hold time has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant, events: &mut Vec<CardEvent>) {
        if self.removal_at.is_some_and(|at| now >= at) {
            self.removal_at = None;
            if let Some(card) = self.present.take() {
                events.push(CardEvent::Removed { reader: self.reader.clone(), card });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_millis(500);

    fn card(text: &str) -> CardId {
        CardId::parse(text).unwrap()
    }

    fn ins(text: &str) -> CardEvent {
        CardEvent::Inserted { reader: "r".into(), card: card(text) }
    }

    fn rem(text: &str) -> CardEvent {
        CardEvent::Removed { reader: "r".into(), card: card(text) }
    }

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// A debouncer that has just reported card AAAA inserted: (now, debouncer, events so far).
    fn holding_aaaa() -> (Instant, Debouncer, Vec<CardEvent>) {
        let mut d = Debouncer::new("r", HOLD);
        let mut ev = Vec::new();
        d.card_present(card("AAAA"), &mut ev);
        (Instant::now(), d, ev)
    }

    #[test]
    fn arrival_is_reported_at_once() {
        let (_, d, ev) = holding_aaaa();
        assert_eq!(ev, [ins("AAAA")]);
        assert_eq!(d.poll_timeout(), None, "a present card has no removal pending");
    }

    #[test]
    fn departure_is_reported_after_the_hold_time() {
        let (t, mut d, mut ev) = holding_aaaa();
        d.card_absent(t);
        assert_eq!(d.poll_timeout(), Some(ms(t, 500)));
        d.handle_timeout(ms(t, 499), &mut ev);
        assert_eq!(ev, [ins("AAAA")]);
        d.handle_timeout(ms(t, 500), &mut ev);
        assert_eq!(ev, [ins("AAAA"), rem("AAAA")]);
        assert_eq!(d.present(), None);
    }

    #[test]
    fn a_short_absence_is_swallowed() {
        let (t, mut d, mut ev) = holding_aaaa();
        d.card_absent(t);
        d.card_present(card("AAAA"), &mut ev);
        d.handle_timeout(ms(t, 600), &mut ev);
        assert_eq!(ev, [ins("AAAA")]);
    }

    #[test]
    fn a_second_absence_does_not_postpone_the_first() {
        let (t, mut d, _) = holding_aaaa();
        d.card_absent(t);
        d.card_absent(ms(t, 400));
        assert_eq!(d.poll_timeout(), Some(ms(t, 500)));
    }

    #[test]
    fn another_card_replaces_the_held_one_at_once() {
        let (t, mut d, mut ev) = holding_aaaa();
        d.card_absent(t);
        d.card_present(card("BBBB"), &mut ev);
        assert_eq!(ev, [ins("AAAA"), rem("AAAA"), ins("BBBB")]);
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn repeated_sightings_keep_the_card_and_silence_removes_it() {
        let t = Instant::now();
        let mut d = Debouncer::new("r", HOLD);
        let mut ev = Vec::new();
        for i in 0..5 {
            d.card_sighted(card("0123456789"), ms(t, i * 200), &mut ev);
            d.handle_timeout(ms(t, i * 200 + 199), &mut ev);
        }
        assert_eq!(ev, [ins("0123456789")]);
        d.handle_timeout(ms(t, 4 * 200 + 500), &mut ev);
        assert_eq!(ev, [ins("0123456789"), rem("0123456789")]);
    }

    #[test]
    fn unknown_presence_waits_for_the_grace_time() {
        let (t, mut d, mut ev) = holding_aaaa();
        d.presence_unknown(t, Duration::from_secs(5));
        d.handle_timeout(ms(t, 4_999), &mut ev);
        assert_eq!(ev, [ins("AAAA")]);
        d.card_present(card("AAAA"), &mut ev);
        d.handle_timeout(ms(t, 6_000), &mut ev);
        assert_eq!(ev, [ins("AAAA")], "seen again within the grace time: still the same session");
    }

    #[test]
    fn unknown_presence_does_not_postpone_a_pending_removal() {
        let (t, mut d, _) = holding_aaaa();
        d.card_absent(t);
        d.presence_unknown(ms(t, 100), Duration::from_secs(5));
        assert_eq!(d.poll_timeout(), Some(ms(t, 500)));
    }

    #[test]
    fn absence_seen_during_an_outage_shortens_the_wait() {
        let (t, mut d, _) = holding_aaaa();
        d.presence_unknown(t, Duration::from_secs(5));
        d.card_absent(ms(t, 1_000));
        assert_eq!(d.poll_timeout(), Some(ms(t, 1_500)));
    }

    #[test]
    fn absence_without_a_card_schedules_nothing() {
        let mut d = Debouncer::new("r", HOLD);
        d.card_absent(Instant::now());
        assert_eq!(d.poll_timeout(), None);
    }
}
