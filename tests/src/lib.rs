//! Support for the end-to-end tests: a running floor (server, database, seeded members and
//! enrolled terminals) and terminals connected to it over real WebSockets.

pub mod browser;
pub mod web;

use std::time::Duration;

use club_rules::{CardState, MachineType};
use floor_protocol::{CardNumber, Envelope, PROTOCOL_VERSION, ServerMessage, TerminalEvent, TerminalMessage};
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::config::Config;
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::{TestDb, TestServer, test_config};
use secrecy::ExposeSecret;
use terminal_agent::link::{Credentials, Link, LinkError, Trust};

/// A fixed start time for tests: 2026-09-21T… UTC.
pub const T0: i64 = 1_790_000_000_000;
pub const SEED: Actor = Actor::System("test-seed");

/// How long a test waits for an answer before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A floor server on a fresh database with members and terminals.
pub struct Floor {
    pub db: TestDb,
    pub server: TestServer,
    pub terminals: Vec<Credentials>,
}

/// Members seeded by [`Floor::start`]: (first name, card, state of the card).
pub const CARDS: &[(&str, &str, CardState)] = &[
    ("Ana", "CARDANA", CardState::Active),
    ("Marko", "CARDMARKO", CardState::Active),
    ("Jan", "CARDLOST", CardState::BlockedLost),
    ("Nina", "CARDNEW", CardState::Issued),
];

impl Floor {
    /// `None` when the backend is not available here (and not required).
    pub async fn start(backend: Backend) -> Option<Floor> {
        Floor::start_with(backend, test_config()).await
    }

    pub async fn start_with(backend: Backend, config: Config) -> Option<Floor> {
        let db = TestDb::new(backend).await?;
        let store = db.store().await;
        seed_members(&store).await;
        let mut creds = Vec::new();
        for (id, kind, mt) in [
            ("SLOT-1", TerminalKind::Slot, Some(MachineType::Slot)),
            ("SLOT-2", TerminalKind::Slot, Some(MachineType::VideoPoker)),
            ("BAR-1", TerminalKind::Bar, None),
        ] {
            creds.push(enrol(&store, id, kind, mt).await);
        }
        let server = TestServer::start(store, T0, config).await;
        Some(Floor { db, server, terminals: creds })
    }

    pub fn store(&self) -> &Store {
        &self.server.store
    }

    /// Connects terminal `i` and says Hello; returns the link and the HelloAck.
    pub async fn connect(&self, i: usize) -> (Link, ServerMessage) {
        let mut link = Link::connect(&self.server.ws_url(), &self.terminals[i], &Trust::WebRoots).await.expect("connect");
        link.send(&hello()).await.unwrap();
        let ack = recv(&mut link).await;
        assert!(matches!(ack, ServerMessage::HelloAck { .. }), "{ack:?}");
        (link, ack)
    }

    /// Counts rows of a table matching a terminal.
    pub async fn events_of(&self, terminal: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM terminal_events WHERE terminal_id = $1")
            .bind(terminal)
            .fetch_one(self.store().read())
            .await
            .unwrap()
    }
}

pub async fn seed_members(store: &Store) {
    for (name, card, state) in CARDS {
        let mut tx = store.begin().await.unwrap();
        let p = club::create_person(
            &mut tx,
            &NewPerson { first_name: (*name).into(), last_name: "Test".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() },
            T0,
        )
        .await
        .unwrap();
        let m = club::create_member(&mut tx, p, T0).await.unwrap();
        let c = club::issue_card(&mut tx, m, &CardNumber::new(*card), T0).await.unwrap();
        tx.commit().await.unwrap();
        if *state != CardState::Issued {
            club::set_card_state(store, c, CardState::Active, &SEED, T0).await.unwrap();
        }
        if *state == CardState::BlockedLost {
            club::set_card_state(store, c, CardState::BlockedLost, &SEED, T0).await.unwrap();
        }
    }
}

pub async fn enrol(store: &Store, id: &str, kind: TerminalKind, machine_type: Option<MachineType>) -> Credentials {
    let c = terminals::enrol(store, &TerminalSpec { id: id.into(), kind, machine_type, location: "test".into() }, &SEED, T0)
        .await
        .expect("enrol");
    Credentials { terminal_id: c.terminal_id, secret: c.secret.expose_secret().to_owned().into() }
}

pub fn hello() -> TerminalMessage {
    TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: "club-tests".into() }
}

pub fn event(seq: u64, event: TerminalEvent) -> TerminalMessage {
    TerminalMessage::Event(Envelope { seq, at: T0 + seq as i64, event })
}

/// The next message, or a test failure after [`WAIT`].
pub async fn recv(link: &mut Link) -> ServerMessage {
    try_recv(link).await.expect("link")
}

pub async fn try_recv(link: &mut Link) -> Result<ServerMessage, LinkError> {
    tokio::time::timeout(WAIT, link.recv()).await.expect("an answer within the wait")
}

/// Sends and waits for the next message.
pub async fn call(link: &mut Link, msg: &TerminalMessage) -> ServerMessage {
    link.send(msg).await.unwrap();
    recv(link).await
}

/// A self-signed certificate for `localhost` / 127.0.0.1, as (cert PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// The path of a workspace binary built beside the running test (`target/<profile>/<name>`).
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target directory");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is not built: run `cargo build -p {name}` (nextest --workspace builds it)", bin.display());
    bin
}

pub mod agent_rig;
pub mod netcut;
