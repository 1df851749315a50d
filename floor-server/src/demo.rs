//! The demo floor: a fresh embedded SQLite database seeded with members, cards in every state,
//! terminals and staff accounts, then served. What a newcomer's first command starts.

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
}

const MEMBERS: &[DemoMember] = &[
    DemoMember { first: "Ana", last: "Novak", born: "1980-04-12", card: "04A1000001", card_state: CardState::Active, self_excluded: false },
    DemoMember { first: "Marko", last: "Horvat", born: "1975-09-30", card: "04A1000002", card_state: CardState::Active, self_excluded: false },
    DemoMember { first: "Maja", last: "Kovačič", born: "1990-01-05", card: "04A1000003", card_state: CardState::Active, self_excluded: false },
    DemoMember { first: "Luka", last: "Krajnc", born: "1968-07-21", card: "04A1000004", card_state: CardState::Active, self_excluded: false },
    DemoMember { first: "Eva", last: "Zupan", born: "1985-11-02", card: "04A1000005", card_state: CardState::Active, self_excluded: true },
    DemoMember { first: "Jan", last: "Potočnik", born: "1999-03-17", card: "04A1000006", card_state: CardState::BlockedLost, self_excluded: false },
    DemoMember { first: "Nina", last: "Kos", born: "2001-06-09", card: "04A1000007", card_state: CardState::Issued, self_excluded: false },
];

/// Seeds a store with the demo floor. Returns the terminal credentials as TOML text.
pub async fn seed(store: &Store, now: Millis) -> anyhow::Result<String> {
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
        if m.card_state != CardState::Issued {
            club::set_card_state(store, card, CardState::Active, &SEED, now).await?;
        }
        if m.card_state == CardState::BlockedLost {
            club::set_card_state(store, card, CardState::BlockedLost, &SEED, now).await?;
        }
        if m.self_excluded {
            club::add_exclusion(
                store,
                &NewExclusion {
                    kind: "own_request".into(),
                    person_id: Some(person),
                    personal_id: None,
                    first_name: None,
                    last_name: None,
                    birth_date: None,
                    starts_at: now,
                    ends_at: Some(now + 180 * 24 * 3600 * 1000),
                    reason: Some("demo".into()),
                },
                &SEED,
                now,
            )
            .await?;
        }
    }
    let mut creds = String::new();
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
        creds.push_str(&format!("[[terminal]]\nid = \"{}\"\nsecret = \"{}\"\n\n", c.terminal_id, c.secret.expose_secret()));
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
    let creds = seed(&store, clock.now_ms()).await.context("seeding the demo floor")?;
    let creds_file = database.with_extension("terminals.toml");
    std::fs::write(&creds_file, creds).with_context(|| format!("writing {}", creds_file.display()))?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("Demo floor on http://{addr}  (database {}, terminal credentials in {})", database.display(), creds_file.display());
    println!("  members: {} seeded (cards 04A1000001 to 04A1000007)", MEMBERS.len());
    println!("  staff: manager, reception, pit, cashier, bar, admin; password {DEMO_PASSWORD}");
    println!("  health http://{addr}/healthz   metrics http://{addr}/metrics   terminals ws://{addr}{}", floor_protocol::GATEWAY_PATH);
    println!("Ctrl-C stops it.");
    app::run(config, store, clock, listener, app::shutdown_signal()).await
}
