//! Slot-mode sessions in process against the real floor server (SQLite, real WebSocket) and the
//! simulated machine on a serial pair: the greeting, play counted from the meters, a session
//! closed by the abandon timer, an offline card-in refused for a card on the block list, and the
//! optional refusal of a card while another player's credits are on the machine.

use std::time::{Duration, Instant};

use club_rules::{CardState, MachineType};
use floor_protocol::CardNumber;
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::{TestDb, TestServer, test_config};
use hardware::{CardId, ChannelReader};
use secrecy::ExposeSecret;
use slot_interface::sim::{self, Egm, RunOptions, SimConfig, SimHandle, Stored};
use slot_interface::{Address, Denomination, HostConfig, SasHost, SasPort};
use terminal_agent::link::{Credentials, Trust};
use terminal_agent::outbox::Outbox;
use terminal_agent::screen::Screen;
use terminal_agent::slot::{Slot, SlotSettings};
use terminal_agent::uplink::{Uplink, UplinkConfig};
use tokio::sync::{mpsc, watch};

const SEED: Actor = Actor::System("test");
const T0: i64 = 1_790_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

struct NoDisplay;
impl hardware::Display for NoDisplay {
    fn size(&self) -> (usize, usize) {
        (20, 4)
    }
    fn show(&mut self, _: &[&str]) -> Result<(), hardware::Error> {
        Ok(())
    }
}

struct Rig {
    db: TestDb,
    server: TestServer,
    sim: SimHandle,
    reader: ChannelReader,
    screen: watch::Receiver<Vec<String>>,
    outbox: Outbox,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
    _host: SasHost,
}

async fn member(store: &Store, name: &str, card: &str) {
    let mut tx = store.begin().await.unwrap();
    let p = club::create_person(&mut tx, &NewPerson { first_name: name.into(), last_name: "T".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() }, T0)
        .await
        .unwrap();
    let m = club::create_member(&mut tx, p, T0).await.unwrap();
    let c = club::issue_card(&mut tx, m, &CardNumber::new(card), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(store, c, CardState::Active, &SEED, T0).await.unwrap();
}

async fn rig(settings: SlotSettings) -> Rig {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    member(&store, "Ana", "AAAA0001").await;
    member(&store, "Bo", "CCCC0003").await;
    let spec = TerminalSpec { id: "SLOT-T".into(), kind: TerminalKind::Slot, machine_type: Some(MachineType::Slot), location: "t".into() };
    let c = terminals::enrol(&store, &spec, &SEED, T0).await.unwrap();
    let server = TestServer::start(store, T0, test_config()).await;

    let address = Address::new(1).unwrap();
    let (host_end, machine_end) = tokio_serial::SerialStream::pair().unwrap();
    let mut config = SimConfig::new(address);
    config.denomination = Denomination::from_cents(100).unwrap();
    let egm = Egm::new(config, Stored::default(), Instant::now()).unwrap();
    let (sim, _task) = sim::spawn(egm, SasPort::from_stream(machine_end), None, RunOptions::default());
    sim.command("insert 100000").await.unwrap();
    let mut host_config = HostConfig::new(vec![address]);
    host_config.poller.response_timeout = Duration::from_millis(150);
    host_config.poller.inter_byte_timeout = Duration::from_millis(40);
    let (host, events) = SasHost::spawn(SasPort::from_stream(host_end), host_config);

    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let creds = Credentials { terminal_id: c.terminal_id, secret: c.secret.expose_secret().to_owned().into() };
    let (uplink, from_server, _) = Uplink::spawn(UplinkConfig::new(server.ws_url(), creds, Trust::WebRoots), outbox.clone(), stop.clone());
    assert!(uplink.wait_up(WAIT).await);
    let (reader, cards) = ChannelReader::new("t");
    let (_inputs_tx, inputs) = mpsc::channel(1);
    let screen = Screen::new(Box::new(NoDisplay));
    let shown = screen.watch();
    let slot = Slot::new(outbox.clone(), uplink, from_server, host.machine(address).unwrap(), events, screen, settings);
    tokio::spawn(async move {
        let _keep = _inputs_tx;
        slot.run(cards, inputs, stop).await
    });
    Rig { db, server, sim, reader, screen: shown, outbox, _stop: stop_tx, _dir: dir, _host: host }
}

async fn shown(screen: &mut watch::Receiver<Vec<String>>, text: &str) {
    let found = tokio::time::timeout(WAIT, screen.wait_for(|l| l.iter().any(|r| r.contains(text)))).await.is_ok();
    assert!(found, "{text:?} not shown; last screen {:?}", screen.borrow());
}

async fn session(store: &Store) -> Option<(i64, i64, Option<String>)> {
    sqlx::query_as("SELECT games, wagered_cents, close_reason FROM card_sessions ORDER BY opened_at DESC LIMIT 1")
        .fetch_optional(store.read())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_game_for_the_abandon_time_closes_after_its_play_is_counted() {
    let mut r = rig(SlotSettings { abandon_after: Duration::from_secs(2), ..SlotSettings::default() }).await;
    r.reader.insert(CardId::parse("AAAA0001").unwrap()).await.unwrap();
    shown(&mut r.screen, "Welcome Ana").await;
    r.sim.command("play 3").await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((games, wagered, Some(reason))) = session(&r.server.store).await {
            assert_eq!(reason, "abandoned");
            assert_eq!((games, wagered), (3, 3 * 500), "three games of 5 credits of EUR 1");
            break;
        }
        assert!(Instant::now() < deadline, "the session was not abandoned in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(r.outbox.is_empty().await.unwrap(), "everything acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_a_card_on_the_block_list_is_refused_and_another_plays_to_be_credited_later() {
    let mut r = rig(SlotSettings { card_in_timeout: Duration::from_secs(2), ..SlotSettings::default() }).await;
    r.outbox.block(&CardNumber::new("BBBB0002")).await.unwrap();
    r.server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.reader.insert(CardId::parse("BBBB0002").unwrap()).await.unwrap();
    shown(&mut r.screen, "Card not accepted").await;
    r.reader.insert(CardId::parse("AAAA0001").unwrap()).await.unwrap();
    shown(&mut r.screen, "credited later").await;
    r.sim.command("play 2").await.unwrap();
    r.reader.remove().await.unwrap();
    shown(&mut r.screen, "Thank you").await;
    let waiting = r.outbox.len().await.unwrap();
    assert!(waiting >= 2, "card-in, play and card-out wait in the outbox ({waiting})");
    let store = Store::connect(&r.db.url).await.unwrap();
    assert!(session(&store).await.is_none(), "nothing reached the server");
}

/// The machine holds credits (the simulator starts with 100,000) after Ana's card leaves.
async fn ana_plays_and_leaves(r: &mut Rig) {
    r.reader.insert(CardId::parse("AAAA0001").unwrap()).await.unwrap();
    shown(&mut r.screen, "Welcome Ana").await;
    r.sim.command("play 2").await.unwrap();
    r.reader.remove().await.unwrap();
    shown(&mut r.screen, "Thank you").await;
}

async fn sessions_of(store: &Store, card: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM card_sessions s JOIN cards c ON c.id = s.card_id WHERE c.card_number = $1")
        .bind(card)
        .fetch_one(store.read())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_refuse_when_credits_another_players_card_is_refused_while_credits_are_on_but_their_owner_comes_back() {
    let mut r = rig(SlotSettings { refuse_when_credits: true, ..SlotSettings::default() }).await;
    ana_plays_and_leaves(&mut r).await;
    r.reader.insert(CardId::parse("CCCC0003").unwrap()).await.unwrap();
    shown(&mut r.screen, "Machine has credits").await;
    r.reader.remove().await.unwrap();
    // The player whose card was in last may go on with her credits.
    r.reader.insert(CardId::parse("AAAA0001").unwrap()).await.unwrap();
    shown(&mut r.screen, "Welcome Ana").await;
    assert_eq!(sessions_of(&r.server.store, "CCCC0003").await, 0, "no session was opened for Bo");
    assert_eq!(sessions_of(&r.server.store, "AAAA0001").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_refuse_when_credits_a_card_is_welcome_whatever_the_machine_holds() {
    let mut r = rig(SlotSettings::default()).await;
    ana_plays_and_leaves(&mut r).await;
    r.reader.insert(CardId::parse("CCCC0003").unwrap()).await.unwrap();
    shown(&mut r.screen, "Welcome Bo").await;
}
