//! The online i-Account in headless Chromium, start to end: registration on the page, reception
//! verifying it from the queue in the staff console, login, a card deposit through the processor
//! simulator's hosted page, play at the test game server (its own binary), a loss limit that stops
//! play, a withdrawal, a voucher and a withdrawal above the AML threshold that a manager approves
//! and marks paid in the console, and a self-exclusion that refuses the next game. Screenshots in
//! `target/browser-artefacts/iaccount/` (the player) and `iaccount-staff/` (the consoles).

use std::process::Stdio;
use std::time::{Duration, Instant};

use club_rules::Money;
use club_tests::T0;
use club_tests::browser::Browser;
use club_tests::web::{PASSWORD, seed_staff};
use floor_server::iaccount::testkit::{self, GAME_SECRET, GAME_SERVER};
use floor_server::iaccount::{self, cashier, register};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};
use tokio::io::AsyncBufReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_register_verify_deposit_play_limit_withdraw_and_exclude() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let server = TestServer::start(store, T0, test_config()).await;
    let base = format!("http://{}", server.addr);

    let mut game = tokio::process::Command::new(club_tests::workspace_binary("test-game-server"))
        .args(["--listen", "127.0.0.1:0", "--wallet-url", &base, "--id", GAME_SERVER])
        .env("TEST_GAME_SECRET", GAME_SECRET)
        .env("TEST_GAME_SEED", "11")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("test-game-server");
    let mut lines = tokio::io::BufReader::new(game.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let game_url = first.trim_start_matches("listening on ").to_owned();
    testkit::add_test_game_server(&server.store, Some(&format!("{game_url}/")), T0).await.unwrap();

    let Some(mut b) = Browser::start("iaccount", &base).await else { return };

    // Registration on the page.
    let r = testkit::registration(7, chrono::NaiveDate::from_ymd_opt(1985, 3, 9).unwrap());
    b.goto("/account/register").await;
    for (field, value) in [
        ("username", &r.username),
        ("password", &r.password),
        ("email", &r.email),
        ("first_name", &r.first_name),
        ("last_name", &r.last_name),
        ("personal_id", &r.personal_id),
        ("iban", &r.iban),
        ("phone", &r.phone),
        ("address", &r.address),
        ("city", &r.city),
        ("postal_code", &r.postal_code),
        ("country", &r.country),
        ("nationality", &r.nationality),
        ("id_doc_type", &r.id_doc_type),
        ("id_doc_number", &r.id_doc_number),
        ("id_doc_country", &r.id_doc_country),
        ("id_doc_issuer", &r.id_doc_issuer),
    ] {
        b.fill(&format!("#{field}"), value).await;
    }
    b.fill("#birth_date", "1985-03-09").await;
    b.screenshot("register").await;
    b.click("#submit").await;
    assert!(b.text("#message").await.contains("documents will be checked"), "{}", b.page_text().await);

    // Reception verifies the documents from the queue page, in a browser of its own.
    let queue = register::verification_queue(&server.store).await.unwrap();
    assert_eq!(queue.len(), 1);
    let id = queue[0].account_id;
    let Some(mut staff) = Browser::start("iaccount-staff", &base).await else { return };
    staff.login("reception", PASSWORD).await;
    staff.goto("/reception").await;
    staff.click("#iaccount-verification").await;
    assert!(staff.text("#verification-queue").await.contains(&r.username));
    staff.screenshot("verification-queue").await;
    staff.click(&format!("#verify-{id}")).await;
    let player_no: String = sqlx::query_scalar("SELECT player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(server.store.read()).await.unwrap();
    assert!(staff.page_text().await.contains(&format!("Verified: player number {player_no}")), "{}", staff.page_text().await);
    assert!(!staff.text("#verification-queue").await.contains(&r.username), "gone from the queue");
    staff.screenshot("verified").await;
    let verified_by: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'iaccount.verify'").fetch_one(server.store.read()).await.unwrap();
    assert!(verified_by.ends_with(":reception"), "{verified_by}");
    staff.close().await;

    // Login.
    b.goto("/account/login").await;
    b.fill("#username", &r.username).await;
    b.fill("#password", &r.password).await;
    b.click("#login").await;
    assert_eq!(b.text("#account-state").await, "active");
    assert_eq!(b.text("#total").await, "0.00");

    // A card deposit through the simulator's hosted page; the webhook credits it.
    b.fill("form[action='/account/deposit'] input[name=amount]", "20.00").await;
    b.click("#deposit").await;
    assert!(b.page_text().await.contains("PaySim"));
    b.fill("#card_number", "4242 4242 4242 4242").await;
    b.screenshot("psp").await;
    b.click("#pay").await;
    assert!(b.path().await.contains("status=succeeded"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while iaccount::get(&server.store, id).await.unwrap().balances.deposited != Money::from_cents(2000) {
        assert!(Instant::now() < deadline, "the deposit was not credited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.goto("/account").await;
    assert_eq!(b.text("#total").await, "20.00");

    // A loss limit of EUR 3.00 a day, then play until it stops the game.
    b.select("#kind", "loss").await;
    b.select("#period", "day").await;
    b.fill("#limit_amount", "3.00").await;
    b.click("#set-limit").await;
    assert!(b.text("#message").await.contains("applies now"));
    b.click("#play").await;
    b.click("#open-game").await;
    assert!(b.path().await.starts_with("/?token="));
    let mut refused = String::new();
    for _ in 0..10 {
        b.fill("#stake", "1.00").await;
        b.click("#spin").await;
        if let Ok(e) = b.client.find(fantoccini::Locator::Css("#refused")).await {
            refused = e.text().await.unwrap();
            break;
        }
    }
    assert!(refused.contains("limit_reached"), "the loss limit stopped play: {refused}");
    b.screenshot("limit-reached").await;

    // A withdrawal to the bank account.
    b.goto("/account").await;
    b.fill("form[action='/account/withdraw'] input[name=amount]", "10.00").await;
    b.select("#method", "bank").await;
    b.click("#withdraw").await;
    assert!(b.text("#message").await.contains("Withdrawal requested"));
    assert!(b.text("#withdrawals").await.contains("10.00"));
    assert!(b.text("#history").await.contains("withdrawal"));

    // A voucher bought at a desk, redeemed on the page, and a withdrawal above the AML threshold
    // (EUR 2,000): held for review until a manager approves it in the console, then marked paid
    // once the transfer is sent.
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(id).fetch_one(server.store.read()).await.unwrap();
    let (code, _) = cashier::sell_voucher(&server.store, &club_rules::Rules::default(), person, Money::from_cents(250_000), &testkit::staff(), T0).await.unwrap();
    b.fill("#code", &code).await;
    b.click("#redeem").await;
    assert!(b.text("#message").await.contains("2500"), "{}", b.page_text().await);
    b.fill("form[action='/account/withdraw'] input[name=amount]", "2100.00").await;
    b.select("#method", "bank").await;
    b.click("#withdraw").await;
    assert!(b.text("#message").await.contains("Withdrawal requested"));
    let held: i64 = sqlx::query_scalar("SELECT id FROM withdrawals WHERE state = 'review'").fetch_one(server.store.read()).await.unwrap();
    let Some(mut manager) = Browser::start("iaccount-staff", &base).await else { return };
    manager.login("manager", PASSWORD).await;
    manager.goto("/").await;
    manager.click("a[href='/iaccount/withdrawals']").await;
    let row = manager.text(&format!("#withdrawal-{held}")).await;
    assert!(row.contains("2100.00") && row.contains(&player_no) && row.contains("in review"), "{row}");
    manager.screenshot("withdrawal-held").await;
    manager.click(&format!("#approve-{held}")).await;
    assert!(manager.page_text().await.contains("Approved"), "{}", manager.page_text().await);
    manager.click(&format!("#paid-{held}")).await;
    assert!(manager.page_text().await.contains("Marked paid"));
    manager.screenshot("withdrawal-paid").await;
    manager.close().await;
    let state: String = sqlx::query_scalar("SELECT state FROM withdrawals WHERE id = $1").bind(held).fetch_one(server.store.read()).await.unwrap();
    assert_eq!(state, "paid");
    let decided: Vec<(String, String)> = sqlx::query_as("SELECT action, actor FROM audit_log WHERE subject = $1 ORDER BY id")
        .bind(format!("withdrawal:{held}"))
        .fetch_all(server.store.read())
        .await
        .unwrap();
    let actions: Vec<&str> = decided.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["iaccount.withdrawal_approve", "iaccount.withdrawal_paid"]);
    assert!(decided.iter().all(|(_, actor)| actor.ends_with(":manager")), "{decided:?}");

    // Self-exclusion for a day: the next game is refused.
    b.fill("#days", "1").await;
    b.click("#exclude").await;
    assert!(b.text("#message").await.contains("self-excluded"));
    b.click("#play").await;
    assert!(b.text("#message").await.contains("self-excluded"), "{}", b.page_text().await);
    b.screenshot("excluded").await;

    let sums = iaccount::ledger_sums(&server.store, id).await.unwrap();
    let a = iaccount::get(&server.store, id).await.unwrap();
    assert_eq!(sums.deposit + sums.winnings + sums.bonus, a.balances.total().cents());
    b.close().await;
    game.kill().await.unwrap();
    server.shutdown().await.unwrap();
}
