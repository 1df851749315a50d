//! The uplink when things go wrong on the far side.
//!
//! - A poison event, against the real floor server (SQLite) whose database refuses to store it
//!   (a trigger stands in for whatever makes a commit fail for one event only): the events around
//!   it are credited, it becomes a dead letter with the server's answer, nothing is doubled, and
//!   put back in line once the cause is gone it earns once.
//! - The server's `sequence_gap` answer and a server that goes silent: a peer speaking the
//!   protocol over a real WebSocket says what the real server says only under faults that cannot
//!   be provoked on demand (an event lost on the way, a dead path).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use club_rules::MachineType;
use floor_protocol::{
    CardNumber, Outcome, PROTOCOL_VERSION, Purchase, ReceiptLine, ServerMessage, Tender, TenderKind, TerminalEvent, TerminalMessage,
};
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::{TestDb, TestServer, test_config};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use terminal_agent::link::{Credentials, Trust};
use terminal_agent::outbox::Outbox;
use terminal_agent::uplink::{Uplink, UplinkConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const SEED: Actor = Actor::System("test");
const T0: i64 = 1_790_000_000_000;
const WAIT: Duration = Duration::from_secs(20);
const CARD: &str = "AAAA0001";

async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sale(receipt: &str) -> TerminalEvent {
    let eur8 = Decimal::new(800, 2);
    TerminalEvent::Purchase(Purchase {
        receipt: receipt.into(),
        card: CardNumber::new(CARD),
        lines: vec![ReceiptLine { sku: "BEER".into(), name: "Beer".into(), category: "beer".into(), quantity: 1, unit_price: eur8, already_discounted: false }],
        tenders: vec![Tender { kind: TenderKind::Cash, amount: eur8 }],
    })
}

async fn points(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT m.points_balance FROM members m JOIN cards c ON c.member_id = m.id WHERE c.card_number = $1")
        .bind(CARD)
        .fetch_one(store.read())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_becomes_a_dead_letter_and_the_events_behind_it_go_on() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    let mut tx = store.begin().await.unwrap();
    let p = club::create_person(&mut tx, &NewPerson { first_name: "Ana".into(), last_name: "T".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() }, T0)
        .await
        .unwrap();
    let m = club::create_member(&mut tx, p, T0).await.unwrap();
    let c = club::issue_card(&mut tx, m, &CardNumber::new(CARD), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(&store, c, club_rules::CardState::Active, &SEED, T0).await.unwrap();
    let spec = TerminalSpec { id: "BAR-T".into(), kind: TerminalKind::Bar, machine_type: None::<MachineType>, location: "t".into() };
    let enrolled = terminals::enrol(&store, &spec, &SEED, T0).await.unwrap();
    // The database will not store the event of receipt R-POISON: its batch fails every time.
    sqlx::query("CREATE TRIGGER poison BEFORE INSERT ON terminal_events WHEN NEW.body LIKE '%R-POISON%' BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        .execute(store.read())
        .await
        .unwrap();
    let server = TestServer::start(store, T0, test_config()).await;

    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
    // EUR 8.00 cash each: 2 points a sale.
    for receipt in ["R-1", "R-POISON", "R-3"] {
        outbox.push(T0, &sale(receipt)).await.unwrap();
    }
    let creds = Credentials { terminal_id: enrolled.terminal_id, secret: enrolled.secret.expose_secret().to_owned().into() };
    let mut config = UplinkConfig::new(server.ws_url(), creds, Trust::WebRoots);
    config.dead_letter_after = 3;
    config.backoff_max = Duration::from_millis(400);
    let (_stop_tx, stop) = watch::channel(false);
    let (_uplink, _from_server, _task) = Uplink::spawn(config, outbox.clone(), stop);

    let o = &outbox;
    wait_for("the poison event set aside and the others sent", || async move { o.is_empty().await.unwrap() && !o.dead_letters().await.unwrap().is_empty() }).await;
    let letters = outbox.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "only the poison event: {letters:?}");
    assert_eq!((letters[0].seq, letters[0].kind.as_str(), letters[0].code.as_str()), (2, "purchase", "unavailable"));
    assert_eq!(points(&server.store).await, 4, "R-1 and R-3 earned, once each");
    let stored: Vec<(i64, String)> = sqlx::query_as("SELECT seq, body FROM terminal_events WHERE terminal_id = 'BAR-T' ORDER BY seq")
        .fetch_all(server.store.read())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].0, 1);
    assert_eq!(stored[1].0, 2, "R-3 took the number the server never stored");
    assert!(stored[1].1.contains("R-3"));

    // The cause is fixed; staff put the event back in line: it earns, once.
    sqlx::query("DROP TRIGGER poison").execute(server.store.read()).await.unwrap();
    outbox.requeue(letters[0].id).await.unwrap().unwrap();
    wait_for("the requeued event sent", || async move { o.is_empty().await.unwrap() }).await;
    let s = &server.store;
    wait_for("its points", || async move { points(s).await == 6 }).await;
    assert!(outbox.dead_letters().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(points(&server.store).await, 6);
}

/// What a scripted peer saw and how it behaves.
#[derive(Default)]
struct Peer {
    /// Event numbers committed, in order, once each.
    committed: Vec<u64>,
    /// Connections accepted.
    connections: u32,
}

/// How the peer answers.
#[derive(Clone, Copy)]
enum Script {
    /// Commits in order; the first time event `lose` arrives it is lost on the way (no answer),
    /// so the events after it are answered `sequence_gap`.
    LoseOnce { lose: u64 },
    /// Answers Hello with `last_seq`, then only says where it expects the next event.
    Expects { last_seq: u64 },
    /// Answers Hello, then never reads or writes again (a dead path).
    Silent,
}

async fn peer(script: Script) -> (String, Arc<Mutex<Peer>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/terminal/ws", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Peer::default()));
    let seen = state.clone();
    tokio::spawn(async move {
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        while let Ok((tcp, _)) = listener.accept().await {
            seen.lock().unwrap().connections += 1;
            tokio::spawn(serve(tcp, script, seen.clone(), lost.clone()));
        }
    });
    (url, state)
}

/// One connection of the scripted peer.
async fn serve(tcp: tokio::net::TcpStream, script: Script, seen: Arc<Mutex<Peer>>, lost: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
    let send = |m: ServerMessage| Message::Text(serde_json::to_string(&m).unwrap().into());
    let mut last = match script {
        Script::Expects { last_seq } => last_seq,
        _ => seen.lock().unwrap().committed.last().copied().unwrap_or(0),
    };
    while let Some(Ok(Message::Text(t))) = ws.next().await {
        let answer = match serde_json::from_str::<TerminalMessage>(&t).unwrap() {
            TerminalMessage::Hello { .. } => Some(ServerMessage::HelloAck {
                protocol: PROTOCOL_VERSION,
                terminal: "T".into(),
                last_seq: last,
                server_time: T0,
                blocked_cards: vec![],
            }),
            TerminalMessage::Heartbeat { .. } => Some(ServerMessage::Pong { server_time: T0 }),
            TerminalMessage::Request { .. } => None,
            TerminalMessage::Event(e) => match script {
                Script::LoseOnce { lose } if e.seq == lose && !lost.swap(true, Ordering::SeqCst) => None,
                Script::LoseOnce { .. } if e.seq == last + 1 => {
                    last = e.seq;
                    seen.lock().unwrap().committed.push(e.seq);
                    Some(ServerMessage::Ack { seq: e.seq, outcome: Outcome::Recorded })
                }
                Script::LoseOnce { .. } if e.seq <= last => Some(ServerMessage::Ack { seq: e.seq, outcome: Outcome::Recorded }),
                _ => Some(ServerMessage::Error {
                    code: floor_protocol::ErrorCode::SequenceGap,
                    message: format!("expected sequence number {}", last + 1),
                    seq: Some(e.seq),
                    expected: Some(last + 1),
                }),
            },
        };
        if let Some(a) = answer {
            let hello = matches!(a, ServerMessage::HelloAck { .. });
            if ws.send(send(a)).await.is_err() {
                return;
            }
            if hello && matches!(script, Script::Silent) {
                // Hold the socket, read nothing, answer nothing.
                std::future::pending::<()>().await;
            }
        }
    }
}

fn uplink_to(url: &str, outbox: &Outbox) -> (Uplink, watch::Sender<bool>) {
    let creds = Credentials { terminal_id: "T".into(), secret: "secret".to_owned().into() };
    let mut config = UplinkConfig::new(url, creds, Trust::WebRoots);
    config.heartbeat = Duration::from_millis(100);
    config.silence_limit = Duration::from_millis(600);
    config.backoff_max = Duration::from_millis(300);
    let (stop_tx, stop) = watch::channel(false);
    let (uplink, _from_server, _task) = Uplink::spawn(config, outbox.clone(), stop);
    (uplink, stop_tx)
}

async fn outbox_with(n: usize) -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
    for i in 0..n {
        outbox.push(T0, &sale(&format!("R-{i}"))).await.unwrap();
    }
    (dir, outbox)
}

#[tokio::test]
async fn after_a_sequence_gap_the_agent_resends_from_the_gap_and_nothing_is_committed_twice() {
    let (url, peer) = peer(Script::LoseOnce { lose: 3 }).await;
    let (_dir, outbox) = outbox_with(6).await;
    let (_uplink, _stop) = uplink_to(&url, &outbox);
    let o = &outbox;
    wait_for("every event acknowledged", || async move { o.is_empty().await.unwrap() }).await;
    let p = peer.lock().unwrap();
    assert_eq!(p.committed, [1, 2, 3, 4, 5, 6], "each once, in order");
    assert_eq!(p.connections, 1, "a gap is mended on the same connection");
}

#[tokio::test]
async fn a_gap_the_outbox_cannot_fill_is_not_waited_on_for_ever() {
    // Events 1 and 2 were acknowledged (and left); the server says it has nothing.
    let (url, peer) = peer(Script::Expects { last_seq: 0 }).await;
    let (_dir, outbox) = outbox_with(3).await;
    outbox.acknowledged(2).await.unwrap();
    let (_uplink, _stop) = uplink_to(&url, &outbox);
    let p = &peer;
    wait_for("the agent starts again from the server's Hello", || async move { p.lock().unwrap().connections >= 3 }).await;
    assert_eq!(outbox.len().await.unwrap(), 1, "the waiting event is kept");
}

#[tokio::test]
async fn a_server_that_goes_silent_is_taken_for_dead_and_the_agent_connects_again() {
    let (url, peer) = peer(Script::Silent).await;
    let (_dir, outbox) = outbox_with(2).await;
    let (uplink, _stop) = uplink_to(&url, &outbox);
    assert!(uplink.wait_up(WAIT).await);
    let started = tokio::time::Instant::now();
    let p = &peer;
    wait_for("a second connection", || async move { p.lock().unwrap().connections >= 2 }).await;
    // Silence limit 600 ms, heartbeat 100 ms, backoff at most 300 ms (and a little jitter).
    assert!(started.elapsed() < Duration::from_secs(3), "noticed after {:?}", started.elapsed());
    assert_eq!(outbox.len().await.unwrap(), 2, "nothing acknowledged, nothing lost");
}
