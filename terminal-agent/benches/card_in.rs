//! Card-in to greeting latency: from the reader's event to the Welcome on the display, through
//! the whole path (meter snapshot over SAS on a serial pair to the simulated machine, the outbox
//! write with `synchronous=FULL`, the WebSocket, the server's commit and card check, the answer).
//! The baseline, measured in the same run against the same server: a bare WebSocket round trip
//! (Heartbeat → Pong). Prints p50 and p99 of both, and of the two other parts of the path measured
//! alone on the same machine: a SAS meter read (the card-in snapshot; a long poll waits for its
//! machine's next poll slot, SAS's pacing) and an outbox write (`synchronous=FULL`).
//!
//! `cargo bench -p terminal-agent --bench card_in` (`BENCH_ROUNDS`, default 200).

// Latency statistics only; no money or points here.
#![allow(clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use club_rules::{CardState, MachineType};
use floor_protocol::{CardNumber, PROTOCOL_VERSION, ServerMessage, TerminalMessage};
use floor_server::audit::Actor;
use floor_server::club::{self, NewPerson};
use floor_server::store::Backend;
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::{TestDb, TestServer, test_config};
use hardware::{CardId, ChannelReader};
use secrecy::ExposeSecret;
use slot_interface::sim::{self, Egm, RunOptions, SimConfig, Stored};
use slot_interface::{Address, HostConfig, MeterCode, SasHost, SasPort};
use terminal_agent::link::{Credentials, Link, Trust};
use terminal_agent::outbox::Outbox;
use terminal_agent::screen::Screen;
use terminal_agent::slot::{Slot, SlotSettings};
use terminal_agent::uplink::{Uplink, UplinkConfig};
use tokio::sync::{mpsc, watch};

const SEED: Actor = Actor::System("bench");

struct NullDisplay;
impl hardware::Display for NullDisplay {
    fn size(&self) -> (usize, usize) {
        (20, 4)
    }
    fn show(&mut self, _: &[&str]) -> Result<(), hardware::Error> {
        Ok(())
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

async fn wait_screen(screen: &mut watch::Receiver<Vec<String>>, text: &str) {
    tokio::time::timeout(Duration::from_secs(10), screen.wait_for(|lines| lines.iter().any(|l| l.contains(text))))
        .await
        .expect("the screen changes in time")
        .expect("screen open");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let store = db.store().await;
    let now = 1_790_000_000_000;
    let mut tx = store.begin().await.unwrap();
    let p = club::create_person(&mut tx, &NewPerson { first_name: "Ana".into(), last_name: "Bench".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() }, now)
        .await
        .unwrap();
    let m = club::create_member(&mut tx, p, now).await.unwrap();
    let c = club::issue_card(&mut tx, m, &CardNumber::new("04BE0C0001"), now).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(&store, c, CardState::Active, &SEED, now).await.unwrap();
    let spec = TerminalSpec { id: "SLOT-B".into(), kind: TerminalKind::Slot, machine_type: Some(MachineType::Slot), location: "bench".into() };
    let enrolled = terminals::enrol(&store, &spec, &SEED, now).await.unwrap();
    let creds = Credentials { terminal_id: enrolled.terminal_id.clone(), secret: enrolled.secret.expose_secret().to_owned().into() };
    let spec2 = TerminalSpec { id: "SLOT-P".into(), ..spec };
    let enrolled2 = terminals::enrol(&store, &spec2, &SEED, now).await.unwrap();
    let creds2 = Credentials { terminal_id: enrolled2.terminal_id.clone(), secret: enrolled2.secret.expose_secret().to_owned().into() };
    let server = TestServer::start(store, now, test_config()).await;

    // Baseline: a bare WebSocket round trip on the same server.
    let mut link = Link::connect(&server.ws_url(), &creds2, &Trust::WebRoots).await.unwrap();
    link.send(&TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: "bench".into() }).await.unwrap();
    assert!(matches!(link.recv().await.unwrap(), ServerMessage::HelloAck { .. }));
    let mut baseline = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        link.send(&TerminalMessage::Heartbeat { at: 0 }).await.unwrap();
        assert!(matches!(link.recv().await.unwrap(), ServerMessage::Pong { .. }));
        baseline.push(t.elapsed());
    }

    // The agent, a simulated machine on a serial pair, and a reader the bench inserts cards into.
    let address = Address::new(1).unwrap();
    let (host_end, machine_end) = tokio_serial::SerialStream::pair().unwrap();
    let egm = Egm::new(SimConfig::new(address), Stored::default(), Instant::now()).unwrap();
    let (_sim, _sim_task) = sim::spawn(egm, SasPort::from_stream(machine_end), None, RunOptions::default());
    let mut host_config = HostConfig::new(vec![address]);
    host_config.poller.response_timeout = Duration::from_millis(150);
    host_config.poller.inter_byte_timeout = Duration::from_millis(40);
    let (host, events) = SasHost::spawn(SasPort::from_stream(host_end), host_config);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    let (uplink, from_server, _uplink_task) = Uplink::spawn(UplinkConfig::new(server.ws_url(), creds, Trust::WebRoots), outbox.clone(), stop.clone());
    assert!(uplink.wait_up(Duration::from_secs(10)).await, "the agent connects");
    let (mut reader, cards) = ChannelReader::new("bench");
    let (_inputs_tx, inputs) = mpsc::channel(1);
    let screen = Screen::new(Box::new(NullDisplay));
    let mut shown = screen.watch();
    let slot = Slot::new(outbox, uplink, from_server, host.machine(address).unwrap(), events, screen, SlotSettings::default());
    tokio::spawn(slot.run(cards, inputs, stop));
    // Wait for the machine's link (the first card-in would otherwise wait for it).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The parts alone: the meter snapshot the card-in takes, and one outbox write.
    let machine = host.machine(address).unwrap();
    let codes = [MeterCode::TOTAL_COIN_IN, MeterCode::TOTAL_COIN_OUT, MeterCode::GAMES_PLAYED, MeterCode::CURRENT_CREDITS, MeterCode::RESTRICTED_PLAYED];
    let mut meter_reads = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        machine.meters(&codes).await.expect("meters");
        meter_reads.push(t.elapsed());
    }
    let scratch = Outbox::open(&dir.path().join("scratch.db")).await.unwrap();
    let event = floor_protocol::TerminalEvent::TablePresence { card: CardNumber::new("04BE0C0001"), seat: None };
    let mut writes = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        scratch.push(now, &event).await.unwrap();
        writes.push(t.elapsed());
    }

    let card = CardId::parse("04BE0C0001").unwrap();
    let mut latency = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        reader.insert(card.clone()).await.unwrap();
        wait_screen(&mut shown, "Welcome").await;
        latency.push(t.elapsed());
        reader.remove().await.unwrap();
        wait_screen(&mut shown, "Thank you").await;
    }
    let b50 = percentile(&mut baseline, 0.50);
    let b99 = percentile(&mut baseline, 0.99);
    let l50 = percentile(&mut latency, 0.50);
    let l99 = percentile(&mut latency, 0.99);
    println!("card_in: {rounds} rounds, SQLite server in process, simulated machine on a serial pair");
    println!("  card-in to greeting     p50 {:>8.2} ms   p99 {:>8.2} ms", l50.as_secs_f64() * 1e3, l99.as_secs_f64() * 1e3);
    println!("  baseline: WS round trip p50 {:>8.2} ms   p99 {:>8.2} ms", b50.as_secs_f64() * 1e3, b99.as_secs_f64() * 1e3);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  part: SAS meter read     p50 {:>8.2} ms   p99 {:>8.2} ms",
        ms(percentile(&mut meter_reads, 0.50)),
        ms(percentile(&mut meter_reads, 0.99))
    );
    println!("  part: outbox write       p50 {:>8.2} ms   p99 {:>8.2} ms", ms(percentile(&mut writes, 0.50)), ms(percentile(&mut writes, 0.99)));
    let _ = host.stop().await;
}
