//! The terminal agent in bar mode, end to end with real processes: the `floor-server` binary on
//! SQLite, the `terminal-agent` binary in bar mode (pos-bridge in process, the till's HTTP API on
//! a loopback port), a club card on vsmartcard's virtual reader through pcscd, and a till client
//! speaking the bridge's HTTP API.
//!
//! Named `pcsc_*`: the test shares pcscd's virtual reader (nextest group `pcsc`).

use std::time::Duration;

use club_tests::agent_rig::*;
use hardware::vpcd::{self, VirtualCard};
use serde_json::{Value, json};

const VPCD_PORT: u16 = 35963;
const LONG: Duration = Duration::from_secs(60);
const TOKEN: &str = "till-token-0123456789";

fn uid(card: &str) -> Vec<u8> {
    (0..card.len()).step_by(2).map(|i| u8::from_str_radix(&card[i..i + 2], 16).unwrap()).collect()
}

/// The till: the bridge's HTTP API with its bearer token.
struct Till {
    http: reqwest::Client,
    base: String,
}

impl Till {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(TOKEN).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

async fn card_id(floor: &FloorProcess, card: &str) -> i64 {
    let store = floor.store().await;
    let id = sqlx::query_scalar("SELECT id FROM cards WHERE card_number = $1").bind(card).fetch_one(store.read()).await.unwrap();
    store.close().await;
    id
}

/// The member's points after checking that the cached balance, the ledger and the lots agree.
async fn points(floor: &FloorProcess, card: &str) -> i64 {
    let store = floor.store().await;
    let (cached, entries, lots): (i64, i64, i64) = sqlx::query_as(
        "SELECT m.points_balance, \
           (SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger l WHERE l.member_id = m.id), \
           (SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM points_lots o WHERE o.member_id = m.id) \
         FROM members m JOIN cards c ON c.member_id = m.id WHERE c.card_number = $1",
    )
    .bind(card)
    .fetch_one(store.read())
    .await
    .unwrap();
    store.close().await;
    assert_eq!((cached, lots), (entries, entries), "balance, ledger and lots agree");
    cached
}

/// Purchase events of BAR-1 for a ticket that the server has stored.
async fn purchases(floor: &FloorProcess, ticket: &str) -> i64 {
    let store = floor.store().await;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM terminal_events WHERE terminal_id = 'BAR-1' AND kind = 'purchase' AND body LIKE $1")
        .bind(format!("%\"receipt\":\"{ticket}\"%"))
        .fetch_one(store.read())
        .await
        .unwrap();
    store.close().await;
    n
}

fn beers(id: &str) -> Value {
    json!({"id": id, "lines": [{"sku": "BEER-BTL", "name": "Bottled beer", "category": "beer", "quantity": 10, "unit_price": "4.50"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_bar_mode_prices_settles_and_earns_online_and_keeps_a_cash_sale_for_when_the_server_returns() {
    if !vpcd::ready_or_skip() {
        return;
    }
    let reader = vpcd::reader_name(VPCD_PORT);
    vpcd::wait_until_empty(&reader, Duration::from_secs(10)).expect("the reader starts empty");
    let (mut floor, _) = FloorProcess::start().await;
    // The catalogue, and Eva's card reported lost: it is on the block list the agent gets at Hello.
    let store = floor.store().await;
    let articles = floor_server::catalogue::parse_csv(floor_server::demo::CATALOGUE_CSV).unwrap();
    floor_server::catalogue::upsert(&store, &articles, &club_tests::SEED, now_ms()).await.unwrap();
    store.close().await;
    let eva_card = card_id(&floor, EVA.1).await;
    let store = floor.store().await;
    floor_server::club::set_card_state(&store, eva_card, club_rules::CardState::BlockedLost, &club_tests::SEED, now_ms()).await.unwrap();
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let till_port = free_port();
    let config = dir.path().join("bar.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"bar\"\nstore = \"{}\"\n[server]\nurl = \"{}\"\nterminal_id = \"BAR-1\"\nsecret_file = \"{}\"\n\
             [reader]\nkind = \"pcsc\"\nreaders = [\"{reader}\"]\n\
             [bar]\nlisten = \"127.0.0.1:{till_port}\"\noutlet = \"bar\"\ntill_token = \"{TOKEN}\"\n\
             [timeouts]\ncard_in_ms = 3000\nrequest_ms = 3000\nbackoff_max_ms = 1000\n",
            dir.path().join("agent.db").display(),
            floor.ws_url(),
            floor.dir.path().join("bar.secret").display(),
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(config);
    agent.wait_shown(0, "Show your club card", LONG).await;
    let till = Till { http: reqwest::Client::new(), base: format!("http://127.0.0.1:{till_port}") };

    // Marko (Gold, 37,500 points) presents his card.
    let points0 = points(&floor, MARKO.1).await;
    assert_eq!(points0, 37_500);
    let from = agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(MARKO.1)).unwrap();
    agent.wait_shown(from, "Welcome to the bar", LONG).await;
    let till_ref = &till;
    wait_for(LONG, "the till sees Marko", || async move { till_ref.get("/v1/member").await.0 == 200 }).await;
    let (_, member) = till.get("/v1/member").await;
    assert_eq!((member["name"].as_str(), member["tier"].as_str(), member["points"].as_i64()), (Some("Marko"), Some("gold"), Some(37_500)));

    // Ten beers at EUR 4.50, Gold's 30% off: EUR 31.50; cash earns 1 point per EUR 4.00: 7.
    let (status, priced) = till.post("/v1/tickets/price", beers("T-1")).await;
    assert_eq!(status, 200, "{priced}");
    assert_eq!((priced["money_due"].as_str(), priced["lines"][0]["discount_percent"].as_u64()), (Some("31.50"), Some(30)));
    let (status, settled) = till.post("/v1/tickets/settle", json!({"ticket": beers("T-1"), "tenders": [{"kind": "cash", "amount": "31.50"}]})).await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!((settled["points_earned"].as_i64(), settled["points_balance"].as_i64(), settled["offline"].as_bool()), (Some(7), Some(37_507), Some(false)));
    assert_eq!(points(&floor, MARKO.1).await, 37_507, "the database has the points, to the point");

    // The server stops. The till notices through the bridge: member prices are not available.
    floor.stop();
    wait_for(LONG, "the agent knows the link is down", || async move { till_ref.get("/v1/member").await.0 == 503 }).await;
    // Paying with points needs the server.
    let dinner = json!({"id": "T-2", "outlet": "restaurant", "lines": [
        {"sku": "DINNER-MENU", "name": "Dinner", "category": "food", "quantity": 1, "unit_price": "45.00", "pay_with": "points"}]});
    let (status, body) = till.post("/v1/tickets/settle", json!({"ticket": dinner, "tenders": [{"kind": "points", "points": 315}]})).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("points_offline")), "{body}");
    // A cash sale (list price offline: EUR 45.00) waits in the outbox.
    let offline_sale = json!({"ticket": beers("T-3"), "tenders": [{"kind": "cash", "amount": "45.00"}]});
    let (status, body) = till.post("/v1/tickets/settle", offline_sale.clone()).await;
    assert_eq!((status, body["offline"].as_bool(), body["points_earned"].clone()), (202, Some(true), Value::Null), "{body}");
    let (status, body) = till.post("/v1/tickets/settle", offline_sale.clone()).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_settled")), "a repeat is refused at once: {body}");

    // Eva's lost card is refused at the reader while offline: the till has no member to sell to.
    let from = agent.screen_len();
    card.remove();
    agent.wait_shown(from, "Show your club card", LONG).await;
    let from = agent.screen_len();
    let eva = VirtualCard::insert(VPCD_PORT, &uid(EVA.1)).unwrap();
    agent.wait_shown(from, "Card not accepted", LONG).await;
    let (status, body) = till.post("/v1/tickets/settle", json!({"ticket": beers("T-4"), "tenders": [{"kind": "cash", "amount": "45.00"}]})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("no_member")), "{body}");
    eva.remove();

    // The server returns: the waiting sale earns 45.00 / 4.00 = 11 points, exactly once.
    floor.restart();
    let floor_ref = &floor;
    wait_for(LONG, "the offline sale reached the server", || async move { purchases(floor_ref, "T-3").await == 1 }).await;
    assert_eq!(points(&floor, MARKO.1).await, 37_518);
    // Settle the same ticket again online: refused, nothing earns twice.
    let from = agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(MARKO.1)).unwrap();
    agent.wait_shown(from, "Welcome to the bar", LONG).await;
    wait_for(LONG, "the link is back", || async move { till_ref.get("/v1/member").await.0 == 200 }).await;
    let (status, body) = till.post("/v1/tickets/settle", offline_sale).await;
    assert_eq!(status, 409, "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(points(&floor, MARKO.1).await, 37_518);
    assert_eq!(purchases(&floor, "T-3").await, 1);
    assert_eq!(purchases(&floor, "T-4").await, 0, "nothing was sold to the blocked card");
    drop(card);
}
