//! Shared test fixtures: a socat pty pair in a temporary directory, the real `egm-sim` binary
//! on one end driven through its stdin, and the "skip unless required" convention.
//!
//! Tests that need an outside program print `skipped: <why>` and pass when it is missing,
//! unless `CLUB_REQUIRE_ALL=1` (CI), where they fail.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Whether a missing component fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("CLUB_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Prints the skip notice, or panics when everything is required.
pub fn skip(why: &str) {
    assert!(!required(), "CLUB_REQUIRE_ALL=1 but {why}");
    println!("skipped: {why}");
}

/// A pty pair linked by socat: write on one path, read on the other.
pub struct PtyPair {
    _socat: Child,
    pub dir: tempfile::TempDir,
    /// The host's end.
    pub host: PathBuf,
    /// The machine's end (reopenable: the simulator may restart on it).
    pub machine: PathBuf,
}

/// Starts socat, or returns `None` (after the skip notice) when it is not installed.
pub async fn pty_pair() -> Option<PtyPair> {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir.path().join("host");
    let machine = dir.path().join("machine");
    let spawned = Command::new("socat")
        .arg("-d")
        .arg("-d")
        .arg(format!("pty,raw,echo=0,link={}", host.display()))
        .arg(format!("pty,raw,echo=0,ignoreeof,link={}", machine.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let socat = match spawned {
        Ok(child) => child,
        Err(e) => {
            skip(&format!("socat cannot be started ({e})"));
            return None;
        }
    };
    wait_until(Duration::from_secs(10), || host.exists() && machine.exists()).await;
    Some(PtyPair { _socat: socat, dir, host, machine })
}

/// Polls a condition until it holds or the deadline passes (then panics).
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `egm-sim` binary, running.
pub struct Sim {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Options every test simulator gets: generous framing for a loaded test machine.
pub const SIM_DEFAULTS: &[&str] = &["--inter-byte-ms", "40"];

impl Sim {
    /// Starts `egm-sim` on `device` with extra arguments and waits for its "ready" line.
    pub async fn start(device: &Path, args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_egm-sim"))
            .arg(device)
            .args(SIM_DEFAULTS)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("egm-sim starts");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("egm-sim ready in time")
            .expect("egm-sim stdout")
            .expect("egm-sim says ready");
        assert!(ready.starts_with("ready "), "unexpected first line {ready:?}");
        Sim { child, stdin, stdout }
    }

    /// Sends a control command and returns its answer line.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.expect("egm-sim stdin");
        self.stdin.flush().await.expect("egm-sim stdin");
        tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
            .await
            .expect("egm-sim answers in time")
            .expect("egm-sim stdout")
            .expect("egm-sim answer")
    }

    /// Sends a command that must succeed; returns the text after `ok`.
    pub async fn ok(&mut self, line: &str) -> String {
        let answer = self.cmd(line).await;
        assert!(answer.starts_with("ok"), "{line:?} answered {answer:?}");
        answer.trim_start_matches("ok").trim().to_string()
    }

    /// The simulator's `status` as JSON.
    pub async fn status(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.ok("status").await).expect("status is JSON")
    }

    /// Stops the simulator the way an operator would (`quit`, meters saved).
    pub async fn quit(mut self) {
        let _ = self.cmd("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
