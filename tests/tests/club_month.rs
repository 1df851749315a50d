//! A month of the club through the gateway over real WebSockets, on SQLite and on PostgreSQL: slot
//! and video poker play, bar receipts, a table rating, cashback and machine transfers, an
//! exclusion, an expiry and the anniversary review, ending with exact balances, tiers, free play
//! and ledger entries. The server runs with a rules file (free play valid 14 days) and a manual
//! clock that the script moves day by day.

// Amounts in cents are written EUR_cents (4_000_00 is EUR 4,000.00).
#![allow(clippy::inconsistent_digit_grouping)]

use club_rules::table::{Played, TableRating};
use club_rules::{Money, Points, RefusalCode, Rules, RulesError, Tier};
use club_tests::*;
use floor_protocol::{
    CardNumber, CardOutReason, Envelope, Outcome, Play, Purchase, ReceiptLine, ServerMessage, Tender, TenderKind, TerminalEvent,
    TerminalMessage, TransferOutcome,
};
use floor_server::audit::Actor;
use floor_server::club::{self, NewExclusion};
use floor_server::ledger;
use floor_server::store::{Backend, Store};
use floor_server::testing::test_config;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use terminal_agent::link::Link;

floor_server::on_both_backends!(a_scripted_month_ends_with_exact_balances_tiers_and_entries);

const DAY: i64 = 24 * 3600 * 1000;
/// The month starts 340 days after the members joined, so their first anniversary falls in it.
const M0: i64 = T0 + 340 * DAY;
const RULES: &str = "version = \"club-month\"\n[free_play]\nexpiry_days = 14\n";

/// Day `n` of the month, an hour after the members' joining time of day.
fn day(n: i64) -> i64 {
    M0 + n * DAY + 3600 * 1000
}

/// The moment `ms` as the ledger takes it.
macro_rules! at {
    ($ms:expr) => {
        floor_server::ledger::time($ms).unwrap()
    };
}

/// A connected terminal and its next sequence number.
struct Terminal {
    link: Link,
    seq: u64,
}

impl Terminal {
    async fn send(&mut self, when: i64, event: TerminalEvent) -> Outcome {
        self.seq += 1;
        self.link.send(&TerminalMessage::Event(Envelope { seq: self.seq, at: when, event })).await.unwrap();
        loop {
            match recv(&mut self.link).await {
                ServerMessage::Ack { seq, outcome } if seq == self.seq => return outcome,
                // The exclusion pushes a block for Marko's card to every terminal, at any moment.
                ServerMessage::BlockCard { .. } => continue,
                other => panic!("event {}: {other:?}", self.seq),
            }
        }
    }

    async fn card_in(&mut self, when: i64, session: &str, card: &str) -> Outcome {
        self.send(when, TerminalEvent::CardIn { session: session.into(), card: CardNumber::new(card), offline: false, meters: None })
            .await
    }

    async fn play(&mut self, when: i64, session: &str, wagered: Decimal) {
        let play = Play { session: session.into(), game: club_rules::MachineType::Slot, wagered, won: dec!(0), games: 1, meters: None };
        assert_eq!(self.send(when, TerminalEvent::Play(play)).await, Outcome::Recorded);
    }

    async fn card_out(&mut self, when: i64, session: &str) {
        let out = TerminalEvent::CardOut { session: session.into(), reason: CardOutReason::Removed, meters: None };
        assert_eq!(self.send(when, out).await, Outcome::Recorded);
    }
}

async fn terminal(floor: &Floor, i: usize) -> Terminal {
    Terminal { link: floor.connect(i).await.0, seq: 0 }
}

fn line(category: &str, quantity: u32, unit_price: Decimal) -> ReceiptLine {
    ReceiptLine { sku: category.to_uppercase(), name: category.into(), category: category.into(), quantity, unit_price, already_discounted: false }
}

fn purchase(receipt: &str, card: &str, lines: Vec<ReceiptLine>, tenders: Vec<(TenderKind, Decimal)>) -> TerminalEvent {
    TerminalEvent::Purchase(Purchase {
        receipt: receipt.into(),
        card: CardNumber::new(card),
        lines,
        tenders: tenders.into_iter().map(|(kind, amount)| Tender { kind, amount }).collect(),
    })
}

async fn member_id(store: &Store, first_name: &str) -> i64 {
    sqlx::query_scalar("SELECT m.id FROM members m JOIN persons p ON p.id = m.person_id WHERE p.first_name = $1")
        .bind(first_name)
        .fetch_one(store.read())
        .await
        .unwrap()
}

/// (kind, number of entries, sum) per kind of a member's points ledger.
async fn points_entries(store: &Store, member: i64) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT kind, COUNT(*), CAST(SUM(points) AS BIGINT) FROM points_ledger WHERE member_id = $1 GROUP BY kind ORDER BY kind",
    )
    .bind(member)
    .fetch_all(store.read())
    .await
    .unwrap()
}

/// (kind, amount in cents) of a member's free-play ledger, in order.
async fn free_play_entries(store: &Store, member: i64) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT kind, amount_cents FROM free_play_ledger WHERE member_id = $1 ORDER BY id")
        .bind(member)
        .fetch_all(store.read())
        .await
        .unwrap()
}

async fn tier_history(store: &Store, member: i64) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT kind, from_tier, to_tier FROM tier_events WHERE member_id = $1 ORDER BY id")
        .bind(member)
        .fetch_all(store.read())
        .await
        .unwrap()
}

fn welcome(outcome: Outcome) -> (Tier, i64, Decimal) {
    match outcome {
        Outcome::Welcome(w) => (w.tier, w.points, w.free_play),
        other => panic!("not welcomed: {other:?}"),
    }
}

async fn a_scripted_month_ends_with_exact_balances_tiers_and_entries(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("rules.toml");
    std::fs::write(&rules_file, RULES).unwrap();
    let Some(floor) = Floor::start_with(backend, floor_server::config::Config { rules: Some(rules_file), ..test_config() }).await else {
        return;
    };
    let rules = Rules::from_toml_str(RULES).unwrap();
    let store = floor.store().clone();
    let clock = floor.server.clock.clone();
    let (ana, marko) = (member_id(&store, "Ana").await, member_id(&store, "Marko").await);
    let manager = Actor::Staff { id: 9, username: "manager".into() };
    let cashier = Actor::Staff { id: 1, username: "cashier".into() };
    let pit = Actor::Staff { id: 4, username: "pit".into() };
    let (mut slot, mut poker, mut bar) = (terminal(&floor, 0).await, terminal(&floor, 1).await, terminal(&floor, 2).await);

    // Day 0: a manager places Marko in Gold (no automatic demotion until his review).
    clock.set(day(0));
    ledger::manager_review(&store, &rules, marko, Tier::Gold, &manager, at!(day(0))).await.unwrap().unwrap();

    // Day 1: slot play (EUR 4 = 1 point) and video poker (EUR 8 = 1 point), remainders carried.
    clock.set(day(1));
    assert_eq!(welcome(slot.card_in(day(1), "ana-1", "CARDANA").await), (Tier::Bronze, 0, dec!(0)));
    for _ in 0..4 {
        slot.play(day(1), "ana-1", dec!(100.00)).await; // 25 points each
    }
    slot.play(day(1), "ana-1", dec!(3.00)).await; // carried
    // A terminal that missed an answer sends the event again: it gets the first answer and the
    // play earns once (the entry counts at the end say so).
    let again = Play { session: "ana-1".into(), game: club_rules::MachineType::Slot, wagered: dec!(100.00), won: dec!(0), games: 1, meters: None };
    let replay = TerminalMessage::Event(Envelope { seq: 2, at: day(1), event: TerminalEvent::Play(again) });
    assert_eq!(call(&mut slot.link, &replay).await, ServerMessage::Ack { seq: 2, outcome: Outcome::Recorded });
    slot.card_out(day(1), "ana-1").await;
    assert_eq!(welcome(poker.card_in(day(1), "marko-1", "CARDMARKO").await).0, Tier::Gold);
    poker.play(day(1), "marko-1", dec!(80.00)).await; // 10 points
    poker.play(day(1), "marko-1", dec!(5.00)).await; // carried
    poker.card_out(day(1), "marko-1").await;

    // Day 2: bar receipts. Cash earns, tobacco does not, a card tender does not; a receipt sent
    // again under a new sequence number earns nothing again.
    clock.set(day(2));
    let r1 = || purchase("R1", "CARDANA", vec![line("beer", 1, dec!(8.50)), line("tobacco", 1, dec!(10.00))], vec![(TenderKind::Cash, dec!(18.50))]);
    assert_eq!(bar.send(day(2), r1()).await, Outcome::Recorded); // 2 points
    assert_eq!(bar.send(day(2), r1()).await, Outcome::Rejected { reason: "receipt already recorded".into() });
    let r2 = purchase("R2", "CARDMARKO", vec![line("wine", 2, dec!(6.00))], vec![(TenderKind::Card, dec!(12.00))]);
    assert_eq!(bar.send(day(2), r2).await, Outcome::Recorded);

    // Day 3: Marko rated at blackjack: EUR 100 x 5 h x 63/h x 1.30 % = EUR 409.50 theoretical win,
    // x 3 = 1,228.5 points.
    clock.set(day(3));
    let rating = TableRating { game: "blackjack".into(), played: Played::Minutes(300), average_bet: Money::from_cents(100_00) };
    let rated = ledger::rate_table(&store, &rules, marko, &rating, &pit, at!(day(3))).await.unwrap().unwrap();
    assert_eq!((rated.earning.points(), rated.theoretical_win), (Points(1_228), Some(Money::from_cents(409_50))));

    // Day 5: Ana crosses 10,000 qualifying points on the fourth play: Silver in that transaction.
    clock.set(day(5));
    assert_eq!(welcome(slot.card_in(day(5), "ana-2", "CARDANA").await), (Tier::Bronze, 102, dec!(0)));
    for _ in 0..4 {
        slot.play(day(5), "ana-2", dec!(10000.00)).await; // 2,500 points each (+3.00 carried)
    }
    slot.card_out(day(5), "ana-2").await;
    assert_eq!(ledger::balances(&store, ana).await.unwrap().tier, Tier::Silver);

    // Day 6: cashback at the Silver rate (EUR 12 per 1,000 points).
    clock.set(day(6));
    let issued = ledger::redeem_cashback(&store, &rules, ana, Points(1_000), &cashier, at!(day(6))).await.unwrap();
    assert_eq!(issued, Ok(Money::from_cents(12_00)));

    // Day 7: a transfer that fails comes back; one that completes stays spent.
    clock.set(day(7));
    ledger::free_play_sent(&store, &rules, ana, Money::from_cents(5_00), "ft-1", at!(day(7))).await.unwrap().unwrap();
    let failed = TerminalEvent::FreePlayResult { transfer: "ft-1".into(), outcome: TransferOutcome::Failed { reason: "door open".into() } };
    assert_eq!(slot.send(day(7), failed).await, Outcome::Recorded);
    ledger::free_play_sent(&store, &rules, ana, Money::from_cents(4_00), "ft-2", at!(day(7))).await.unwrap().unwrap();
    let done = TerminalEvent::FreePlayResult { transfer: "ft-2".into(), outcome: TransferOutcome::Completed { amount: dec!(4.00) } };
    assert_eq!(slot.send(day(7), done).await, Outcome::Recorded);

    // Day 8: the welcome shows what the ledgers hold.
    clock.set(day(8));
    assert_eq!(welcome(slot.card_in(day(8), "ana-3", "CARDANA").await), (Tier::Silver, 9_102, dec!(8.00)));
    slot.card_out(day(8), "ana-3").await;

    // Day 9-19: Marko opens a session, then excludes himself from day 10 to day 18. His play
    // reported later with day 11's time earns nothing; his card and his redemption are refused.
    clock.set(day(9));
    welcome(poker.card_in(day(9), "marko-2", "CARDMARKO").await);
    let exclusion = NewExclusion {
        kind: "own_request".into(),
        person_id: Some(sqlx::query_scalar("SELECT person_id FROM members WHERE id = $1").bind(marko).fetch_one(store.read()).await.unwrap()),
        personal_id: None,
        first_name: None,
        last_name: None,
        birth_date: None,
        starts_at: day(10),
        ends_at: Some(day(18)),
        reason: None,
    };
    club::add_exclusion(&store, &exclusion, &manager, day(9)).await.unwrap();
    clock.set(day(11));
    poker.play(day(11), "marko-2", dec!(80.00)).await;
    poker.card_out(day(11), "marko-2").await;
    clock.set(day(12));
    assert_eq!(poker.card_in(day(12), "marko-3", "CARDMARKO").await, Outcome::refused(RefusalCode::SelfExcluded));
    let refused = ledger::redeem_cashback(&store, &rules, marko, Points(1_000), &cashier, at!(day(12))).await.unwrap();
    assert_eq!(refused, Err(RulesError::Refused(RefusalCode::SelfExcluded)));
    clock.set(day(19));
    let issued = ledger::redeem_cashback(&store, &rules, marko, Points(1_000), &cashier, at!(day(19))).await.unwrap();
    assert_eq!(issued, Ok(Money::from_cents(14_00)), "Gold rate, after the exclusion ended");

    // Day 20: Ana's free play (issued day 6, valid 14 days under this rules file) expires.
    clock.set(day(20));
    let expired = ledger::expire_due(&store, &rules, at!(day(20))).await.unwrap();
    assert_eq!((expired.points_entries, expired.free_play_entries), (0, 1));

    // Day 25: the first membership anniversary. Ana keeps Silver on her points; Marko, placed in
    // Gold by hand, follows his points down to Bronze; the others stay Bronze. Once only.
    clock.set(day(25));
    assert_eq!(at!(day(25)).date_naive().to_string(), "2027-09-21");
    assert_eq!(ledger::anniversary_reviews(&store, &rules, at!(day(25))).await.unwrap(), 4);
    assert_eq!(ledger::anniversary_reviews(&store, &rules, at!(day(25) + 3600 * 1000)).await.unwrap(), 0);

    // The end of the month: exact balances, tiers, free play and entries.
    let a = ledger::balances(&store, ana).await.unwrap();
    let m = ledger::balances(&store, marko).await.unwrap();
    assert_eq!((a.points, a.tier, a.free_play), (Points(9_102), Tier::Silver, Money::ZERO));
    assert_eq!((m.points, m.tier, m.free_play), (Points(238), Tier::Bronze, Money::from_cents(14_00)));
    assert_eq!(points_entries(&store, ana).await, vec![("earned".into(), 9, 10_102), ("redeemed".into(), 6, -1_000)]);
    assert_eq!(
        points_entries(&store, marko).await,
        vec![("earned".into(), 2, 1_238), ("no_points".into(), 1, 0), ("redeemed".into(), 2, -1_000)]
    );
    assert_eq!(
        free_play_entries(&store, ana).await,
        vec![("issued".into(), 12_00), ("sent".into(), -5_00), ("returned".into(), 5_00), ("sent".into(), -4_00), ("expired".into(), -8_00)]
    );
    assert_eq!(free_play_entries(&store, marko).await, vec![("issued".into(), 14_00)]);
    let (s, g, b) = (Some("silver".to_owned()), Some("gold".to_owned()), Some("bronze".to_owned()));
    assert_eq!(tier_history(&store, ana).await, vec![("promoted".into(), b.clone(), s.clone()), ("reviewed".into(), s.clone(), s)]);
    assert_eq!(tier_history(&store, marko).await, vec![("reviewed".into(), b.clone(), g.clone()), ("reviewed".into(), g, b)]);
    let carries: Vec<(i64, String, i64, String)> =
        sqlx::query_as("SELECT member_id, category, carry_cents, carry_points FROM points_carry ORDER BY member_id, category")
            .fetch_all(store.read())
            .await
            .unwrap();
    assert_eq!(
        carries,
        vec![(ana, "slot".into(), 3_00, "0".into()), (marko, "table".into(), 0, "0.5000".into()), (marko, "video_poker".into(), 5_00, "0".into())]
    );
    let versions: Vec<String> = sqlx::query_scalar("SELECT DISTINCT rule_version FROM points_ledger").fetch_all(store.read()).await.unwrap();
    assert_eq!(versions, vec![rules.version().as_str().to_owned()], "every entry names the rules file's version");
    assert!(rules.version().as_str().starts_with("club-month+"));
    floor.server.shutdown().await.unwrap();
}
