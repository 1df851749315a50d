//! The wallet API and the payment webhook over real HTTP, against the server on port 0: signatures,
//! idempotency, the processor simulator's hosted page and its duplicated, delayed and stale
//! notifications, and the test game server binary playing through the API.

use std::process::Stdio;
use std::time::{Duration, Instant};

use club_rules::Money;
use floor_server::iaccount::psp::{self, sign};
use floor_server::iaccount::testkit::{self, GAME_SECRET, GAME_SERVER};
use floor_server::iaccount::{self, wallet};
use floor_server::on_both_backends;
use floor_server::store::{Backend, Store};
use floor_server::testing::{TestDb, TestServer, test_config};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const T0: i64 = 1_780_000_000_000;

async fn start(backend: Backend) -> Option<(TestDb, TestServer, i64, String)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    testkit::add_test_game_server(&store, None, T0).await.unwrap();
    let id = testkit::active_account(&store, 1, T0).await.unwrap();
    iaccount::cashier::desk_deposit(&store, &club_rules::Rules::default(), id, Money::from_cents(10_000), &testkit::staff(), T0).await.unwrap();
    let token = wallet::launch(&store, id, GAME_SERVER, "slot", T0).await.unwrap();
    let server = TestServer::start(store, T0, test_config()).await;
    Some((db, server, id, token))
}

async fn call(server: &TestServer, path: &str, body: &Value, secret: &str) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/wallet/v1/{path}", server.addr))
        .header("x-game-server", GAME_SERVER)
        .header("x-signature", sign(secret, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn total(store: &Store, id: i64) -> Money {
    iaccount::get(store, id).await.unwrap().balances.total()
}

async fn a_request_with_a_bad_signature_is_refused_and_moves_nothing(backend: Backend) {
    let Some((_db, server, id, token)) = start(backend).await else { return };
    let bet = json!({ "token": token, "transaction_id": "b1", "round_id": "r1", "amount": "5.00" });
    let (status, body) = call(&server, "bet", &bet, "not-the-secret-not-the-secret-not-the-secret").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("bad_signature")));
    let raw = reqwest::Client::new()
        .post(format!("http://{}/wallet/v1/bet", server.addr))
        .header("x-game-server", GAME_SERVER)
        .json(&bet)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 401, "an unsigned request is refused");
    assert_eq!(total(&server.store, id).await, Money::from_cents(10_000));
    let (status, _) = call(&server, "bet", &bet, GAME_SECRET).await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}

/// The server keeps a game server's secret after its first request; disabling the server refuses
/// its next requests all the same, wins included, and they move nothing.
async fn a_disabled_game_server_is_refused_at_once_even_for_wins(backend: Backend) {
    let Some((_db, server, id, token)) = start(backend).await else { return };
    let bet = json!({ "token": token, "transaction_id": "b1", "round_id": "r1", "amount": "5.00" });
    assert_eq!(call(&server, "bet", &bet, GAME_SECRET).await.0, 200);
    wallet::disable_game_server(&server.store, GAME_SERVER, &testkit::staff(), T0).await.unwrap();
    let win = json!({ "token": token, "transaction_id": "w1", "round_id": "r1", "amount": "50.00" });
    let bet2 = json!({ "token": token, "transaction_id": "b2", "round_id": "r2", "amount": "5.00" });
    let unknown = json!({ "token": "no-such-token", "transaction_id": "b3", "round_id": "r3", "amount": "5.00" });
    for (path, body) in [("win", &win), ("bet", &bet2), ("bet", &unknown), ("authenticate", &json!({ "token": token }))] {
        let (status, answer) = call(&server, path, body, GAME_SECRET).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")), "{path}");
    }
    assert_eq!(total(&server.store, id).await, Money::from_cents(9_500));
    server.shutdown().await.unwrap();
}

async fn the_api_is_idempotent_and_answers_refusals_with_codes(backend: Backend) {
    let Some((_db, server, id, token)) = start(backend).await else { return };
    let (s, auth) = call(&server, "authenticate", &json!({ "token": token }), GAME_SECRET).await;
    assert_eq!((s, auth["player_id"].as_i64(), auth["balance"]["total"].as_str()), (200, Some(id), Some("100.00")));
    let bet = json!({ "token": token, "transaction_id": "b1", "round_id": "r1", "amount": "5.00" });
    let first = call(&server, "bet", &bet, GAME_SECRET).await;
    let again = call(&server, "bet", &bet, GAME_SECRET).await;
    assert_eq!(first, again);
    assert_eq!(first.1["balance"]["total"].as_str(), Some("95.00"));
    let (s, too_much) =
        call(&server, "bet", &json!({ "token": token, "transaction_id": "b2", "round_id": "r2", "amount": "500.00" }), GAME_SECRET).await;
    assert_eq!((s, too_much["error"].as_str(), too_much["balance"].as_str()), (402, Some("insufficient_funds"), Some("95.00")));
    let (s, rb) = call(
        &server,
        "rollback",
        &json!({ "token": token, "transaction_id": "x1", "round_id": "r3", "rollback_transaction_id": "b3" }),
        GAME_SECRET,
    )
    .await;
    assert_eq!((s, rb["ledger_id"].clone()), (200, Value::Null));
    let (s, late) =
        call(&server, "bet", &json!({ "token": token, "transaction_id": "b3", "round_id": "r3", "amount": "1.00" }), GAME_SECRET).await;
    assert_eq!((s, late["error"].as_str()), (409, Some("rolled_back")));
    server.clock.advance(2 * 3_600_000);
    let (s, expired) =
        call(&server, "bet", &json!({ "token": token, "transaction_id": "b4", "round_id": "r4", "amount": "1.00" }), GAME_SECRET).await;
    assert_eq!((s, expired["error"].as_str()), (401, Some("token_expired")));
    let (s, win) =
        call(&server, "win", &json!({ "token": token, "transaction_id": "w1", "round_id": "r1", "amount": "7.50" }), GAME_SECRET).await;
    assert_eq!((s, win["balance"]["winnings"].as_str()), (200, Some("7.50")));
    let doc: Value = reqwest::get(format!("http://{}/wallet/v1/openapi.json", server.addr)).await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/wallet/v1/bet"]["post"].is_object(), "the OpenAPI document describes the bet");
    server.shutdown().await.unwrap();
}

async fn post_webhook(server: &TestServer, n: &psp::Notification, secret: &str) -> u16 {
    let body = serde_json::to_vec(n).unwrap();
    reqwest::Client::new()
        .post(format!("http://{}/iaccount/psp/webhook", server.addr))
        .header(psp::SIGNATURE_HEADER, sign(secret, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn webhooks_credit_once_whatever_the_duplicates_and_order_and_forgeries_are_refused(backend: Backend) {
    let Some((_db, server, id, _token)) = start(backend).await else { return };
    let started = psp::start_card_deposit(&server.store, &psp::Simulator, id, Money::from_cents(2500), T0).await.unwrap();
    let n = |event: &str, status: &str| psp::Notification {
        event_id: event.into(),
        provider_ref: started.provider_ref.clone(),
        status: status.into(),
        amount: Money::from_cents(2500),
        card_brand: Some("visa".into()),
    };
    assert_eq!(post_webhook(&server, &n("e1", "succeeded"), "forged-secret").await, 401);
    assert_eq!(total(&server.store, id).await, Money::from_cents(10_000), "a forged notification credits nothing");
    // the browser's return shows the state and credits nothing
    let page = reqwest::get(format!("http://{}/iaccount/deposits/{}/return", server.addr, started.provider_ref)).await.unwrap().text().await.unwrap();
    assert!(page.contains("<span id=state>pending</span>"));
    assert_eq!(total(&server.store, id).await, Money::from_cents(10_000));
    let secret = psp::webhook_secret();
    for (e, s) in [("e2", "succeeded"), ("e2", "succeeded"), ("e3", "succeeded"), ("e0", "pending"), ("e4", "failed")] {
        assert_eq!(post_webhook(&server, &n(e, s), secret).await, 200);
    }
    assert_eq!(total(&server.store, id).await, Money::from_cents(12_500));
    assert_eq!(psp::deposit_state(&server.store, &started.provider_ref).await.unwrap().as_deref(), Some("completed"));
    server.shutdown().await.unwrap();
}

async fn the_simulators_hosted_page_pays_through_delayed_duplicated_stale_webhooks(backend: Backend) {
    let Some((_db, server, id, _token)) = start(backend).await else { return };
    let started = psp::start_card_deposit(&server.store, &psp::Simulator, id, Money::from_cents(4000), T0).await.unwrap();
    let base = format!("http://{}", server.addr);
    let page = reqwest::get(format!("{base}{}", started.payment_page)).await.unwrap().text().await.unwrap();
    assert!(page.contains("PaySim"));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client
        .post(format!("{base}/psp-sim/pay/{}", started.provider_ref))
        .form(&[("amount", "40.00"), ("return_url", &format!("/iaccount/deposits/{}/return", started.provider_ref)), ("card_number", "4000 0000 0000 0259")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().contains("status=succeeded"));
    // the simulator sends the success twice and a stale `pending`: wait until all three are in
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM psp_events").fetch_one(server.store.read()).await.unwrap();
        if n >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the simulator's notifications did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(total(&server.store, id).await, Money::from_cents(14_000), "credited once");
    // a declined card: nothing credited
    let declined = psp::start_card_deposit(&server.store, &psp::Simulator, id, Money::from_cents(1000), T0).await.unwrap();
    client
        .post(format!("{base}/psp-sim/pay/{}", declined.provider_ref))
        .form(&[("amount", "10.00"), ("return_url", "/x"), ("card_number", "4000000000000002")])
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while psp::deposit_state(&server.store, &declined.provider_ref).await.unwrap().as_deref() != Some("failed") {
        assert!(Instant::now() < deadline, "the decline did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total(&server.store, id).await, Money::from_cents(14_000));
    server.shutdown().await.unwrap();
}

async fn the_test_game_server_plays_through_the_wallet(backend: Backend) {
    let Some((_db, server, id, token)) = start(backend).await else { return };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-game-server"))
        .args(["--listen", "127.0.0.1:0", "--wallet-url", &format!("http://{}", server.addr), "--id", GAME_SERVER])
        .env("TEST_GAME_SECRET", GAME_SECRET)
        .env("TEST_GAME_SEED", "7")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let game = first.trim_start_matches("listening on ").to_owned();
    let client = reqwest::Client::new();
    let mut staked = 0;
    let mut won = Money::ZERO;
    for _ in 0..20 {
        let r = client.post(format!("{game}/api/spin")).json(&json!({ "token": token, "stake": "2.00" })).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let spin: Value = r.json().await.unwrap();
        staked += 200;
        won += Money::from_decimal(spin["win"].as_str().unwrap().parse().unwrap()).unwrap();
    }
    assert_eq!(total(&server.store, id).await, Money::from_cents(10_000 - staked) + won);
    let sums = iaccount::ledger_sums(&server.store, id).await.unwrap();
    assert_eq!(sums.bonus + sums.deposit + sums.winnings, (Money::from_cents(10_000 - staked) + won).cents());
    let html = client.get(format!("{game}/?token={token}")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=balance"));
    child.kill().await.unwrap();
    server.shutdown().await.unwrap();
}

on_both_backends!(
    a_request_with_a_bad_signature_is_refused_and_moves_nothing,
    a_disabled_game_server_is_refused_at_once_even_for_wins,
    the_api_is_idempotent_and_answers_refusals_with_codes,
    webhooks_credit_once_whatever_the_duplicates_and_order_and_forgeries_are_refused,
    the_simulators_hosted_page_pays_through_delayed_duplicated_stale_webhooks,
    the_test_game_server_plays_through_the_wallet,
);
