//! The i-Account's staff pages over HTTP on both databases: game server registration (the secret
//! shown once signs wallet requests until the server is disabled) and the bank statement import
//! (every line shown with what became of it, credited once), and closing the account of a player
//! found to be a minor. The verification queue and the withdrawal review are driven in Chromium
//! (`iaccount_browser`).

use club_rules::Money;
use club_tests::T0;
use club_tests::web::{PASSWORD, WebClient, location, seed_staff};
use floor_server::iaccount::psp::sign;
use floor_server::iaccount::{self, testkit, wallet};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};

async fn start(backend: Backend) -> Option<(TestDb, TestServer)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let server = TestServer::start(store, T0, test_config()).await;
    Some((db, server))
}

/// The text between `<code>` and `</code>`.
fn code(html: &str) -> Option<String> {
    let start = html.find("<code>")? + "<code>".len();
    let end = html[start..].find("</code>")? + start;
    Some(html[start..end].to_owned())
}

async fn wallet_balance(server: &TestServer, game_server: &str, secret: &str, token: &str) -> u16 {
    let body = serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap();
    reqwest::Client::new()
        .post(format!("http://{}/wallet/v1/balance", server.addr))
        .header("x-game-server", game_server)
        .header("x-signature", sign(secret, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn an_administrator_registers_a_game_server_whose_secret_signs_until_it_is_disabled(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let mut admin = WebClient::new(&format!("http://{}", server.addr));
    admin.login("administrator", PASSWORD).await;
    let csrf = admin.csrf("/iaccount/game-servers").await;
    let bad = admin.post_form("/iaccount/game-servers", &[("csrf", &csrf), ("id", "no spaces please"), ("name", "X")]).await;
    assert_eq!(bad.status(), 303, "a bad id is refused with a message");
    let page = admin.post_form("/iaccount/game-servers", &[("csrf", &csrf), ("id", "slot-2"), ("name", "Second slot"), ("launch_url", "")]).await;
    assert_eq!(page.status(), 200);
    let secret = code(&page.text().await.unwrap()).expect("the secret is shown once");
    assert_eq!(secret.len(), 64);
    let listed = admin.get("/iaccount/game-servers").await.text().await.unwrap();
    assert!(listed.contains("Second slot") && !listed.contains(&secret), "listed, without its secret");

    // The secret signs the game server's wallet requests.
    let id = testkit::active_account(&server.store, 1, T0).await.unwrap();
    let token = wallet::launch(&server.store, id, "slot-2", "slot", T0).await.unwrap();
    assert_eq!(wallet_balance(&server, "slot-2", &secret, &token).await, 200);

    // Disabled: its requests are refused from now on.
    let r = admin.post_form("/iaccount/game-servers/slot-2/disable", &[("csrf", &csrf)]).await;
    assert_eq!((r.status().as_u16(), location(&r).as_str()), (303, "/iaccount/game-servers"));
    assert_eq!(wallet_balance(&server, "slot-2", &secret, &token).await, 401);

    let audit: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT action, actor, after FROM audit_log WHERE action LIKE 'game_server.%' ORDER BY id").fetch_all(server.store.read()).await.unwrap();
    assert_eq!(audit.iter().map(|(a, _, _)| a.as_str()).collect::<Vec<_>>(), ["game_server.add", "game_server.disable"]);
    assert!(audit.iter().all(|(_, actor, after)| actor.ends_with(":administrator") && !after.clone().unwrap_or_default().contains(&secret)), "{audit:?}");

    // A manager may not register game servers (see web::roles::GAME_SERVERS).
    let mut manager = WebClient::new(&admin.base);
    manager.login("manager", PASSWORD).await;
    assert_eq!(manager.get("/iaccount/game-servers").await.status(), 403);
    server.shutdown().await.unwrap();
}

async fn a_cashier_imports_a_bank_statement_and_sees_what_became_of_each_line(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let id = testkit::active_account(&server.store, 1, T0).await.unwrap();
    let player_no: String = sqlx::query_scalar("SELECT player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(server.store.read()).await.unwrap();
    let mut cashier = WebClient::new(&format!("http://{}", server.addr));
    cashier.login("cashier", PASSWORD).await;
    let desk = cashier.get("/cashier").await.text().await.unwrap();
    assert!(desk.contains("href=\"/iaccount/bank\""), "the desk links to the import");
    let csrf = cashier.csrf("/iaccount/bank").await;

    // A malformed file changes nothing and says why.
    let r = cashier.post_file("/iaccount/bank", &csrf, "bad.csv", b"date,amount\n2026-05-01,25.00\n").await;
    assert_eq!(r.status(), 303);
    assert!(cashier.get("/iaccount/bank").await.text().await.unwrap().contains("Refused: the first line must be"));

    let csv = format!("booked_on,amount,reference,bank_ref\n2026-05-01,25.00,{player_no},B1\n2026-05-01,10.50,P99999999,B2\n2026-05-02,7.00,,B3\n");
    let page = cashier.post_file("/iaccount/bank", &csrf, "statement.csv", csv.as_bytes()).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Imported: 1 credited, 2 not matched, 0 already imported before."), "{html}");
    for shown in ["credited", "not credited: no player has this number", "not credited: no payment reference", "P99999999", "10.50"] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let again = cashier.post_file("/iaccount/bank", &csrf, "statement.csv", csv.as_bytes()).await.text().await.unwrap();
    assert!(again.contains("Imported: 0 credited, 0 not matched, 3 already imported before.") && again.contains("skipped: imported before"), "{again}");
    assert_eq!(iaccount::get(&server.store, id).await.unwrap().balances.deposited, Money::from_cents(2500), "credited once");

    // Without the session's token the upload is refused before it is read.
    assert_eq!(cashier.post_file("/iaccount/bank", "not-the-token", "statement.csv", csv.as_bytes()).await.status(), 400);
    let imports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'iaccount.bank_import'").fetch_one(server.store.read()).await.unwrap();
    assert_eq!(imports, 2);
    server.shutdown().await.unwrap();
}

/// A manager finds a player who turned out to be under 18 and closes the account: only with the
/// box ticked, the personal data are gone at once, and it is audited; reception may not.
async fn a_manager_closes_the_account_of_a_player_found_to_be_a_minor(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let base = format!("http://{}", server.addr);
    let id = testkit::active_account(&server.store, 1, T0).await.unwrap();
    let player_no: String = sqlx::query_scalar("SELECT player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(server.store.read()).await.unwrap();
    let state = |store: floor_server::store::Store| async move {
        sqlx::query_as::<_, (String, String)>("SELECT a.state, p.first_name FROM iaccounts a JOIN persons p ON p.id = a.person_id WHERE a.id = $1")
            .bind(id)
            .fetch_one(store.read())
            .await
            .unwrap()
    };
    let (_, first_name) = state(server.store.clone()).await;

    let mut manager = WebClient::new(&base);
    manager.login("manager", PASSWORD).await;
    let search = format!("/iaccount/accounts?q={player_no}");
    let page = manager.get(&search).await.text().await.unwrap();
    assert!(page.contains(&player_no) && page.contains(&first_name) && page.contains(&format!("id=\"minor-{id}\"")), "{page}");
    let by_name = manager.get(&format!("/iaccount/accounts?q={}", first_name.to_lowercase())).await.text().await.unwrap();
    assert!(by_name.contains(&player_no), "found by name, whatever the case");

    let csrf = manager.csrf(&search).await;
    let unconfirmed = manager.post_form(&format!("/iaccount/accounts/{id}/minor"), &[("csrf", &csrf)]).await;
    assert_eq!((unconfirmed.status().as_u16(), location(&unconfirmed).as_str()), (303, "/iaccount/accounts"));
    assert_eq!(state(server.store.clone()).await, ("active".to_owned(), first_name.clone()), "nothing happens unconfirmed");

    let closed = manager.post_form(&format!("/iaccount/accounts/{id}/minor"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(closed.status().as_u16(), 303);
    assert_eq!(state(server.store.clone()).await, ("closed".to_owned(), "-".to_owned()), "closed, the name deleted");
    let after = manager.get(&search).await.text().await.unwrap();
    assert!(!after.contains(&first_name), "the search no longer shows the name");
    let audit: Vec<(String, String)> = sqlx::query_as("SELECT action, actor FROM audit_log WHERE action = 'iaccount.minor_closed'").fetch_all(server.store.read()).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].1.ends_with(":manager"), "{audit:?}");

    let mut reception = WebClient::new(&base);
    reception.login("reception", PASSWORD).await;
    assert_eq!(reception.get("/iaccount/accounts").await.status(), 403);
}

floor_server::on_both_backends!(
    a_manager_closes_the_account_of_a_player_found_to_be_a_minor,
    an_administrator_registers_a_game_server_whose_secret_signs_until_it_is_disabled,
    a_cashier_imports_a_bank_statement_and_sees_what_became_of_each_line,
);
