//! The terminal's configuration: one TOML file per terminal.
//!
//! ```toml
//! mode = "slot"                      # slot | table | bar
//! store = "/var/lib/club/agent.db"   # the outbox (SQLite)
//!
//! [server]
//! url = "wss://floor.example:8443/terminal/ws"
//! terminal_id = "SLOT-001"
//! secret_file = "/etc/club/terminal.secret"   # or secret = "…"
//! ca = "/etc/club/ca.pem"            # the casino's CA; without it, the public web roots
//! dead_letter_after = 20             # an event the server fails this often alone is set aside
//!
//! [reader]
//! kind = "pcsc"                      # pcsc | serial | console (card lines on standard input)
//! readers = ["Virtual PCD 00 00"]    # pcsc: name prefixes to watch (empty: all)
//! device = "/dev/ttyUSB0"            # serial
//! format = "em4100"                  # serial: em4100 | track2
//!
//! [slot]                             # slot mode
//! port = "/dev/ttyS0"
//! address = 1
//! link_mode = "wakeup"               # wakeup (UART) | plain (pty)
//! registration_key = "0707…"         # 40 hex digits, the AFT registration key
//! abandon_after_secs = 600
//! refuse_when_credits = false        # true: refuse a new card while credits are on the machine,
//!                                    # unless the card is the one that was in last (its owner's)
//!
//! [table]
//! seat = 3
//!
//! [bar]                              # the till's API (pos-bridge), loopback by default
//! listen = "127.0.0.1:8088"
//! outlet = "bar"                     # bar | restaurant | hotel | showcase
//! till_token_file = "/etc/club/till.token"   # or till_token = "…" (16+ characters)
//!
//! [display]
//! cols = 20
//! rows = 4
//!
//! [timeouts]
//! card_in_ms = 3000                  # longer than this without an answer: offline session
//! request_ms = 5000
//! backoff_max_ms = 10000             # longest pause between reconnection attempts
//! heartbeat_ms = 5000                # a heartbeat this often on a quiet link; keep it well under
//!                                    # the server's idle limit (gateway.idle_timeout_ms, 30 s)
//! silence_ms = 15000                 # nothing heard for this long: the link is dead (cable pulled)
//! ```
//!
//! `terminal-agent --config terminal.toml dead-letters` lists the events the server would not
//! take (see `outbox`), and `requeue ID` puts one back in line once its cause is fixed.
//!
//! Key decision: the secret never appears in `Debug` output (it is a `SecretString`), and a
//! configuration is checked once when loaded; nothing downstream re-validates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::Error;
use crate::link::{Credentials, Trust};
use crate::uplink::UplinkConfig;

/// What the terminal is beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Slot,
    Table,
    Bar,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub mode: Mode,
    pub store: PathBuf,
    pub server: ServerConfig,
    #[serde(default)]
    pub reader: ReaderConfig,
    pub slot: Option<SlotConfig>,
    #[serde(default)]
    pub table: TableConfig,
    pub bar: Option<BarConfig>,
    #[serde(default)]
    pub display: DisplayConfig,
    #[serde(default)]
    pub timeouts: Timeouts,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub url: String,
    pub terminal_id: String,
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    #[serde(default = "dead_letter_after")]
    pub dead_letter_after: u32,
}

fn dead_letter_after() -> u32 {
    20
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig").field("url", &self.url).field("terminal_id", &self.terminal_id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReaderKind {
    #[default]
    Pcsc,
    Serial,
    Console,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    #[serde(default)]
    pub kind: ReaderKind,
    #[serde(default)]
    pub readers: Vec<String>,
    pub device: Option<PathBuf>,
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    pub port: String,
    #[serde(default = "one")]
    pub address: u8,
    #[serde(default = "wakeup")]
    pub link_mode: String,
    pub registration_key: Option<String>,
    #[serde(default = "ten_minutes")]
    pub abandon_after_secs: u64,
    #[serde(default)]
    pub refuse_when_credits: bool,
}

fn one() -> u8 {
    1
}
fn wakeup() -> String {
    "wakeup".into()
}
fn ten_minutes() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub seat: Option<u32>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarConfig {
    #[serde(default = "bar_listen")]
    pub listen: std::net::SocketAddr,
    #[serde(default = "bar_outlet")]
    pub outlet: String,
    pub till_token: Option<SecretString>,
    pub till_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for BarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarConfig").field("listen", &self.listen).field("outlet", &self.outlet).finish_non_exhaustive()
    }
}

fn bar_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8088))
}
fn bar_outlet() -> String {
    "bar".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayConfig {
    pub cols: usize,
    pub rows: usize,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig { cols: 20, rows: 4 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub card_in_ms: u64,
    pub request_ms: u64,
    #[serde(default = "backoff_max")]
    pub backoff_max_ms: u64,
    #[serde(default = "heartbeat")]
    pub heartbeat_ms: u64,
    #[serde(default = "silence")]
    pub silence_ms: u64,
}

fn backoff_max() -> u64 {
    10_000
}
fn heartbeat() -> u64 {
    5_000
}
fn silence() -> u64 {
    15_000
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { card_in_ms: 3_000, request_ms: 5_000, backoff_max_ms: backoff_max(), heartbeat_ms: heartbeat(), silence_ms: silence() }
    }
}

impl AgentConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        AgentConfig::parse(&text)
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<AgentConfig, Error> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if config.mode == Mode::Slot && config.slot.is_none() {
            return Err(Error::Config("slot mode needs a [slot] section".into()));
        }
        if config.mode == Mode::Bar && config.bar.as_ref().is_none_or(|b| b.till_token.is_none() && b.till_token_file.is_none()) {
            return Err(Error::Config("bar mode needs a [bar] section with till_token or till_token_file".into()));
        }
        if config.server.secret.is_none() && config.server.secret_file.is_none() {
            return Err(Error::Config("[server] needs secret or secret_file".into()));
        }
        if let Some(slot) = &config.slot {
            if !(1..=127).contains(&slot.address) {
                return Err(Error::Config("slot.address must be 1 to 127".into()));
            }
            if let Some(key) = &slot.registration_key
                && (key.len() != 40 || !key.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(Error::Config("slot.registration_key must be 40 hex digits".into()));
            }
        }
        if config.timeouts.heartbeat_ms == 0 || config.timeouts.silence_ms <= config.timeouts.heartbeat_ms {
            return Err(Error::Config("timeouts.silence_ms must be longer than timeouts.heartbeat_ms (and that above 0)".into()));
        }
        if config.server.dead_letter_after == 0 {
            return Err(Error::Config("server.dead_letter_after must be at least 1".into()));
        }
        if config.reader.kind == ReaderKind::Serial && config.reader.device.is_none() {
            return Err(Error::Config("a serial reader needs reader.device".into()));
        }
        Ok(config)
    }

    /// The uplink's settings, reading the secret and the CA file.
    pub fn uplink(&self) -> Result<UplinkConfig, Error> {
        let secret = match (&self.server.secret, &self.server.secret_file) {
            (Some(s), _) => s.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| SecretString::from(s.trim().to_owned()))
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
            (None, None) => return Err(Error::Config("no secret".into())),
        };
        let trust = match &self.server.ca {
            Some(ca) => Trust::ca_file(ca)?,
            None => Trust::WebRoots,
        };
        let mut uplink = UplinkConfig::new(&self.server.url, Credentials { terminal_id: self.server.terminal_id.clone(), secret }, trust);
        uplink.backoff_max = Duration::from_millis(self.timeouts.backoff_max_ms);
        uplink.heartbeat = Duration::from_millis(self.timeouts.heartbeat_ms);
        uplink.silence_limit = Duration::from_millis(self.timeouts.silence_ms);
        uplink.dead_letter_after = self.server.dead_letter_after;
        Ok(uplink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOT: &str = r#"
        mode = "slot"
        store = "/tmp/agent.db"
        [server]
        url = "ws://127.0.0.1:8080/terminal/ws"
        terminal_id = "SLOT-001"
        secret = "s3cret-value"
        [slot]
        port = "/dev/ttyS0"
        address = 3
    "#;

    #[test]
    fn a_slot_configuration_loads_with_defaults() {
        let c = AgentConfig::parse(SLOT).unwrap();
        assert_eq!(c.mode, Mode::Slot);
        assert_eq!(c.slot.as_ref().unwrap().address, 3);
        assert_eq!(c.slot.as_ref().unwrap().abandon_after_secs, 600);
        assert_eq!(c.reader.kind, ReaderKind::Pcsc);
        assert_eq!(c.timeouts.card_in_ms, 3_000);
        assert!(!format!("{c:?}").contains("s3cret"), "the secret never prints");
    }

    #[track_caller]
    fn refused(text: &str, why: &str) {
        let e = AgentConfig::parse(text).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }

    #[test]
    fn bad_configurations_are_refused_with_the_reason() {
        refused(&SLOT.replace("[slot]\n        port = \"/dev/ttyS0\"\n        address = 3", ""), "[slot]");
        refused(&SLOT.replace("address = 3", "address = 200"), "1 to 127");
        refused(&SLOT.replace("secret = \"s3cret-value\"", ""), "secret");
        refused(&SLOT.replace("address = 3", "address = 3\nregistration_key = \"xyz\""), "40 hex");
        refused(&SLOT.replace("mode = \"slot\"", "mode = \"arcade\""), "unknown variant");
        refused(&format!("{SLOT}\n[timeouts]\ncard_in_ms = 1\nrequest_ms = 1\nheartbeat_ms = 5000\nsilence_ms = 5000"), "silence_ms");
    }
}
