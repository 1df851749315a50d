//! The host core against the simulated machine on a virtual line, in virtual time: link-up,
//! denomination, real-time and meter-based game events in money, faults on the line, power
//! cycles, several machines, link loss. Deterministic; no IO, no sleeps.

use std::time::{Duration, Instant};

use club_rules::{MachineType, Money};
use slot_interface::sim::loopback::Loopback;
use slot_interface::sim::{Egm, SimConfig, Stored};
use slot_interface::session::{HostCore, Output};
use slot_interface::{Address, Denomination, Door, Event, HostConfig};

fn addr(a: u8) -> Address {
    Address::new(a).unwrap()
}

fn line(configs: Vec<SimConfig>, real_time: bool) -> Loopback {
    let now = Instant::now();
    let mut host_config = HostConfig::new(configs.iter().map(|c| c.address).collect());
    host_config.real_time_events = real_time;
    let machines = configs.into_iter().map(|c| Egm::new(c, Stored::default(), now).unwrap()).collect();
    Loopback::new(HostCore::new(host_config, now), machines, now)
}

fn events(l: &mut Loopback) -> Vec<Event> {
    l.outputs
        .drain(..)
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn wagers(events: &[Event]) -> (Money, Money, usize, usize) {
    let mut wagered = Money::ZERO;
    let mut won = Money::ZERO;
    let (mut started, mut ended) = (0, 0);
    for e in events {
        match e {
            Event::GameStarted { wager, .. } => {
                wagered += *wager;
                started += 1;
            }
            Event::GameEnded { win, .. } => {
                won += *win;
                ended += 1;
            }
            _ => {}
        }
    }
    (wagered, won, started, ended)
}

fn meters_money(egm: &Egm) -> (Money, Money) {
    let d = egm.config().denomination;
    let m = &egm.state().meters;
    (d.money(m.coin_in).unwrap(), d.money(m.coin_out).unwrap())
}

/// Every game's wager and win reach the host exactly once, one start and one end per game.
#[track_caller]
fn check_games_reported_once(l: &mut Loopback, games: u32) {
    check_games(l, games, true);
}

#[track_caller]
fn check_games(l: &mut Loopback, games: u32, one_event_per_game: bool) {
    let before = meters_money(&l.machines[0]);
    for _ in 0..games {
        l.machines[0].play().unwrap();
        l.run_for(Duration::from_millis(300));
    }
    l.run_for(Duration::from_secs(2));
    let after = meters_money(&l.machines[0]);
    let (wagered, won, started, ended) = wagers(&events(l));
    if one_event_per_game {
        assert_eq!((started, ended), (games as usize, games as usize), "one start and one end per game");
    } else {
        // Meter readings may cover two games played between them; never more events than games.
        assert!((1..=games as usize).contains(&started) && (1..=games as usize).contains(&ended), "{started} {ended}");
    }
    assert_eq!(wagered, after.0 - before.0, "wagers add up to the coin in meter");
    assert_eq!(won, after.1 - before.1, "wins add up to the coin out meter");
}

#[test]
fn a_machine_comes_up_with_its_denomination_and_real_time_events_on() {
    let mut config = SimConfig::new(addr(1));
    config.denomination = Denomination::from_cents(5).unwrap();
    let mut l = line(vec![config], true);
    l.run_for(Duration::from_secs(1));
    let events = events(&mut l);
    let Some(Event::LinkUp { address, info, denomination }) = events.first() else { panic!("{events:?}") };
    assert_eq!((*address, denomination.cents(), info.game_id()), (addr(1), 5, "SM".to_string()));
    assert!(events.contains(&Event::Power { address: addr(1), on: true }), "power-up is reported after link-up");
    assert!(l.machines[0].real_time());
}

#[test]
fn real_time_game_events_carry_wager_and_win_in_money() {
    let mut config = SimConfig::new(addr(1));
    config.denomination = Denomination::from_cents(10).unwrap();
    config.bet_credits = 3;
    let mut l = line(vec![config], true);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    l.machines[0].play().unwrap();
    l.run_for(Duration::from_millis(500));
    let events = events(&mut l);
    let started = events.iter().find_map(|e| match e {
        Event::GameStarted { wager, wager_credits, .. } => Some((*wager, *wager_credits)),
        _ => None,
    });
    assert_eq!(started, Some((Money::from_cents(30), 3)));
    assert!(events.iter().any(|e| matches!(e, Event::GameEnded { .. })));
}

#[test]
fn every_game_is_reported_once_in_real_time_mode() {
    let mut l = line(vec![SimConfig::new(addr(1))], true);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    check_games_reported_once(&mut l, 40);
}

#[test]
fn a_machine_without_real_time_events_reports_games_from_its_meters() {
    let mut config = SimConfig::new(addr(1));
    config.real_time_capable = false;
    let mut l = line(vec![config], true);
    l.run_for(Duration::from_secs(2));
    assert!(!l.machines[0].real_time());
    events(&mut l);
    check_games(&mut l, 20, false);
}

#[test]
fn dropped_and_damaged_answers_lose_no_game_and_count_none_twice() {
    let mut l = line(vec![SimConfig::new(addr(1))], true);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    let before = meters_money(&l.machines[0]);
    for round in 0..30u32 {
        l.machines[0].play().unwrap();
        match round % 3 {
            0 => l.faults[0].drop = 1,
            1 => l.faults[0].corrupt = 1,
            _ => l.faults[0].drop = 2,
        }
        l.run_for(Duration::from_millis(400));
    }
    l.run_for(Duration::from_secs(2));
    let after = meters_money(&l.machines[0]);
    let (wagered, won, started, ended) = wagers(&events(&mut l));
    assert_eq!((started, ended), (30, 30));
    assert_eq!((wagered, won), (after.0 - before.0, after.1 - before.1));
}

#[test]
fn doors_and_handpays_become_typed_events() {
    let mut l = line(vec![SimConfig::new(addr(1))], true);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    l.machines[0].door(Door::Slot, true);
    l.machines[0].door(Door::Slot, false);
    l.machines[0].handpay(5000);
    l.machines[0].handpay_reset();
    l.run_for(Duration::from_secs(1));
    let a = addr(1);
    assert_eq!(
        events(&mut l),
        [
            Event::Door { address: a, door: Door::Slot, open: true },
            Event::Door { address: a, door: Door::Slot, open: false },
            Event::Handpay { address: a, pending: true },
            Event::Handpay { address: a, pending: false },
        ]
    );
}

#[test]
fn after_a_power_cycle_real_time_events_come_back_and_no_game_is_counted_twice() {
    let mut l = line(vec![SimConfig::new(addr(1))], true);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    check_games_reported_once(&mut l, 5);
    let now = l.now();
    l.machines[0].power_cycle(now);
    l.run_for(Duration::from_secs(2));
    let events_after = events(&mut l);
    assert!(events_after.contains(&Event::Power { address: addr(1), on: false }), "{events_after:?}");
    assert!(l.machines[0].real_time(), "real-time events switched on again");
    check_games_reported_once(&mut l, 5);
}

#[test]
fn three_machines_share_one_line() {
    let configs: Vec<SimConfig> = [1, 2, 3].into_iter().map(|a| SimConfig::new(addr(a))).collect();
    let mut l = line(configs, true);
    l.run_for(Duration::from_secs(2));
    for k in 0..3 {
        l.machines[k].play().unwrap();
    }
    l.run_for(Duration::from_secs(1));
    let events = events(&mut l);
    for a in [1, 2, 3] {
        assert!(events.iter().any(|e| matches!(e, Event::LinkUp { address, .. } if *address == addr(a))));
        assert!(events.iter().any(|e| matches!(e, Event::GameStarted { address, .. } if *address == addr(a))));
    }
}

#[test]
fn a_silent_machine_goes_down_and_comes_back_up() {
    let now = Instant::now();
    let mut host_config = HostConfig::new(vec![addr(1)]);
    host_config.poller.link_down_after = Duration::from_secs(3);
    let egm = Egm::new(SimConfig::new(addr(1)), Stored::default(), now).unwrap();
    let mut l = Loopback::new(HostCore::new(host_config, now), vec![egm], now);
    l.run_for(Duration::from_secs(1));
    events(&mut l);
    l.faults[0].silent = true;
    l.run_for(Duration::from_secs(5));
    assert_eq!(events(&mut l), [Event::LinkDown { address: addr(1) }]);
    l.faults[0].silent = false;
    l.run_for(Duration::from_secs(3));
    let back = events(&mut l);
    assert!(matches!(back.first(), Some(Event::LinkUp { .. })), "{back:?}");
    check_games_reported_once(&mut l, 3);
}

#[test]
fn a_roulette_machine_is_identified_by_its_additional_id() {
    let mut config = SimConfig::new(addr(1));
    config.game = MachineType::ElectronicRoulette;
    config.rtp_bp = 9_730;
    let mut l = line(vec![config], true);
    l.run_for(Duration::from_secs(1));
    let events = events(&mut l);
    let Some(Event::LinkUp { info, .. }) = events.first() else { panic!("{events:?}") };
    assert_eq!((&info.additional_id, info.base_percent_bp()), (b"ROU", Some(9730)));
}
