//! The demo floor: a fresh embedded SQLite database seeded with members, cards in every state,
//! terminals and staff accounts, then served, with the floor in motion: simulated slot machines
//! (slot-interface's `egm-sim` model on in-process serial pairs), a terminal agent for each
//! (the real `terminal_agent::slot::Slot` over a real WebSocket), and scripted players inserting
//! cards, playing, redeeming points with their PIN and leaving. Sessions, points, tier changes and
//! free play move within a minute; the terminals' screens print on standard output, one line
//! each. What a newcomer's first command starts. Ctrl-C stops the players, the agents (which
//! close their sessions) and then the server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use floor_protocol::CardNumber;
use secrecy::ExposeSecret;

use crate::app;
use crate::audit::Actor;
use crate::club::{self, NewExclusion, NewPerson};
use crate::clock::{Clock, Millis, SystemClock};
use crate::config::Config;
use crate::staff::{self, Role};
use crate::store::Store;
use crate::terminals::{self, TerminalKind, TerminalSpec};
use club_rules::{CardState, MachineType};

const SEED: Actor = Actor::System("demo-seed");

/// A seeded member: name, birth date, card number, and what happened to the card.
struct DemoMember {
    first: &'static str,
    last: &'static str,
    born: &'static str,
    card: &'static str,
    card_state: CardState,
    self_excluded: bool,
    /// Slot play seeded the day before, in cents (EUR 4.00 a point).
    history_cents: i64,
}

const MEMBERS: &[DemoMember] = &[
    DemoMember { first: "Ana", last: "Novak", born: "1980-04-12", card: "04A1000001", card_state: CardState::Active, self_excluded: false, history_cents: 3990000 },
    DemoMember { first: "Marko", last: "Horvat", born: "1975-09-30", card: "04A1000002", card_state: CardState::Active, self_excluded: false, history_cents: 14380000 },
    DemoMember { first: "Maja", last: "Kovačič", born: "1990-01-05", card: "04A1000003", card_state: CardState::Active, self_excluded: false, history_cents: 400000 },
    DemoMember { first: "Luka", last: "Krajnc", born: "1968-07-21", card: "04A1000004", card_state: CardState::Active, self_excluded: false, history_cents: 1000000 },
    DemoMember { first: "Eva", last: "Zupan", born: "1985-11-02", card: "04A1000005", card_state: CardState::Active, self_excluded: true, history_cents: 0 },
    DemoMember { first: "Jan", last: "Potočnik", born: "1999-03-17", card: "04A1000006", card_state: CardState::BlockedLost, self_excluded: false, history_cents: 0 },
    DemoMember { first: "Nina", last: "Kos", born: "2001-06-09", card: "04A1000007", card_state: CardState::Issued, self_excluded: false, history_cents: 0 },
];

/// Seeds a store with the demo floor. Returns the terminal credentials as TOML text.
pub async fn seed(store: &Store, now: Millis) -> anyhow::Result<String> {
    let creds = seed_floor(store, now).await?;
    Ok(creds.iter().map(|(id, secret)| format!("[[terminal]]\nid = \"{id}\"\nsecret = \"{secret}\"\n\n")).collect())
}

/// Every demo member's PIN for redemption at a machine (demo only).
pub const DEMO_PIN: &str = "1234";

/// Seeds the demo floor; returns each terminal's (id, secret).
async fn seed_floor(store: &Store, now: Millis) -> anyhow::Result<Vec<(String, String)>> {
    let rules = club_rules::Rules::default();
    for m in MEMBERS {
        let mut tx = store.begin().await?;
        let person = club::create_person(
            &mut tx,
            &NewPerson { first_name: m.first.into(), last_name: m.last.into(), birth_date: m.born.into(), ..NewPerson::default() },
            now,
        )
        .await?;
        let member = club::create_member(&mut tx, person, now).await?;
        let card = club::issue_card(&mut tx, member, &CardNumber::new(m.card), now).await?;
        tx.commit().await?;
        crate::pins::set_pin(store, member, DEMO_PIN, &SEED, now).await?;
        if m.history_cents > 0 {
            // Play before today, so that a few minutes of the demo cross a tier threshold.
            let mut tx = store.begin().await?;
            let at = crate::ledger::time(now - 24 * 3_600_000)?;
            let earned =
                crate::ledger::apply_play(&mut tx, &rules, member, None, MachineType::Slot, club_rules::Money::from_cents(m.history_cents), at, None).await?;
            anyhow::ensure!(earned.is_ok(), "seeding play history: {earned:?}");
            tx.commit().await?;
        }
        if m.card_state != CardState::Issued {
            club::set_card_state(store, card, CardState::Active, &SEED, now).await?;
        }
        if m.card_state == CardState::BlockedLost {
            club::set_card_state(store, card, CardState::BlockedLost, &SEED, now).await?;
        }
        if m.self_excluded {
            club::add_exclusion(
                store,
                &NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, now, Some(now + 180 * 24 * 3600 * 1000), Some("demo".into())),
                &SEED,
                now,
            )
            .await?;
        }
    }
    let mut creds = Vec::new();
    let specs = [
        ("SLOT-001", TerminalKind::Slot, Some(MachineType::Slot), "Main floor, bank A"),
        ("SLOT-002", TerminalKind::Slot, Some(MachineType::Slot), "Main floor, bank A"),
        ("ROUL-001", TerminalKind::Slot, Some(MachineType::ElectronicRoulette), "Main floor, bank B"),
        ("POKER-001", TerminalKind::Slot, Some(MachineType::VideoPoker), "Main floor, bank B"),
        ("BAR-001", TerminalKind::Bar, None, "Lobby bar"),
        ("TABLE-BJ1", TerminalKind::Table, None, "Pit 1, blackjack"),
    ];
    for (id, kind, machine_type, location) in specs {
        let c = terminals::enrol(store, &TerminalSpec { id: id.into(), kind, machine_type, location: location.into() }, &SEED, now).await?;
        creds.push((c.terminal_id, c.secret.expose_secret().to_owned()));
    }
    seed_catalogue(store, now).await?;
    for (user, name, roles) in [
        ("manager", "Demo Manager", vec![Role::Manager]),
        ("reception", "Demo Reception", vec![Role::Reception]),
        ("pit", "Demo Pit Boss", vec![Role::PitBoss, Role::Croupier]),
        ("cashier", "Demo Cashier", vec![Role::Cashier]),
        ("bar", "Demo Bar", vec![Role::Bar]),
        ("admin", "Demo Administrator", vec![Role::Administrator]),
    ] {
        staff::create_user(store, user, name, DEMO_PASSWORD, &roles, &SEED, now).await?;
    }
    Ok(creds)
}

/// The outlet catalogue of the demo casino: the lobby bar, the restaurant, the hotel desk and
/// the showcase.
pub const CATALOGUE_CSV: &str = "\
sku,name,category,points_price,showcase,member_free,already_discounted,active
ESPRESSO,Espresso,coffee,,false,false,false,true
CAPPUCCINO,Cappuccino,coffee,,false,false,false,true
WATER-05,Still water 0.5 l,water,,false,false,false,true
JUICE-DISP,Orange juice (dispenser),dispenser_juice,,false,false,false,true
DRAFT-03,Draft beer 0.3 l,draft_beer,,false,false,false,true
WINE-OPEN,Open house wine 0.1 l,open_wine,,false,false,false,true
BEER-BTL,Bottled beer 0.33 l,beer,45,false,false,false,true
COCKTAIL,Signature cocktail,cocktails,100,false,false,false,true
SPRITZ-HH,Spritz (happy hour),cocktails,50,false,false,true,true
GIN-TONIC,Gin and tonic,spirits,90,false,false,false,true
CIG-PACK,Cigarettes (pack of 20),tobacco,,false,false,true,true
CLUB-SANDWICH,Club sandwich,food,110,false,false,false,true
DINNER-MENU,Three-course dinner,food,450,false,false,false,true
STEAK,Beef steak,food,320,false,false,false,true
HOTEL-NIGHT,Hotel room (one night),hotel,1200,false,false,false,true
SPA-DAY,Spa day pass,hotel,400,false,false,false,true
WATCH,Casino wristwatch,showcase,15000,true,false,false,true
PEN,Engraved pen,showcase,2500,true,false,false,true
CARDS-DECK,Casino playing cards,showcase,300,true,false,false,true
";

async fn seed_catalogue(store: &Store, now: Millis) -> anyhow::Result<()> {
    let articles = crate::catalogue::parse_csv(CATALOGUE_CSV)?;
    crate::catalogue::upsert(store, &articles, &SEED, now).await?;
    Ok(())
}

/// Every demo staff account's password (demo only).
pub const DEMO_PASSWORD: &str = "demo-floor-2026";

/// `floor-server demo`.
pub async fn run(mut config: Config, database: PathBuf) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = database.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    config.database_url = format!("sqlite://{}", database.display());
    let clock = Arc::new(SystemClock);
    let store = app::open_store(&config).await?;
    let creds = seed_floor(&store, clock.now_ms()).await.context("seeding the demo floor")?;
    let creds_file = database.with_extension("terminals.toml");
    let text: String = creds.iter().map(|(id, secret)| format!("[[terminal]]\nid = \"{id}\"\nsecret = \"{secret}\"\n\n")).collect();
    std::fs::write(&creds_file, text).with_context(|| format!("writing {}", creds_file.display()))?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("Demo floor on http://{addr}  (database {}, terminal credentials in {})", database.display(), creds_file.display());
    println!("  members: {} seeded (cards 04A1000001 to 04A1000007), PIN {DEMO_PIN}", MEMBERS.len());
    println!("  staff: manager, reception, pit, cashier, bar, admin; password {DEMO_PASSWORD}");
    println!("  health http://{addr}/healthz   metrics http://{addr}/metrics   terminals ws://{addr}{}", floor_protocol::GATEWAY_PATH);
    println!("  the slot machines' screens follow, one line each. Ctrl-C stops it.");

    let store_for_watch = store.clone();
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::run(config, store, clock, listener, async move {
        let _ = server_stopped.await;
    }));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let agents_dir = tempfile::tempdir().context("a directory for the agents' outboxes")?;
    let url = format!("ws://{addr}{}", floor_protocol::GATEWAY_PATH);
    let mut machines = tokio::task::JoinSet::new();
    for (address, (id, game, players)) in [
        // Each member plays at one machine only; among them a self-excluded member (Eva), a
        // card reported lost (Jan) and a card not yet activated (Nina), all refused.
        ("SLOT-001", MachineType::Slot, &["04A1000001"][..]),
        ("SLOT-002", MachineType::Slot, &["04A1000002", "04A1000005"][..]),
        ("ROUL-001", MachineType::ElectronicRoulette, &["04A1000004", "04A1000006"][..]),
        ("POKER-001", MachineType::VideoPoker, &["04A1000003", "04A1000007"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let secret = creds.iter().find(|(t, _)| t == id).map(|(_, s)| s.clone()).context("demo terminal")?;
        let machine = motion::Machine {
            id: id.to_owned(),
            secret,
            url: url.clone(),
            game,
            address: u8::try_from(address + 1)?,
            players: players.iter().map(|p| (*p).to_owned()).collect(),
            outbox: agents_dir.path().join(format!("{id}.db")),
        };
        let stop = stop.clone();
        machines.spawn(async move {
            if let Err(e) = machine.run(stop).await {
                tracing::error!(error = %e, "demo machine stopped");
            }
        });
    }
    let watcher = tokio::spawn(tier_changes(store_for_watch, stop.clone()));
    app::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while machines.join_next().await.is_some() {}
    })
    .await;
    let _ = server_stop.send(());
    server.await?
}

/// Prints each promotion as it is committed (the demo's view of tier changes).
async fn tier_changes(store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Promotions from the seeded history are not news.
    let mut seen: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM tier_events").fetch_one(store.read()).await.unwrap_or(0);
    loop {
        let rows: Vec<(i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, member_id, from_tier, to_tier FROM tier_events WHERE id > $1 AND kind = 'promoted' ORDER BY id",
        )
        .bind(seen)
        .fetch_all(store.read())
        .await
        .unwrap_or_default();
        for (id, member, from, to) in rows {
            seen = id;
            println!("[tiers    ] member {} promoted {} -> {}", club::member_number(member), from.unwrap_or_default(), to.unwrap_or_default());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The demo floor in motion: simulated machines, their agents and scripted players.
mod motion {
    use std::path::PathBuf;
    use std::time::Duration;

    use anyhow::Context;
    use club_rules::MachineType;
    use floor_protocol::Pin;
    use hardware::{CardId, ChannelReader};
    use slot_interface::sim::{self, Egm, RunOptions, SimConfig, Stored};
    use slot_interface::{Address, Denomination, HostConfig, SasHost, SasPort};
    use terminal_agent::link::{Credentials, Trust};
    use terminal_agent::outbox::Outbox;
    use terminal_agent::screen::Screen;
    use terminal_agent::slot::{Input, Slot, SlotSettings};
    use terminal_agent::uplink::{Uplink, UplinkConfig};
    use tokio::sync::{mpsc, watch};

    pub struct Machine {
        pub id: String,
        pub secret: String,
        pub url: String,
        pub game: MachineType,
        pub address: u8,
        pub players: Vec<String>,
        pub outbox: PathBuf,
    }

    /// A terminal's screen as one line on standard output.
    struct LineDisplay(String);

    impl hardware::Display for LineDisplay {
        fn size(&self) -> (usize, usize) {
            (24, 3)
        }
        fn show(&mut self, lines: &[&str]) -> Result<(), hardware::Error> {
            println!("[{:<9}] {}", self.0, lines.join(" | "));
            Ok(())
        }
    }

    impl Machine {
        pub async fn run(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
            let address = Address::new(self.address)?;
            let (host_end, machine_end) = tokio_serial::SerialStream::pair().context("a serial pair")?;
            let mut config = SimConfig::new(address);
            config.game = self.game;
            config.denomination = Denomination::from_cents(100)?;
            config.bet_credits = 5;
            config.seed = u64::from(self.address);
            let egm = Egm::new(config, Stored::default(), std::time::Instant::now())?;
            let (sim, sim_task) = sim::spawn(egm, SasPort::from_stream(machine_end), None, RunOptions::default());
            let mut host_config = HostConfig::new(vec![address]);
            host_config.poller.response_timeout = Duration::from_millis(150);
            host_config.poller.inter_byte_timeout = Duration::from_millis(40);
            host_config.aft.registration_key = slot_interface::aft::RegistrationKey([0x5A; 20]);
            let (host, events) = SasHost::spawn(SasPort::from_stream(host_end), host_config);
            let outbox = Outbox::open(&self.outbox).await?;
            let creds = Credentials { terminal_id: self.id.clone(), secret: self.secret.clone().into() };
            let (uplink, from_server, uplink_task) = Uplink::spawn(UplinkConfig::new(&self.url, creds, Trust::WebRoots), outbox.clone(), stop.clone());
            let (mut reader, cards) = ChannelReader::new(self.id.clone());
            let (inputs_tx, inputs) = mpsc::channel(4);
            let settings = SlotSettings { game: self.game, abandon_after: Duration::from_secs(120), ..SlotSettings::default() };
            let screen = Screen::new(Box::new(LineDisplay(self.id.clone())));
            let link = uplink.clone();
            let slot = Slot::new(outbox.clone(), uplink, from_server, host.machine(address)?, events, screen, settings);
            let agent = tokio::spawn(slot.run(cards, inputs, stop.clone()));
            sim.command("insert 5000000").await?;
            // Players arrive once the floor is up (an agent would open offline sessions before).
            link.wait_up(Duration::from_secs(10)).await;

            // The players take turns: card in, a few dozen games, sometimes cashback, card out.
            let mut round = 0usize;
            'floor: loop {
                let player = &self.players[round % self.players.len()];
                round += 1;
                reader.insert(CardId::parse(player)?).await?;
                if pause(&mut stop, 1500).await {
                    break;
                }
                let games = 20 + (round * 7 + usize::from(self.address) * 5) % 30;
                for _ in 0..games {
                    sim.command("play 1").await?;
                    if pause(&mut stop, 250).await {
                        break 'floor;
                    }
                }
                if round.is_multiple_of(3) {
                    inputs_tx.send(Input::Redeem { points: 1000, pin: Pin::new(super::DEMO_PIN) }).await?;
                    if pause(&mut stop, 2000).await {
                        break;
                    }
                }
                reader.remove().await?;
                if pause(&mut stop, 2000).await {
                    break;
                }
            }
            // The agent closes the open session on stop; give it the time to.
            let _ = agent.await;
            let _ = tokio::time::timeout(Duration::from_secs(5), uplink_task).await;
            let _ = host.stop().await;
            let _ = sim.command("quit").await;
            let _ = sim_task.await;
            outbox.close().await;
            Ok(())
        }
    }

    /// Sleeps; true when the demo is stopping.
    async fn pause(stop: &mut watch::Receiver<bool>, ms: u64) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => *stop.borrow(),
            _ = stop.changed() => true,
        }
    }

}
