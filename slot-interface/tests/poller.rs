//! The host link layer driven by hand: exact bytes out, answers in, time moved explicitly.
//! No sleeps, no IO.

use std::time::{Duration, Instant};

use slot_interface::codec::{LongPoll, ReadPoll, Response};
use slot_interface::poller::{LinkState, Poller, PollerConfig, PollerEvent};
use slot_interface::{Address, Error, ExceptionCode};

fn a1() -> Address {
    Address::new(1).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

struct Rig {
    poller: Poller,
    now: Instant,
}

impl Rig {
    fn new(addresses: &[u8]) -> Rig {
        let now = Instant::now();
        let addresses: Vec<Address> = addresses.iter().map(|&a| Address::new(a).unwrap()).collect();
        Rig { poller: Poller::new(PollerConfig::default(), &addresses, now), now }
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.poller.handle_timeout(self.now);
    }

    /// Moves time to the poller's next deadline.
    fn at_deadline(&mut self) {
        let at = self.poller.poll_timeout().expect("a deadline");
        self.now = self.now.max(at);
        self.poller.handle_timeout(self.now);
    }

    #[track_caller]
    fn expect_tx(&mut self, bytes: &str) {
        assert_eq!(self.poller.poll_transmit(self.now), Some(hex(bytes)), "transmit at {:?}", self.now);
    }

    #[track_caller]
    fn expect_quiet(&mut self) {
        assert_eq!(self.poller.poll_transmit(self.now), None);
    }

    fn answer(&mut self, bytes: &str) {
        self.now += Duration::from_millis(2);
        self.poller.handle_input(&hex(bytes), self.now);
    }

    /// Answer, then let the line go quiet (for answers that could continue).
    fn answer_quiet(&mut self, bytes: &str) {
        self.answer(bytes);
        self.advance(6);
    }

    fn events(&mut self) -> Vec<PollerEvent> {
        std::iter::from_fn(|| self.poller.poll_event()).collect()
    }

    /// With machine 1 up: queues `poll`, then plays the next slot up to the long poll's turn
    /// (sync, general poll, "no activity"); the caller expects the long poll next.
    fn slot_with(&mut self, poll: LongPoll) -> slot_interface::poller::RequestId {
        let id = self.poller.submit(a1(), poll).unwrap();
        self.advance(200);
        self.expect_tx("80");
        self.expect_tx("81");
        self.answer("00");
        id
    }

    /// Brings machine 1 up: sync, general poll, "no activity".
    fn up(&mut self) {
        self.expect_tx("80");
        self.expect_tx("81");
        self.answer("00");
        assert!(matches!(self.events().as_slice(), [PollerEvent::LinkUp(_)]));
    }
}

#[test]
fn a_new_machine_is_synchronised_then_polled() {
    let mut r = Rig::new(&[1]);
    r.expect_tx("80");
    r.expect_tx("81");
    r.expect_quiet();
}

#[test]
fn an_unanswered_general_poll_is_sent_three_times_then_the_slot_ends() {
    let mut r = Rig::new(&[1]);
    r.expect_tx("80");
    r.expect_tx("81");
    r.at_deadline();
    r.expect_tx("81");
    r.at_deadline();
    r.expect_tx("81");
    r.at_deadline();
    r.expect_quiet();
    assert_eq!(r.poller.link(a1()), Some(LinkState::Unknown));
    // The next slot, 200 ms after the first, asks again; nothing was answered, so nothing is
    // acknowledged with a sync.
    r.at_deadline();
    r.expect_tx("81");
}

#[test]
fn after_a_lost_answer_the_next_slot_repeats_the_poll_and_acknowledges_nothing() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.advance(200);
    r.expect_tx("80");
    r.expect_tx("81");
    for _ in 0..2 {
        r.at_deadline();
        r.expect_tx("81");
    }
    r.at_deadline();
    r.expect_quiet();
    r.at_deadline();
    // Still the implied NACK: the machine keeps the exception it may have sent.
    r.expect_tx("81");
}

#[test]
fn a_machine_silent_for_seconds_gets_a_sync_in_case_it_restarted() {
    let mut r = Rig::new(&[1]);
    r.up();
    let start = r.now;
    let mut synced_at = None;
    while r.now < start + Duration::from_secs(8) {
        r.at_deadline();
        while let Some(bytes) = r.poller.poll_transmit(r.now) {
            if bytes == [0x80] && r.now > start + Duration::from_millis(300) && synced_at.is_none() {
                synced_at = Some(r.now - start);
            }
        }
    }
    let at = synced_at.expect("a sync while the machine was silent");
    assert!(at >= Duration::from_secs(5), "synced after {at:?}");
}

#[test]
fn the_first_answer_brings_the_link_up_and_the_next_poll_is_acknowledged_by_a_sync() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.advance(200);
    // Repeating 81 would ask the machine to send its answer again (implied NACK): sync first.
    r.expect_tx("80");
    r.expect_tx("81");
}

#[test]
fn polls_to_several_machines_acknowledge_each_other() {
    let mut r = Rig::new(&[1, 2]);
    r.expect_tx("80");
    r.expect_tx("81");
    r.answer("00");
    // The sync at start-up synchronised every machine on the line.
    r.expect_tx("82");
    r.answer("00");
    r.advance(200);
    r.expect_tx("81");
    r.answer("00");
    r.expect_tx("82");
}

#[test]
fn a_long_poll_follows_the_general_poll_of_its_slot() {
    let mut r = Rig::new(&[1]);
    r.up();
    let id = r.slot_with(LongPoll::Read(ReadPoll::CurrentCredits));
    r.expect_tx("01 1A");
    r.answer("01 1A 00 00 12 34 45 2D");
    let events = r.events();
    let [PollerEvent::Completed { id: done, result: Ok(Response::Meter { value: 1234, .. }), .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*done, id);
}

#[test]
fn a_damaged_answer_is_asked_for_again_with_the_same_poll() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.slot_with(LongPoll::Read(ReadPoll::CurrentCredits));
    r.expect_tx("01 1A");
    r.answer("01 1A 00 00 12 34 45 2E");
    r.expect_quiet();
    r.at_deadline();
    // The repeat is the implied NACK: no sync in between.
    r.expect_tx("01 1A");
    r.answer("01 1A 00 00 12 34 45 2D");
    assert!(matches!(r.events().as_slice(), [PollerEvent::Completed { result: Ok(Response::Meter { .. }), .. }]));
}

#[test]
fn a_long_poll_without_an_answer_fails_after_three_sends() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.slot_with(LongPoll::Read(ReadPoll::CurrentCredits));
    for _ in 0..3 {
        r.expect_tx("01 1A");
        r.at_deadline();
    }
    r.expect_quiet();
    assert!(matches!(r.events().as_slice(), [PollerEvent::Completed { result: Err(Error::NoResponse(_)), .. }]));
}

#[test]
fn a_nack_is_a_refusal_sent_again_as_a_fresh_poll() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.slot_with(LongPoll::Shutdown);
    r.expect_tx("01 01 51 08");
    r.answer("81");
    r.expect_tx("80");
    r.expect_tx("01 01 51 08");
    r.answer_quiet("01");
    assert!(matches!(r.events().as_slice(), [PollerEvent::Completed { result: Ok(Response::Ack), .. }]));
}

#[test]
fn three_nacks_are_reported_as_the_answer() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.slot_with(LongPoll::Shutdown);
    r.expect_tx("01 01 51 08");
    r.answer("81");
    for _ in 0..2 {
        r.expect_tx("80");
        r.expect_tx("01 01 51 08");
        r.answer("81");
    }
    assert!(matches!(r.events().as_slice(), [PollerEvent::Completed { result: Ok(Response::Nack), .. }]));
}

#[test]
fn a_busy_machine_gets_the_long_poll_again_next_slot() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.slot_with(LongPoll::Read(ReadPoll::CurrentCredits));
    r.expect_tx("01 1A");
    r.answer("01 00");
    r.expect_quiet();
    assert!(r.events().is_empty());
    r.advance(200);
    r.expect_tx("81");
    r.answer("00");
    r.expect_tx("01 1A");
}

#[test]
fn exceptions_become_events_in_order() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.advance(200);
    r.expect_tx("80");
    r.expect_tx("81");
    r.answer("11");
    let events = r.events();
    let [PollerEvent::Event { event, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(event.code, ExceptionCode::SLOT_DOOR_OPENED);
}

fn into_real_time(r: &mut Rig) {
    r.up();
    r.slot_with(LongPoll::RealTimeEvents(true));
    r.expect_tx("01 0E 01 45 D1");
    r.answer_quiet("01");
    r.events();
    assert!(r.poller.real_time(a1()));
}

#[test]
fn in_real_time_mode_an_idle_machine_is_polled_every_40_ms() {
    let mut r = Rig::new(&[1]);
    into_real_time(&mut r);
    r.advance(40);
    r.expect_tx("81");
    // The event form of "no activity" is not an event for anyone.
    r.answer("01 FF 00 1C A5");
    r.expect_quiet();
    r.advance(40);
    r.expect_tx("80");
    r.expect_tx("81");
    assert!(r.events().is_empty());
}

#[test]
fn in_real_time_mode_silence_is_a_lost_answer_and_asked_for_again() {
    let mut r = Rig::new(&[1]);
    into_real_time(&mut r);
    r.advance(40);
    r.expect_tx("81");
    r.at_deadline();
    r.expect_tx("81");
}

#[test]
fn a_real_time_event_answering_a_long_poll_is_reported_and_the_poll_sent_again() {
    let mut r = Rig::new(&[1]);
    into_real_time(&mut r);
    r.poller.submit(a1(), LongPoll::Read(ReadPoll::CurrentCredits)).unwrap();
    r.advance(40);
    r.expect_tx("81");
    r.answer("01 FF 00 1C A5");
    r.expect_tx("01 1A");
    r.answer("01 FF 7F 00 00 00 20 F2 3C");
    // The sync acknowledges the event; then the long poll goes again (§12.4).
    r.expect_tx("80");
    r.expect_tx("01 1A");
    r.answer("01 1A 00 00 12 34 45 2D");
    let events = r.events();
    assert!(matches!(
        events.as_slice(),
        [PollerEvent::Event { .. }, PollerEvent::Completed { result: Ok(Response::Meter { .. }), .. }]
    ));
}

#[test]
fn a_one_byte_exception_in_real_time_mode_means_the_machine_left_it() {
    let mut r = Rig::new(&[1]);
    into_real_time(&mut r);
    r.advance(40);
    r.expect_tx("81");
    r.answer("17");
    assert!(!r.poller.real_time(a1()));
    assert!(matches!(r.events().as_slice(), [PollerEvent::RealTimeModeLost(_), PollerEvent::Event { .. }]));
}

#[test]
fn a_silent_machine_goes_down_and_its_queued_polls_fail() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.poller.submit(a1(), LongPoll::Read(ReadPoll::CurrentCredits)).unwrap();
    let mut down = false;
    for _ in 0..2_000 {
        r.at_deadline();
        while r.poller.poll_transmit(r.now).is_some() {}
        if r.poller.link(a1()) == Some(LinkState::Down) {
            down = true;
            break;
        }
    }
    assert!(down, "link never went down");
    let events = r.events();
    assert!(matches!(
        events.as_slice(),
        [PollerEvent::LinkDown(_), PollerEvent::Completed { result: Err(Error::LinkDown(_)), .. }]
    ));
    assert!(matches!(r.poller.submit(a1(), LongPoll::Shutdown), Err(Error::LinkDown(_))));
}

#[test]
fn a_chirp_from_a_machine_that_is_down_gets_it_polled_at_once() {
    let mut r = Rig::new(&[1]);
    r.up();
    while r.poller.link(a1()) != Some(LinkState::Down) {
        r.at_deadline();
        while r.poller.poll_transmit(r.now).is_some() {}
    }
    r.events();
    // Down machines are polled once a second; a chirp brings the poll forward.
    while r.poller.poll_timeout().unwrap() < r.now + Duration::from_millis(500) {
        r.at_deadline();
        while r.poller.poll_transmit(r.now).is_some() {}
    }
    r.now += Duration::from_millis(100);
    r.poller.handle_input(&[0x01], r.now);
    r.expect_tx("80");
    r.expect_tx("81");
    r.answer("00");
    assert!(matches!(r.events().as_slice(), [PollerEvent::LinkUp(_)]));
}

#[test]
fn a_long_poll_for_a_machine_that_never_answered_fails_instead_of_waiting_forever() {
    let mut r = Rig::new(&[1]);
    r.poller.submit(a1(), LongPoll::Read(ReadPoll::CurrentCredits)).unwrap();
    r.expect_tx("80");
    for _ in 0..3 {
        r.expect_tx("81");
        r.at_deadline();
    }
    assert!(matches!(r.events().as_slice(), [PollerEvent::Completed { result: Err(Error::NoResponse(_)), .. }]));
}

#[test]
fn unknown_machines_are_refused() {
    let mut r = Rig::new(&[1]);
    assert!(matches!(
        r.poller.submit(Address::new(9).unwrap(), LongPoll::Shutdown),
        Err(Error::UnknownMachine(_))
    ));
}

#[test]
fn set_up_polls_go_before_the_general_poll_and_the_same_command_twice_is_separated_by_a_sync() {
    let mut r = Rig::new(&[1]);
    r.up();
    r.poller.submit_first(a1(), LongPoll::RealTimeEvents(true)).unwrap();
    r.poller.submit_first(a1(), LongPoll::RealTimeEvents(false)).unwrap();
    r.advance(200);
    r.expect_tx("01 0E 01 45 D1");
    r.answer_quiet("01");
    r.advance(40);
    // Same address and command: a machine would take it as a repeat of the first (§3.1).
    r.expect_tx("80");
    r.expect_tx("01 0E 00 CC C0");
}
