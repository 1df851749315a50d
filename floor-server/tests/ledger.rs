//! The ledgers on SQLite and on PostgreSQL (`sqlite::…`, `postgres::…`): every integration path of
//! `floor_server::ledger` against a real database, with exact balances and entries.
#![allow(clippy::type_complexity)] // rows read back as tuples, compared whole

// Amounts in cents are written EUR_cents (4_000_00 is EUR 4,000.00).
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::{Months, TimeDelta};
use club_rules::earning::{Earning, NoPointsReason, Receipt, ReceiptLine, Tender, TenderKind};
use club_rules::membership::EndReason;
use club_rules::pricing::Outlet;
use club_rules::table::{Played, TableRating};
use club_rules::{MachineType, MemberState, Money, Points, RefusalCode, Rules, RulesError, StaffId, Tier};
use floor_server::audit::Actor;
use floor_server::ledger::{self, CorrectionOutcome};
use floor_server::store::{Backend, Store};
use floor_server::testing::TestDb;

mod common;
use common::{DAY, SEED, T0, at, exclude, member, play, points_balance, scalar};

floor_server::on_both_backends!(
    machine_play_earns_per_machine_type_and_carries_the_remainder,
    play_by_a_member_excluded_at_the_events_time_earns_nothing_and_says_why,
    redemption_is_refused_for_an_excluded_member_and_allowed_after_the_exclusion,
    cashback_spends_the_oldest_lots_and_free_play_goes_out_and_comes_back,
    expiry_writes_one_entry_per_lot_and_a_repeat_changes_nothing,
    promotion_to_silver_is_in_the_transaction_of_the_crossing_earning,
    a_receipt_earns_on_cash_without_tobacco_and_a_replay_changes_nothing,
    corrections_above_the_threshold_need_a_second_person,
    a_balance_never_goes_negative,
    anniversary_review_follows_the_points_and_lists_vip_members,
    vip_needs_eligibility_and_a_manager,
    ending_a_membership_deletes_or_freezes_the_balances,
    a_table_rating_earns_and_carries_the_fraction,
    two_processes_running_the_jobs_at_once_write_each_entry_once,
    the_server_runs_the_jobs_on_its_own,
);

fn eur(cents: i64) -> Money {
    Money::from_cents(cents)
}

fn staff(id: i64) -> Actor {
    Actor::Staff { id, username: format!("staff{id}") }
}

async fn db(backend: Backend) -> Option<(TestDb, Store, Rules)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    Some((db, store, Rules::default()))
}

/// Checks the ledger's invariants and returns the points balance: the cached balance equals the
/// sum of the entries and the sum of the lots, and is not negative; the same for free play.
async fn consistent_points(store: &Store, member: i64) -> i64 {
    let cached = points_balance(store, member).await;
    let fp = scalar(store, "SELECT free_play_cents FROM members WHERE id = $1", member).await;
    let fp_entries =
        scalar(store, "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM free_play_ledger WHERE member_id = $1", member).await;
    let grants =
        scalar(store, "SELECT CAST(COALESCE(SUM(remaining_cents), 0) AS BIGINT) FROM free_play_grants WHERE member_id = $1", member).await;
    assert_eq!((fp, grants), (fp_entries, fp_entries), "free play, grants and entries agree");
    cached
}

async fn free_play(store: &Store, member: i64) -> i64 {
    scalar(store, "SELECT free_play_cents FROM members WHERE id = $1", member).await
}

async fn tier(store: &Store, member: i64) -> Tier {
    ledger::balances(store, member).await.unwrap().tier
}

async fn machine_play_earns_per_machine_type_and_carries_the_remainder(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    assert_eq!(play(&store, &rules, m, card, MachineType::Slot, 3_00, T0 + 1).await.points(), Points(0));
    assert_eq!(play(&store, &rules, m, card, MachineType::Slot, 5_00, T0 + 2).await.points(), Points(2));
    assert_eq!(play(&store, &rules, m, card, MachineType::VideoPoker, 10_00, T0 + 3).await.points(), Points(1));
    assert_eq!(play(&store, &rules, m, card, MachineType::ElectronicRoulette, 7_99, T0 + 4).await.points(), Points(0));
    assert_eq!(consistent_points(&store, m).await, 3);
    let carry: Vec<(String, i64)> =
        sqlx::query_as("SELECT category, carry_cents FROM points_carry WHERE member_id = $1 ORDER BY category")
            .bind(m)
            .fetch_all(store.read())
            .await
            .unwrap();
    assert_eq!(carry, vec![("electronic_roulette".into(), 7_99), ("slot".into(), 0), ("video_poker".into(), 2_00)]);
    let versions: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT rule_version FROM points_ledger WHERE member_id = $1").bind(m).fetch_all(store.read()).await.unwrap();
    assert_eq!(versions, vec![rules.version().as_str().to_owned()]);
}

async fn play_by_a_member_excluded_at_the_events_time_earns_nothing_and_says_why(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (person, m, card) = member(&store, "Ana", "C1").await;
    exclude(&store, person, T0 + 10 * DAY, None).await;
    // Offline play from before the exclusion, forwarded late, still earns.
    assert_eq!(play(&store, &rules, m, card, MachineType::Slot, 40_00, T0 + DAY).await.points(), Points(10));
    let refused = play(&store, &rules, m, card, MachineType::Slot, 40_00, T0 + 11 * DAY).await;
    assert!(matches!(refused, Earning::NoPoints { reason: NoPointsReason::Refused(RefusalCode::SelfExcluded), .. }), "{refused:?}");
    let lines: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, points, reason FROM points_ledger WHERE member_id = $1 ORDER BY id")
            .bind(m)
            .fetch_all(store.read())
            .await
            .unwrap();
    assert_eq!(lines, vec![("earned".into(), 10, None), ("no_points".into(), 0, Some("refused:self_excluded".into()))]);
    assert_eq!(consistent_points(&store, m).await, 10);
}

async fn redemption_is_refused_for_an_excluded_member_and_allowed_after_the_exclusion(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (person, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 4_000_00, T0 + 1).await;
    exclude(&store, person, T0 + DAY, Some(T0 + 30 * DAY)).await;
    let refused = ledger::redeem_cashback(&store, &rules, m, Points(1_000), &staff(1), at(T0 + 2 * DAY)).await.unwrap();
    assert_eq!(refused, Err(RulesError::Refused(RefusalCode::SelfExcluded)));
    assert_eq!((consistent_points(&store, m).await, free_play(&store, m).await), (1_000, 0));
    // After the exclusion ends, points still within their validity can be used.
    let issued = ledger::redeem_cashback(&store, &rules, m, Points(1_000), &staff(1), at(T0 + 31 * DAY)).await.unwrap();
    assert_eq!(issued, Ok(eur(10_00)));
    assert_eq!((consistent_points(&store, m).await, free_play(&store, m).await), (0, 10_00));
}

async fn cashback_spends_the_oldest_lots_and_free_play_goes_out_and_comes_back(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 2_400_00, T0 + 1).await; // 600 points
    play(&store, &rules, m, card, MachineType::Slot, 2_400_00, T0 + DAY).await; // 600 points
    let step = ledger::redeem_cashback(&store, &rules, m, Points(1_050), &staff(1), at(T0 + 2 * DAY)).await.unwrap();
    assert_eq!(step, Err(RulesError::NotACashbackStep { points: Points(1_050), step: Points(100) }));
    assert_eq!(ledger::redeem_cashback(&store, &rules, m, Points(1_000), &staff(1), at(T0 + 2 * DAY)).await.unwrap(), Ok(eur(10_00)));
    let lots: Vec<i64> = sqlx::query_scalar("SELECT remaining FROM points_lots WHERE member_id = $1 ORDER BY opened_at")
        .bind(m)
        .fetch_all(store.read())
        .await
        .unwrap();
    assert_eq!(lots, vec![0, 200], "the oldest lot is spent first");
    let when = at(T0 + 3 * DAY);
    assert_eq!(ledger::free_play_sent(&store, &rules, m, eur(4_00), "tx-1", when).await.unwrap(), Ok(()));
    assert_eq!(ledger::free_play_sent(&store, &rules, m, eur(4_00), "tx-1", when).await.unwrap(), Ok(()), "a repeat is a no-op");
    assert_eq!(free_play(&store, m).await, 6_00);
    let too_much = ledger::free_play_sent(&store, &rules, m, eur(7_00), "tx-2", when).await.unwrap();
    assert_eq!(too_much, Err(RulesError::InsufficientFreePlay { wanted: eur(7_00), available: eur(6_00) }));
    for expected in [eur(4_00), Money::ZERO] {
        let mut tx = store.begin().await.unwrap();
        let back = ledger::free_play::free_play_failed(&mut tx, &rules, "tx-1", when).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(back, Ok(expected));
    }
    assert_eq!(free_play(&store, m).await, 10_00);
    assert_eq!(consistent_points(&store, m).await, 200);
}

async fn expiry_writes_one_entry_per_lot_and_a_repeat_changes_nothing(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 4_400_00, T0).await; // 1,100 points
    ledger::redeem_cashback(&store, &rules, m, Points(1_000), &staff(1), at(T0 + DAY)).await.unwrap().unwrap();
    let earned = at(T0);
    let lot_end = earned.checked_add_months(Months::new(12)).unwrap();
    let grant_end = at(T0 + DAY) + TimeDelta::days(30);
    let before = ledger::expire_due(&store, &rules, grant_end - TimeDelta::milliseconds(1)).await.unwrap();
    assert_eq!((before.points_entries, before.free_play_entries), (0, 0));
    let grants = ledger::expire_due(&store, &rules, grant_end).await.unwrap();
    assert_eq!((grants.points_entries, grants.free_play_entries), (0, 1));
    assert_eq!(free_play(&store, m).await, 0);
    let lots = ledger::expire_due(&store, &rules, lot_end + TimeDelta::days(3)).await.unwrap();
    assert_eq!((lots.points_entries, lots.free_play_entries), (1, 0));
    let again = ledger::expire_due(&store, &rules, lot_end + TimeDelta::days(4)).await.unwrap();
    assert_eq!((again.points_entries, again.free_play_entries), (0, 0));
    let expiry: (i64, i64) = sqlx::query_as("SELECT points, created_at FROM points_ledger WHERE member_id = $1 AND kind = 'expired'")
        .bind(m)
        .fetch_one(store.read())
        .await
        .unwrap();
    assert_eq!(expiry, (-100, lot_end.timestamp_millis()), "dated at the lot's expiry, not at the sweep");
    assert_eq!(consistent_points(&store, m).await, 0);
}

async fn promotion_to_silver_is_in_the_transaction_of_the_crossing_earning(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 39_996_00, T0).await; // 9,999 points
    assert_eq!(tier(&store, m).await, Tier::Bronze);
    // The crossing earning, rolled back: neither the points nor the promotion remain.
    let mut tx = store.begin().await.unwrap();
    let earning = ledger::apply_play(&mut tx, &rules, m, Some(card), MachineType::Slot, eur(4_00), at(T0 + 1), None).await.unwrap().unwrap();
    let Earning::Points { tier: events, .. } = &earning else { panic!("{earning:?}") };
    assert_eq!(events.len(), 1);
    let inside: String = sqlx::query_scalar("SELECT tier FROM members WHERE id = $1").bind(m).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(inside, "silver");
    tx.rollback().await.unwrap();
    assert_eq!((tier(&store, m).await, consistent_points(&store, m).await), (Tier::Bronze, 9_999));
    play(&store, &rules, m, card, MachineType::Slot, 4_00, T0 + 1).await;
    assert_eq!((tier(&store, m).await, consistent_points(&store, m).await), (Tier::Silver, 10_000));
    let history: Vec<(String, Option<String>, Option<String>, i64)> =
        sqlx::query_as("SELECT kind, from_tier, to_tier, at FROM tier_events WHERE member_id = $1").bind(m).fetch_all(store.read()).await.unwrap();
    assert_eq!(history, vec![("promoted".into(), Some("bronze".into()), Some("silver".into()), T0 + 1)]);
}

fn receipt(lines: &[(&str, i64)], tenders: &[(TenderKind, i64)]) -> Receipt {
    Receipt {
        outlet: Outlet::Bar,
        lines: lines.iter().map(|(c, a)| ReceiptLine { category: (*c).into(), amount: eur(*a) }).collect(),
        tenders: tenders.iter().map(|(k, a)| Tender { kind: *k, amount: eur(*a) }).collect(),
    }
}

async fn a_receipt_earns_on_cash_without_tobacco_and_a_replay_changes_nothing(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    let r = receipt(&[("tobacco", 10_00), ("beer", 8_50)], &[(TenderKind::Cash, 18_50)]);
    for expected in [Some(Points(2)), None] {
        let mut tx = store.begin().await.unwrap();
        let got = ledger::apply_receipt(&mut tx, &rules, m, Some(card), &r, at(T0), None, "receipt:BAR-1:42").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(got.map(|d| d.unwrap().points()), expected);
    }
    let card_paid = receipt(&[("beer", 20_00)], &[(TenderKind::Card, 20_00)]);
    let mut tx = store.begin().await.unwrap();
    let got = ledger::apply_receipt(&mut tx, &rules, m, Some(card), &card_paid, at(T0), None, "receipt:BAR-1:43").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(got.unwrap().unwrap().points(), Points(0));
    assert_eq!(consistent_points(&store, m).await, 2);
}

async fn corrections_above_the_threshold_need_a_second_person(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, _) = member(&store, "Ana", "C1").await;
    let now = at(T0 + DAY);
    let small = ledger::request_correction(&store, &rules, m, Points(500), "meter fault", &staff(1), now).await.unwrap();
    assert_eq!(small, Ok(CorrectionOutcome::Applied));
    let big = ledger::request_correction(&store, &rules, m, Points(5_000), "lost session", &staff(1), now).await.unwrap();
    let Ok(CorrectionOutcome::Pending { request }) = big else { panic!("{big:?}") };
    assert_eq!(consistent_points(&store, m).await, 500, "nothing written before approval");
    let same = ledger::approve_correction(&store, &rules, request, &staff(1), now).await.unwrap();
    assert_eq!(same, Err(RulesError::SameApprover(StaffId(1))));
    assert_eq!(ledger::approve_correction(&store, &rules, request, &staff(2), now).await.unwrap(), Ok(()));
    assert!(matches!(ledger::approve_correction(&store, &rules, request, &staff(3), now).await, Err(floor_server::Error::Conflict(_))));
    assert_eq!(consistent_points(&store, m).await, 5_500);
    let lines: Vec<(i64, Option<String>, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT points, reason, staff_id, approved_by FROM points_ledger WHERE member_id = $1 AND kind = 'corrected' ORDER BY id",
    )
    .bind(m)
    .fetch_all(store.read())
    .await
    .unwrap();
    assert_eq!(lines, vec![(500, Some("meter fault".into()), Some(1), None), (5_000, Some("lost session".into()), Some(1), Some(2))]);
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'points.correction.%'")
        .fetch_one(store.read())
        .await
        .unwrap();
    assert_eq!(audited, 3, "two requests and one approval");
    // A terminal or the system cannot make a correction: it names a person.
    assert!(matches!(
        ledger::request_correction(&store, &rules, m, Points(1), "x", &SEED, now).await,
        Err(floor_server::Error::Forbidden)
    ));
}

async fn a_balance_never_goes_negative(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 4_000_00, T0).await; // 1,000 points
    let now = at(T0 + DAY);
    let r = ledger::redeem_cashback(&store, &rules, m, Points(1_100), &staff(1), now).await.unwrap();
    assert_eq!(r, Err(RulesError::InsufficientPoints { wanted: Points(1_100), available: Points(1_000) }));
    let c = ledger::request_correction(&store, &rules, m, Points(-900), "x", &staff(1), now).await.unwrap();
    assert_eq!(c, Ok(CorrectionOutcome::Applied));
    let c = ledger::request_correction(&store, &rules, m, Points(-101), "x", &staff(1), now).await.unwrap();
    assert_eq!(c, Err(RulesError::InsufficientPoints { wanted: Points(101), available: Points(100) }));
    assert_eq!(consistent_points(&store, m).await, 100);
    let mut tx = store.begin().await.unwrap();
    let e = sqlx::query("UPDATE points_lots SET remaining = remaining - 101 WHERE member_id = $1").bind(m).execute(&mut *tx).await;
    assert!(e.is_err(), "the database refuses a negative lot as well");
}

async fn anniversary_review_follows_the_points_and_lists_vip_members(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, silver, card) = member(&store, "Ana", "C1").await;
    let (_, gold, _) = member(&store, "Marko", "C2").await;
    let (_, chairman, _) = member(&store, "Jan", "C3").await;
    play(&store, &rules, silver, card, MachineType::Slot, 48_000_00, T0 + 200 * DAY).await; // 12,000 points
    let manager = staff(9);
    ledger::manager_review(&store, &rules, gold, Tier::Gold, &manager, at(T0 + DAY)).await.unwrap().unwrap();
    ledger::invite_chairman(&store, &rules, chairman, &manager, at(T0 + DAY)).await.unwrap().unwrap();
    // 2026-09-21 joined; no review before the first anniversary.
    assert_eq!(ledger::anniversary_reviews(&store, &rules, at(T0 + 300 * DAY)).await.unwrap(), 0);
    let review_day = at(T0).checked_add_months(Months::new(12)).unwrap() + TimeDelta::hours(1);
    assert_eq!(ledger::anniversary_reviews(&store, &rules, review_day).await.unwrap(), 3);
    assert_eq!(ledger::anniversary_reviews(&store, &rules, review_day + TimeDelta::hours(1)).await.unwrap(), 0, "once a year");
    assert_eq!((tier(&store, silver).await, tier(&store, gold).await, tier(&store, chairman).await), (Tier::Silver, Tier::Bronze, Tier::Chairman));
    let listed = ledger::review_list(&store).await.unwrap();
    assert_eq!(listed.iter().map(|l| (l.member_id, l.reason.as_str())).collect::<Vec<_>>(), vec![(chairman, "anniversary")]);
    assert_eq!(listed[0].anniversary, Some(review_day.date_naive()));
}

async fn vip_needs_eligibility_and_a_manager(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    let manager = staff(9);
    let early = ledger::promote_vip(&store, &rules, m, &manager, at(T0)).await.unwrap();
    assert_eq!(early, Err(RulesError::NotEligibleForVip { qualifying: Points(0), threshold: Points(100_000) }));
    play(&store, &rules, m, card, MachineType::Slot, 400_000_00, T0 + 1).await; // 100,000 points
    assert_eq!(tier(&store, m).await, Tier::Gold, "automatic promotion stops at Gold");
    let listed = ledger::review_list(&store).await.unwrap();
    assert_eq!(listed.iter().map(|l| (l.member_id, l.reason.as_str())).collect::<Vec<_>>(), vec![(m, "vip_eligible")]);
    ledger::promote_vip(&store, &rules, m, &manager, at(T0 + 2)).await.unwrap().unwrap();
    assert_eq!(tier(&store, m).await, Tier::VipExclusive);
    assert!(ledger::review_list(&store).await.unwrap().is_empty());
}

async fn ending_a_membership_deletes_or_freezes_the_balances(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, leaver, c1) = member(&store, "Ana", "C1").await;
    let (_, abuser, c2) = member(&store, "Marko", "C2").await;
    for (m, c) in [(leaver, c1), (abuser, c2)] {
        play(&store, &rules, m, c, MachineType::Slot, 4_400_00, T0).await; // 1,100 points
        ledger::redeem_cashback(&store, &rules, m, Points(1_000), &staff(1), at(T0 + 1)).await.unwrap().unwrap();
    }
    let now = at(T0 + DAY);
    let manager = staff(9);
    assert_eq!(ledger::end_membership(&store, &rules, leaver, EndReason::MemberRequest, &manager, now).await.unwrap(), MemberState::Left);
    assert_eq!(ledger::end_membership(&store, &rules, abuser, EndReason::Abuse, &manager, now).await.unwrap(), MemberState::Terminated);
    assert_eq!((consistent_points(&store, leaver).await, free_play(&store, leaver).await), (100, 10_00));
    assert_eq!((consistent_points(&store, abuser).await, free_play(&store, abuser).await), (0, 0));
    let refused = ledger::redeem_cashback(&store, &rules, leaver, Points(1_000), &manager, now).await.unwrap();
    assert_eq!(refused, Err(RulesError::Refused(RefusalCode::MembershipEnded)), "kept, but unusable");
    let deleted: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, points, reason FROM points_ledger WHERE member_id = $1 AND kind = 'deleted'")
            .bind(abuser)
            .fetch_all(store.read())
            .await
            .unwrap();
    assert_eq!(deleted, vec![("deleted".into(), -100, Some("abuse".into()))]);
    assert!(matches!(
        ledger::end_membership(&store, &rules, abuser, EndReason::Abuse, &manager, now).await,
        Err(floor_server::Error::Conflict(_))
    ));
}

async fn a_table_rating_earns_and_carries_the_fraction(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, _) = member(&store, "Ana", "C1").await;
    let rating = TableRating { game: "blackjack".into(), played: Played::Minutes(60), average_bet: eur(50_00) };
    // 50 x 1 h x 63/h x 1.30 % = EUR 40.95 theoretical win; x 3 = 122.85 points.
    let first = ledger::rate_table(&store, &rules, m, &rating, &staff(4), at(T0)).await.unwrap().unwrap();
    assert_eq!((first.earning.points(), first.theoretical_win), (Points(122), Some(eur(40_95))));
    let second = ledger::rate_table(&store, &rules, m, &rating, &staff(4), at(T0 + 1)).await.unwrap().unwrap();
    assert_eq!(second.earning.points(), Points(123), "0.85 + 122.85 = 123.70");
    let carry: String = sqlx::query_scalar("SELECT carry_points FROM points_carry WHERE member_id = $1 AND category = 'table'")
        .bind(m)
        .fetch_one(store.read())
        .await
        .unwrap();
    assert_eq!(carry, "0.7000");
    let unknown = TableRating { game: "pachinko".into(), ..rating };
    let refused = ledger::rate_table(&store, &rules, m, &unknown, &staff(4), at(T0 + 2)).await.unwrap();
    assert_eq!(refused.map(|e| e.earning.points()), Err(RulesError::UnknownTableGame("pachinko".into())));
    assert_eq!(consistent_points(&store, m).await, 245);
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM table_ratings WHERE member_id = $1", m).await, 2);
}

async fn two_processes_running_the_jobs_at_once_write_each_entry_once(backend: Backend) {
    let Some((db, store, rules)) = db(backend).await else { return };
    let other = db.store().await; // a second pool, as a second floor-server process has
    let mut members = Vec::new();
    for i in 0..6 {
        let (_, m, card) = member(&store, &format!("P{i}"), &format!("C{i}")).await;
        play(&store, &rules, m, card, MachineType::Slot, 400_00, T0).await; // 100 points
        members.push(m);
    }
    let later = at(T0).checked_add_months(Months::new(13)).unwrap();
    let (a, b) = tokio::join!(ledger::expire_due(&store, &rules, later), ledger::expire_due(&other, &rules, later));
    assert_eq!(a.unwrap().points_entries + b.unwrap().points_entries, 6);
    let (a, b) = tokio::join!(ledger::anniversary_reviews(&store, &rules, later), ledger::anniversary_reviews(&other, &rules, later));
    assert_eq!(a.unwrap() + b.unwrap(), 6);
    for m in members {
        assert_eq!(consistent_points(&store, m).await, 0);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM points_ledger WHERE member_id = $1 AND kind = 'expired'", m).await, 1);
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tier_events WHERE member_id = $1", m).await, 1);
    }
}

async fn the_server_runs_the_jobs_on_its_own(backend: Backend) {
    let Some((_db, store, rules)) = db(backend).await else { return };
    let (_, m, card) = member(&store, "Ana", "C1").await;
    play(&store, &rules, m, card, MachineType::Slot, 400_00, T0).await;
    let clock = floor_server::clock::ManualClock::new(T0 + 400 * DAY);
    let stop = tokio_util::sync::CancellationToken::new();
    let jobs = ledger::spawn_jobs(store.clone(), std::sync::Arc::new(rules), std::sync::Arc::new(clock), stop.clone());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // Poll one value: the invariants are checked once the jobs have stopped, not mid-commit.
    while scalar(&store, "SELECT COUNT(*) FROM tier_events WHERE member_id = $1", m).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first run reviews the member");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.cancel();
    jobs.await.unwrap();
    assert_eq!(consistent_points(&store, m).await, 0, "the same run expired the lot");
    assert_eq!(tier(&store, m).await, Tier::Bronze);
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM tier_events WHERE member_id = $1 AND kind = 'reviewed'", m).await, 1);
}
