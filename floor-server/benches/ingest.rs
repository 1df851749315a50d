//! Ingestion benchmark: N terminals over real WebSockets stream Play events into the floor server;
//! every event is acknowledged only after its durable commit. Printed beside it, measured in the
//! same run on the same kind of database with the same durability: the raw limit, the same rows
//! written with batched multi-row INSERTs straight into the database.
//!
//! `cargo bench -p floor-server --bench ingest` (both databases). Environment:
//! `BENCH_BACKEND=sqlite|postgres|both`, `BENCH_TERMINALS` (default 50), `BENCH_EVENTS` per
//! terminal (default 4000), `BENCH_WINDOW` events in flight per terminal (default 32),
//! `BENCH_ROUNDS` (default 3; the median is reported).
#![allow(clippy::float_arithmetic)] // figures, not money

use std::time::{Duration, Instant};

use club_rules::{CardState, MachineType};
use floor_protocol::{CardNumber, Envelope, PROTOCOL_VERSION, Play, ServerMessage, TerminalEvent, TerminalMessage};
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::store::multirow::MultiRowInsert;
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::{TestDb, TestServer, test_config};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use terminal_agent::link::{Credentials, Link, Trust};

const T0: i64 = 1_790_000_000_000;
const SEED: Actor = Actor::System("bench");

mod support;
use support::{backends, env, median, run_rounds};

struct Round {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    raw_rows_per_s: f64,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let terminals = env("BENCH_TERMINALS", 50);
    let events = env("BENCH_EVENTS", 4000);
    let window = env("BENCH_WINDOW", 32);
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    println!("ingest: {terminals} terminals x {events} Play events, {window} in flight per terminal, {rounds} rounds");
    for backend in backends() {
        let results = run_rounds(&runtime, backend, rounds, || round(backend, terminals, events, window));
        if results.is_empty() {
            continue;
        }
        let med = |f: fn(&Round) -> f64| median(&results, f);
        let (eps, p50, p99, raw) = (med(|r| r.events_per_s), med(|r| r.p50_ms), med(|r| r.p99_ms), med(|r| r.raw_rows_per_s));
        println!(
            "{backend:?}: {eps:>9.0} events/s acknowledged after durable commit   ack p50 {p50:.2} ms  p99 {p99:.2} ms   \
             raw limit (batched INSERTs, same durability) {raw:>9.0} rows/s   ratio {:.0}%",
            100.0 * eps / raw
        );
        for (i, r) in results.iter().enumerate() {
            println!(
                "    round {}: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, raw {:.0} rows/s",
                i + 1,
                r.events_per_s,
                r.p50_ms,
                r.p99_ms,
                r.raw_rows_per_s
            );
        }
    }
}

async fn round(backend: Backend, n: usize, events: usize, window: usize) -> Option<Round> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    let mut creds = Vec::with_capacity(n);
    for i in 0..n {
        let mut tx = store.begin().await.unwrap();
        let p = club::create_person(
            &mut tx,
            &NewPerson { first_name: format!("Player{i}"), last_name: "Bench".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() },
            T0,
        )
        .await
        .unwrap();
        let m = club::create_member(&mut tx, p, T0).await.unwrap();
        let c = club::issue_card(&mut tx, m, &CardNumber::new(format!("BENCH{i:05}")), T0).await.unwrap();
        tx.commit().await.unwrap();
        club::set_card_state(&store, c, CardState::Active, &SEED, T0).await.unwrap();
        let spec = TerminalSpec { id: format!("SLOT-{i:04}"), kind: TerminalKind::Slot, machine_type: Some(MachineType::Slot), location: "bench".into() };
        let c = terminals::enrol(&store, &spec, &SEED, T0).await.unwrap();
        creds.push(Credentials { terminal_id: c.terminal_id, secret: c.secret.expose_secret().to_owned().into() });
    }
    let server = TestServer::start(store.clone(), T0, test_config()).await;
    let url = server.ws_url();

    // Connect everyone and open a session each, then start the clock.
    let mut links = Vec::with_capacity(n);
    for (i, c) in creds.iter().enumerate() {
        let mut link = Link::connect(&url, c, &Trust::WebRoots).await.unwrap();
        link.send(&TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: "bench".into() }).await.unwrap();
        assert!(matches!(link.recv().await.unwrap(), ServerMessage::HelloAck { .. }));
        let card_in = TerminalEvent::CardIn { session: format!("s{i}"), card: CardNumber::new(format!("BENCH{i:05}")), offline: false, meters: None };
        link.send(&TerminalMessage::Event(Envelope { seq: 1, at: T0, event: card_in })).await.unwrap();
        assert!(matches!(link.recv().await.unwrap(), ServerMessage::Ack { seq: 1, .. }));
        links.push(link);
    }
    let start = Instant::now();
    let tasks: Vec<_> = links
        .into_iter()
        .enumerate()
        .map(|(i, link)| tokio::spawn(stream_plays(link, format!("s{i}"), events, window)))
        .collect();
    let mut latencies = Vec::with_capacity(n * events);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let committed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM terminal_events").fetch_one(store.read()).await.unwrap();
    assert_eq!(committed as usize, n * (events + 1), "every event committed exactly once");
    server.shutdown().await.unwrap();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    let raw = raw_limit(&db, n * events).await;
    Some(Round {
        events_per_s: (n * events) as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        raw_rows_per_s: raw,
    })
}

/// Streams Play events with up to `window` in flight; returns each event's send-to-ack latency.
async fn stream_plays(mut link: Link, session: String, events: usize, window: usize) -> Vec<Duration> {
    let mut sent_at = std::collections::VecDeque::with_capacity(window);
    let mut latencies = Vec::with_capacity(events);
    let mut next = 2u64;
    let last = events as u64 + 1;
    while latencies.len() < events {
        let mut fed = false;
        while sent_at.len() < window && next <= last {
            let play = TerminalEvent::Play(Play {
                session: session.clone(),
                game: MachineType::Slot,
                wagered: Decimal::new(250, 2),
                won: Decimal::new(100, 2),
                games: 1,
                meters: None,
            });
            link.feed(&TerminalMessage::Event(Envelope { seq: next, at: T0 + next as i64, event: play })).await.unwrap();
            sent_at.push_back(Instant::now());
            next += 1;
            fed = true;
        }
        if fed {
            link.flush().await.unwrap();
        }
        match link.recv().await.unwrap() {
            ServerMessage::Ack { .. } => latencies.push(sent_at.pop_front().expect("an event in flight").elapsed()),
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    let _ = link.close().await;
    latencies
}

static RAW_INSERT: MultiRowInsert = MultiRowInsert::new(
    "INSERT INTO terminal_events (terminal_id, seq, kind, session_id, occurred_at, received_at, body, reply) VALUES",
    8,
    "",
);

/// The same rows, written straight into a fresh database of the same backend and durability in
/// transactions of 1024 rows (the server's batch limit), 128 rows per statement.
async fn raw_limit(db: &TestDb, rows: usize) -> f64 {
    let raw_db = TestDb::new(db.backend).await.expect("same backend");
    let store: Store = raw_db.store().await;
    let spec = TerminalSpec { id: "RAW".into(), kind: TerminalKind::Slot, machine_type: Some(MachineType::Slot), location: "bench".into() };
    terminals::enrol(&store, &spec, &SEED, T0).await.unwrap();
    let body = serde_json::to_string(&TerminalEvent::Play(Play {
        session: "s0".into(),
        game: MachineType::Slot,
        wagered: Decimal::new(250, 2),
        won: Decimal::new(100, 2),
        games: 1,
        meters: None,
    }))
    .unwrap();
    let reply = r#"{"result":"recorded"}"#;
    let start = Instant::now();
    let mut seq = 0i64;
    while (seq as usize) < rows {
        let mut tx = store.begin().await.unwrap();
        let in_tx = (rows - seq as usize).min(1024);
        let mut done = 0;
        while done < in_tx {
            let k = (in_tx - done).min(128);
            let mut q = sqlx::query(RAW_INSERT.sql(store.backend(), k));
            for _ in 0..k {
                seq += 1;
                q = q.bind("RAW").bind(seq).bind("play").bind("s0").bind(T0 + seq).bind(T0).bind(body.as_str()).bind(reply);
            }
            q.execute(&mut *tx).await.unwrap();
            done += k;
        }
        tx.commit().await.unwrap();
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    store.close().await;
    rate
}
