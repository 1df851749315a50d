//! Messages for every terminal on the floor (block a card, lift a block), across processes.
//!
//! A change that must reach every terminal queues its message in `terminal_broadcasts` in the same
//! transaction as the change. Every floor-server process tails that table and fans new rows out to
//! the terminals connected to it, so a card blocked through one process is refused at terminals
//! connected to another within one poll interval. A terminal that was offline gets the whole block
//! list in its next `HelloAck` instead.

use std::sync::Arc;
use std::time::Duration;

use floor_protocol::ServerMessage;
use sqlx::{Any, Row, Transaction};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::Store;

/// Queues a message for every terminal; it goes out once the transaction commits.
pub async fn queue(tx: &mut Transaction<'static, Any>, now: Millis, msg: &ServerMessage) -> Result<()> {
    sqlx::query("INSERT INTO terminal_broadcasts (created_at, message) VALUES ($1, $2)")
        .bind(now)
        .bind(serde_json::to_string(msg).expect("server message serialises"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The in-process fan-out: each terminal connection subscribes.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<ServerMessage>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: broadcast::channel(4096).0 }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ServerMessage>> {
        self.tx.subscribe()
    }

    /// Tails `terminal_broadcasts` from its current end until `stop`.
    pub async fn run(self, store: Store, interval: Duration, stop: CancellationToken) {
        let mut cursor: i64 = match sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM terminal_broadcasts")
            .fetch_one(store.read())
            .await
        {
            Ok(max) => max.unwrap_or(0),
            Err(e) => {
                tracing::error!(error = %e, "broadcast tail could not start");
                0
            }
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let rows = sqlx::query("SELECT id, message FROM terminal_broadcasts WHERE id > $1 ORDER BY id LIMIT 1000")
                .bind(cursor)
                .fetch_all(store.read())
                .await;
            match rows {
                Ok(rows) => {
                    for row in rows {
                        let (id, text): (i64, String) = match (row.try_get("id"), row.try_get("message")) {
                            (Ok(i), Ok(t)) => (i, t),
                            _ => continue,
                        };
                        cursor = id;
                        match serde_json::from_str::<ServerMessage>(&text) {
                            Ok(msg) => {
                                // No receivers is fine: no terminal is connected to this process.
                                let _ = self.tx.send(Arc::new(msg));
                            }
                            Err(e) => tracing::error!(id, error = %e, "unreadable broadcast skipped"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "broadcast tail failed; retrying"),
            }
        }
    }
}
