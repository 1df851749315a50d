//! The simulated machine's side of the rules, message by message: synchronisation, implied
//! ACK and NACK, the exception queue, real-time priority, chirps, AFT status codes, restricted
//! play; the machine-side framer; the control commands. Time is passed by hand.

use std::time::{Duration, Instant};

use slot_interface::aft::{
    lock_code, registration_code, LockRequest, RegistrationKey, RegistrationRequest, TransactionId, TransferFunds,
    TransferRequest, TransferStatus,
};
use slot_interface::codec::{Framed, HostFramer, HostMessage, LongPoll, ReadPoll, Response, Expect};
use slot_interface::sim::{Control, Egm, SimConfig, Stored};
use slot_interface::transport::RxByte;
use slot_interface::{Address, Door, ExceptionCode};

fn a1() -> Address {
    Address::new(1).unwrap()
}

struct M {
    egm: Egm,
    now: Instant,
    /// Address and command of the last long poll, to acknowledge it like a host would.
    last_long: Option<Vec<u8>>,
}

impl M {
    fn new() -> M {
        let now = Instant::now();
        let mut config = SimConfig::new(a1());
        config.transfer_delay = Duration::from_millis(50);
        M { egm: Egm::new(config, Stored::default(), now).unwrap(), now, last_long: None }
    }

    fn send(&mut self, message: HostMessage) -> Option<Vec<u8>> {
        self.now += Duration::from_millis(5);
        let key: Vec<u8> = message.encode().unwrap().into_iter().take(2).collect();
        if let HostMessage::LongPoll(..) = message {
            // The same command again would be a repeat (implied NACK): acknowledge first.
            if self.last_long.as_ref() == Some(&key) {
                self.egm.receive(&HostMessage::Sync, self.now);
            }
            self.last_long = Some(key);
        } else {
            self.last_long = None;
        }
        self.egm.receive(&message, self.now)
    }

    fn sync(&mut self) {
        assert_eq!(self.send(HostMessage::Sync), None);
    }

    fn gp(&mut self) -> Option<Vec<u8>> {
        self.send(HostMessage::GeneralPoll(a1()))
    }

    fn long(&mut self, poll: LongPoll) -> Response {
        let bytes = self.send(HostMessage::LongPoll(a1(), poll.clone())).expect("an answer");
        let expect = Expect::for_message(&HostMessage::LongPoll(a1(), poll)).unwrap();
        Response::decode(a1(), expect, &bytes, true).unwrap().unwrap().0
    }

    /// Reads exceptions one by one (sync in between) until "no activity".
    fn drain(&mut self) -> Vec<u8> {
        let mut codes = Vec::new();
        loop {
            self.sync();
            let answer = self.gp().unwrap();
            if answer == [0] {
                return codes;
            }
            codes.push(answer[0]);
        }
    }
}

#[test]
fn a_machine_answers_nothing_until_it_sees_a_synchronisation_poll() {
    let mut m = M::new();
    assert_eq!(m.gp(), None);
    m.sync();
    assert_eq!(m.gp(), Some(vec![0x17]), "power applied is the first exception");
}

#[test]
fn a_repeated_poll_gets_the_same_answer_and_the_exception_is_kept() {
    let mut m = M::new();
    m.egm.door(Door::Slot, true);
    m.sync();
    assert_eq!(m.gp(), Some(vec![0x17]));
    assert_eq!(m.gp(), Some(vec![0x17]), "implied NACK: the same answer again");
    assert_eq!(m.gp(), Some(vec![0x17]));
    m.sync();
    assert_eq!(m.gp(), Some(vec![0x11]), "the sync acknowledged 0x17");
}

#[test]
fn a_long_poll_acknowledges_the_exception_before_it() {
    let mut m = M::new();
    m.egm.door(Door::Slot, true);
    m.sync();
    assert_eq!(m.gp(), Some(vec![0x17]));
    assert!(matches!(m.long(LongPoll::Read(ReadPoll::GamesPlayed)), Response::Meter { value: 0, .. }));
    assert_eq!(m.gp(), Some(vec![0x11]));
}

#[test]
fn an_idle_machine_in_real_time_mode_answers_the_no_activity_event() {
    let mut m = M::new();
    m.sync();
    assert_eq!(m.long(LongPoll::RealTimeEvents(true)), Response::Ack);
    m.sync();
    let first = m.gp().unwrap();
    assert_eq!(first[..3], [0x01, 0xFF, 0x17], "the power-up exception, in event form");
    m.sync();
    assert_eq!(m.gp().unwrap(), [0x01, 0xFF, 0x00, 0x1C, 0xA5]);
}

#[test]
fn a_long_poll_in_real_time_mode_gets_a_pending_event_first() {
    let mut m = M::new();
    m.sync();
    m.long(LongPoll::RealTimeEvents(true));
    m.egm.play().unwrap();
    let answer = m.long(LongPoll::Read(ReadPoll::CurrentCredits));
    assert!(matches!(&answer, Response::RealTimeEvent(e) if e.code == ExceptionCode::POWER_APPLIED), "{answer:?}");
}

#[test]
fn more_than_twenty_exceptions_lose_the_oldest_and_report_an_overflow() {
    let mut m = M::new();
    for _ in 0..15 {
        m.egm.door(Door::Slot, true);
        m.egm.door(Door::Slot, false);
    }
    let codes = m.drain();
    assert_eq!(codes[0], 0x70, "the overflow comes first");
    assert_eq!(codes.len(), 21, "the overflow, then the twenty newest");
    assert_eq!(*codes.last().unwrap(), 0x12);
}

#[test]
fn an_unpolled_machine_chirps_every_200_ms_after_5_s() {
    let mut m = M::new();
    let start = m.now;
    let mut chirps = Vec::new();
    for ms in (0..6_000).step_by(10) {
        if let Some(byte) = m.egm.tick(start + Duration::from_millis(ms)) {
            chirps.push((ms, byte));
        }
    }
    assert_eq!(chirps.first(), Some(&(5_000, 0x01)));
    assert_eq!(chirps.len(), 5, "{chirps:?}");
}

#[test]
fn a_damaged_long_poll_for_this_machine_is_nacked() {
    let mut m = M::new();
    assert_eq!(m.egm.refuse_damaged(0x01), None, "not before synchronisation");
    m.sync();
    assert_eq!(m.egm.refuse_damaged(0x01), Some(vec![0x81]));
    assert_eq!(m.egm.refuse_damaged(0x02), None);
}

fn key() -> RegistrationKey {
    RegistrationKey([9; 20])
}

fn register(m: &mut M) {
    let with = |code| RegistrationRequest { code, asset_number: 1001, registration_key: key(), pos_id: 0 };
    m.long(LongPoll::AftRegister(with(registration_code::INITIALIZE)));
    let Response::AftRegistration(r) = m.long(LongPoll::AftRegister(with(registration_code::REGISTER))) else { panic!() };
    assert_eq!(r.status, 0x01);
}

fn lock(m: &mut M) {
    let Response::AftStatus(s) = m.long(LongPoll::AftLock(LockRequest { code: lock_code::REQUEST, condition: 1, timeout_hundredths: 500 }))
    else {
        panic!()
    };
    assert_eq!(s.lock_status, 0x00);
}

fn transfer(m: &mut M, id: &str, cents: u64, change: impl FnOnce(&mut TransferRequest)) -> TransferStatus {
    let mut request = TransferRequest::free_play(TransactionId::parse(id).unwrap(), cents, 1001, key());
    change(&mut request);
    let Response::AftTransfer(answer) = m.long(LongPoll::AftTransfer(TransferFunds::Request(Box::new(request)))) else { panic!() };
    answer.status
}

#[track_caller]
fn check_refusal(prepare: impl FnOnce(&mut M), cents: u64, change: impl FnOnce(&mut TransferRequest), status: TransferStatus) {
    let mut m = M::new();
    m.sync();
    prepare(&mut m);
    assert_eq!(transfer(&mut m, "T-1", cents, change), status, "expected {}", status.name());
    assert_eq!(m.egm.state().restricted_credits, 0);
}

#[test]
fn a_transfer_to_an_unregistered_machine_is_refused() {
    check_refusal(|_| {}, 100, |_| {}, TransferStatus::NOT_REGISTERED);
}

#[test]
fn a_transfer_with_another_key_is_refused() {
    check_refusal(register, 100, |r| r.registration_key = RegistrationKey([1; 20]), TransferStatus::KEY_MISMATCH);
}

#[test]
fn a_transfer_for_another_asset_is_refused() {
    check_refusal(register, 100, |r| r.asset_number = 77, TransferStatus::ASSET_MISMATCH);
}

#[test]
fn a_transfer_that_wants_a_lock_is_refused_without_one() {
    check_refusal(register, 100, |_| {}, TransferStatus::NOT_LOCKED);
}

#[test]
fn a_transfer_over_the_limit_is_refused() {
    check_refusal(|m| { register(m); lock(m) }, 2_000_000, |_| {}, TransferStatus::EXCEEDS_LIMIT);
}

#[test]
fn a_transfer_of_nothing_is_refused() {
    check_refusal(|m| { register(m); lock(m) }, 0, |_| {}, TransferStatus::INVALID_AMOUNT);
}

#[test]
fn a_transfer_to_a_disabled_machine_is_refused() {
    check_refusal(|m| { register(m); lock(m); m.long(LongPoll::Shutdown); }, 100, |_| {}, TransferStatus::UNABLE_NOW);
}

#[test]
fn a_transfer_lands_as_restricted_credit_pending_then_complete() {
    let mut m = M::new();
    m.sync();
    register(&mut m);
    lock(&mut m);
    assert_eq!(transfer(&mut m, "T-1", 250, |_| {}), TransferStatus::PENDING);
    assert_eq!(m.egm.state().restricted_credits, 250);
    let later = m.now + Duration::from_millis(60);
    m.egm.tick(later);
    m.now = later;
    let Response::AftTransfer(done) = m.long(LongPoll::AftTransfer(TransferFunds::Interrogate { index: 0, status_only: false })) else {
        panic!()
    };
    assert_eq!(done.status, TransferStatus::FULL);
    assert_eq!(done.record.unwrap().restricted_cents, 250);
    assert!(m.drain().contains(&0x69), "AFT complete is reported");
    // The same id again is not unique, and the history still shows the first transfer.
    lock(&mut m);
    assert_eq!(transfer(&mut m, "T-1", 250, |_| {}), TransferStatus::NOT_UNIQUE);
    assert_eq!(m.egm.state().restricted_credits, 250);
}

#[test]
fn restricted_credits_are_played_before_cashable_ones() {
    let mut m = M::new();
    m.sync();
    register(&mut m);
    lock(&mut m);
    transfer(&mut m, "T-1", 7, |_| {});
    m.egm.tick(m.now + Duration::from_secs(1));
    m.egm.insert_bill(100);
    m.egm.play().unwrap();
    m.egm.play().unwrap();
    let s = m.egm.state();
    assert_eq!((s.meters.restricted_played, s.meters.nonrestricted_played), (7, 3));
}

fn plain(bytes: &[u8]) -> Vec<RxByte> {
    bytes.iter().map(|&byte| RxByte { byte, wakeup: None }).collect()
}

#[test]
fn the_framer_drops_a_partial_message_after_a_silence() {
    let now = Instant::now();
    let mut f = HostFramer::new(Duration::from_millis(5));
    assert!(f.push(&plain(&[0x01, 0x72, 0x3C]), now).is_empty());
    let out = f.push(&plain(&[0x01, 0x1A]), now + Duration::from_millis(50));
    assert_eq!(out, [Framed::Message(HostMessage::LongPoll(a1(), LongPoll::Read(ReadPoll::CurrentCredits)))]);
}

#[test]
fn the_framer_uses_the_wakeup_bit_when_the_line_has_it() {
    let now = Instant::now();
    let mut f = HostFramer::new(Duration::from_millis(5));
    let mut line = vec![RxByte { byte: 0x55, wakeup: Some(false) }];
    line.push(RxByte { byte: 0x01, wakeup: Some(true) });
    line.push(RxByte { byte: 0x72, wakeup: Some(false) });
    // A new wakeup byte ends the damaged message before it.
    line.push(RxByte { byte: 0x81, wakeup: Some(true) });
    assert_eq!(f.push(&line, now), [Framed::Message(HostMessage::GeneralPoll(a1()))]);
}

#[test]
fn the_framer_reports_a_damaged_message_and_skips_an_unsupported_one() {
    let now = Instant::now();
    let mut f = HostFramer::new(Duration::from_millis(5));
    assert_eq!(f.push(&plain(&[0x01, 0x02, 0xCA, 0x3B]), now), [Framed::Damaged { first_byte: 0x01 }]);
    // 0x54 is not implemented; what follows in the same burst is part of it.
    assert!(f.push(&plain(&[0x01, 0x54, 0x01, 0x1A]), now + Duration::from_millis(20)).is_empty());
}

#[test]
fn control_commands_parse() {
    let rows: [(&str, Control); 8] = [
        ("play 3", Control::Play(3)),
        ("auto 500", Control::Auto(Some(Duration::from_millis(500)))),
        ("auto off", Control::Auto(None)),
        ("door belly open", Control::Door(Door::Belly, true)),
        ("slow 80 2", Control::Slow { gap: Duration::from_millis(80), answers: 2 }),
        ("silent on", Control::Silent(Some(None))),
        ("silent 300", Control::Silent(Some(Some(Duration::from_millis(300))))),
        ("refuse-aft", Control::RefuseAft),
    ];
    for (line, control) in rows {
        assert_eq!(Control::parse(line).unwrap(), control, "{line}");
    }
    for bad in ["", "play", "play x", "door roof open", "jump"] {
        assert!(Control::parse(bad).is_err(), "{bad:?}");
    }
}
