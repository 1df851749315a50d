//! Registration, verification and login of i-Account players on both databases: the data
//! checks (18+, IBAN, EMŠO, e-mail), one account per person, the staff queue, lockout, and a
//! minor's account closed with the personal data deleted.

use chrono::NaiveDate;
use club_rules::Rules;
use floor_server::iaccount::register::{self, LoginError, MAX_FAILED_LOGINS, Registration};
use floor_server::iaccount::testkit::{self, registration, staff};
use floor_server::on_both_backends;
use floor_server::store::{Backend, Store};
use floor_server::testing::TestDb;

const T0: i64 = 1_780_000_000_000; // 2026-05-28

fn born(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn reg(store: &Store, r: &Registration) -> floor_server::Result<i64> {
    register::register(store, &Rules::default().config().calendar, r, T0).await
}

#[test]
fn emso_check_digit_and_birth_date_are_checked() {
    let b = born(1980, 5, 17);
    let good = testkit::emso(b, 3);
    assert!(register::valid_emso(&good, b));
    assert!(!register::valid_emso(&good, born(1980, 5, 18)), "another birth date");
    let mut bad = good.clone();
    let last = bad.pop().unwrap().to_digit(10).unwrap();
    bad.push(char::from_digit((last + 1) % 10, 10).unwrap());
    assert!(!register::valid_emso(&bad, b), "a wrong check digit");
    assert!(!register::valid_emso("123", b));
}

async fn invalid_registrations_are_refused_and_store_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let minor = registration(1, born(2009, 1, 1));
    assert!(reg(&store, &minor).await.unwrap_err().to_string().contains("18"));
    let bad_iban = Registration { iban: "SI56263300012039087".into(), ..registration(2, born(1980, 1, 1)) };
    assert!(reg(&store, &bad_iban).await.unwrap_err().to_string().contains("IBAN"));
    let bad_mail = Registration { email: "no-at-sign.example.org".into(), ..registration(3, born(1980, 1, 1)) };
    assert!(reg(&store, &bad_mail).await.unwrap_err().to_string().contains("e-mail"));
    let bad_id = Registration { personal_id: "0101980500000".into(), ..registration(4, born(1980, 1, 1)) };
    assert!(reg(&store, &bad_id).await.unwrap_err().to_string().contains("EMŠO"));
    let short = Registration { password: "short".into(), ..registration(5, born(1980, 1, 1)) };
    assert!(reg(&store, &short).await.is_err());
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM iaccounts").fetch_one(store.read()).await.unwrap();
    assert_eq!(n, 0);
}

async fn one_account_per_person(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let first = registration(1, born(1980, 1, 1));
    reg(&store, &first).await.unwrap();
    let same_person = Registration { username: "other".into(), email: "other@example.org".into(), iban: testkit::iban(99), ..first.clone() };
    assert!(reg(&store, &same_person).await.unwrap_err().to_string().contains("one account per person"));
    let same_iban = Registration { iban: first.iban.clone(), ..registration(2, born(1981, 1, 1)) };
    assert!(reg(&store, &same_iban).await.unwrap_err().to_string().contains("IBAN"));
    let same_mail = Registration { email: first.email.to_uppercase(), ..registration(3, born(1982, 1, 1)) };
    assert!(reg(&store, &same_mail).await.unwrap_err().to_string().contains("e-mail"));
    let same_name = Registration { first_name: first.first_name.clone(), last_name: first.last_name.clone(), ..registration(4, born(1980, 1, 1)) };
    let same_name = Registration { personal_id: testkit::emso(born(1980, 1, 1), 40), ..same_name };
    assert!(reg(&store, &same_name).await.unwrap_err().to_string().contains("name and birth date"));
}

async fn a_club_member_can_open_one_i_account(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let r = registration(1, born(1980, 1, 1));
    let person = floor_server::club::NewPerson {
        first_name: r.first_name.clone(),
        last_name: r.last_name.clone(),
        birth_date: r.birth_date.clone(),
        personal_id: Some(r.personal_id.clone()),
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let pid = floor_server::club::create_person(&mut tx, &person, T0).await.unwrap();
    tx.commit().await.unwrap();
    let id = reg(&store, &r).await.unwrap();
    let linked: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(id).fetch_one(store.read()).await.unwrap();
    assert_eq!(linked, pid, "the club member's person row is reused");
    let again = Registration { username: "x2".into(), email: "x2@example.org".into(), iban: testkit::iban(77), ..r };
    assert!(reg(&store, &again).await.is_err());
}

async fn staff_verify_from_the_queue_and_login_locks_after_five_failures(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let r = registration(1, born(1980, 1, 1));
    let id = reg(&store, &r).await.unwrap();
    let queue = register::verification_queue(&store).await.unwrap();
    assert_eq!(queue.iter().map(|q| q.account_id).collect::<Vec<_>>(), vec![id]);
    assert!(register::verify(&store, id, &floor_server::audit::Actor::System("x"), T0).await.is_err(), "staff only");
    let player_no = register::verify(&store, id, &staff(), T0).await.unwrap();
    assert!(player_no.starts_with('P'));
    assert!(register::verification_queue(&store).await.unwrap().is_empty());
    assert_eq!(register::login(&store, &r.username, &r.password, T0).await.unwrap(), Ok(id));
    for _ in 0..MAX_FAILED_LOGINS {
        assert_eq!(register::login(&store, &r.username, "wrong password!", T0).await.unwrap(), Err(LoginError::Wrong));
    }
    assert_eq!(register::login(&store, &r.username, &r.password, T0 + 1).await.unwrap(), Err(LoginError::Locked));
    assert_eq!(register::login(&store, &r.username, &r.password, T0 + register::LOCKOUT_MS + 1).await.unwrap(), Ok(id));
    assert_eq!(register::login(&store, "nobody", "whatever pass", T0).await.unwrap(), Err(LoginError::Wrong));
}

async fn staff_refuse_documents_with_a_reason_and_the_account_is_blocked(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let id = reg(&store, &registration(1, born(1980, 1, 1))).await.unwrap();
    assert!(register::refuse(&store, id, "the photo is not the player", &floor_server::audit::Actor::System("x"), T0).await.is_err(), "staff only");
    assert!(register::refuse(&store, id, "  ", &staff(), T0).await.is_err(), "a reason is required");
    register::refuse(&store, id, "the photo is not the player", &staff(), T0).await.unwrap();
    assert!(register::verification_queue(&store).await.unwrap().is_empty());
    assert_eq!(floor_server::iaccount::get(&store, id).await.unwrap().state, floor_server::iaccount::AccountState::Blocked);
    assert!(register::verify(&store, id, &staff(), T0).await.is_err(), "a refused account is not verified later");
    let after: String = sqlx::query_scalar("SELECT after FROM audit_log WHERE action = 'iaccount.verify_refused'").fetch_one(store.read()).await.unwrap();
    assert!(after.contains("the photo is not the player"), "{after}");
}

async fn a_minor_found_later_is_closed_and_the_personal_data_deleted(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let store = db.store().await;
    let id = testkit::active_account(&store, 1, T0).await.unwrap();
    register::close_minor(&store, &Rules::default(), id, &staff(), T0).await.unwrap();
    let row: (String, Option<String>, String) = {
        let r = sqlx::query("SELECT a.state, p.personal_id, p.last_name FROM iaccounts a JOIN persons p ON p.id = a.person_id WHERE a.id = $1")
            .bind(id)
            .fetch_one(store.read())
            .await
            .unwrap();
        use sqlx::Row;
        (r.get("state"), r.get("personal_id"), r.get("last_name"))
    };
    assert_eq!(row, ("closed".to_owned(), None, "-".to_owned()));
}

on_both_backends!(
    invalid_registrations_are_refused_and_store_nothing,
    one_account_per_person,
    a_club_member_can_open_one_i_account,
    staff_verify_from_the_queue_and_login_locks_after_five_failures,
    a_minor_found_later_is_closed_and_the_personal_data_deleted,
    staff_refuse_documents_with_a_reason_and_the_account_is_blocked,
);
