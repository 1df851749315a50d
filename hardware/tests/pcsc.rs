//! The PC/SC reader against the real pcscd with vsmartcard's virtual readers and our virtual card.
//!
//! Every test here is named `pcsc_…`: the repository's nextest configuration runs those one at a
//! time, because they share the machine's one pcscd (and some restart it).

mod common;

use std::time::Duration;

use common::{WAIT, next, quiet_for, until};
use hardware::apdu::{GET_UID, Identification};
use hardware::vpcd::{self, CardProfile, PORT_0, PORT_1, VirtualCard};
use hardware::{CardEvent, CardId, PcscConfig, PcscReader};

const UID_A: [u8; 7] = [0x04, 0x52, 0x1C, 0x8A, 0x3B, 0x61, 0x80];
const UID_B: [u8; 4] = [0xDE, 0xAD, 0xBE, 0xEF];

/// pcscd is up and both virtual readers are empty; `false` when the test is skipped.
fn set_up() -> bool {
    if !vpcd::ready_or_skip() {
        return false;
    }
    for port in [PORT_0, PORT_1] {
        vpcd::wait_until_empty(&vpcd::reader_name(port), WAIT).expect("a virtual reader stays occupied");
    }
    true
}

fn config() -> PcscConfig {
    PcscConfig {
        readers: vec!["Virtual PCD".into()],
        hold: Duration::from_millis(300),
        retry: Duration::from_millis(200),
        ..PcscConfig::default()
    }
}

fn card(uid: &[u8]) -> CardId {
    CardId::from_uid(uid).unwrap()
}

fn inserted(port: u16, uid: &[u8]) -> CardEvent {
    CardEvent::Inserted { reader: vpcd::reader_name(port), card: card(uid) }
}

fn removed(port: u16, uid: &[u8]) -> CardEvent {
    CardEvent::Removed { reader: vpcd::reader_name(port), card: card(uid) }
}

#[tokio::test]
async fn pcsc_insert_remove_reinsert() {
    if !set_up() {
        return;
    }
    let mut reader = PcscReader::spawn(config()).unwrap();
    let card_in = VirtualCard::insert(PORT_0, &UID_A).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_A));
    card_in.remove();
    assert_eq!(next(&mut reader).await, removed(PORT_0, &UID_A));
    let _again = VirtualCard::insert(PORT_0, &UID_A).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_A));
    assert_eq!(reader.counters().unreadable_cards(), 0);
}

#[tokio::test]
async fn pcsc_two_cards_in_two_readers() {
    if !set_up() {
        return;
    }
    let mut reader = PcscReader::spawn(config()).unwrap();
    let a = VirtualCard::insert(PORT_0, &UID_A).unwrap();
    let b = VirtualCard::insert(PORT_1, &UID_B).unwrap();
    let mut seen = vec![next(&mut reader).await, next(&mut reader).await];
    seen.sort_by_key(|e| e.reader().to_owned());
    assert_eq!(seen, [inserted(PORT_0, &UID_A), inserted(PORT_1, &UID_B)]);
    b.remove();
    assert_eq!(next(&mut reader).await, removed(PORT_1, &UID_B));
    a.remove();
    assert_eq!(next(&mut reader).await, removed(PORT_0, &UID_A));
}

#[tokio::test]
async fn pcsc_card_stays_inserted_while_pcscd_restarts_under_the_reader() {
    if !set_up() {
        return;
    }
    let grace = Duration::from_secs(2);
    let mut reader = PcscReader::spawn(PcscConfig { outage_grace: grace, ..config() }).unwrap();
    let card_in = VirtualCard::insert(PORT_0, &UID_A).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_A));
    until("the reader is connected", || reader.counters().connections() == 1).await;

    vpcd::restart_pcscd().unwrap();
    until("the reader has reconnected", || reader.counters().connections() == 2).await;
    // Had the reader not found the card again, its removal would be reported after the grace time.
    quiet_for(&mut reader, grace + Duration::from_secs(1)).await;

    card_in.remove();
    assert_eq!(next(&mut reader).await, removed(PORT_0, &UID_A));
    let _other = VirtualCard::insert(PORT_0, &UID_B).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_B));
}

#[tokio::test]
async fn pcsc_card_taken_out_while_pcscd_is_down_is_reported_removed() {
    if !set_up() {
        return;
    }
    // A grace longer than the wait: the removal must come from seeing the empty reader again.
    let mut reader = PcscReader::spawn(PcscConfig { outage_grace: WAIT * 3, ..config() }).unwrap();
    let card_in = VirtualCard::insert(PORT_1, &UID_B).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_1, &UID_B));

    vpcd::stop_pcscd().unwrap();
    card_in.remove();
    vpcd::start_pcscd().unwrap();
    assert_eq!(next(&mut reader).await, removed(PORT_1, &UID_B));
    let _other = VirtualCard::insert(PORT_1, &UID_A).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_1, &UID_A));
}

#[tokio::test]
async fn pcsc_reader_started_before_pcscd_finds_the_readers_when_it_comes() {
    if !set_up() {
        return;
    }
    vpcd::stop_pcscd().unwrap();
    let mut reader = PcscReader::spawn(config()).unwrap();
    vpcd::start_pcscd().unwrap();
    let _card = VirtualCard::insert(PORT_0, &UID_B).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_B));
}

#[tokio::test]
async fn pcsc_contact_card_is_identified_by_the_configured_apdus() {
    if !set_up() {
        return;
    }
    // A contact card (T=1 ATR) holding its club number in a transparent file.
    let atr = [0x3B, 0xDB, 0x96, 0x00, 0x80, 0xB1, 0xFE, 0x45, 0x1F, 0x83, 0x00, 0x31, 0xC0, 0x64, 0xC7, 0xFC, 0x10, 0x00, 0x01, 0x90, 0x00, 0x74];
    let select = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x02];
    let read = [0x00, 0xB0, 0x00, 0x00, 0x08];
    let profile = CardProfile::with_atr(&atr)
        .answer(&select, &[0x90, 0x00])
        .answer(&read, &[0x60, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x90, 0x00]);
    let identification = Identification::contact_apdus(vec![select.to_vec(), read.to_vec()]).unwrap();
    let mut reader = PcscReader::spawn(PcscConfig { identification, ..config() }).unwrap();
    let _card = VirtualCard::insert_profile(PORT_0, profile).unwrap();
    assert_eq!(
        next(&mut reader).await,
        CardEvent::Inserted { reader: vpcd::reader_name(PORT_0), card: CardId::parse("6012345678901234").unwrap() }
    );
}

#[tokio::test]
async fn pcsc_card_answering_an_error_is_counted_and_never_reported() {
    if !set_up() {
        return;
    }
    let mut reader = PcscReader::spawn(config()).unwrap();
    let broken = CardProfile::with_atr(&vpcd::CONTACTLESS_ATR).answer(&GET_UID, &[0x6A, 0x81]);
    let card_in = VirtualCard::insert_profile(PORT_0, broken).unwrap();
    until("the card is counted unreadable", || reader.counters().unreadable_cards() == 1).await;
    card_in.remove();
    // The next card reads normally, and nothing was reported for the broken one.
    let _good = VirtualCard::insert(PORT_0, &UID_A).unwrap();
    assert_eq!(next(&mut reader).await, inserted(PORT_0, &UID_A));
}
