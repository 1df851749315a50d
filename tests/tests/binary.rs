//! The real `floor-server` binary: no configuration file, overrides from the environment, JSON
//! logs, health, metrics, and a clean stop on SIGTERM that keeps what was committed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use club_tests::*;
use floor_protocol::{CardNumber, ServerMessage, TerminalEvent};
use terminal_agent::link::{Credentials, Link, Trust};

fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

#[test]
fn the_binary_serves_with_no_configuration_and_stops_cleanly_on_sigterm() {
    let bin = workspace_binary("floor-server");
    let dir = tempfile::tempdir().unwrap();
    // Enrol a terminal through the binary's own command line first.
    let enrol = Command::new(&bin)
        .args(["terminal", "enrol", "--id", "SLOT-9", "--kind", "slot", "--machine-type", "slot", "--location", "test"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(enrol.status.success(), "{}", String::from_utf8_lossy(&enrol.stderr));
    let printed = String::from_utf8(enrol.stdout).unwrap();
    let secret = printed.lines().find_map(|l| l.strip_prefix("secret = \"")).unwrap().trim_end_matches('"').to_owned();
    assert!(dir.path().join("floor.db").exists(), "the embedded SQLite file is created where it runs");

    let mut child = Command::new(&bin)
        .current_dir(dir.path())
        .env("FLOOR_LISTEN", "127.0.0.1:0")
        .env("FLOOR_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        assert!(Instant::now() < deadline, "no 'listening' line");
        let line = lines.next().expect("server output").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if v["message"].as_str().is_some_and(|m| m.contains("listening")) {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    let log_rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    assert_eq!(http_get(&addr, "/healthz").0, 200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let creds = Credentials { terminal_id: "SLOT-9".into(), secret: secret.clone().into() };
        let mut link = Link::connect(&format!("ws://{addr}{}", floor_protocol::GATEWAY_PATH), &creds, &Trust::WebRoots).await.unwrap();
        assert!(matches!(call(&mut link, &hello()).await, ServerMessage::HelloAck { .. }));
        let ev = TerminalEvent::CardIn { session: "s1".into(), card: CardNumber::new("SECRET4242CARD"), offline: false, meters: None };
        assert!(matches!(call(&mut link, &event(1, ev)).await, ServerMessage::Ack { seq: 1, .. }));
    });
    let (status, metrics) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("floor_ingest_events_committed_total 1"), "{metrics}");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let logs = log_rest.join().unwrap().join("\n");
    assert!(logs.contains("floor server stopped"), "{logs}");
    assert!(!logs.contains("SECRET4242CARD"), "card numbers never reach the logs");
    assert!(!logs.contains(secret.as_str()), "terminal secrets never reach the logs");

    // What was committed is there after the restart (the binary's `terminal list`).
    let list = Command::new(&bin).args(["terminal", "list"]).current_dir(dir.path()).output().unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.contains("SLOT-9") && text.contains("last_seq=1"), "{text}");
}
