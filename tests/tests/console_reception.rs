//! Reception in headless Chromium: enrol a member with a card, activate it, report it lost,
//! replace it; and the four enrolment refusals (a 17-year-old, a person on the register, a banned
//! person, an employee). Screenshots in `target/browser-artefacts/reception/`.

use chrono::{DateTime, Months};
use club_tests::T0;
use club_tests::browser::Browser;
use club_tests::web::{PASSWORD, seed_staff};
use floor_server::audit::Actor;
use floor_server::club::{self, NewExclusion, NewPerson};
use floor_server::enrolment::{self, Employee};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_reception_enrols_a_member_and_refuses_who_may_not_join() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let seed = Actor::System("test-seed");
    // The lists enrolment checks: the register, a ban, an employee.
    let register = "entry_id,personal_id,first_name,last_name,birth_date,starts_on,ends_on\nR-77,,Rok,Register,1970-05-05,2020-01-01,\n";
    enrolment::import_register(&store, register.as_bytes(), &seed_actor(), T0).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let banned = NewPerson { first_name: "Bor".into(), last_name: "Banned".into(), birth_date: "1975-01-01".into(), personal_id: Some("P-BAN".into()), ..NewPerson::default() };
    let banned_id = club::create_person(&mut tx, &banned, T0).await.unwrap();
    tx.commit().await.unwrap();
    let ban = NewExclusion {
        kind: "ban".into(),
        person_id: Some(banned_id),
        personal_id: Some("P-BAN".into()),
        first_name: None,
        last_name: None,
        birth_date: None,
        starts_at: T0,
        ends_at: None,
        reason: Some("fraud".into()),
    };
    club::add_exclusion(&store, &ban, &seed, T0).await.unwrap();
    let emp = Employee {
        personal_id: Some("P-EMP".into()),
        first_name: "Eda".into(),
        last_name: "Employee".into(),
        birth_date: "1990-02-02".into(),
        employer: "Casino".into(),
        relation: "employee".into(),
    };
    enrolment::add_employee(&store, &emp, &seed_actor(), T0).await.unwrap();
    let server = TestServer::start(store, T0, test_config()).await;
    let Some(mut b) = Browser::start("reception", &format!("http://{}", server.addr)).await else { return };

    b.login("reception", PASSWORD).await;
    assert_eq!(b.path().await, "/reception", "a reception clerk lands on the reception page");
    b.click("#enrol-link").await;
    fill_person(&b, "Ana", "Novak", "1980-04-04", "P-ANA").await;
    b.fill("#card", "CARDANA1").await;
    b.screenshot("enrol-form").await;
    b.click("#enrol").await;
    let name = b.text("#person-name").await;
    assert_eq!(name, "Ana Novak");
    assert!(b.page_text().await.contains("Enrolled: member number"), "{}", b.page_text().await);
    let card_id: i64 = sqlx::query_scalar("SELECT id FROM cards WHERE card_number = 'CARDANA1'").fetch_one(server.store.read()).await.unwrap();
    b.click(&format!("#activate-{card_id}")).await;
    assert!(b.text(".card-state").await.contains("active"));
    b.screenshot("card-active").await;
    // Lost: blocked at once (a broadcast to every terminal is queued).
    b.click(&format!("#report-{card_id}")).await;
    assert!(b.page_text().await.contains("blocked: lost"));
    let pushed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM terminal_broadcasts WHERE message LIKE '%CARDANA1%'").fetch_one(server.store.read()).await.unwrap();
    assert_eq!(pushed, 1);
    b.fill(&format!("#replace-card-{card_id}"), "CARDANA2").await;
    b.click(&format!("#replace-{card_id}")).await;
    assert!(b.page_text().await.contains("Card replaced"));
    b.screenshot("card-replaced").await;
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM cards ORDER BY id").fetch_all(server.store.read()).await.unwrap();
    assert_eq!(states, ["replaced", "issued"]);

    // The refusals: each shows its reason, keeps what was typed, and stores no person.
    let today = DateTime::from_timestamp_millis(T0).unwrap().date_naive();
    let seventeen = (today.checked_sub_months(Months::new(12 * 18)).unwrap() + chrono::Days::new(1)).to_string();
    let cases = [
        ("Mia", "Young", seventeen.as_str(), "P-MINOR", "under 18", "refused-minor"),
        ("Rok", "Register", "1970-05-05", "P-REG", "self-excluded", "refused-register"),
        ("Bor", "Banned", "1975-01-01", "P-BAN", "entry ban", "refused-banned"),
        ("Eda", "Employee", "1990-02-02", "P-EMP", "employee list", "refused-employee"),
    ];
    let persons_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons").fetch_one(server.store.read()).await.unwrap();
    for (first, last, birth, pid, words, shot) in cases {
        b.goto("/reception/enrol").await;
        fill_person(&b, first, last, birth, pid).await;
        b.click("#enrol").await;
        let error = b.text("#enrol-error").await;
        assert!(error.contains(words), "{first}: {error}");
        assert_eq!(b.find("#first_name").await.prop("value").await.unwrap().as_deref(), Some(first), "the form keeps its values");
        b.screenshot(shot).await;
    }
    let persons_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons").fetch_one(server.store.read()).await.unwrap();
    assert_eq!(persons_after, persons_before);

    // Search by card finds the member; the export is a JSON download.
    b.goto("/reception?card=CARDANA2").await;
    assert!(b.text("#results").await.contains("Ana Novak"));
    b.screenshot("search").await;
    b.close().await;
    server.shutdown().await.unwrap();
}

fn seed_actor() -> Actor {
    Actor::Staff { id: 1, username: "reception".into() }
}

async fn fill_person(b: &Browser, first: &str, last: &str, birth: &str, pid: &str) {
    b.fill("#first_name", first).await;
    b.fill("#last_name", last).await;
    b.fill("#birth_date", birth).await;
    b.fill("#personal_id", pid).await;
    b.fill("#address", "Glavna 1").await;
    b.fill("#city", "Nova Gorica").await;
    b.fill("#country", "SI").await;
}
