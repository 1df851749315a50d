//! The desks' logic on SQLite and on PostgreSQL (`sqlite::…`, `postgres::…`): enrolment and its
//! refusals, the register and employee imports, card replacement, leaving and privacy, pit
//! ratings, and the cash desk's daily totals. The pages that call these are in `tests/` (browser).

// Amounts in cents are written EUR_cents (2_000_00 is EUR 2,000.00).
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::{DateTime, Months, Utc};
use club_rules::membership::JoinRefusal;
use club_rules::{CardState, Money, Points, Rules};
use floor_protocol::CardNumber;
use floor_server::audit::Actor;
use floor_server::cashdesk::{self, CashKind};
use floor_server::club::{self, NewExclusion, NewPerson};
use floor_server::enrolment::{self, Employee, Refusal};
use floor_server::pit::{self, PitTable};
use floor_server::store::{Backend, Store};
use floor_server::testing::TestDb;
use floor_server::{ledger, reception};

const T0: i64 = 1_790_000_000_000;
const MIN: i64 = 60_000;
const DAY: i64 = 24 * 3600 * 1000;

floor_server::on_both_backends!(
    enrolment_refuses_a_minor_the_register_a_ban_and_an_employee,
    a_register_file_is_imported_whole_or_not_at_all_and_once,
    a_replaced_card_keeps_the_balance_and_the_old_card_is_blocked,
    leaving_blocks_the_data_and_the_export_holds_the_ledgers,
    a_pit_rating_weights_the_bets_and_earns_once,
    cash_per_person_per_gaming_day_warns_at_2000,
);

fn staff(id: i64) -> Actor {
    Actor::Staff { id, username: format!("staff{id}") }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

async fn db(backend: Backend) -> Option<(TestDb, Store)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    Some((db, store))
}

fn person(first: &str, last: &str, birth: &str, pid: &str) -> NewPerson {
    NewPerson {
        first_name: first.into(),
        last_name: last.into(),
        birth_date: birth.into(),
        personal_id: Some(pid.into()),
        address: Some("Glavna 1".into()),
        city: Some("Nova Gorica".into()),
        country: Some("SI".into()),
        ..NewPerson::default()
    }
}

/// A birth date `years` years and `days` days before `T0`.
fn born(years: u32, days: i64) -> String {
    let today = at(T0).date_naive();
    let d = today.checked_sub_months(Months::new(12 * years)).unwrap();
    if days >= 0 { d - chrono::Days::new(days.unsigned_abs()) } else { d + chrono::Days::new(days.unsigned_abs()) }.to_string()
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.read()).await.unwrap()
}

async fn enrolled(store: &Store, p: &NewPerson, card: &str, now: i64) -> (i64, i64, i64) {
    let e = enrolment::enrol(store, p, Some(&CardNumber::new(card)), &staff(1), now).await.unwrap().unwrap();
    let card = e.card_id.unwrap();
    club::set_card_state(store, card, CardState::Active, &staff(1), now).await.unwrap();
    (e.person_id, e.member_id, card)
}

async fn enrolment_refuses_a_minor_the_register_a_ban_and_an_employee(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let refused = |r| Ok::<_, ()>(Err(Refusal::Rules(r)));
    let try_enrol = |p: NewPerson| {
        let store = store.clone();
        async move { enrolment::enrol(&store, &p, None, &staff(1), T0).await.unwrap().map(|_| ()) }
    };
    // 17 years and 364 days: refused; 18 today: enrolled.
    assert_eq!(Ok(try_enrol(person("Mia", "Young", &born(18, -1), "P-MINOR")).await), refused(JoinRefusal::UnderAge));
    assert_eq!(try_enrol(person("Eva", "Adult", &born(18, 0), "P-ADULT")).await, Ok(()));
    // On the regulator's register, matched by name and birth date (no personal id in the file).
    let file = "entry_id,personal_id,first_name,last_name,birth_date,starts_on,ends_on\nR-1,,Rok,Register,1970-05-05,2020-01-01,\n";
    enrolment::import_register(&store, file.as_bytes(), &staff(1), T0).await.unwrap();
    assert_eq!(Ok(try_enrol(person("rok", "REGISTER", "1970-05-05", "P-REG")).await), refused(JoinRefusal::SelfExcluded));
    // A current ban on a known person (a former member's person row, found by personal id).
    let (ban_person, _, _) = enrolled(&store, &person("Bor", "Banned", "1975-01-01", "P-BAN"), "CARDBAN", T0).await;
    let ban = NewExclusion {
        kind: "ban".into(),
        person_id: Some(ban_person),
        personal_id: Some("P-BAN2".into()),
        first_name: None,
        last_name: None,
        birth_date: None,
        starts_at: T0,
        ends_at: Some(T0 + 30 * DAY),
        reason: Some("fraud".into()),
    };
    club::add_exclusion(&store, &ban, &staff(2), T0).await.unwrap();
    assert_eq!(Ok(try_enrol(person("Bor", "Banned", "1975-01-01", "P-BAN2")).await), refused(JoinRefusal::Banned));
    // An employee of a partner, from the employee list.
    let emp = Employee {
        personal_id: None,
        first_name: "Eda".into(),
        last_name: "Employee".into(),
        birth_date: "1990-02-02".into(),
        employer: "Hotel Partner d.o.o.".into(),
        relation: "partner".into(),
    };
    let emp_id = enrolment::add_employee(&store, &emp, &staff(1), T0).await.unwrap();
    assert_eq!(Ok(try_enrol(person("Eda", "Employee", "1990-02-02", "P-EMP")).await), refused(JoinRefusal::Employee));
    // When the person stops working there, they may join.
    enrolment::end_employee(&store, emp_id, &staff(1), T0 + 1).await.unwrap();
    let later = enrolment::enrol(&store, &person("Eda", "Employee", "1990-02-02", "P-EMP"), None, &staff(1), T0 + 2).await.unwrap();
    assert!(later.is_ok(), "{later:?}");
    // Joining twice is refused.
    let again = enrolment::enrol(&store, &person("Eda", "Employee", "1990-02-02", "P-EMP"), None, &staff(1), T0 + 3).await.unwrap();
    assert_eq!(again.map(|_| ()), Err(Refusal::AlreadyMember));
    // Refusals stored nothing but their audit line: persons are the adult, Bor and Eda only.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM persons").await, 3);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM audit_log WHERE action = 'member.enrol_refused'").await, 5);
    let audited: Vec<String> = sqlx::query_scalar("SELECT after FROM audit_log WHERE action = 'member.enrol_refused' ORDER BY id")
        .fetch_all(store.read())
        .await
        .unwrap();
    assert!(audited.iter().all(|a| !a.contains("P-") && !a.contains("Mia")), "no personal data in the audit line: {audited:?}");
    store.close().await;
}

async fn a_register_file_is_imported_whole_or_not_at_all_and_once(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, member, _) = enrolled(&store, &person("Sara", "Later", "1980-03-03", "P-SARA"), "CARDSARA", T0).await;
    let header = "entry_id,personal_id,first_name,last_name,birth_date,starts_on,ends_on\n";
    let bad = format!("{header}A-1,,Ana,One,1971-01-01,2020-01-01,\nA-2,,Bad,Date,1971-13-01,2020-01-01,\n");
    let err = enrolment::import_register(&store, bad.as_bytes(), &staff(1), T0).await.unwrap_err();
    assert!(err.to_string().contains("row 3"), "{err}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM exclusions").await, 0, "nothing of a bad file is stored");
    let good = format!("{header}A-1,,Ana,One,1971-01-01,2020-01-01,\nA-2,P-SARA,Sara,Later,1980-03-03,2026-01-01,2027-01-01\n");
    let first = enrolment::import_register(&store, good.as_bytes(), &staff(1), T0).await.unwrap();
    assert_eq!((first.rows, first.added), (2, 2));
    let again = enrolment::import_register(&store, good.as_bytes(), &staff(1), T0 + 1).await.unwrap();
    assert_eq!((again.rows, again.added), (2, 0), "a repeated file adds nothing");
    // The member on the register is refused at the card-in gate and their card was pushed to the
    // terminals as blocked.
    let mut tx = store.begin().await.unwrap();
    let holder = club::card_holder(&mut tx, "CARDSARA", T0 + 2).await.unwrap().unwrap();
    drop(tx);
    assert!(club::card_in_decision(&holder).is_err());
    assert_eq!(holder.member_id, member);
    let pushed: Vec<String> = sqlx::query_scalar("SELECT message FROM terminal_broadcasts ORDER BY id").fetch_all(store.read()).await.unwrap();
    assert!(pushed.iter().any(|m| m.contains("CARDSARA")), "{pushed:?}");
    store.close().await;
}

async fn a_replaced_card_keeps_the_balance_and_the_old_card_is_blocked(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let rules = Rules::default();
    let (_, member, old) = enrolled(&store, &person("Ivo", "Card", "1985-04-04", "P-IVO"), "CARDOLD", T0).await;
    ledger::request_correction(&store, &rules, member, Points(400), "welcome gift", &staff(3), at(T0)).await.unwrap().unwrap();
    club::set_card_state(&store, old, CardState::BlockedLost, &staff(1), T0 + MIN).await.unwrap();
    let new = reception::replace_card(&store, old, &CardNumber::new("CARDNEW"), &staff(1), T0 + 2 * MIN).await.unwrap();
    club::set_card_state(&store, new, CardState::Active, &staff(1), T0 + 3 * MIN).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let new_holder = club::card_holder(&mut tx, "CARDNEW", T0 + 4 * MIN).await.unwrap().unwrap();
    let old_holder = club::card_holder(&mut tx, "CARDOLD", T0 + 4 * MIN).await.unwrap().unwrap();
    drop(tx);
    assert_eq!((new_holder.member_id, new_holder.points), (member, 400), "the balance is on the new card");
    assert!(club::card_in_decision(&new_holder).is_ok());
    assert_eq!(old_holder.card_state, CardState::Replaced);
    assert!(club::card_in_decision(&old_holder).is_err());
    // A replaced card cannot be replaced again, and a card number cannot be reused.
    assert!(reception::replace_card(&store, old, &CardNumber::new("CARDX"), &staff(1), T0 + 5 * MIN).await.is_err());
    assert!(reception::replace_card(&store, new, &CardNumber::new("CARDOLD"), &staff(1), T0 + 5 * MIN).await.is_err());
    let replaced_by: Option<i64> = sqlx::query_scalar("SELECT replaced_by FROM cards WHERE id = $1").bind(old).fetch_one(store.read()).await.unwrap();
    assert_eq!(replaced_by, Some(new));
    store.close().await;
}

async fn leaving_blocks_the_data_and_the_export_holds_the_ledgers(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let rules = Rules::default();
    let (person_id, member, _) = enrolled(&store, &person("Lea", "Leaves", "1982-06-06", "P-LEA"), "CARDLEA", T0).await;
    ledger::request_correction(&store, &rules, member, Points(250), "gift", &staff(3), at(T0)).await.unwrap().unwrap();
    reception::record_objection(&store, person_id, &staff(1), T0 + 1).await.unwrap();
    let export = reception::export_person(&store, person_id, &staff(1), T0 + 2).await.unwrap();
    assert_eq!(export["person"]["personal_id"], "P-LEA");
    assert_eq!(export["person"]["processing_objection"], 1);
    assert_eq!(export["points_ledger"][0]["points"], 250);
    assert!(!export.to_string().contains("CARDLEA"), "card numbers are not exported");
    ledger::end_membership(&store, &rules, member, club_rules::membership::EndReason::MemberRequest, &staff(1), at(T0 + 3)).await.unwrap();
    reception::block_data(&store, person_id, &staff(1), T0 + 3).await.unwrap();
    assert!(reception::block_data(&store, person_id, &staff(1), T0 + 4).await.is_err(), "blocked once");
    let blocked: Option<i64> = sqlx::query_scalar("SELECT data_blocked_at FROM persons WHERE id = $1").bind(person_id).fetch_one(store.read()).await.unwrap();
    assert_eq!(blocked, Some(T0 + 3));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE subject = $1 ORDER BY id").bind(format!("person:{person_id}")).fetch_all(store.read()).await.unwrap();
    assert_eq!(actions, ["privacy.objection", "privacy.export", "privacy.block"]);
    store.close().await;
}

async fn a_pit_rating_weights_the_bets_and_earns_once(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let rules = Rules::default();
    let (person_id, member, _) = enrolled(&store, &person("Pia", "Player", "1979-07-07", "P-PIA"), "CARDPIA", T0).await;
    let (excluded, _, _) = enrolled(&store, &person("Ema", "Excluded", "1979-08-08", "P-EMA"), "CARDEMA", T0).await;
    let table = PitTable { id: "BJ-1".into(), game: "blackjack".into(), seats: 7, min_bet: Money::from_cents(10_00), max_bet: Money::from_cents(500_00) };
    pit::set_table(&store, &rules, &table, &staff(5), T0).await.unwrap();
    assert!(pit::set_table(&store, &rules, &PitTable { game: "pachinko".into(), ..table.clone() }, &staff(5), T0).await.is_err());
    let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, excluded, T0, None, None);
    club::add_exclusion(&store, &e, &staff(1), T0).await.unwrap();
    let refused = pit::open_rating(&store, "BJ-1", 2, &CardNumber::new("CARDEMA"), Money::from_cents(20_00), &staff(6), T0).await.unwrap();
    assert!(matches!(refused, Err(pit::OpenRefusal::Refused(_))), "{refused:?}");
    assert!(pit::open_rating(&store, "BJ-1", 9, &CardNumber::new("CARDPIA"), Money::from_cents(20_00), &staff(6), T0).await.is_err(), "seat 9 of 7");
    let r = pit::open_rating(&store, "BJ-1", 3, &CardNumber::new("CARDPIA"), Money::from_cents(40_00), &staff(6), T0).await.unwrap().unwrap();
    assert!(pit::open_rating(&store, "BJ-1", 4, &CardNumber::new("CARDPIA"), Money::from_cents(40_00), &staff(6), T0).await.is_err(), "one open rating per player");
    // EUR 40 for 30 minutes, then EUR 100 for 30 minutes: EUR 70 average over 1 hour.
    pit::change_bet(&store, r, Money::from_cents(100_00), &staff(6), T0 + 30 * MIN).await.unwrap();
    let closed = pit::close_rating(&store, &rules, r, &staff(7), at(T0 + 60 * MIN)).await.unwrap().unwrap();
    // 70 x 1 h x 63/h x 1.30 % = EUR 57.33 theoretical win; x 3 = 171.99 -> 171 points.
    assert_eq!((closed.average_bet, closed.minutes, closed.points), (Money::from_cents(70_00), 60, 171));
    assert!(pit::close_rating(&store, &rules, r, &staff(7), at(T0 + 61 * MIN)).await.is_err(), "closed once");
    assert!(pit::change_bet(&store, r, Money::from_cents(5_00), &staff(6), T0 + 62 * MIN).await.is_err());
    assert_eq!(ledger::balances(&store, member).await.unwrap().points, Points(171), "the points are there at once");
    let rows = pit::ratings(&store, T0, false).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].points, 171);
    // A rating far above the game's norms is flagged for the pit boss.
    let big = pit::open_rating(&store, "BJ-1", 3, &CardNumber::new("CARDPIA"), Money::from_cents(90_000_00), &staff(6), T0 + 2 * 60 * MIN).await.unwrap().unwrap();
    pit::close_rating(&store, &rules, big, &staff(7), at(T0 + 3 * 60 * MIN)).await.unwrap().unwrap();
    let flagged = pit::ratings(&store, T0, true).await.unwrap();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].flags[0].contains("above"), "{:?}", flagged[0].flags);
    let _ = person_id;
    store.close().await;
}

async fn cash_per_person_per_gaming_day_warns_at_2000(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (person_id, _, _) = enrolled(&store, &person("Cene", "Cash", "1970-09-09", "P-CASH"), "CARDCASH", T0).await;
    let rules = Rules::default();
    // The gaming day of T0 started at 06:00 in Ljubljana (04:00 UTC in September).
    let day_start = cashdesk::gaming_day_start(&rules, T0).unwrap();
    assert_eq!(at(day_start).to_rfc3339(), format!("{}T04:00:00+00:00", at(T0).date_naive()));
    let record = |amount: i64, kind: CashKind, now: i64| {
        let store = store.clone();
        let rules = rules.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let t = cashdesk::record_cash(&mut tx, &rules, person_id, kind, Money::from_cents(amount), None, &staff(8), now).await.unwrap();
            tx.commit().await.unwrap();
            t
        }
    };
    let a = record(1_500_00, CashKind::OnlineDeposit, day_start + 10 * MIN).await;
    assert_eq!((a.day_total, a.reportable), (Money::from_cents(1_500_00), false));
    let b = record(499_99, CashKind::VoucherSale, day_start + 20 * MIN).await;
    assert_eq!((b.day_total, b.reportable), (Money::from_cents(1_999_99), false));
    let c = record(1, CashKind::OnlineWithdrawal, day_start + 30 * MIN).await;
    assert_eq!((c.day_total, c.reportable), (Money::from_cents(2_000_00), true), "EUR 2,000 reached: reportable");
    // Before 06:00 local it is still the same gaming day; after it, the next starts from zero.
    let e = record(1, CashKind::OnlineDeposit, day_start + DAY - MIN).await;
    assert_eq!((e.day_total, e.reportable), (Money::from_cents(2_000_01), true));
    let d = record(100_00, CashKind::OnlineDeposit, day_start + DAY + MIN).await;
    assert_eq!((d.day_total, d.reportable), (Money::from_cents(100_00), false));
    assert_eq!(cashdesk::day_total(&store, &rules, person_id, day_start + 40 * MIN).await.unwrap(), Money::from_cents(2_000_01));
    let days = cashdesk::reportable_days(&store, at(day_start - DAY).date_naive()).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].total, days[0].movements, days[0].gaming_day.clone()), (Money::from_cents(2_000_01), 4, at(T0).date_naive().to_string()));
    // Not positive: refused, nothing stored; the record is append-only.
    let mut tx = store.begin().await.unwrap();
    assert!(cashdesk::record_cash(&mut tx, &rules, person_id, CashKind::OnlineDeposit, Money::ZERO, None, &staff(8), T0).await.is_err());
    drop(tx);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM cash_desk_records").await, 5);
    let mut tx = store.begin().await.unwrap();
    assert!(sqlx::query("UPDATE cash_desk_records SET amount_cents = 1").execute(&mut *tx).await.is_err(), "append-only");
    drop(tx);
    // The identity check is fresh for 15 minutes, for the cashier who made it.
    cashdesk::identity_checked(&store, person_id, "passport", "4711", &staff(8), T0).await.unwrap();
    assert!(cashdesk::identity_is_fresh(&store, person_id, &staff(8), T0 + 14 * MIN).await.unwrap());
    assert!(!cashdesk::identity_is_fresh(&store, person_id, &staff(9), T0 + MIN).await.unwrap(), "another cashier checks again");
    assert!(!cashdesk::identity_is_fresh(&store, person_id, &staff(8), T0 + 16 * MIN).await.unwrap());
    store.close().await;
}
