//! Support for the terminal-agent tests: the real `floor-server`, `terminal-agent` and `egm-sim`
//! binaries as processes (each can be killed with SIGKILL and started again on the same files and
//! port), a socat pty between agent and simulator, and a seeded SQLite floor database.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use club_rules::{Money, MachineType, Rules};
use floor_protocol::CardNumber;
use floor_server::store::Store;
use floor_server::terminals::TerminalKind;

use crate::{SEED, T0, enrol, workspace_binary};

/// Whether a missing component fails the test instead of skipping it.
pub fn required() -> bool {
    floor_server::testing::require_all()
}

/// Prints the skip notice, or panics when everything is required.
pub fn skip(why: &str) {
    assert!(!required(), "CLUB_REQUIRE_ALL=1 but {why}");
    println!("skipped: {why}");
}

/// Polls `condition` until it holds, or panics after `limit` with `what`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The floor: a seeded SQLite file and the `floor-server` binary serving it on a fixed port.
pub struct FloorProcess {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Members the agent tests seed: (first name, card number).
pub const ANA: (&str, &str) = ("Ana", "04A1B2C3D4E5F6");
/// A Gold member (150,000 EUR of slot play seeded: 37,500 points).
pub const MARKO: (&str, &str) = ("Marko", "04B1B2C3D4E5F7");
/// A member who will be self-excluded.
pub const EVA: (&str, &str) = ("Eva", "04C1B2C3D4E5F8");
/// Every seeded member's PIN.
pub const PIN: &str = "4711";

impl FloorProcess {
    /// Seeds a database (members, cards, PINs, terminals SLOT-1, TABLE-1 and BAR-1, their secrets
    /// in `table.secret` and `bar.secret`) and starts the server. Returns the
    /// terminal's secret too.
    pub async fn start() -> (FloorProcess, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&db_url(dir.path())).await.unwrap();
        store.migrate().await.unwrap();
        let rules = Rules::default();
        for (name, card) in [ANA, MARKO, EVA] {
            let member = seed_member(&store, name, card).await;
            floor_server::pins::set_pin(&store, member, PIN, &SEED, T0).await.unwrap();
            if name == MARKO.0 {
                let mut tx = store.begin().await.unwrap();
                let at = floor_server::ledger::time(now_ms() - 3_600_000).unwrap();
                floor_server::ledger::apply_play(&mut tx, &rules, member, None, MachineType::Slot, Money::from_cents(15_000_000), at, None)
                    .await
                    .unwrap()
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
        let creds = enrol(&store, "SLOT-1", TerminalKind::Slot, Some(MachineType::Slot)).await;
        let table = enrol(&store, "TABLE-1", TerminalKind::Table, None).await;
        let bar = enrol(&store, "BAR-1", TerminalKind::Bar, None).await;
        store.close().await;
        std::fs::write(dir.path().join("table.secret"), secrecy::ExposeSecret::expose_secret(&table.secret)).unwrap();
        std::fs::write(dir.path().join("bar.secret"), secrecy::ExposeSecret::expose_secret(&bar.secret)).unwrap();
        let mut floor = FloorProcess { dir, port: free_port(), child: None, log: Arc::default() };
        floor.restart();
        (floor, secrecy::ExposeSecret::expose_secret(&creds.secret).to_owned())
    }

    pub fn db_url(&self) -> String {
        db_url(self.dir.path())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, floor_protocol::GATEWAY_PATH)
    }

    /// Where the server listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Opens the floor's database beside the running server (SQLite WAL: readers do not block).
    pub async fn store(&self) -> Store {
        Store::connect(&self.db_url()).await.unwrap()
    }

    /// Starts the server (again) on the same database and port; returns once it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(workspace_binary("floor-server"))
            .current_dir(self.dir.path())
            .env("FLOOR_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("FLOOR_DATABASE_URL", self.db_url())
            .env("FLOOR_LOG__FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(());
                }
                log.lock().unwrap().push(line);
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("floor-server listens within 30 s");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("floor.db").display())
}

/// Wall-clock milliseconds (the binaries run on the system clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A member with an active card (numbers the readers produce are hexadecimal).
pub async fn seed_member(store: &Store, name: &str, card: &str) -> i64 {
    use floor_server::club::{self, NewPerson};
    let mut tx = store.begin().await.unwrap();
    let p = club::create_person(
        &mut tx,
        &NewPerson { first_name: name.into(), last_name: "Test".into(), birth_date: "1980-01-01".into(), ..NewPerson::default() },
        T0,
    )
    .await
    .unwrap();
    let m = club::create_member(&mut tx, p, T0).await.unwrap();
    let c = club::issue_card(&mut tx, m, &CardNumber::new(card), T0).await.unwrap();
    tx.commit().await.unwrap();
    club::set_card_state(store, c, club_rules::CardState::Active, &SEED, T0).await.unwrap();
    m
}

/// A member's cached points balance and free play (cents).
pub async fn balances(store: &Store, card: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT m.points_balance, m.free_play_cents FROM members m JOIN cards c ON c.member_id = m.id WHERE c.card_number = $1",
    )
    .bind(card)
    .fetch_one(store.read())
    .await
    .unwrap()
}

/// A pty pair linked by socat: the agent opens `host`, the simulator `machine`.
pub struct Pty {
    child: Child,
    pub dir: tempfile::TempDir,
    pub host: PathBuf,
    pub machine: PathBuf,
}

impl Pty {
    /// `None` (after the skip notice) when socat is missing.
    pub async fn start() -> Option<Pty> {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        let machine = dir.path().join("machine");
        let child = match Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", host.display()))
            .arg(format!("pty,raw,echo=0,ignoreeof,link={}", machine.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                skip(&format!("socat cannot be started ({e})"));
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(host.exists() && machine.exists()) {
            assert!(Instant::now() < deadline, "socat made no ptys");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(Pty { child, dir, host, machine })
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `egm-sim` binary on a pty, driven through its standard input.
pub struct Sim {
    child: Child,
    stdin: ChildStdin,
    answers: std::sync::mpsc::Receiver<String>,
}

impl Sim {
    pub fn start(device: &Path, args: &[&str]) -> Sim {
        let mut child = Command::new(workspace_binary("egm-sim"))
            .arg(device)
            .args(["--inter-byte-ms", "40"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, answers) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let ready = answers.recv_timeout(Duration::from_secs(20)).expect("egm-sim ready");
        assert!(ready.starts_with("ready"), "{ready}");
        Sim { child, stdin, answers }
    }

    /// Sends a command that must succeed; returns the text after `ok`.
    pub fn ok(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.answers.recv_timeout(Duration::from_secs(30)).expect("egm-sim answers");
        assert!(answer.starts_with("ok"), "{line:?} answered {answer:?}");
        answer.trim_start_matches("ok").trim().to_owned()
    }

    pub fn status(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.ok("status")).unwrap()
    }

    /// Plays `n` games in steps (the machine's event queue holds 20).
    pub fn play(&mut self, n: u32) {
        let mut left = n;
        while left > 0 {
            let step = left.min(10);
            self.ok(&format!("play {step}"));
            left -= step;
            std::thread::sleep(Duration::from_millis(60));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `terminal-agent` binary with a configuration file; what it shows on its (console)
/// display is collected line by line.
pub struct AgentProcess {
    pub config: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub screen: Arc<Mutex<Vec<String>>>,
}

/// An agent configuration for slot mode on the vpcd reader `reader` and the pty `port`.
pub fn slot_config(dir: &Path, url: &str, secret: &str, reader: &str, port: &Path) -> PathBuf {
    slot_config_with(dir, url, secret, &[reader], port)
}

/// The same on several readers (a card in any of them is the terminal's card).
pub fn slot_config_with(dir: &Path, url: &str, secret: &str, readers: &[&str], port: &Path) -> PathBuf {
    let path = dir.join("agent.toml");
    let readers = readers.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "mode = \"slot\"\nstore = \"{}\"\n[server]\nurl = \"{url}\"\nterminal_id = \"SLOT-1\"\nsecret = \"{secret}\"\n\
         [reader]\nkind = \"pcsc\"\nreaders = [{readers}]\n\
         [slot]\nport = \"{}\"\naddress = 1\nlink_mode = \"plain\"\nregistration_key = \"{}\"\nabandon_after_secs = 3600\n\
         [timeouts]\ncard_in_ms = 3000\nrequest_ms = 10000\nbackoff_max_ms = 1000\n",
        dir.join("agent.db").display(),
        port.display(),
        "07".repeat(20),
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl AgentProcess {
    pub fn start(config: PathBuf) -> AgentProcess {
        let mut a = AgentProcess { config, child: None, stdin: None, screen: Arc::default() };
        a.restart();
        a
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(workspace_binary("terminal-agent"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.stdin = child.stdin.take();
        let screen = self.screen.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                screen.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
    }

    /// Whether the display has shown a row containing `text` since `from` (an index into the
    /// screen lines).
    pub fn shown_since(&self, from: usize, text: &str) -> bool {
        self.screen.lock().unwrap().iter().skip(from).any(|l| l.contains(text))
    }

    pub fn screen_len(&self) -> usize {
        self.screen.lock().unwrap().len()
    }

    /// Waits until the display shows `text` (after line `from`).
    pub async fn wait_shown(&self, from: usize, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.shown_since(from, text) {
            assert!(
                Instant::now() < deadline,
                "the display did not show {text:?} within {limit:?}; it showed:\n{}",
                self.screen.lock().unwrap().iter().skip(from).cloned().collect::<Vec<_>>().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types a console keypad command.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("running");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn kill9(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (closes the session) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
        self.stdin = None;
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
