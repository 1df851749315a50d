//! The pit, cashier, bar and manager consoles in headless Chromium, each on its main path, and the
//! language chosen per user. Screenshots in `target/browser-artefacts/<console>/`.

use club_rules::{CardState, Points, Rules};
use club_tests::T0;
use club_tests::browser::Browser;
use club_tests::web::{PASSWORD, seed_staff};
use floor_protocol::CardNumber;
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::ledger;
use floor_server::store::{Backend, Store};
use floor_server::testing::{TestDb, TestServer, test_config};

/// An active member with an active card: (person, member).
async fn member(store: &Store, first: &str, card: &str) -> (i64, i64) {
    let mut tx = store.begin().await.unwrap();
    let p = NewPerson { first_name: first.into(), last_name: "Gost".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() };
    let person = club::create_person(&mut tx, &p, T0).await.unwrap();
    let member = club::create_member(&mut tx, person, T0).await.unwrap();
    let card = club::issue_card(&mut tx, member, &CardNumber::new(card), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(store, card, CardState::Active, &Actor::System("test-seed"), T0).await.unwrap();
    (person, member)
}

async fn start() -> Option<(TestDb, TestServer, i64)> {
    let db = TestDb::new(Backend::Sqlite).await?;
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let (_, m) = member(&store, "Pia", "CARDPIA").await;
    let manager = Actor::Staff { id: 6, username: "manager".into() };
    // Two corrections under the second-person threshold (1,000 points).
    for _ in 0..2 {
        ledger::request_correction(&store, &Rules::default(), m, Points(750), "opening balance", &manager, ledger::time(T0).unwrap())
            .await
            .unwrap()
            .unwrap();
    }
    let server = TestServer::start(store, T0, test_config()).await;
    Some((db, server, m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pit_rates_a_player_and_the_points_appear_at_once() {
    let Some((_db, server, member)) = start().await else { return };
    let base = format!("http://{}", server.addr);
    let Some(boss) = Browser::start("pit", &base).await else { return };
    boss.login("pit_boss", PASSWORD).await;
    boss.goto("/pit/tables").await;
    boss.fill("#table-id", "BJ-1").await;
    boss.select("#table-game", "blackjack").await;
    boss.fill("#table-min", "10").await;
    boss.fill("#table-max", "500").await;
    boss.click("#save-table").await;
    assert!(boss.text("#tables").await.contains("BJ-1"));
    boss.close().await;

    let Some(mut b) = Browser::start("pit", &base).await else { return };
    b.login("croupier", PASSWORD).await;
    assert_eq!(b.path().await, "/pit");
    b.fill("#open-seat", "3").await;
    b.fill("#open-card", "CARDPIA").await;
    b.fill("#open-bet", "40").await;
    b.click("#open-rating").await;
    assert!(b.text("#open-ratings").await.contains("Pia Gost"));
    b.screenshot("rating-open").await;
    let rating: i64 = sqlx::query_scalar("SELECT id FROM pit_ratings").fetch_one(server.store.read()).await.unwrap();
    server.clock.advance(20 * 60_000);
    b.fill(&format!("#bet-{rating}"), "100").await;
    b.click(&format!("#change-bet-{rating}")).await;
    server.clock.advance(20 * 60_000);
    b.click(&format!("#close-{rating}")).await;
    let text = b.page_text().await;
    // EUR 40 then EUR 100, 20 minutes each: EUR 70 average for 40 minutes of blackjack,
    // 70 x 2/3 h x 63/h x 1.30 % = EUR 38.22 theoretical win, x 3 = 114.66: 114 points.
    assert!(text.contains("Rating closed: 114 points for 40 minutes"), "{text}");
    assert!(b.text("#rated").await.contains("Test croupier"), "who rated it is shown");
    b.screenshot("rating-closed").await;
    assert_eq!(ledger::balances(&server.store, member).await.unwrap().points, Points(1_614));
    b.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cashier_checks_identity_then_redeems_and_bar_and_manager_see_the_floor() {
    let Some((_db, server, member)) = start().await else { return };
    let base = format!("http://{}", server.addr);
    let Some(mut b) = Browser::start("cashier", &base).await else { return };
    b.login("cashier", PASSWORD).await;
    b.fill("#desk-number", "CARDPIA").await;
    b.click("#find-member").await;
    assert_eq!(b.text("#points").await, "1500");
    // No redemption before the identity check.
    assert!(b.client.find(fantoccini::Locator::Css("#redeem")).await.is_err());
    b.select("#id-document", "passport").await;
    b.fill("#id-last", "4711").await;
    b.click("#identity-ok").await;
    b.find("#identity-checked").await;
    b.fill("#cashback-points", "1000").await;
    b.click("#redeem").await;
    let text = b.page_text().await;
    assert!(text.contains("1000 points redeemed for 10.00 EUR of free play"), "{text}");
    assert_eq!(b.text("#points").await, "500");
    assert_eq!(b.text("#free-play").await, "10.00");
    b.screenshot("redeemed").await;
    // Beyond the balance: refused, nothing changes.
    b.fill("#cashback-points", "1000").await;
    b.click("#redeem").await;
    assert!(b.page_text().await.contains("Not enough points"));
    assert_eq!(ledger::balances(&server.store, member).await.unwrap().points, Points(500));
    b.close().await;

    let Some(mut bar) = Browser::start("bar", &base).await else { return };
    bar.login("bar", PASSWORD).await;
    bar.fill("#bar-card", "CARDPIA").await;
    bar.click("#bar-find").await;
    assert!(bar.text("#bar-member").await.contains("Pia"));
    assert_eq!(bar.text("#bar-discount").await, "0 %");
    bar.screenshot("member").await;
    bar.close().await;

    let Some(mut m) = Browser::start("manager", &base).await else { return };
    m.login("manager", PASSWORD).await;
    m.goto("/manager").await;
    assert_eq!(m.text("#kpi-redeemed").await, "1000");
    assert_eq!(m.text("#kpi-liability").await, "10.00");
    m.find("#chart-tiers").await;
    m.screenshot("dashboard").await;
    // A large correction waits for a second manager.
    m.goto("/manager/corrections").await;
    m.fill("#corr-number", "CARDPIA").await;
    m.fill("#corr-points", "5000").await;
    m.fill("#corr-reason", "system fault on table 3").await;
    m.click("#corr-submit").await;
    assert!(m.page_text().await.contains("waiting for a second person"));
    assert!(m.text("#pending").await.contains("another manager approves"));
    m.screenshot("correction-pending").await;
    // The language is the user's own: Slovenian from now on, on every page.
    m.select("select[name=lang]", "sl").await;
    m.click("form[action='/account/language'] button").await;
    assert!(m.page_text().await.contains("Čaka na odobritev"), "{}", m.page_text().await);
    m.goto("/manager").await;
    assert!(m.page_text().await.contains("Nadzorna plošča"));
    m.screenshot("dashboard-sl").await;
    m.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cashier_moves_online_cash_and_warns_at_2000_a_gaming_day() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let store = db.store().await;
    seed_staff(&store, T0).await;
    // A verified online player who is also a club member with a card.
    let account = floor_server::iaccount::testkit::active_account(&store, 1, T0).await.unwrap();
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(account).fetch_one(store.read()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let member = club::create_member(&mut tx, person, T0).await.unwrap();
    let card = club::issue_card(&mut tx, member, &CardNumber::new("CARDONLINE"), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(&store, card, CardState::Active, &Actor::System("test-seed"), T0).await.unwrap();
    let server = TestServer::start(store, T0, test_config()).await;
    let Some(mut b) = Browser::start("cashier-online", &format!("http://{}", server.addr)).await else { return };
    b.login("cashier", PASSWORD).await;
    b.fill("#desk-number", "CARDONLINE").await;
    b.click("#find-member").await;
    // The cash forms appear only after the identity check.
    assert!(b.client.find(fantoccini::Locator::Css("#deposit")).await.is_err());
    b.fill("#id-last", "0001").await;
    b.click("#identity-ok").await;
    b.fill("#deposit-amount", "1500").await;
    b.click("#deposit").await;
    assert!(b.page_text().await.contains("1500.00 EUR deposited"), "{}", b.page_text().await);
    assert_eq!(b.text("#online-balance").await, "1500.00");
    assert_eq!(b.text("#cash-today").await, "1500.00");
    // A voucher of EUR 600: the day reaches EUR 2,100, reportable; the code is shown once.
    b.fill("#voucher-amount", "600").await;
    b.click("#sell-voucher").await;
    let code = b.text("#voucher-code").await;
    assert_eq!(code.len(), 19, "{code}");
    assert!(b.text("#voucher-sold").await.contains("At or over 2000.00 EUR today"));
    b.screenshot("voucher-reportable").await;
    b.goto(&format!("/cashier?member={member}")).await;
    assert_eq!(b.text("#cash-today").await, "2100.00");
    b.find("#cash-warning").await;
    // Cash out: paid at once below the review threshold, and counted in the day's cash.
    b.fill("#withdraw-amount", "100").await;
    b.click("#withdraw").await;
    assert!(b.page_text().await.contains("100.00 EUR paid out"), "{}", b.page_text().await);
    assert_eq!(b.text("#online-balance").await, "1400.00");
    assert_eq!(b.text("#cash-today").await, "2200.00");
    b.goto("/cashier/reports").await;
    assert!(b.text("#reportable").await.contains("2200.00"));
    b.screenshot("reports").await;
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM cash_desk_records ORDER BY id").fetch_all(server.store.read()).await.unwrap();
    assert_eq!(kinds, ["online_deposit", "voucher_sale", "online_withdrawal"]);
    b.close().await;
    server.shutdown().await.unwrap();
}
