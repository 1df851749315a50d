//! The storage suite: every test runs on SQLite and on PostgreSQL (`sqlite::…`, `postgres::…`),
//! but for the one about SQLite's own write-ahead log.

use club_rules::{CardState, MemberState, RefusalCode};
use floor_protocol::{CardNumber, ServerMessage};
use floor_server::audit::Actor;
use floor_server::club::{self, NewExclusion, NewPerson};
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::TestDb;
use floor_server::{Error, staff};
use secrecy::ExposeSecret;

const T0: i64 = 1_790_000_000_000;
const DAY: i64 = 24 * 3600 * 1000;
const ADMIN: Actor = Actor::System("test");

floor_server::on_both_backends!(
    migrations_apply_twice_without_change,
    a_member_card_must_be_activated_before_it_is_welcome,
    card_transitions_follow_the_life_cycle,
    blocking_an_active_card_queues_a_block_for_every_terminal,
    a_card_number_is_issued_once,
    ledgers_and_audit_log_refuse_updates_and_deletes,
    points_balance_cannot_go_negative,
    every_staff_action_lands_in_the_audit_log,
    terminal_credentials_are_checked_and_revocable,
    exclusions_match_by_person_personal_id_or_name_and_birth_date,
    an_ended_exclusion_no_longer_refuses,
    card_in_judges_the_person_before_the_card,
    block_list_holds_unusable_cards_and_excluded_members,
);

/// SQLite's write-ahead log is copied back into the database file by the store's checkpointer,
/// beside the writer (no commit does it, see `store`): 3 MB written in 30 commits over three
/// seconds leave a log far smaller than what went through it, and every row readable.
#[tokio::test]
async fn sqlite_log_is_checkpointed_beside_the_writer_and_stays_small() {
    let Some((db, store)) = db(Backend::Sqlite).await else { return };
    let wal = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://")).with_extension("db-wal");
    let mut tx = store.begin().await.unwrap();
    sqlx::query("CREATE TABLE scratch (body TEXT NOT NULL)").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let body = "x".repeat(100_000);
    let mut written = 0u64;
    for _ in 0..30 {
        let mut tx = store.begin().await.unwrap();
        sqlx::query("INSERT INTO scratch (body) VALUES ($1)").bind(&body).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        written += body.len() as u64;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::metadata(&wal).unwrap().len();
    assert!(log < written / 2, "the log holds {log} bytes after {written} were written: nothing copied it back");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scratch").fetch_one(store.read()).await.unwrap();
    assert_eq!(rows, 30);
}

async fn db(backend: Backend) -> Option<(TestDb, Store)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    Some((db, store))
}

fn person(first: &str, last: &str, born: &str, pid: Option<&str>) -> NewPerson {
    NewPerson {
        first_name: first.into(),
        last_name: last.into(),
        birth_date: born.into(),
        personal_id: pid.map(str::to_owned),
        ..NewPerson::default()
    }
}

/// Enrols a member with an issued card; returns (person, member, card).
async fn member_with_card(store: &Store, p: &NewPerson, card: &str) -> (i64, i64, i64) {
    let mut tx = store.begin().await.unwrap();
    let person = club::create_person(&mut tx, p, T0).await.unwrap();
    let member = club::create_member(&mut tx, person, T0).await.unwrap();
    let card = club::issue_card(&mut tx, member, &CardNumber::new(card), T0).await.unwrap();
    tx.commit().await.unwrap();
    (person, member, card)
}

async fn holder(store: &Store, card: &str, now: i64) -> Option<club::CardHolder> {
    let mut tx = store.begin().await.unwrap();
    let h = club::card_holder(&mut tx, card, now).await.unwrap();
    tx.rollback().await.unwrap();
    h
}

async fn migrations_apply_twice_without_change(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    store.migrate().await.expect("second migration run is a no-op");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members").fetch_one(store.read()).await.unwrap();
    assert_eq!(n, 0);
}

async fn a_member_card_must_be_activated_before_it_is_welcome(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, _, card) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "04a1 0000-01").await;
    let h = holder(&store, "04A1000001", T0).await.expect("normalised card number is found");
    assert_eq!(h.card_state, CardState::Issued);
    assert_eq!(h.member_state, MemberState::Active);
    assert_eq!(club::card_in_decision(&h), Err(RefusalCode::CardNotActivated));
    club::set_card_state(&store, card, CardState::Active, &ADMIN, T0).await.unwrap();
    let h = holder(&store, "04A1000001", T0).await.unwrap();
    assert_eq!(club::card_in_decision(&h), Ok(()));
    assert_eq!(h.first_name, "Ana");
}

async fn card_transitions_follow_the_life_cycle(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, _, card) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    club::set_card_state(&store, card, CardState::Active, &ADMIN, T0).await.unwrap();
    let back = club::set_card_state(&store, card, CardState::Issued, &ADMIN, T0).await;
    assert!(matches!(back, Err(Error::Conflict(_))), "{back:?}");
    club::set_card_state(&store, card, CardState::BlockedStolen, &ADMIN, T0).await.unwrap();
    let again = club::set_card_state(&store, card, CardState::Active, &ADMIN, T0).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "a stolen card is replaced, never reactivated");
    club::set_card_state(&store, card, CardState::Replaced, &ADMIN, T0).await.unwrap();
    let h = holder(&store, "C1", T0).await.unwrap();
    assert_eq!(club::card_in_decision(&h), Err(RefusalCode::CardReplaced));
}

async fn blocking_an_active_card_queues_a_block_for_every_terminal(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, _, card) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    club::set_card_state(&store, card, CardState::Active, &ADMIN, T0).await.unwrap();
    club::set_card_state(&store, card, CardState::BlockedLost, &ADMIN, T0).await.unwrap();
    let msgs: Vec<String> = sqlx::query_scalar("SELECT message FROM terminal_broadcasts").fetch_all(store.read()).await.unwrap();
    assert_eq!(msgs.len(), 1);
    let msg: ServerMessage = serde_json::from_str(&msgs[0]).unwrap();
    assert_eq!(msg, ServerMessage::BlockCard { card: CardNumber::new("C1") });
    let h = holder(&store, "C1", T0).await.unwrap();
    assert_eq!(club::card_in_decision(&h), Err(RefusalCode::CardBlocked));
}

async fn a_card_number_is_issued_once(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    let mut tx = store.begin().await.unwrap();
    let p = club::create_person(&mut tx, &person("Marko", "Horvat", "1975-09-30", None), T0).await.unwrap();
    let m = club::create_member(&mut tx, p, T0).await.unwrap();
    let second = club::issue_card(&mut tx, m, &CardNumber::new("c1"), T0).await;
    assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");
}

async fn ledgers_and_audit_log_refuse_updates_and_deletes(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, member, _) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    let mut tx = store.begin().await.unwrap();
    sqlx::query("INSERT INTO points_ledger (member_id, kind, points, rule_version, created_at) VALUES ($1, 'earn', 10, 'v', $2)")
        .bind(member)
        .bind(T0)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for sql in [
        "UPDATE points_ledger SET points = 1000",
        "DELETE FROM points_ledger",
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "UPDATE terminal_events SET body = ''",
        "DELETE FROM terminal_events",
    ] {
        let mut tx = store.begin().await.unwrap();
        let r = sqlx::query(sql).execute(&mut *tx).await;
        // Statements on empty tables touch no row and fire no row trigger; the ledger has a row.
        if sql.contains("points_ledger") {
            let e = r.expect_err(sql).to_string();
            assert!(e.contains("append-only"), "{sql}: {e}");
        }
        tx.rollback().await.unwrap();
    }
    // The audit log has rows from the card issue path? It has none yet: add one and retry.
    floor_server::staff::create_user(&store, "ana", "Ana", "long enough password", &[staff::Role::Manager], &ADMIN, T0).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let e = sqlx::query("DELETE FROM audit_log").execute(&mut *tx).await.expect_err("audit log is append-only").to_string();
    assert!(e.contains("append-only"), "{e}");
}

async fn points_balance_cannot_go_negative(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, member, _) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    let mut tx = store.begin().await.unwrap();
    let r = sqlx::query("UPDATE members SET points_balance = points_balance - 1 WHERE id = $1").bind(member).execute(&mut *tx).await;
    let e = floor_server::Error::from(r.expect_err("negative balance refused"));
    assert!(matches!(&e, Error::Db(sqlx::Error::Database(d)) if d.is_check_violation()), "{e}");
}

async fn every_staff_action_lands_in_the_audit_log(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let manager = Actor::Staff { id: 7, username: "mgr".into() };
    let (_, _, card) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    club::set_card_state(&store, card, CardState::Active, &manager, T0 + 5).await.unwrap();
    terminals::enrol(
        &store,
        &TerminalSpec { id: "SLOT-1".into(), kind: TerminalKind::Slot, machine_type: Some(club_rules::MachineType::Slot), location: "A".into() },
        &manager,
        T0 + 6,
    )
    .await
    .unwrap();
    let rows: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT actor, action, before, after FROM audit_log ORDER BY id").fetch_all(store.read()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], ("staff:7:mgr".into(), "card.state".into(), Some("\"issued\"".into()), Some("\"active\"".into())));
    assert_eq!(rows[1].1, "terminal.enrol");
    assert!(!rows[1].3.as_deref().unwrap_or("").contains("secret"), "secrets never reach the audit log");
}

async fn terminal_credentials_are_checked_and_revocable(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let spec = TerminalSpec { id: "BAR-1".into(), kind: TerminalKind::Bar, machine_type: None, location: "Lobby".into() };
    let creds = terminals::enrol(&store, &spec, &ADMIN, T0).await.unwrap();
    let secret = creds.secret.expose_secret().to_owned();
    assert!(format!("{creds:?}").find(&secret).is_none(), "Debug never shows the secret");
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM terminals").fetch_one(store.read()).await.unwrap();
    assert_ne!(stored, secret, "only a hash is stored");
    let t = terminals::authenticate(&store, "BAR-1", &secret).await.unwrap().expect("good secret");
    assert_eq!(t.kind, TerminalKind::Bar);
    assert!(terminals::authenticate(&store, "BAR-1", "wrong").await.unwrap().is_none());
    assert!(terminals::authenticate(&store, "NOPE", &secret).await.unwrap().is_none());
    assert!(matches!(terminals::enrol(&store, &spec, &ADMIN, T0).await, Err(Error::Conflict(_))));
    let bad = TerminalSpec { id: "SLOT-X".into(), kind: TerminalKind::Slot, machine_type: None, location: String::new() };
    assert!(matches!(terminals::enrol(&store, &bad, &ADMIN, T0).await, Err(Error::Invalid(_))));
    terminals::revoke(&store, "BAR-1", &ADMIN, T0).await.unwrap();
    assert!(terminals::authenticate(&store, "BAR-1", &secret).await.unwrap().is_none(), "revoked");
    let fresh = terminals::reissue(&store, "BAR-1", &ADMIN, T0).await.unwrap();
    assert!(terminals::authenticate(&store, "BAR-1", &secret).await.unwrap().is_none(), "old secret is dead");
    assert!(terminals::authenticate(&store, "BAR-1", fresh.secret.expose_secret()).await.unwrap().is_some());
}

fn exclusion(kind: &str, person_id: Option<i64>, personal_id: Option<&str>, name: Option<(&str, &str, &str)>, ends: Option<i64>) -> NewExclusion {
    NewExclusion {
        kind: kind.into(),
        person_id,
        personal_id: personal_id.map(str::to_owned),
        first_name: name.map(|n| n.0.to_owned()),
        last_name: name.map(|n| n.1.to_owned()),
        birth_date: name.map(|n| n.2.to_owned()),
        starts_at: T0,
        ends_at: ends,
        reason: None,
    }
}

async fn exclusions_match_by_person_personal_id_or_name_and_birth_date(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let mut cards = Vec::new();
    for (i, (first, last, born, pid)) in [
        ("Ana", "Novak", "1980-04-12", Some("0101980500001")),
        ("Marko", "Horvat", "1975-09-30", Some("3009975500002")),
        ("Maja", "Kos", "1990-01-05", None),
        ("Luka", "Krajnc", "1968-07-21", None),
    ]
    .into_iter()
    .enumerate()
    {
        let (p, _, c) = member_with_card(&store, &person(first, last, born, pid), &format!("C{i}")).await;
        club::set_card_state(&store, c, CardState::Active, &ADMIN, T0).await.unwrap();
        cards.push(p);
    }
    club::add_exclusion(&store, &exclusion("ban", Some(cards[0]), None, None, None), &ADMIN, T0).await.unwrap();
    club::add_exclusion(&store, &exclusion("register", None, Some("3009975500002"), None, None), &ADMIN, T0).await.unwrap();
    club::add_exclusion(&store, &exclusion("register", None, None, Some(("MAJA", "kos", "1990-01-05")), None), &ADMIN, T0).await.unwrap();
    let decide = |h: Option<club::CardHolder>| club::card_in_decision(&h.unwrap());
    assert_eq!(decide(holder(&store, "C0", T0 + 1).await), Err(RefusalCode::Banned));
    assert_eq!(decide(holder(&store, "C1", T0 + 1).await), Err(RefusalCode::SelfExcluded));
    assert_eq!(decide(holder(&store, "C2", T0 + 1).await), Err(RefusalCode::SelfExcluded));
    assert_eq!(decide(holder(&store, "C3", T0 + 1).await), Ok(()));
    assert_eq!(decide(holder(&store, "C0", T0 - 1).await), Ok(()), "not before it starts");
    let bad = club::add_exclusion(&store, &exclusion("holiday", None, None, None, None), &ADMIN, T0).await;
    assert!(matches!(bad, Err(Error::Invalid(_))));
}

async fn an_ended_exclusion_no_longer_refuses(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (p, _, c) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "C1").await;
    club::set_card_state(&store, c, CardState::Active, &ADMIN, T0).await.unwrap();
    club::add_exclusion(&store, &exclusion("own_request", Some(p), None, None, Some(T0 + DAY)), &ADMIN, T0).await.unwrap();
    assert_eq!(club::card_in_decision(&holder(&store, "C1", T0 + DAY - 1).await.unwrap()), Err(RefusalCode::SelfExcluded));
    assert_eq!(club::card_in_decision(&holder(&store, "C1", T0 + DAY).await.unwrap()), Ok(()));
}

async fn block_list_holds_unusable_cards_and_excluded_members(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (_, _, good) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", None), "GOOD").await;
    let (_, _, lost) = member_with_card(&store, &person("Marko", "Horvat", "1975-09-30", None), "LOST").await;
    let (excluded, _, ex_card) = member_with_card(&store, &person("Maja", "Kos", "1990-01-05", None), "EXCL").await;
    for c in [good, lost, ex_card] {
        club::set_card_state(&store, c, CardState::Active, &ADMIN, T0).await.unwrap();
    }
    club::set_card_state(&store, lost, CardState::BlockedLost, &ADMIN, T0).await.unwrap();
    club::add_exclusion(&store, &exclusion("own_request", Some(excluded), None, None, Some(T0 + DAY)), &ADMIN, T0).await.unwrap();
    let list = club::block_list(&store, T0 + 1).await.unwrap();
    assert_eq!(list, vec![CardNumber::new("EXCL"), CardNumber::new("LOST")]);
    let later = club::block_list(&store, T0 + 2 * DAY).await.unwrap();
    assert_eq!(later, vec![CardNumber::new("LOST")]);
}

/// One gate for card-in and earning (`club_rules::Standing::check`): the person's standing is
/// judged before the card's, and of several exclusions the register's comes first.
async fn card_in_judges_the_person_before_the_card(backend: Backend) {
    let Some((_db, store)) = db(backend).await else { return };
    let (p, _, c) = member_with_card(&store, &person("Ana", "Novak", "1980-04-12", Some("0101980500001")), "C1").await;
    club::set_card_state(&store, c, CardState::Active, &ADMIN, T0).await.unwrap();
    club::set_card_state(&store, c, CardState::BlockedLost, &ADMIN, T0).await.unwrap();
    assert_eq!(club::card_in_decision(&holder(&store, "C1", T0 + 1).await.unwrap()), Err(RefusalCode::CardBlocked));
    club::add_exclusion(&store, &exclusion("ban", Some(p), None, None, None), &ADMIN, T0).await.unwrap();
    assert_eq!(club::card_in_decision(&holder(&store, "C1", T0 + 1).await.unwrap()), Err(RefusalCode::Banned));
    club::add_exclusion(&store, &exclusion("register", None, Some("0101980500001"), None, None), &ADMIN, T0).await.unwrap();
    assert_eq!(club::card_in_decision(&holder(&store, "C1", T0 + 1).await.unwrap()), Err(RefusalCode::SelfExcluded));
}
