//! What the ledger tests share: members made as reception makes them, plays applied one per
//! transaction, exclusions, and the ledger's own cross-checks.
#![allow(dead_code)] // each test file uses its own part

use chrono::{DateTime, Utc};
use club_rules::{CardState, MachineType, Money, Rules, RulesError};
use floor_protocol::CardNumber;
use floor_server::audit::Actor;
use floor_server::club::{self, NewExclusion, NewPerson};
use club_rules::earning::Earning;
use floor_server::ledger;
use floor_server::store::Store;

pub const T0: i64 = 1_790_000_000_000;
pub const DAY: i64 = 24 * 3600 * 1000;
pub const SEED: Actor = Actor::System("test");

pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// An active member with an active card, joined at `T0`: (person, member, card).
pub async fn member(store: &Store, first: &str, card: &str) -> (i64, i64, i64) {
    let mut tx = store.begin().await.unwrap();
    let p = NewPerson { first_name: first.into(), last_name: "Test".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() };
    let person = club::create_person(&mut tx, &p, T0).await.unwrap();
    let member = club::create_member(&mut tx, person, T0).await.unwrap();
    let card = club::issue_card(&mut tx, member, &CardNumber::new(card), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(store, card, CardState::Active, &SEED, T0).await.unwrap();
    (person, member, card)
}

/// One play applied in its own transaction: what it earned, or the refusal.
pub async fn try_play(store: &Store, rules: &Rules, member: i64, card: i64, machine: MachineType, cents: i64, ms: i64) -> Result<Earning, RulesError> {
    let mut tx = store.begin().await.unwrap();
    let earning = ledger::apply_play(&mut tx, rules, member, Some(card), machine, Money::from_cents(cents), at(ms), None).await.unwrap();
    tx.commit().await.unwrap();
    earning
}

/// One play that must earn.
pub async fn play(store: &Store, rules: &Rules, member: i64, card: i64, machine: MachineType, cents: i64, ms: i64) -> Earning {
    try_play(store, rules, member, card, machine, cents, ms).await.expect("the play earns")
}

/// The person's own request to be excluded from `from`, until `until` (or for ever).
pub async fn exclude(store: &Store, person: i64, from: i64, until: Option<i64>) {
    let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, from, until, None);
    club::add_exclusion(store, &e, &SEED, from).await.unwrap();
}

pub async fn scalar(store: &Store, sql: &'static str, member: i64) -> i64 {
    sqlx::query_scalar(sql).bind(member).fetch_one(store.read()).await.unwrap()
}

/// The points balance, after checking that the cached balance, the entries and the lots agree
/// and that it is not negative.
pub async fn points_balance(store: &Store, member: i64) -> i64 {
    let cached = scalar(store, "SELECT points_balance FROM members WHERE id = $1", member).await;
    let entries = scalar(store, "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE member_id = $1", member).await;
    let lots = scalar(store, "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM points_lots WHERE member_id = $1", member).await;
    assert_eq!((cached, lots), (entries, entries), "balance, lots and entries agree");
    assert!(cached >= 0);
    cached
}
