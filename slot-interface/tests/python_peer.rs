//! An independent peer: `sas_comm_py`, a SAS host library from PyPI, drives the real `egm-sim`
//! over a socat pty, so the simulator is not checked only by our own host. The library checks
//! every answer's CRC itself; this test compares what it read with the simulator's own state.
//!
//! The Python environment comes from `.ci/setup.d/slot-interface.sh` (`/opt/club-venv-sas`, or
//! `CLUB_SAS_VENV`); without it the test is skipped unless `CLUB_REQUIRE_ALL=1`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{pty_pair, skip, Sim};

fn python() -> Option<PathBuf> {
    let venv = std::env::var("CLUB_SAS_VENV").unwrap_or_else(|_| "/opt/club-venv-sas".to_string());
    let python = PathBuf::from(venv).join("bin/python");
    let has_library = std::process::Command::new(&python)
        .args(["-c", "import sas_comm_py, serial"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_library {
        Some(python)
    } else {
        skip(&format!("{} cannot import sas_comm_py (run .ci/setup.d/slot-interface.sh)", python.display()));
        None
    }
}

#[tokio::test]
async fn an_independent_python_sas_host_reads_the_simulator_correctly() {
    let Some(python) = python() else { return };
    let Some(pair) = pty_pair().await else { return };
    let mut sim = Sim::start(
        &pair.machine,
        &["--address", "3", "--denomination-cents", "5", "--bet", "3", "--game", "video_poker", "--rtp-bp", "9500"],
    )
    .await;
    sim.ok("play 3").await;
    let status = sim.status().await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sas_peer.py");
    let run = tokio::process::Command::new(&python).arg(script).arg(&pair.host).arg("3").output();
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the peer finishes").expect("python runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "peer failed: {stderr}");
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("peer output is not JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&output.stdout))
    });

    let meter = |name: &str| status["meters"][name].as_u64().unwrap();
    assert_eq!(read["game_id"], "SM");
    assert_eq!(read["additional_id"], "VPK");
    assert_eq!(read["denomination_code"], 0x02, "5 cents is code 02 in Table C-4");
    assert_eq!(read["paytable"], "POKR01");
    assert_eq!(read["base_percent"], "9500");
    assert_eq!(read["coin_in"], meter("coin_in"));
    assert_eq!(read["coin_in"], 9);
    assert_eq!(read["coin_out"], meter("coin_out"));
    assert_eq!(read["games_played"], 3);
    assert_eq!(read["credits"], status["credits"].as_u64().unwrap() + status["restricted_credits"].as_u64().unwrap());
    assert_eq!(
        read["meters_0f"],
        serde_json::json!([meter("cancelled_credits"), meter("coin_in"), meter("coin_out"), meter("drop"), meter("jackpot"), 3])
    );
    assert_eq!(read["meters_2f"], serde_json::json!({"00": meter("coin_in"), "05": 3}));
    assert_eq!(read["shutdown_ack"], true);
    assert_eq!(read["startup_ack"], true);
    // Power applied, the bill for the first game, then start and end of each game, in order,
    // each once: the sync before every general poll acknowledged the one before.
    assert_eq!(read["exceptions"], serde_json::json!([0x17, 0x4F, 0x7E, 0x7F, 0x7E, 0x7F, 0x7E, 0x7F]));
    assert_eq!(sim.status().await["enabled"], true, "startup undid the shutdown");
}
