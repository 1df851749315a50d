//! Cashback at the machine, server side, over a real terminal WebSocket on both databases: the
//! PIN (wrong tries lock, staff unlock), the exclusion gate at redemption, idempotency on the
//! transfer id, and what a failed transfer does: a machine redemption is reversed (points back in
//! their lots, its free play cancelled, once), free play from a desk stays free play.

use club_rules::{Money, MachineType, Rules};
use floor_protocol::{CardNumber, Pin, Reply, Request, ServerMessage, TerminalEvent, TerminalMessage, TransferOutcome};
use floor_server::audit::Actor;
use floor_server::store::{Backend, Store};
use rust_decimal_macros::dec;
use terminal_agent::link::Link;

use club_tests::*;

const PIN: &str = "2468";

async fn member_of(store: &Store, card: &str) -> i64 {
    sqlx::query_scalar("SELECT member_id FROM cards WHERE card_number = $1").bind(card).fetch_one(store.read()).await.unwrap()
}

/// Ana gets 40,000 EUR of slot play (10,000 points: Silver) and a PIN.
async fn prepare(floor: &Floor) -> i64 {
    let store = floor.store();
    let ana = member_of(store, "CARDANA").await;
    let mut tx = store.begin().await.unwrap();
    let at = floor_server::ledger::time(T0 - 1000).unwrap();
    floor_server::ledger::apply_play(&mut tx, &Rules::default(), ana, None, MachineType::Slot, Money::from_cents(4_000_000), at, None)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    floor_server::pins::set_pin(store, ana, PIN, &SEED, T0).await.unwrap();
    ana
}

/// Asks and waits for the reply, passing over floor-wide pushes (a card block after an exclusion).
async fn ask(link: &mut Link, id: u64, request: Request) -> Reply {
    link.send(&TerminalMessage::Request { id, request }).await.unwrap();
    loop {
        match recv(link).await {
            ServerMessage::Reply { id: got, reply } if got == id => return reply,
            ServerMessage::BlockCard { .. } | ServerMessage::UnblockCard { .. } => continue,
            other => panic!("expected the reply to {id}, got {other:?}"),
        }
    }
}

fn redeem(points: i64, pin: &str, transfer: &str) -> Request {
    Request::RedeemCashback { card: CardNumber::new("CARDANA"), points, pin: Pin::new(pin), transfer: transfer.into() }
}

async fn balances(store: &Store, member: i64) -> (i64, i64) {
    sqlx::query_as("SELECT points_balance, free_play_cents FROM members WHERE id = $1").bind(member).fetch_one(store.read()).await.unwrap()
}

async fn redemption_is_idempotent_and_a_failed_transfer_reverses_it_once(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let ana = prepare(&floor).await;
    let (mut link, _) = floor.connect(0).await;
    let silver = ask(&mut link, 1, redeem(1000, PIN, "T-1")).await;
    assert_eq!(silver, Reply::Redeemed { transfer: "T-1".into(), points: 1000, amount: dec!(12.00) }, "Silver: EUR 12 per 1,000 points");
    assert_eq!(balances(floor.store(), ana).await, (9_000, 0), "points debited; the free play is on its way to the machine");
    // Asked again after a lost answer: the first answer, nothing written.
    assert_eq!(ask(&mut link, 2, redeem(1000, PIN, "T-1")).await, silver);
    assert_eq!(balances(floor.store(), ana).await, (9_000, 0));

    // The machine refused it: reported twice (a resend), reversed once.
    let failed = |seq| event(seq, TerminalEvent::FreePlayResult { transfer: "T-1".into(), outcome: TransferOutcome::Failed { reason: "refused".into() } });
    assert!(matches!(call(&mut link, &failed(1)).await, ServerMessage::Ack { seq: 1, .. }));
    assert!(matches!(call(&mut link, &failed(2)).await, ServerMessage::Ack { seq: 2, .. }));
    assert_eq!(balances(floor.store(), ana).await, (10_000, 0), "points back, the free play cancelled, once");
    let lots: i64 = sqlx::query_scalar("SELECT CAST(SUM(remaining) AS BIGINT) FROM points_lots WHERE member_id = $1")
        .bind(ana)
        .fetch_one(floor.store().read())
        .await
        .unwrap();
    assert_eq!(lots, 10_000, "back in the lots they came from");
    let reversed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1 AND kind = 'reversed'")
        .bind(ana)
        .fetch_one(floor.store().read())
        .await
        .unwrap();
    assert_eq!(reversed, 1, "one ledger entry per lot, written once");
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'cashback.reversed'").fetch_one(floor.store().read()).await.unwrap();
    assert_eq!(audit, 1);
    // A reversed redemption is not redeemed again under the same id.
    assert!(matches!(ask(&mut link, 3, redeem(1000, PIN, "T-1")).await, Reply::Failed { .. }));
    assert_eq!(balances(floor.store(), ana).await, (10_000, 0));
}

async fn free_play_from_a_desk_that_fails_on_its_way_stays_free_play(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let ana = prepare(&floor).await;
    let now = floor_server::ledger::time(T0).unwrap();
    let rules = Rules::default();
    let actor = Actor::System("desk");
    let amount = floor_server::ledger::redeem_cashback(floor.store(), &rules, ana, club_rules::Points(1000), &actor, now).await.unwrap().unwrap();
    assert_eq!(amount, Money::from_cents(1_200));
    floor_server::ledger::free_play_sent(floor.store(), &rules, ana, amount, "DESK-1", now).await.unwrap().unwrap();
    assert_eq!(balances(floor.store(), ana).await, (9_000, 0));
    let (mut link, _) = floor.connect(0).await;
    let failed = event(1, TerminalEvent::FreePlayResult { transfer: "DESK-1".into(), outcome: TransferOutcome::Failed { reason: "door open".into() } });
    assert!(matches!(call(&mut link, &failed).await, ServerMessage::Ack { seq: 1, .. }));
    assert_eq!(balances(floor.store(), ana).await, (9_000, 1_200), "the points stay spent; the free play is back on the account");
}

async fn five_wrong_pins_lock_redemption_until_staff_unlock_it(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let ana = prepare(&floor).await;
    let (mut link, _) = floor.connect(0).await;
    for (i, left) in [4u32, 3, 2, 1].into_iter().enumerate() {
        assert_eq!(ask(&mut link, i as u64, redeem(1000, "1111", "W")).await, Reply::PinRefused { tries_left: left });
    }
    assert_eq!(ask(&mut link, 10, redeem(1000, "1111", "W")).await, Reply::PinLocked, "the fifth wrong PIN locks");
    assert_eq!(ask(&mut link, 11, redeem(1000, PIN, "W")).await, Reply::PinLocked, "even the right PIN, now");
    assert_eq!(balances(floor.store(), ana).await.0, 10_000, "nothing redeemed");
    assert!(floor_server::pins::unlock(floor.store(), ana, &Actor::System("reception"), T0).await.unwrap());
    assert!(matches!(ask(&mut link, 12, redeem(1000, PIN, "W")).await, Reply::Redeemed { .. }));
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'member.pin%' ORDER BY id")
        .fetch_all(floor.store().read())
        .await
        .unwrap();
    assert_eq!(audit, ["member.pin_set", "member.pin_locked", "member.pin_unlocked"]);
}

async fn a_self_excluded_member_cannot_redeem(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let ana = prepare(&floor).await;
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM members WHERE id = $1").bind(ana).fetch_one(floor.store().read()).await.unwrap();
    floor_server::club::add_exclusion(
        floor.store(),
        &floor_server::club::NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, T0 - 1, None, None),
        &SEED,
        T0,
    )
    .await
    .unwrap();
    let (mut link, _) = floor.connect(0).await;
    assert!(matches!(ask(&mut link, 1, redeem(1000, PIN, "X-1")).await, Reply::Refused { .. }));
    assert_eq!(balances(floor.store(), ana).await, (10_000, 0));
}

async fn a_card_at_a_table_announces_the_player_to_the_pit(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let table = enrol(floor.store(), "TABLE-7", floor_server::terminals::TerminalKind::Table, None).await;
    let mut link = Link::connect(&floor.server.ws_url(), &table, &terminal_agent::link::Trust::WebRoots).await.unwrap();
    assert!(matches!(call(&mut link, &hello()).await, ServerMessage::HelloAck { .. }));
    let present = |seq, card: &str| event(seq, TerminalEvent::TablePresence { card: CardNumber::new(card), seat: Some(3) });
    assert!(matches!(call(&mut link, &present(1, "CARDANA")).await, ServerMessage::Ack { seq: 1, outcome: floor_protocol::Outcome::Recorded }));
    assert!(matches!(call(&mut link, &present(2, "CARDLOST")).await, ServerMessage::Ack { seq: 2, outcome: floor_protocol::Outcome::Refused { .. } }));
    let players = floor_server::tables::players_at(floor.store(), "TABLE-7", T0 + 10).await.unwrap();
    assert_eq!(players.len(), 1, "{players:?}");
    assert_eq!((players[0].first_name.as_str(), players[0].seat), ("Ana", Some(3)));
    // The pit console lists her under the table terminal (and not the refused card's holder).
    club_tests::web::seed_staff(floor.store(), T0).await;
    floor.server.clock.set(T0 + 10);
    let mut croupier = club_tests::web::WebClient::new(&format!("http://{}", floor.server.addr));
    croupier.login("croupier", club_tests::web::PASSWORD).await;
    let page = croupier.get("/pit").await.text().await.unwrap();
    let start = page.find("id=\"presented-at-tables\"").expect("the pit page has the section");
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(section.contains("TABLE-7") && section.contains("Ana") && section.contains("Bronze"), "{section}");
    assert!(!section.contains("Jan"), "a refused card is not announced: {section}");
    // A slot terminal cannot announce table players.
    let (mut slot, _) = floor.connect(0).await;
    assert!(matches!(call(&mut slot, &present(1, "CARDANA")).await, ServerMessage::Ack { outcome: floor_protocol::Outcome::Rejected { .. }, .. }));
}

floor_server::on_both_backends!(
    redemption_is_idempotent_and_a_failed_transfer_reverses_it_once,
    free_play_from_a_desk_that_fails_on_its_way_stays_free_play,
    five_wrong_pins_lock_redemption_until_staff_unlock_it,
    a_self_excluded_member_cannot_redeem,
    a_card_at_a_table_announces_the_player_to_the_pit,
);
