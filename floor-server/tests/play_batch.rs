//! `ledger::PlayBatch` (the gateway's way of deciding a batch of play at once) against play by
//! play, on SQLite and on PostgreSQL: the same script of play, one play per transaction on one
//! database and all of it in one batch on another, must leave exactly the same rows.
#![allow(clippy::type_complexity)] // rows read back as tuples, compared whole

// Amounts in cents are written EUR_cents (4_000_00 is EUR 4,000.00).
#![allow(clippy::inconsistent_digit_grouping)]

use club_rules::{MachineType, Money, Rules};
use floor_server::club::{self, NewExclusion};
use floor_server::ledger::{self, EventRef, PlayBatch};
use floor_server::store::{Backend, Store};
use floor_server::testing::TestDb;

mod common;
use common::{DAY, SEED, T0, at, member, play};

floor_server::on_both_backends!(a_batch_writes_exactly_what_play_by_play_writes);

/// One play of the script.
#[derive(Clone, Copy, Debug)]
struct Step {
    member: usize,
    machine: MachineType,
    cents: i64,
    ms: i64,
}

/// A reproducible script: three members, two machine types, wagers from EUR 0.10 to EUR 1,200.00
/// (enough to cross Silver within the script), times that wander back and forth over a few
/// days a year after the members' first earnings, so that the rolling 12-month window of
/// qualifying points drops earlier entries in the middle of the batch.
fn script() -> Vec<Step> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = T0 + 365 * DAY - DAY;
    let mut steps: Vec<Step> = (0..400)
        .map(|i| {
            let r = next();
            Step {
                member: (r % 3) as usize,
                machine: if r % 5 == 0 { MachineType::VideoPoker } else { MachineType::Slot },
                cents: 10 + (next() % 120_000) as i64,
                // Mostly forward in time, sometimes an older event (an offline session's play).
                ms: start + i * (4 * DAY / 400) - if r % 7 == 0 { (next() % DAY as u64) as i64 } else { 0 },
            }
        })
        .collect();
    // Dan: 9,000 points earned at T0 count until T0 + 12 months. A point just before that and
    // 1,500 points just after: qualifying is then 1,501, not 10,501 — no promotion.
    let hour = 3600 * 1000;
    steps.insert(100, Step { member: 3, machine: MachineType::Slot, cents: 4_00, ms: T0 + 365 * DAY - hour });
    steps.insert(300, Step { member: 3, machine: MachineType::Slot, cents: 6_000_00, ms: T0 + 365 * DAY + hour });
    steps
}

/// Four members with earnings spread over their first days (the entries the window drops later),
/// and an exclusion of the third for a while in the middle of the script.
async fn seed(store: &Store, rules: &Rules) -> Vec<(i64, i64)> {
    let mut members = Vec::new();
    for (i, name) in ["Ana", "Bor", "Cvet", "Dan"].iter().enumerate() {
        let (person, member, card) = member(store, name, &format!("BATCH{i}")).await;
        let seeds: Vec<(i64, i64)> = if i == 3 {
            vec![(T0, 36_000_00)]
        } else {
            (0..6).map(|d| (T0 + d * DAY / 2 + i as i64, 4_000_00 + d * 100_00)).collect()
        };
        for (ms, cents) in seeds {
            play(store, rules, member, card, MachineType::Slot, cents, ms).await;
        }
        if i == 2 {
            let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, T0 + 365 * DAY, Some(T0 + 366 * DAY), None);
            club::add_exclusion(store, &e, &SEED, T0).await.unwrap();
        }
        members.push((member, card));
    }
    members
}

/// Every row the plays touch, in a stable order, as text.
async fn rows(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let ledger: Vec<(i64, String, i64, Option<String>, Option<i64>, Option<String>, i64, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT member_id, kind, points, category, expires_at, reason, created_at, terminal_id, seq FROM points_ledger \
         ORDER BY created_at, member_id, seq, kind",
    )
    .fetch_all(store.read())
    .await
    .unwrap();
    out.extend(ledger.iter().map(|r| format!("ledger {r:?}")));
    let lots: Vec<(i64, String, i64, i64, i64)> =
        sqlx::query_as("SELECT member_id, category, opened_at, expires_at, remaining FROM points_lots ORDER BY opened_at, member_id")
            .fetch_all(store.read())
            .await
            .unwrap();
    out.extend(lots.iter().map(|r| format!("lot {r:?}")));
    let members: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, points_balance, tier FROM members ORDER BY id").fetch_all(store.read()).await.unwrap();
    out.extend(members.iter().map(|r| format!("member {r:?}")));
    let carry: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT member_id, category, carry_cents FROM points_carry ORDER BY member_id, category")
            .fetch_all(store.read())
            .await
            .unwrap();
    out.extend(carry.iter().map(|r| format!("carry {r:?}")));
    let tiers: Vec<(i64, String, Option<String>, Option<String>, i64)> =
        sqlx::query_as("SELECT member_id, kind, from_tier, to_tier, at FROM tier_events ORDER BY at, member_id, kind")
            .fetch_all(store.read())
            .await
            .unwrap();
    out.extend(tiers.iter().map(|r| format!("tier {r:?}")));
    out
}

async fn a_batch_writes_exactly_what_play_by_play_writes(backend: Backend) {
    let rules = Rules::default();
    let Some(one_db) = TestDb::new(backend).await else { return };
    let Some(batch_db) = TestDb::new(backend).await else { return };
    let (one, batch) = (one_db.store().await, batch_db.store().await);
    let members = seed(&one, &rules).await;
    assert_eq!(seed(&batch, &rules).await, members, "both databases hold the same members");
    let steps = script();

    for (i, s) in steps.iter().enumerate() {
        let (member, card) = members[s.member];
        let event = EventRef { terminal: "SLOT-1".into(), seq: i as i64 + 1 };
        let mut tx = one.begin().await.unwrap();
        ledger::apply_play(&mut tx, &rules, member, Some(card), s.machine, Money::from_cents(s.cents), at(s.ms), Some(&event))
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
    }

    let mut tx = batch.begin().await.unwrap();
    let mut plays = PlayBatch::default();
    for (i, s) in steps.iter().enumerate() {
        let (member, card) = members[s.member];
        let event = EventRef { terminal: "SLOT-1".into(), seq: i as i64 + 1 };
        plays.apply_play(&mut tx, &rules, member, Some(card), s.machine, Money::from_cents(s.cents), at(s.ms), Some(&event))
            .await
            .unwrap()
            .unwrap();
    }
    plays.flush(&mut tx).await.unwrap();
    tx.commit().await.unwrap();

    let (expected, got) = (rows(&one).await, rows(&batch).await);
    // The script does what it is meant to: a promotion inside it, refusals while excluded, and
    // earnings made while older ones leave the window.
    assert!(expected.iter().any(|r| r.starts_with("tier") && r.contains("silver")), "the script crosses Silver");
    assert!(expected.iter().any(|r| r.contains("refused:")), "the script plays while excluded");
    let dan = members[3].0;
    assert!(expected.contains(&format!("member ({dan}, 10501, \"bronze\")")), "Dan's first 9,000 points left the window");
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "row {i} differs");
    }
    assert_eq!(expected.len(), got.len());
}
