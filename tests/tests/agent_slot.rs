//! The terminal agent at a slot machine, end to end with real processes: the `floor-server`
//! binary on SQLite, the `terminal-agent` binary, `egm-sim` over a socat pty, and a club card on
//! vsmartcard's virtual reader through pcscd.
//!
//! PC/SC tests share pcscd's two virtual readers, so they are named `pcsc_*` and run one at a
//! time (nextest group `pcsc`). Each uses the reader on port 35963; the new-card test also the
//! one on 35964.

use std::time::Duration;

use club_tests::agent_rig::*;
use club_tests::netcut::NetCut;
use hardware::vpcd::{self, VirtualCard};

const VPCD_PORT: u16 = 35963;
/// The second virtual reader, for a card inserted while another is in.
const VPCD_PORT_2: u16 = 35964;
const LONG: Duration = Duration::from_secs(60);

fn uid(card: &str) -> Vec<u8> {
    (0..card.len()).step_by(2).map(|i| u8::from_str_radix(&card[i..i + 2], 16).unwrap()).collect()
}

struct Rig {
    /// Between agent and server when the test cuts the network.
    cut: Option<NetCut>,
    floor: FloorProcess,
    _pty: Pty,
    sim: Sim,
    agent: AgentProcess,
    _dir: tempfile::TempDir,
}

/// Everything running; `None` when pcscd/vpcd or socat is missing (and not required).
async fn rig(sim_args: &[&str]) -> Option<Rig> {
    rig_with(sim_args, false, false).await
}

/// With `cut`, the agent reaches the server through a [`NetCut`] proxy; with `two_readers`, it
/// watches both of pcscd's virtual readers.
async fn rig_with(sim_args: &[&str], cut: bool, two_readers: bool) -> Option<Rig> {
    if !vpcd::ready_or_skip() {
        return None;
    }
    let reader = vpcd::reader_name(VPCD_PORT);
    vpcd::wait_until_empty(&reader, Duration::from_secs(10)).expect("the reader starts empty");
    let pty = Pty::start().await?;
    let (floor, secret) = FloorProcess::start().await;
    // 1 EUR credits, 5 credits a game: every game is EUR 5.00 of coin-in.
    let mut args = vec!["--denomination-cents", "100", "--bet", "5"];
    args.extend_from_slice(sim_args);
    let mut sim = Sim::start(&pty.machine, &args);
    sim.ok("insert 500000");
    let dir = tempfile::tempdir().unwrap();
    let cut = if cut { Some(NetCut::start(floor.addr()).await) } else { None };
    let url = match &cut {
        Some(c) => format!("ws://{}{}", c.addr(), floor_protocol::GATEWAY_PATH),
        None => floor.ws_url(),
    };
    let second = vpcd::reader_name(VPCD_PORT_2);
    let readers: Vec<&str> = if two_readers { vec![&reader, &second] } else { vec![&reader] };
    let config = slot_config_with(dir.path(), &url, &secret, &readers, &pty.host);
    let agent = AgentProcess::start(config);
    agent.wait_shown(0, "Insert your card", LONG).await;
    Some(Rig { cut, floor, _pty: pty, sim, agent, _dir: dir })
}

fn coin_in_cents(sim: &mut Sim) -> i64 {
    // 1 EUR credits: the coin-in meter in credits times 100.
    sim.status()["meters"]["coin_in"].as_i64().unwrap() * 100
}

async fn session_totals(floor: &FloorProcess, card: &str) -> (i64, i64, i64) {
    let store = floor.store().await;
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(s.games), 0) AS BIGINT), CAST(COALESCE(SUM(s.wagered_cents), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN s.closed_at IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
         FROM card_sessions s JOIN cards c ON c.id = s.card_id WHERE c.card_number = $1",
    )
    .bind(card)
    .fetch_one(store.read())
    .await
    .unwrap();
    store.close().await;
    row
}

async fn points_of(floor: &FloorProcess, card: &str) -> (i64, i64) {
    let store = floor.store().await;
    let b = balances(&store, card).await;
    store.close().await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_credits_every_game_once_through_server_and_agent_kills() {
    let Some(mut r) = rig(&[]).await else { return };
    let before = coin_in_cents(&mut r.sim);
    let (points_before, _) = points_of(&r.floor, ANA.1).await;
    assert_eq!(points_before, 0);

    let from = r.agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(ANA.1)).unwrap();
    r.agent.wait_shown(from, "Welcome Ana", LONG).await;

    r.sim.play(150);
    // The server dies mid-session without a goodbye; play goes on meanwhile.
    r.floor.kill9();
    r.sim.play(100);
    r.floor.restart();
    r.sim.play(100);
    // The agent dies: whatever it had not written yet is on the machine's meters.
    r.agent.kill9();
    r.sim.play(50);
    r.agent.restart();
    r.sim.play(100);
    // Link cut: the server is away for a while (the agent keeps everything in its outbox).
    r.floor.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    r.floor.restart();

    let from = r.agent.screen_len();
    card.remove();
    r.agent.wait_shown(from, "Thank you", LONG).await;
    let after = coin_in_cents(&mut r.sim);
    let delta = after - before;
    assert_eq!(delta, 500 * 500, "500 games of EUR 5.00 on the meters");

    let floor = &r.floor;
    wait_for(LONG, "the session closed on the server", || async move { session_totals(floor, ANA.1).await.2 == 0 && session_totals(floor, ANA.1).await.0 > 0 })
        .await;
    let (games, wagered, _) = session_totals(&r.floor, ANA.1).await;
    assert_eq!(wagered, delta, "the sessions' coin-in equals the meter delta");
    assert_eq!(games, 500, "every game counted once");
    let (points, _) = points_of(&r.floor, ANA.1).await;
    assert_eq!(points, delta / 400, "1 point per EUR 4.00 of coin-in, to the point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_gold_member_redeems_1000_points_as_restricted_credit_and_a_refused_transfer_gives_them_back() {
    let Some(mut r) = rig(&[]).await else { return };
    let (points0, fp0) = points_of(&r.floor, MARKO.1).await;
    assert_eq!(points0, 37_500, "seeded Gold member");
    let from = r.agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(MARKO.1)).unwrap();
    r.agent.wait_shown(from, "Welcome Marko", LONG).await;
    assert!(r.agent.shown_since(from, "Gold"), "tier on the greeting");

    let restricted0 = r.sim.status()["restricted_credits"].as_i64().unwrap();
    let from = r.agent.screen_len();
    r.agent.type_line(&format!("redeem 1000 {PIN}"));
    r.agent.wait_shown(from, "EUR 14.00 free play", LONG).await;
    let status = r.sim.status();
    assert_eq!(status["meters"]["aft_restricted_in_cents"].as_i64().unwrap(), 1_400, "EUR 14.00 in by AFT, restricted");
    assert_eq!(status["restricted_credits"].as_i64().unwrap() - restricted0, 14, "14 restricted credits of EUR 1");
    let floor = &r.floor;
    wait_for(LONG, "points debited", || async move { points_of(floor, MARKO.1).await.0 == points0 - 1000 }).await;
    assert_eq!(points_of(&r.floor, MARKO.1).await.1, fp0, "the free play went to the machine, none left on the account");

    // The machine refuses the next transfer: the points come back, once.
    r.sim.ok("refuse-aft");
    let from = r.agent.screen_len();
    r.agent.type_line(&format!("redeem 1000 {PIN}"));
    r.agent.wait_shown(from, "Your points are back", LONG).await;
    wait_for(LONG, "points given back", || async move { points_of(floor, MARKO.1).await.0 == points0 - 1000 }).await;
    let store = r.floor.store().await;
    let reversed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machine_redemptions WHERE state = 'reversed'").fetch_one(store.read()).await.unwrap();
    assert_eq!(reversed, 1);
    let (p, fp) = balances(&store, MARKO.1).await;
    assert_eq!((p, fp), (points0 - 1000, fp0), "points back, the reversed redemption's free play cancelled");
    store.close().await;
    assert_eq!(r.sim.status()["meters"]["aft_restricted_in_cents"].as_i64().unwrap(), 1_400, "nothing more reached the machine");

    // Wrong PINs: five lock redemption.
    for left in (0..5).rev() {
        let from = r.agent.screen_len();
        r.agent.type_line("redeem 1000 0000");
        let want = if left == 0 { "Redemption locked".to_owned() } else { format!("{left} tries left") };
        r.agent.wait_shown(from, &want, LONG).await;
    }
    let from = r.agent.screen_len();
    r.agent.type_line(&format!("redeem 1000 {PIN}"));
    r.agent.wait_shown(from, "Redemption locked", LONG).await;
    drop(card);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_self_excluded_card_is_refused_at_card_in_and_offline_play_after_exclusion_earns_nothing() {
    let Some(mut r) = rig(&[]).await else { return };
    // Offline session: the server is down when Eva plays; she is excluded meanwhile.
    r.floor.kill9();
    let from = r.agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(EVA.1)).unwrap();
    r.agent.wait_shown(from, "credited later", LONG).await;
    r.sim.play(40);
    let store = r.floor.store().await;
    let person: i64 =
        sqlx::query_scalar("SELECT m.person_id FROM members m JOIN cards c ON c.member_id = m.id WHERE c.card_number = $1")
            .bind(EVA.1)
            .fetch_one(store.read())
            .await
            .unwrap();
    let now = now_ms();
    floor_server::club::add_exclusion(
        &store,
        &floor_server::club::NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person, now - 60_000, Some(now + 86_400_000), Some("test".into())),
        &club_tests::SEED,
        now,
    )
    .await
    .unwrap();
    store.close().await;
    r.floor.restart();
    let from = r.agent.screen_len();
    // The server refuses the card when the offline session's events arrive: the session closes.
    r.agent.wait_shown(from, "Card not accepted", LONG).await;
    card.remove();
    let floor = &r.floor;
    wait_for(LONG, "the offline session and its play reached the server, and it closed", || async move {
        let store = floor.store().await;
        let (closed, plays): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM card_sessions s JOIN cards c ON c.id = s.card_id WHERE c.card_number = $1 \
             AND s.closed_at IS NOT NULL AND s.refusal IS NOT NULL), \
             (SELECT COUNT(*) FROM terminal_events WHERE terminal_id = 'SLOT-1' AND kind = 'play')",
        )
        .bind(EVA.1)
        .fetch_one(store.read())
        .await
        .unwrap();
        store.close().await;
        closed == 1 && plays > 0
    })
    .await;
    assert_eq!(points_of(&r.floor, EVA.1).await.0, 0, "play by an excluded member earns nothing");

    // Online card-in: refused at once; redemption refused too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from = r.agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(EVA.1)).unwrap();
    r.agent.wait_shown(from, "Card not accepted", LONG).await;
    let from = r.agent.screen_len();
    r.agent.type_line(&format!("redeem 1000 {PIN}"));
    r.agent.wait_shown(from, "Insert your card", LONG).await;
    drop(card);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_table_mode_announces_the_player_to_the_pit() {
    if !vpcd::ready_or_skip() {
        return;
    }
    let reader = vpcd::reader_name(VPCD_PORT);
    vpcd::wait_until_empty(&reader, Duration::from_secs(10)).expect("the reader starts empty");
    let (floor, _) = FloorProcess::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("table.toml");
    std::fs::write(
        &config,
        format!(
            "mode = \"table\"\nstore = \"{}\"\n[server]\nurl = \"{}\"\nterminal_id = \"TABLE-1\"\nsecret_file = \"{}\"\n\
             [reader]\nkind = \"pcsc\"\nreaders = [\"{reader}\"]\n[table]\nseat = 2\n",
            dir.path().join("agent.db").display(),
            floor.ws_url(),
            floor.dir.path().join("table.secret").display(),
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(config);
    agent.wait_shown(0, "Present your card", LONG).await;
    let card = VirtualCard::insert(VPCD_PORT, &uid(ANA.1)).unwrap();
    agent.wait_shown(0, "The pit is informed", LONG).await;
    let floor = &floor;
    wait_for(LONG, "Ana listed at TABLE-1", || async move {
        let store = floor.store().await;
        let players = floor_server::tables::players_at(&store, "TABLE-1", now_ms()).await.unwrap();
        store.close().await;
        players.iter().any(|p| p.first_name == ANA.0 && p.seat == Some(2))
    })
    .await;
    drop(card);
}

/// A pulled cable, not a stopped server: the link is blackholed (nothing closes, bytes stop) for
/// more than two minutes of wall time while the player goes on playing, then mended. The agent
/// must notice the dead link by itself (heartbeats unanswered), reconnect when it can, and have
/// every game credited exactly once, including whatever the dead connection was carrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_link_blackholed_for_two_minutes_credits_every_game_once() {
    const CUT: Duration = Duration::from_secs(125);
    let Some(mut r) = rig_with(&[], true, false).await else { return };
    let cut = r.cut.take().expect("a proxy");
    let before = coin_in_cents(&mut r.sim);
    let from = r.agent.screen_len();
    let card = VirtualCard::insert(VPCD_PORT, &uid(ANA.1)).unwrap();
    r.agent.wait_shown(from, "Welcome Ana", LONG).await;
    r.sim.play(30);
    let floor = &r.floor;
    wait_for(LONG, "the first games reached the server", || async move { session_totals(floor, ANA.1).await.0 == 30 }).await;

    cut.blackhole();
    let connections = cut.accepted();
    let started = std::time::Instant::now();
    let mut games = 30;
    let mut noticed = None;
    while started.elapsed() < CUT {
        r.sim.play(5);
        games += 5;
        if noticed.is_none() && cut.accepted() > connections {
            noticed = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The agent gave up the dead connection and tried a new one on its own, within its silence
    // limit (15 s) plus a heartbeat and a backoff.
    let noticed = noticed.expect("the agent never noticed the dead link");
    assert!(noticed < Duration::from_secs(30), "noticed after {noticed:?}");
    let (during, _, _) = session_totals(&r.floor, ANA.1).await;
    assert_eq!(during, 30, "nothing reached the server through the cut");
    cut.mend();

    let from = r.agent.screen_len();
    card.remove();
    r.agent.wait_shown(from, "Thank you", LONG).await;
    let delta = coin_in_cents(&mut r.sim) - before;
    assert_eq!(delta, i64::from(games) * 500, "EUR 5.00 a game on the meters");
    let floor = &r.floor;
    wait_for(LONG, "the session closed on the server", || async move {
        let (g, _, open) = session_totals(floor, ANA.1).await;
        open == 0 && g > 0
    })
    .await;
    let (counted, wagered, _) = session_totals(&r.floor, ANA.1).await;
    assert_eq!((counted, wagered), (i64::from(games), delta), "every game once, the coin-in equal to the meter delta");
    assert_eq!(points_of(&r.floor, ANA.1).await.0, delta / 400, "1 point per EUR 4.00 of coin-in, to the point");
}

/// The coin-in meter (cents) in a session's card-in and card-out snapshots, as the server stored
/// them, with the session's counted coin-in and close reason.
async fn session_meters(floor: &FloorProcess, card: &str) -> Vec<(i64, i64, i64, String)> {
    let store = floor.store().await;
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT s.id, s.wagered_cents, COALESCE(s.close_reason, '') FROM card_sessions s JOIN cards c ON c.id = s.card_id \
         WHERE c.card_number = $1 ORDER BY s.opened_at",
    )
    .bind(card)
    .fetch_all(store.read())
    .await
    .unwrap();
    let mut out = Vec::new();
    for (id, wagered, reason) in rows {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM terminal_events WHERE session_id = $1 AND kind IN ('card_in', 'card_out') ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(store.read())
        .await
        .unwrap();
        let coin_in = |b: &str| -> i64 {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            let eur: rust_decimal::Decimal = v["meters"]["coin_in"].as_str().expect("a meter snapshot").parse().unwrap();
            rust_decimal::prelude::ToPrimitive::to_i64(&(eur * rust_decimal::Decimal::from(100))).unwrap()
        };
        assert_eq!(bodies.len(), 2, "a card-in and a card-out for session {id}");
        out.push((coin_in(&bodies[0]), coin_in(&bodies[1]), wagered, reason));
    }
    store.close().await;
    out
}

/// A card put into the terminal's second reader while the first player's card is still in: the
/// first session is closed (replaced) before the new one opens, and each session's counted
/// coin-in equals the meter delta between its own card-in and card-out snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcsc_agent_a_new_card_closes_the_old_session_first_and_both_reconcile_with_the_meters() {
    let Some(mut r) = rig_with(&[], false, true).await else { return };
    vpcd::wait_until_empty(&vpcd::reader_name(VPCD_PORT_2), Duration::from_secs(10)).expect("the second reader starts empty");
    let before = coin_in_cents(&mut r.sim);
    let from = r.agent.screen_len();
    let ana = VirtualCard::insert(VPCD_PORT, &uid(ANA.1)).unwrap();
    r.agent.wait_shown(from, "Welcome Ana", LONG).await;
    r.sim.play(20);
    let from = r.agent.screen_len();
    let marko = VirtualCard::insert(VPCD_PORT_2, &uid(MARKO.1)).unwrap();
    r.agent.wait_shown(from, "Welcome Marko", LONG).await;
    r.sim.play(30);
    // Ana's card leaves the first reader: not the open session's card, nothing changes.
    ana.remove();
    r.sim.play(10);
    let from = r.agent.screen_len();
    marko.remove();
    r.agent.wait_shown(from, "Thank you", LONG).await;
    let delta = coin_in_cents(&mut r.sim) - before;
    assert_eq!(delta, 60 * 500);

    let floor = &r.floor;
    wait_for(LONG, "both sessions closed on the server", || async move {
        session_totals(floor, ANA.1).await.2 == 0 && session_totals(floor, MARKO.1).await.2 == 0 && session_totals(floor, MARKO.1).await.0 > 0
    })
    .await;
    let a = session_meters(&r.floor, ANA.1).await;
    let m = session_meters(&r.floor, MARKO.1).await;
    assert_eq!(a.len(), 1);
    assert_eq!(m.len(), 1);
    let (a_in, a_out, a_wagered, a_reason) = a[0].clone();
    let (m_in, m_out, m_wagered, m_reason) = m[0].clone();
    assert_eq!(a_reason, "replaced_by_another_card");
    assert_eq!(m_reason, "removed");
    assert_eq!((a_wagered, a_out - a_in), (20 * 500, 20 * 500), "Ana: her 20 games, equal to her meter delta");
    assert_eq!((m_wagered, m_out - m_in), (40 * 500, 40 * 500), "Marko: his 40 games, equal to his meter delta");
    assert!(a_out <= m_in, "Ana's session closed before Marko's opened");
    assert_eq!(a_wagered + m_wagered, delta, "together, the machine's coin-in delta");
}
