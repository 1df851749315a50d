//! The terminal gateway over real WebSockets, on SQLite and on PostgreSQL.

use club_rules::{CardState, MachineType, RefusalCode};
use club_tests::*;
use floor_protocol::{CardNumber, CardOutReason, ErrorCode, Outcome, Play, Reply, Request, ServerMessage, TerminalEvent, TerminalMessage};
use floor_server::store::Backend;
use rust_decimal_macros::dec;
use terminal_agent::link::{Link, LinkError, Trust};

floor_server::on_both_backends!(
    hello_tells_the_last_committed_sequence_and_the_block_list,
    card_in_is_welcomed_or_refused_with_the_right_code,
    play_events_sent_twice_and_out_of_order_count_once,
    a_sequence_number_from_the_future_is_refused_and_nothing_is_stored,
    bad_frames_get_an_error_frame_and_the_connection_carries_on,
    an_event_before_hello_is_refused,
    invalid_content_is_kept_on_record_and_changes_nothing,
    wrong_and_revoked_credentials_are_refused,
    blocking_a_card_reaches_every_connected_terminal,
    a_reconnecting_terminal_resumes_where_the_server_stopped,
    shutdown_answers_every_event_it_took,
    a_balance_request_is_answered_by_id_and_gated,
    heartbeats_mark_the_terminal_online_and_a_silent_link_is_closed,
);

fn card_in(session: &str, card: &str) -> TerminalEvent {
    TerminalEvent::CardIn { session: session.into(), card: CardNumber::new(card), offline: false, meters: None }
}

fn play(session: &str, wagered: rust_decimal::Decimal) -> TerminalEvent {
    TerminalEvent::Play(Play { session: session.into(), game: MachineType::Slot, wagered, won: dec!(0), games: 1, meters: None })
}

async fn session_totals(floor: &Floor, session: &str) -> (i64, i64) {
    sqlx::query_as("SELECT games, wagered_cents FROM card_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(floor.store().read())
        .await
        .unwrap()
}

async fn hello_tells_the_last_committed_sequence_and_the_block_list(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (_link, ack) = floor.connect(0).await;
    let ServerMessage::HelloAck { last_seq, terminal, blocked_cards, protocol, .. } = ack else { unreachable!() };
    assert_eq!((last_seq, terminal.as_str(), protocol), (0, "SLOT-1", floor_protocol::PROTOCOL_VERSION));
    assert_eq!(blocked_cards, vec![CardNumber::new("CARDLOST")]);
}

async fn card_in_is_welcomed_or_refused_with_the_right_code(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    let cases = [
        ("CARDANA", None),
        ("CARDLOST", Some(RefusalCode::CardBlocked)),
        ("CARDNEW", Some(RefusalCode::CardNotActivated)),
        ("NOBODY123", Some(RefusalCode::UnknownCard)),
    ];
    for (i, (card, refusal)) in cases.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let answer = call(&mut link, &event(seq, card_in(&format!("s{seq}"), card))).await;
        let ServerMessage::Ack { seq: s, outcome } = answer else { panic!("{card}: {answer:?}") };
        assert_eq!(s, seq);
        match (refusal, outcome) {
            (None, Outcome::Welcome(w)) => {
                assert_eq!((w.name.as_str(), w.tier, w.points), ("Ana", club_rules::Tier::Bronze, 0));
            }
            (Some(code), Outcome::Refused { code: got, text }) => {
                assert_eq!(got, code, "{card}");
                assert_eq!(text, code.player_text());
            }
            (want, got) => panic!("{card}: wanted {want:?}, got {got:?}"),
        }
    }
}

async fn play_events_sent_twice_and_out_of_order_count_once(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    assert!(matches!(call(&mut link, &event(1, card_in("s", "CARDANA"))).await, ServerMessage::Ack { seq: 1, .. }));
    for seq in 2..=4 {
        let a = call(&mut link, &event(seq, play("s", dec!(2.50)))).await;
        assert_eq!(a, ServerMessage::Ack { seq, outcome: Outcome::Recorded });
    }
    // The same events again, in another order: acknowledged with their first answer, applied never.
    for seq in [3, 2, 4, 1] {
        let a = call(&mut link, &event(seq, play("s", dec!(99.00)))).await;
        let ServerMessage::Ack { seq: s, .. } = a else { panic!("{a:?}") };
        assert_eq!(s, seq);
    }
    // The card-in's first answer (a Welcome) comes back for its repeat.
    let again = call(&mut link, &event(1, card_in("s", "CARDANA"))).await;
    assert!(matches!(again, ServerMessage::Ack { seq: 1, outcome: Outcome::Welcome(_) }), "{again:?}");
    // Pipelined, out of order: 6 before 5 is a gap; then 5 and 6 in order.
    link.send(&event(6, play("s", dec!(1.00)))).await.unwrap();
    link.send(&event(5, play("s", dec!(1.00)))).await.unwrap();
    link.send(&event(6, play("s", dec!(1.00)))).await.unwrap();
    let answers = [recv(&mut link).await, recv(&mut link).await, recv(&mut link).await];
    assert!(matches!(answers[0], ServerMessage::Error { code: ErrorCode::SequenceGap, expected: Some(5), seq: Some(6), .. }), "{answers:?}");
    assert_eq!(answers[1], ServerMessage::Ack { seq: 5, outcome: Outcome::Recorded });
    assert_eq!(answers[2], ServerMessage::Ack { seq: 6, outcome: Outcome::Recorded });
    assert_eq!(floor.events_of("SLOT-1").await, 6);
    assert_eq!(session_totals(&floor, "s").await, (5, 950), "3 x 2.50 + 2 x 1.00, each once");
}

async fn a_sequence_number_from_the_future_is_refused_and_nothing_is_stored(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    let a = call(&mut link, &event(1_000_000, card_in("s", "CARDANA"))).await;
    assert_eq!(
        a,
        ServerMessage::Error {
            code: ErrorCode::SequenceGap,
            message: "expected sequence number 1".into(),
            seq: Some(1_000_000),
            expected: Some(1)
        }
    );
    assert_eq!(floor.events_of("SLOT-1").await, 0);
    // The connection is unharmed.
    assert!(matches!(call(&mut link, &event(1, card_in("s", "CARDANA"))).await, ServerMessage::Ack { seq: 1, .. }));
}

async fn bad_frames_get_an_error_frame_and_the_connection_carries_on(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    let huge = format!(r#"{{"type":"heartbeat","at":1,"pad":"{}"}}"#, "x".repeat(floor_protocol::MAX_FRAME_BYTES));
    for (text, code) in [
        ("{not json".to_owned(), ErrorCode::Malformed),
        (r#"{"type":"launch_missiles"}"#.to_owned(), ErrorCode::UnknownMessage),
        (r#"{"type":"event","seq":"one"}"#.to_owned(), ErrorCode::Malformed),
        (huge, ErrorCode::TooLarge),
    ] {
        link.send_text(text).await.unwrap();
        match recv(&mut link).await {
            ServerMessage::Error { code: got, .. } => assert_eq!(got, code),
            other => panic!("wanted {code:?}, got {other:?}"),
        }
    }
    assert!(matches!(call(&mut link, &event(1, card_in("s", "CARDANA"))).await, ServerMessage::Ack { seq: 1, .. }));
    assert!(matches!(call(&mut link, &TerminalMessage::Heartbeat { at: 1 }).await, ServerMessage::Pong { .. }));
    assert_eq!(floor.events_of("SLOT-1").await, 1, "nothing of the bad frames was stored");
}

async fn an_event_before_hello_is_refused(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let mut link = Link::connect(&floor.server.ws_url(), &floor.terminals[0], &Trust::WebRoots).await.unwrap();
    let a = call(&mut link, &event(1, card_in("s", "CARDANA"))).await;
    assert!(matches!(a, ServerMessage::Error { code: ErrorCode::HelloRequired, .. }), "{a:?}");
    assert!(matches!(call(&mut link, &hello()).await, ServerMessage::HelloAck { last_seq: 0, .. }));
    assert_eq!(floor.events_of("SLOT-1").await, 0);
}

async fn invalid_content_is_kept_on_record_and_changes_nothing(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    call(&mut link, &event(1, card_in("s", "CARDANA"))).await;
    for (seq, ev) in [
        (2, play("s", dec!(-5.00))),
        (3, play("s", dec!(0.001))),
        (4, play("no-such-session", dec!(1.00))),
        (5, card_in("s", "CARDMARKO")),
    ] {
        let a = call(&mut link, &event(seq, ev)).await;
        assert!(matches!(a, ServerMessage::Ack { outcome: Outcome::Rejected { .. }, .. }), "{seq}: {a:?}");
    }
    assert_eq!(session_totals(&floor, "s").await, (0, 0));
    assert_eq!(floor.events_of("SLOT-1").await, 5, "kept on record; the outbox moves on");
    let out = TerminalEvent::CardOut { session: "s".into(), reason: CardOutReason::Removed, meters: None };
    assert_eq!(call(&mut link, &event(6, out)).await, ServerMessage::Ack { seq: 6, outcome: Outcome::Recorded });
    let a = call(&mut link, &event(7, play("s", dec!(1.00)))).await;
    assert!(matches!(a, ServerMessage::Ack { outcome: Outcome::Rejected { .. }, .. }), "play after card-out: {a:?}");
}

async fn wrong_and_revoked_credentials_are_refused(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let mut wrong = floor.terminals[0].clone();
    wrong.secret = "guess".to_owned().into();
    let r = Link::connect(&floor.server.ws_url(), &wrong, &Trust::WebRoots).await;
    assert!(matches!(r, Err(LinkError::Refused)), "{:?}", r.err());
    // Revoked while connected: the connection is closed; a new one is refused.
    let (mut link, _) = floor.connect(1).await;
    floor_server::terminals::revoke(floor.store(), "SLOT-2", &SEED, T0).await.unwrap();
    let closed = loop {
        match try_recv(&mut link).await {
            Ok(ServerMessage::Error { .. }) => continue,
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(closed, LinkError::Closed | LinkError::WebSocket(_)), "{closed:?}");
    let r = Link::connect(&floor.server.ws_url(), &floor.terminals[1], &Trust::WebRoots).await;
    assert!(matches!(r, Err(LinkError::Refused)));
}

async fn blocking_a_card_reaches_every_connected_terminal(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut a, _) = floor.connect(0).await;
    let (mut b, _) = floor.connect(2).await;
    let card_id: i64 = sqlx::query_scalar("SELECT id FROM cards WHERE card_number = 'CARDMARKO'")
        .fetch_one(floor.store().read())
        .await
        .unwrap();
    floor_server::club::set_card_state(floor.store(), card_id, CardState::BlockedStolen, &SEED, T0).await.unwrap();
    for link in [&mut a, &mut b] {
        assert_eq!(recv(link).await, ServerMessage::BlockCard { card: CardNumber::new("CARDMARKO") });
    }
    let r = call(&mut a, &event(1, card_in("s", "CARDMARKO"))).await;
    assert!(matches!(r, ServerMessage::Ack { outcome: Outcome::Refused { code: RefusalCode::CardBlocked, .. }, .. }));
}

async fn a_reconnecting_terminal_resumes_where_the_server_stopped(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    call(&mut link, &event(1, card_in("s", "CARDANA"))).await;
    for seq in 2..=20 {
        link.feed(&event(seq, play("s", dec!(4.00)))).await.unwrap();
    }
    link.flush().await.unwrap();
    // Read a few answers, then drop the connection with the rest in flight.
    for _ in 0..5 {
        recv(&mut link).await;
    }
    drop(link);
    let (mut link, ack) = floor.connect(0).await;
    let ServerMessage::HelloAck { last_seq, .. } = ack else { unreachable!() };
    assert!((6..=20).contains(&last_seq), "at least the acknowledged ones are committed: {last_seq}");
    // The outbox resends everything not acknowledged (6..=20); what was committed is not counted again.
    for seq in 6..=20 {
        let a = call(&mut link, &event(seq, play("s", dec!(4.00)))).await;
        assert!(matches!(a, ServerMessage::Ack { .. }), "{a:?}");
    }
    assert_eq!(session_totals(&floor, "s").await, (19, 19 * 400));
}

async fn shutdown_answers_every_event_it_took(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let (mut link, _) = floor.connect(0).await;
    call(&mut link, &event(1, card_in("s", "CARDANA"))).await;
    for seq in 2..=200 {
        link.feed(&event(seq, play("s", dec!(1.00)))).await.unwrap();
    }
    link.flush().await.unwrap();
    let Floor { server, db, .. } = floor;
    let store = server.store.clone();
    let stopping = tokio::spawn(server.shutdown());
    let mut acked = Vec::new();
    loop {
        match try_recv(&mut link).await {
            Ok(ServerMessage::Ack { seq, .. }) => acked.push(seq),
            Ok(ServerMessage::Error { .. }) => {}
            Ok(other) => panic!("{other:?}"),
            Err(_) => break,
        }
    }
    stopping.await.unwrap().expect("clean shutdown");
    // Every acknowledged event is committed; nothing committed was left unanswered out of order.
    let reopened = floor_server::store::Store::connect(&db.url).await.unwrap();
    let committed: i64 = sqlx::query_scalar("SELECT last_seq FROM terminals WHERE id = 'SLOT-1'").fetch_one(reopened.read()).await.unwrap();
    let max_acked = acked.iter().copied().max().unwrap_or(1);
    assert!(committed as u64 >= max_acked, "acknowledged {max_acked} but committed only {committed}");
    assert_eq!(acked, (2..=max_acked).collect::<Vec<_>>(), "answers in order, none missing");
    drop(store);
    reopened.close().await;
}

/// Several floor-server processes on one PostgreSQL: the same terminal's events through two
/// servers at once are stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_servers_on_one_database_store_each_event_once() {
    let Some(floor) = Floor::start(Backend::Postgres).await else { return };
    let second_store = floor.db.store().await;
    let second = floor_server::testing::TestServer::start(second_store, T0, floor_server::testing::test_config()).await;
    let (mut a, _) = floor.connect(0).await;
    let mut b = Link::connect(&second.ws_url(), &floor.terminals[0], &Trust::WebRoots).await.unwrap();
    call(&mut b, &hello()).await;
    call(&mut a, &event(1, card_in("s", "CARDANA"))).await;
    // Both connections send the same events 2..=300 at the same time.
    for link in [&mut a, &mut b] {
        for seq in 2..=300 {
            link.feed(&event(seq, play("s", dec!(1.00)))).await.unwrap();
        }
        link.flush().await.unwrap();
    }
    let drain = |mut link: Link| async move {
        let mut gaps = Vec::new();
        for _ in 2..=300 {
            if let ServerMessage::Error { seq: Some(s), .. } = recv(&mut link).await {
                gaps.push(s);
            }
        }
        (link, gaps)
    };
    let ((mut a, gaps_a), (mut b, gaps_b)) = tokio::join!(drain(a), drain(b));
    // Whatever one connection could not place (the other was ahead), it resends in order.
    for (link, gaps) in [(&mut a, gaps_a), (&mut b, gaps_b)] {
        for seq in gaps {
            let r = call(link, &event(seq, play("s", dec!(1.00)))).await;
            assert!(matches!(r, ServerMessage::Ack { .. } | ServerMessage::Error { code: ErrorCode::SequenceGap, .. }), "{seq}: {r:?}");
        }
    }
    let last: i64 = sqlx::query_scalar("SELECT last_seq FROM terminals WHERE id = 'SLOT-1'").fetch_one(floor.store().read()).await.unwrap();
    let stored = floor.events_of("SLOT-1").await;
    assert_eq!(stored, last, "one row per committed sequence number");
    let (games, cents) = session_totals(&floor, "s").await;
    assert_eq!((games, cents), (last - 1, (last - 1) * 100), "each play applied exactly once");
    second.shutdown().await.unwrap();
}

/// With a certificate configured the gateway speaks WSS, and a terminal accepts only a server
/// whose certificate its trust anchors vouch for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_gateway_is_verified_by_the_terminal() {
    let (cert, key) = self_signed();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    let mut config = floor_server::testing::test_config();
    config.tls = Some(floor_server::config::TlsConfig { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") });
    let floor = Floor::start_with(Backend::Sqlite, config).await.unwrap();
    let url = format!("wss://localhost:{}{}", floor.server.addr.port(), floor_protocol::GATEWAY_PATH);
    let untrusted = Link::connect(&url, &floor.terminals[0], &Trust::WebRoots).await;
    assert!(matches!(untrusted, Err(LinkError::Tls(_))), "an unknown certificate is refused");
    let mut link = Link::connect(&url, &floor.terminals[0], &Trust::Ca(cert.into_bytes())).await.expect("trusted");
    assert!(matches!(call(&mut link, &hello()).await, ServerMessage::HelloAck { .. }));
    let plain = Link::connect(&floor.server.ws_url(), &floor.terminals[0], &Trust::WebRoots).await;
    assert!(plain.is_err(), "no plain WebSocket beside TLS");
}

async fn a_balance_request_is_answered_by_id_and_gated(backend: Backend) {
    let Some(floor) = Floor::start(backend).await else { return };
    let mut link = Link::connect(&floor.server.ws_url(), &floor.terminals[0], &Trust::WebRoots).await.expect("connect");
    let ask = |id: u64, card: &str| TerminalMessage::Request { id, request: Request::Balance { card: CardNumber::new(card) } };
    // Before Hello: refused, and the id comes back.
    let early = call(&mut link, &ask(7, "CARDANA")).await;
    assert!(matches!(early, ServerMessage::Reply { id: 7, reply: Reply::Failed { code: ErrorCode::HelloRequired, .. } }), "{early:?}");
    link.send(&hello()).await.unwrap();
    assert!(matches!(recv(&mut link).await, ServerMessage::HelloAck { .. }));
    // Earn a little first, so the balance is not just the seed's zero.
    call(&mut link, &event(1, card_in("b1", "CARDANA"))).await;
    call(&mut link, &event(2, play("b1", dec!(40.00)))).await;
    let answer = call(&mut link, &ask(8, "CARDANA")).await;
    let ServerMessage::Reply { id: 8, reply: Reply::Balance { name, points, tier, .. } } = answer else { panic!("{answer:?}") };
    assert_eq!((name.as_str(), points, tier), ("Ana", 10, club_rules::Tier::Bronze));
    for (id, card, code) in [(9, "CARDLOST", RefusalCode::CardBlocked), (10, "NOBODY123", RefusalCode::UnknownCard)] {
        let answer = call(&mut link, &ask(id, card)).await;
        assert!(matches!(&answer, ServerMessage::Reply { id: i, reply: Reply::Refused { code: c, .. } } if *i == id && *c == code), "{card}: {answer:?}");
    }
}

async fn heartbeats_mark_the_terminal_online_and_a_silent_link_is_closed(backend: Backend) {
    use floor_server::config::GatewaySettings;
    use floor_server::terminals;
    use std::time::{Duration, Instant};
    let mut config = floor_server::testing::test_config();
    config.gateway = GatewaySettings { idle_timeout_ms: 1500, seen_mark_ms: 0 };
    let Some(floor) = Floor::start_with(backend, config).await else { return };
    let (mut link, _) = floor.connect(0).await;
    let last_seen = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT last_seen_at FROM terminals WHERE id = 'SLOT-1'").fetch_one(floor.store().read()).await.unwrap()
    };
    sqlx::query("UPDATE terminals SET last_seen_at = NULL WHERE id = 'SLOT-1'").execute(floor.store().read()).await.unwrap();
    // Heartbeats keep the link up past the idle timeout, and each marks the terminal seen.
    let mut last_frame = Instant::now();
    for _ in 0..4 {
        last_frame = Instant::now();
        let pong = call(&mut link, &TerminalMessage::Heartbeat { at: T0 }).await;
        assert!(matches!(pong, ServerMessage::Pong { .. }), "{pong:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(last_seen().await, Some(T0), "the server's clock stands at T0");
    let slot = terminals::list(floor.store()).await.unwrap().into_iter().find(|t| t.id == "SLOT-1").unwrap();
    assert!(slot.is_online(T0));
    assert!(!slot.is_online(T0 + terminals::ONLINE_WITHIN_MS + 1), "not seen for a minute: offline");
    // Then silence, as behind a pulled cable: the server closes the connection as dead.
    match tokio::time::timeout(WAIT, link.recv()).await {
        Ok(Ok(ServerMessage::Error { code: ErrorCode::Unavailable, .. })) => {}
        other => panic!("expected the idle close, got {other:?}"),
    }
    assert!(matches!(tokio::time::timeout(WAIT, link.recv()).await, Ok(Err(_))), "the socket is closed");
    assert!(last_frame.elapsed() >= Duration::from_millis(1500), "closed only after the idle timeout");
}
