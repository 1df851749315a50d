//! Our host against the real `egm-sim` binary over a real pty pair (socat): machine info and
//! meters, game events in money, free play by AFT and its idempotency, a simulator restart,
//! lock and unlock, the ROM signature, link loss and recovery, and every misbehaviour the
//! simulator offers. Each test has its own socat and tempdir, so they run in parallel.

mod common;

use std::time::{Duration, Instant};

use club_rules::Money;
use common::{pty_pair, Sim};
use rust_decimal::Decimal;
use slot_interface::aft::{RegistrationKey, TransferStatus};
use slot_interface::sim::{Egm, SimConfig, Stored};
use slot_interface::{
    Address, Denomination, Event, HostConfig, LinkMode, MachineLink, MeterCode, SasHost, SasPort, TransactionId,
};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

fn a1() -> Address {
    Address::new(1).unwrap()
}

/// Host timing for a loaded test machine: the SAS values assume a dedicated line and CPU.
fn host_config() -> HostConfig {
    let mut config = HostConfig::new(vec![a1()]);
    config.poller.response_timeout = Duration::from_millis(150);
    config.poller.inter_byte_timeout = Duration::from_millis(40);
    config.poller.link_down_after = Duration::from_secs(2);
    config.aft.registration_key = RegistrationKey([7; 20]);
    config.aft.deadline = Duration::from_secs(10);
    config
}

struct Rig {
    _pair: common::PtyPair,
    sim: Sim,
    host: SasHost,
    link: MachineLink,
    events: UnboundedReceiver<Event>,
}

async fn rig(sim_args: &[&str]) -> Option<Rig> {
    rig_with(sim_args, LinkMode::Plain).await
}

async fn rig_with(sim_args: &[&str], mode: LinkMode) -> Option<Rig> {
    let pair = pty_pair().await?;
    let sim = Sim::start(&pair.machine, sim_args).await;
    let port = SasPort::open(pair.host.to_str().unwrap(), mode).expect("host end of the pty opens");
    let (host, events) = SasHost::spawn(port, host_config());
    let link = host.machine(a1()).unwrap();
    let mut rig = Rig { _pair: pair, sim, host, link, events };
    rig.until(|e| matches!(e, Event::LinkUp { .. })).await;
    Some(rig)
}

/// Waits for an event matching `pred`; returns every event seen up to and including it.
async fn until(events: &mut UnboundedReceiver<Event>, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("event not seen within {WAIT:?}; saw {seen:#?}"))
            .expect("host running");
        let done = pred(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

impl Rig {
    async fn until(&mut self, pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
        until(&mut self.events, pred).await
    }

    /// Plays `games` on the simulator and checks every wager and win reaches the host once, in
    /// money through the denomination, matching the simulator's own meters.
    async fn check_games(&mut self, games: u32, denomination_cents: i64) {
        let before = self.sim.status().await;
        self.sim.ok(&format!("play {games}")).await;
        let after = self.sim.status().await;
        let mut events = Vec::new();
        let mut ended = 0;
        while ended < games {
            let batch = self.until(|e| matches!(e, Event::GameEnded { .. })).await;
            ended += 1;
            events.extend(batch);
        }
        let started: Vec<Money> = events
            .iter()
            .filter_map(|e| match e {
                Event::GameStarted { wager, .. } => Some(*wager),
                _ => None,
            })
            .collect();
        let won: Money = events
            .iter()
            .filter_map(|e| match e {
                Event::GameEnded { win, .. } => Some(*win),
                _ => None,
            })
            .fold(Money::ZERO, |a, b| a + b);
        let meter = |v: &serde_json::Value, name: &str| v["meters"][name].as_i64().unwrap();
        assert_eq!(started.len() as u32, games, "{events:#?}");
        let wagered = started.into_iter().fold(Money::ZERO, |a, b| a + b);
        assert_eq!(wagered, Money::from_cents((meter(&after, "coin_in") - meter(&before, "coin_in")) * denomination_cents));
        assert_eq!(won, Money::from_cents((meter(&after, "coin_out") - meter(&before, "coin_out")) * denomination_cents));
    }
}

fn euros(text: &str) -> Money {
    Money::from_decimal(text.parse::<Decimal>().unwrap()).unwrap()
}

#[tokio::test]
async fn host_reads_machine_info_and_meters_over_a_pty() {
    let Some(mut r) = rig(&["--denomination-cents", "5", "--bet", "2"]).await else { return };
    let (info, denomination) = r.link.machine_info().await.unwrap();
    assert_eq!((info.game_id(), denomination), ("SM".to_string(), Denomination::from_cents(5).unwrap()));
    r.sim.ok("play 4").await;
    let status = r.sim.status().await;
    let snapshot = r
        .link
        .meters(&[MeterCode::TOTAL_COIN_IN, MeterCode::TOTAL_COIN_OUT, MeterCode::GAMES_PLAYED, MeterCode::CURRENT_CREDITS])
        .await
        .unwrap();
    let coin_in = snapshot.get(MeterCode::TOTAL_COIN_IN).unwrap();
    assert_eq!(coin_in.raw, 8);
    assert_eq!(coin_in.money, Some(Money::from_cents(40)));
    assert_eq!(snapshot.get(MeterCode::GAMES_PLAYED).unwrap().raw, 4);
    assert_eq!(snapshot.get(MeterCode::GAMES_PLAYED).unwrap().money, None);
    assert_eq!(snapshot.get(MeterCode::TOTAL_COIN_OUT).unwrap().raw, status["meters"]["coin_out"].as_u64().unwrap());
    let credits = status["credits"].as_u64().unwrap() + status["restricted_credits"].as_u64().unwrap();
    assert_eq!(snapshot.get(MeterCode::CURRENT_CREDITS).unwrap().raw, credits);
}

#[tokio::test]
async fn game_events_reach_the_host_once_each_with_wager_and_win_in_money() {
    let Some(mut r) = rig(&["--denomination-cents", "10", "--bet", "3"]).await else { return };
    r.check_games(10, 10).await;
}

#[tokio::test]
async fn games_on_a_machine_without_real_time_events_are_reported_from_meters() {
    let Some(mut r) = rig(&["--no-real-time"]).await else { return };
    let before = r.sim.status().await;
    for _ in 0..3 {
        r.sim.ok("play 1").await;
        r.until(|e| matches!(e, Event::GameEnded { .. })).await;
    }
    let after = r.sim.status().await;
    // The meter-based events are exact in sum.
    let coin_in = after["meters"]["coin_in"].as_i64().unwrap() - before["meters"]["coin_in"].as_i64().unwrap();
    assert_eq!(coin_in, 15);
}

#[tokio::test]
async fn free_play_by_aft_lands_as_restricted_credit_and_a_retry_does_not_pay_twice() {
    let Some(mut r) = rig(&[]).await else { return };
    let id = TransactionId::parse("FP-0001").unwrap();
    let outcome = r.link.free_play(&id, euros("5.00")).await.unwrap();
    assert!(outcome.is_success() && !outcome.replayed, "{outcome:?}");
    assert_eq!(outcome.amount, euros("5.00"));
    let status = r.sim.status().await;
    assert_eq!(status["restricted_credits"], 500);
    assert_eq!(status["registered"], true);
    // The answer was lost, the agent crashed, whatever: the same request again changes nothing.
    let again = r.link.free_play(&id, euros("5.00")).await.unwrap();
    assert!(again.is_success() && again.replayed, "{again:?}");
    assert_eq!(r.sim.status().await["restricted_credits"], 500);
    // Restricted credits are played first.
    r.sim.ok("play 2").await;
    assert_eq!(r.sim.status().await["meters"]["restricted_played"], 10);
    let events = r.until(|e| matches!(e, Event::AftComplete { .. } | Event::GameEnded { .. })).await;
    assert!(!events.is_empty());
}

#[tokio::test]
async fn a_refused_transfer_reports_its_status_and_may_be_retried() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("refuse-aft").await;
    let id = TransactionId::parse("FP-0002").unwrap();
    let refused = r.link.free_play(&id, euros("2.50")).await.unwrap();
    assert_eq!(refused.status, TransferStatus::UNABLE_NOW);
    assert!(!refused.is_success());
    assert_eq!(refused.amount, Money::ZERO);
    assert_eq!(r.sim.status().await["restricted_credits"], 0);
    assert_eq!(r.sim.status().await["locked"], false, "the lock is released after a refusal");
    let retried = r.link.free_play(&id, euros("2.50")).await.unwrap();
    assert!(retried.is_success() && !retried.replayed, "{retried:?}");
}

#[tokio::test]
async fn free_play_that_is_not_whole_cents_or_not_positive_is_refused_before_any_poll() {
    let Some(r) = rig(&[]).await else { return };
    let id = TransactionId::parse("FP-0003").unwrap();
    for bad in ["0.00", "-1.00"] {
        assert!(matches!(r.link.free_play(&id, euros(bad)).await, Err(slot_interface::Error::BadAmount(_))));
    }
}

#[tokio::test]
async fn meters_and_aft_history_survive_a_simulator_restart() {
    let Some(pair) = pty_pair().await else { return };
    let meters = pair.dir.path().join("meters.json");
    let args = ["--meters-file", meters.to_str().unwrap()];
    let mut sim = Sim::start(&pair.machine, &args).await;
    let port = SasPort::open(pair.host.to_str().unwrap(), LinkMode::Plain).unwrap();
    let (host, mut events) = SasHost::spawn(port, host_config());
    let link = host.machine(a1()).unwrap();
    until(&mut events, |e| matches!(e, Event::LinkUp { .. })).await;
    sim.ok("play 5").await;
    let id = TransactionId::parse("FP-0004").unwrap();
    assert!(link.free_play(&id, euros("1.00")).await.unwrap().is_success());
    let before = sim.status().await;

    sim.quit().await;
    until(&mut events, |e| matches!(e, Event::LinkDown { .. })).await;
    let mut sim = Sim::start(&pair.machine, &args).await;
    let back = until(&mut events, |e| matches!(e, Event::LinkUp { .. })).await;
    assert!(back.iter().all(|e| !matches!(e, Event::GameStarted { .. })), "no game is reported again: {back:?}");
    let after = sim.status().await;
    assert_eq!(after["meters"], before["meters"], "meters continue where they were");
    assert_eq!(after["restricted_credits"], before["restricted_credits"]);
    let again = link.free_play(&id, euros("1.00")).await.unwrap();
    assert!(again.replayed && again.is_success(), "{again:?}");
    assert_eq!(sim.status().await["restricted_credits"], before["restricted_credits"]);
}

#[tokio::test]
async fn lock_and_unlock_disable_and_enable_play() {
    let Some(mut r) = rig(&[]).await else { return };
    r.link.lock().await.unwrap();
    assert!(r.sim.cmd("play 1").await.starts_with("err"));
    r.link.unlock().await.unwrap();
    r.sim.ok("play 1").await;
}

#[tokio::test]
async fn the_rom_signature_is_the_machines() {
    let Some(r) = rig(&["--bet", "7"]).await else { return };
    let mut config = SimConfig::new(a1());
    config.bet_credits = 7;
    let same = Egm::new(config, Stored::default(), Instant::now()).unwrap();
    for seed in [0x0000, 0x1234] {
        let signature = r.link.rom_signature(seed, Duration::from_secs(10)).await.unwrap();
        assert_eq!(signature, same.signature(seed));
    }
}

#[tokio::test]
async fn a_legacy_bonus_is_paid_in_credits() {
    let Some(mut r) = rig(&["--denomination-cents", "5"]).await else { return };
    r.link.legacy_bonus(euros("1.00")).await.unwrap();
    assert_eq!(r.sim.status().await["meters"]["legacy_bonus"], 20);
    assert!(matches!(r.link.legacy_bonus(euros("0.03")).await, Err(slot_interface::Error::BadAmount(_))));
    r.until(|e| matches!(e, Event::Other { code, .. } if code.0 == 0x7C)).await;
}

#[tokio::test]
async fn dropped_answers_lose_nothing() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("drop 4").await;
    r.check_games(5, 1).await;
}

#[tokio::test]
async fn damaged_crcs_lose_nothing() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("corrupt 4").await;
    r.check_games(5, 1).await;
}

#[tokio::test]
async fn slow_bytes_are_waited_out() {
    let Some(mut r) = rig(&[]).await else { return };
    // A gap longer than the host's inter-byte limit makes those answers incomplete.
    r.sim.ok("slow 90 3").await;
    r.check_games(5, 1).await;
}

#[tokio::test]
async fn busy_answers_delay_but_do_not_fail_a_long_poll() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("busy 3").await;
    let snapshot = r.link.meters(&[MeterCode::GAMES_PLAYED]).await.unwrap();
    assert_eq!(snapshot.get(MeterCode::GAMES_PLAYED).unwrap().raw, 0);
}

#[tokio::test]
async fn chirps_in_the_middle_of_polling_are_ignored() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("chirp 10").await;
    r.check_games(5, 1).await;
}

#[tokio::test]
async fn a_silent_machine_goes_down_and_comes_back_with_nothing_lost() {
    let Some(mut r) = rig(&[]).await else { return };
    r.sim.ok("silent on").await;
    r.sim.ok("play 2").await;
    r.until(|e| matches!(e, Event::LinkDown { .. })).await;
    r.sim.ok("silent off").await;
    let back = r.until(|e| matches!(e, Event::LinkUp { .. })).await;
    assert!(matches!(back.last(), Some(Event::LinkUp { .. })));
    // The two games played while silent are still queued in the machine and arrive now.
    let mut ended = 0;
    while ended < 2 {
        r.until(|e| matches!(e, Event::GameEnded { .. })).await;
        ended += 1;
    }
    r.check_games(3, 1).await;
}

#[tokio::test]
async fn an_unpolled_machine_chirps_its_address() {
    let Some(pair) = pty_pair().await else { return };
    let _sim = Sim::start(&pair.machine, &["--address", "5", "--chirp-after-ms", "300"]).await;
    let mut port = SasPort::open(pair.host.to_str().unwrap(), LinkMode::Plain).unwrap();
    let mut heard = Vec::new();
    let deadline = Instant::now() + WAIT;
    while heard.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, port.recv_bytes(&mut heard)).await.expect("chirps within the deadline").unwrap();
    }
    assert!(heard.iter().all(|&b| b == 5), "{heard:02X?}");
}

#[tokio::test]
async fn a_host_in_wakeup_mode_still_talks_over_a_pty() {
    // A pty drops parity, so this shows the mark/space sequence runs and the bytes arrive; the
    // ninth bit itself needs a real UART.
    let Some(r) = rig_with(&[], LinkMode::Wakeup).await else { return };
    let snapshot = r.link.meters(&[MeterCode::GAMES_PLAYED]).await.unwrap();
    assert_eq!(snapshot.get(MeterCode::GAMES_PLAYED).unwrap().raw, 0);
    r.host.stop().await.unwrap();
}
