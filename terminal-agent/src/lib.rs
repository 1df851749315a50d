//! The terminal agent: runs beside a slot machine, a bar POS or a table, reads club cards, keeps
//! an outbox of events and streams them to the floor server.
//!
//! Layers: [`outbox`] (the local SQLite store: events waiting for acknowledgement, the block
//! list, the open session), [`link`] (one WebSocket), [`uplink`] (the persistent connection:
//! reconnection with backoff, resending from the server's last number, requests), and the modes:
//! [`slot`] (carded play over SAS, free play at the machine) and [`table`] (a card presented at a
//! table) and [`bar`] (the card reader plus `pos-bridge` in process). [`config`] is the terminal's TOML file; [`run`] wires it all for the binary and the
//! demo floor.

pub mod bar;
pub mod config;
pub mod link;
pub mod outbox;
pub mod run;
pub mod screen;
pub mod slot;
pub mod table;
pub mod uplink;

/// Errors of the agent's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("local store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("local store holds something unreadable: {0}")]
    Corrupt(String),
    #[error("link: {0}")]
    Link(#[from] link::LinkError),
    #[error("slot machine: {0}")]
    Sas(#[from] slot_interface::Error),
    #[error("hardware: {0}")]
    Hardware(#[from] hardware::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the server did not answer in time")]
    Timeout,
}

/// Milliseconds since the Unix epoch, read once at the edge.
pub fn now_ms() -> floor_protocol::UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
