//! The floor server's configuration: a TOML file plus `FLOOR_*` environment overrides, with
//! defaults that need no file at all (127.0.0.1:8080, an embedded SQLite file `floor.db`).
//!
//! Environment names follow the TOML keys: `FLOOR_LISTEN`, `FLOOR_DATABASE_URL`,
//! `FLOOR_TLS__CERT`, `FLOOR_LOG__FORMAT`, `FLOOR_INGEST__MAX_BATCH` (a double underscore steps
//! into a table).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address for the web, the APIs and the terminal gateway.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Serve HTTPS and WSS with this certificate; terminals verify it.
    pub tls: Option<TlsConfig>,
    pub log: LogConfig,
    pub ingest: IngestSettings,
    /// The wallet API's group commit (`iaccount::batch`).
    pub wallet: WalletSettings,
    pub gateway: GatewaySettings,
    /// How often each process looks for new floor-wide messages (card blocks), in milliseconds.
    pub broadcast_poll_ms: u64,
    /// How long shutdown waits for connections to finish their commits, in seconds.
    pub shutdown_grace_secs: u64,
    /// Connections in the PostgreSQL pool.
    pub postgres_pool: u32,
    /// A rules TOML file (see `club_rules::RulesConfig`); RULES.md's rules when absent.
    pub rules: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://floor.db".into(),
            tls: None,
            log: LogConfig::default(),
            ingest: IngestSettings::default(),
            wallet: WalletSettings::default(),
            gateway: GatewaySettings::default(),
            broadcast_poll_ms: 200,
            shutdown_grace_secs: 10,
            postgres_pool: 16,
            rules: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, filter: "info,sqlx=warn,tower_http=info".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    pub max_batch: usize,
    /// Writer tasks; 0 picks 1 for SQLite and 4 for PostgreSQL.
    pub writers: usize,
    pub queue: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings { max_batch: 1024, writers: 0, queue: 16_384 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalletSettings {
    /// Most game-server requests committed in one transaction.
    pub max_batch: usize,
    /// Writer tasks; 0 picks 1 for SQLite and 4 for PostgreSQL.
    pub writers: usize,
    /// Requests queued per writer before callers wait.
    pub queue: usize,
}

impl Default for WalletSettings {
    fn default() -> Self {
        WalletSettings { max_batch: 256, writers: 0, queue: 4096 }
    }
}

/// The terminal gateway's timing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// A connection that receives no frame (terminals send a heartbeat every 5 s by default) for
    /// this long is closed as dead: a pulled cable leaves TCP half open. Milliseconds.
    pub idle_timeout_ms: u64,
    /// A connection marks its terminal seen (the console's online status) at most this often.
    /// Milliseconds; keep it well under `terminals::ONLINE_WITHIN_MS` (60 s).
    pub seen_mark_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings { idle_timeout_ms: 30_000, seen_mark_ms: 20_000 }
    }
}

impl Config {
    /// Defaults, then the file (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        fig.merge(Env::prefixed("FLOOR_").split("__")).extract().map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its own large error
mod tests {
    use super::*;

    #[test]
    fn no_file_and_no_environment_gives_the_embedded_defaults() {
        figment::Jail::expect_with(|_jail| {
            let c = Config::load(None).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(c.database_url, "sqlite://floor.db");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("floor.toml", "listen = \"0.0.0.0:9000\"\n[log]\nformat = \"json\"\n")?;
            jail.set_env("FLOOR_LISTEN", "127.0.0.1:9100");
            jail.set_env("FLOOR_INGEST__MAX_BATCH", "64");
            let c = Config::load(Some(Path::new("floor.toml"))).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
            assert_eq!(c.log.format, LogFormat::Json);
            assert_eq!(c.ingest.max_batch, 64);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("floor.toml", "lisen = \"0.0.0.0:9000\"\n")?;
            assert!(Config::load(Some(Path::new("floor.toml"))).is_err());
            Ok(())
        });
    }
}
