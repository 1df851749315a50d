//! pos-bridge end to end, on SQLite and on PostgreSQL: the floor server, the bridge connected to
//! it as the bar terminal, and a POS client script (`pos-bridge/examples/pos_client.py`, run with
//! python3) ringing up a Gold member's evening; then the same bridge with the link down.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use club_rules::{MachineType, Money};
use floor_protocol::{CardNumber, Reply, Request, TerminalEvent};
use floor_server::store::{Backend, Store};
use pos_bridge::ws::WsFloor;
use pos_bridge::{Bridge, BridgeConfig, Floor as BridgeFloor, Offline, PosOutlet, RecordError};
use secrecy::{ExposeSecret, SecretString};

use club_tests::*;

floor_server::on_both_backends!(
    a_pos_client_script_rings_up_a_gold_members_evening,
    offline_cash_waits_in_the_outbox_and_points_are_refused,
    outlet_requests_come_from_bar_terminals_only,
);

const TOKEN: &str = "till-token-0123456789";
const BAR: usize = 2;

/// Ana is Gold with 1,000 points (EUR 4,000 of slot play); the demo catalogue is loaded.
async fn prepare(store: &Store) -> i64 {
    let member: i64 = sqlx::query_scalar("SELECT m.id FROM members m JOIN persons p ON p.id = m.person_id WHERE p.first_name = 'Ana'")
        .fetch_one(store.read())
        .await
        .unwrap();
    let rules = club_rules::Rules::default();
    let mut tx = store.begin().await.unwrap();
    let at = chrono::DateTime::from_timestamp_millis(T0 - 3_600_000).unwrap();
    floor_server::ledger::apply_play(&mut tx, &rules, member, None, MachineType::Slot, Money::from_cents(400_000), at, None)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE members SET tier = 'gold' WHERE id = $1").bind(member).execute(store.read()).await.unwrap();
    let articles = floor_server::catalogue::parse_csv(floor_server::demo::CATALOGUE_CSV).unwrap();
    floor_server::catalogue::upsert(store, &articles, &SEED, T0).await.unwrap();
    member
}

/// The balance, after checking that the cached balance, the entries and the lots agree.
async fn balance(store: &Store, member: i64) -> i64 {
    let q = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).bind(member).fetch_one(store.read()).await.unwrap() };
    let cached = q("SELECT points_balance FROM members WHERE id = $1").await;
    let entries = q("SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE member_id = $1").await;
    let lots = q("SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM points_lots WHERE member_id = $1").await;
    assert_eq!((cached, lots), (entries, entries));
    cached
}

/// Serves the bridge's API on a loopback port of its own; returns its base URL.
async fn serve<F: BridgeFloor>(bridge: &Bridge<F>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(pos_bridge::serve(listener, bridge.router(), std::future::pending()));
    url
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pos-bridge/examples/pos_client.py")
}

fn python_or_skip() -> bool {
    let there = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !there && floor_server::testing::require_all() {
        panic!("python3 is required (CLUB_REQUIRE_ALL=1) for the POS client script");
    }
    if !there {
        eprintln!("skipped: python3 not found");
    }
    there
}

async fn a_pos_client_script_rings_up_a_gold_members_evening(backend: Backend) {
    if !python_or_skip() {
        return;
    }
    let Some(floor) = Floor::start(backend).await else { return };
    let member = prepare(floor.store()).await;
    let creds = &floor.terminals[BAR];
    let ws = WsFloor::new(floor.server.ws_url(), creds.terminal_id.clone(), SecretString::from(creds.secret.expose_secret().to_owned()));
    let bridge = Bridge::new(ws, BridgeConfig::new(SecretString::from(TOKEN), PosOutlet::Bar));
    bridge.card_read(CardNumber::new("CARDANA"));
    let url = serve(&bridge).await;
    let out = tokio::task::spawn_blocking(move || Command::new("python3").arg(script()).args(["--url", &url, "--token", TOKEN]).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // 1,000 + 1 (beers) - 315 (dinner) - 210 (showcase) + 315 (refund) = 791.
    assert_eq!((summary["start"].as_i64(), summary["end"].as_i64()), (Some(1_000), Some(791)));
    assert_eq!(balance(floor.store(), member).await, 791);
    let tickets: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT ticket, reversal FROM outlet_tickets WHERE terminal_id = 'BAR-1' ORDER BY id")
            .fetch_all(floor.store().read())
            .await
            .unwrap();
    let expected = [("T-COFFEE", None), ("T-BEERS", None), ("T-DINNER", Some("refund")), ("T-SHOW-1", None)];
    assert_eq!(tickets, expected.map(|(t, r)| (t.to_owned(), r.map(str::to_owned))).to_vec());
    let entries: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, points FROM points_ledger WHERE member_id = $1 AND created_at >= $2 ORDER BY id",
    )
    .bind(member)
    .bind(T0)
    .fetch_all(floor.store().read())
    .await
    .unwrap();
    let expected = [("earned", 1), ("redeemed", -315), ("redeemed", -210), ("returned", 315)];
    assert_eq!(entries, expected.map(|(k, p)| (k.to_owned(), p)).to_vec());
}

/// The agent's side for this test: a link that can be cut, and an outbox that keeps events
/// while it is.
struct Cuttable {
    ws: WsFloor,
    down: AtomicBool,
    outbox: Mutex<Vec<TerminalEvent>>,
}

impl BridgeFloor for Cuttable {
    async fn request(&self, request: Request) -> Result<Reply, Offline> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Offline("link down".into()));
        }
        self.ws.request(request).await
    }

    async fn record(&self, event: TerminalEvent) -> Result<(), RecordError> {
        if self.down.load(Ordering::SeqCst) {
            self.outbox.lock().unwrap().push(event);
            return Ok(());
        }
        self.ws.record(event).await
    }
}

async fn offline_cash_waits_in_the_outbox_and_points_are_refused(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let member = prepare(floor.store()).await;
    let creds = &floor.terminals[BAR];
    let ws = WsFloor::new(floor.server.ws_url(), creds.terminal_id.clone(), SecretString::from(creds.secret.expose_secret().to_owned()));
    let link = std::sync::Arc::new(Cuttable { ws, down: AtomicBool::new(false), outbox: Mutex::new(Vec::new()) });
    let bridge = Bridge::new(link.clone(), BridgeConfig::new(SecretString::from(TOKEN), PosOutlet::Bar));
    bridge.card_read(CardNumber::new("CARDANA"));
    let app = bridge.router();
    let post = |path: &'static str, body: serde_json::Value| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
        }
    };
    let beers = serde_json::json!({"id": "T-OFF-1", "lines": [
        {"sku": "BEER-BTL", "name": "Bottled beer", "category": "beer", "quantity": 10, "unit_price": "4.50"}]});
    // Priced online (Gold: EUR 31.50), then the link goes down before the settle.
    let (status, priced) = post("/v1/tickets/price", beers.clone()).await;
    assert_eq!((status, priced["money_due"].as_str()), (200, Some("31.50")));
    link.down.store(true, Ordering::SeqCst);
    let dinner = serde_json::json!({"id": "T-OFF-2", "outlet": "restaurant", "lines": [
        {"sku": "DINNER-MENU", "name": "Dinner", "category": "food", "quantity": 1, "unit_price": "45.00", "pay_with": "points"}]});
    let (status, body) = post("/v1/tickets/settle", serde_json::json!({"ticket": dinner, "tenders": [{"kind": "points", "points": 315}]})).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("points_offline")), "{body}");
    let (status, body) = post("/v1/tickets/settle", serde_json::json!({"ticket": beers, "tenders": [{"kind": "cash", "amount": "30.00"}]})).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("invalid")), "tenders must add up offline too: {body}");
    let settle = serde_json::json!({"ticket": beers, "tenders": [{"kind": "cash", "amount": "31.50"}]});
    let (status, body) = post("/v1/tickets/settle", settle.clone()).await;
    assert_eq!((status, body["offline"].as_bool(), body["points_earned"].clone()), (202, Some(true), serde_json::Value::Null), "{body}");
    let (status, body) = post("/v1/tickets/settle", settle.clone()).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_settled")));
    let (status, body) = post("/v1/tickets/T-OFF-1/void", serde_json::json!({})).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("offline")));
    assert_eq!(balance(floor.store(), member).await, 1_000, "nothing earned while the link is down");
    // The link is back: the outbox is sent; EUR 31.50 cash earns 7 points, once.
    link.down.store(false, Ordering::SeqCst);
    let waiting: Vec<TerminalEvent> = std::mem::take(&mut *link.outbox.lock().unwrap());
    assert_eq!(waiting.len(), 1);
    for event in waiting.iter().chain(waiting.iter()) {
        link.ws.record(event.clone()).await.unwrap();
    }
    assert_eq!(balance(floor.store(), member).await, 1_007);
    // An online settle of the same ticket number is refused; nothing earns twice.
    let (status, body) = post("/v1/tickets/settle", settle).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(balance(floor.store(), member).await, 1_007);
}

async fn outlet_requests_come_from_bar_terminals_only(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    prepare(floor.store()).await;
    let slot = &floor.terminals[0];
    let ws = WsFloor::new(floor.server.ws_url(), slot.terminal_id.clone(), SecretString::from(slot.secret.expose_secret().to_owned()));
    let reply = ws.request(Request::Catalogue).await.unwrap();
    assert!(matches!(&reply, Reply::Failed { code: floor_protocol::ErrorCode::Invalid, .. }), "{reply:?}");
    let bar = &floor.terminals[BAR];
    let ws = WsFloor::new(floor.server.ws_url(), bar.terminal_id.clone(), SecretString::from(bar.secret.expose_secret().to_owned()));
    let Reply::Catalogue { articles } = ws.request(Request::Catalogue).await.unwrap() else { panic!("a catalogue") };
    let free: Vec<&str> = articles.iter().filter(|a| a.member_free).map(|a| a.sku.as_str()).collect();
    // The rules' free-drink categories: coffee, water, dispenser juice, draft beer, open wine.
    assert_eq!(free, ["CAPPUCCINO", "DRAFT-03", "ESPRESSO", "JUICE-DISP", "WATER-05", "WINE-OPEN"]);
}
