//! The terminal's local store (SQLite, WAL, `synchronous=FULL`): the outbox of sequenced events,
//! the card block list, and the open card session.
//!
//! Key decision: an event gets its sequence number when it is written, and it is deleted only once
//! the server has acknowledged that number (or a later one); the session state that an event
//! changes (meters counted so far) is written in the **same** transaction, so after a crash the
//! agent never counts play twice nor forgets it. A restart resumes from whatever is left here.
//!
//! What it does not do: talk to the server (`uplink`) or decide what to record (`slot`).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use floor_protocol::{CardNumber, Envelope, TerminalEvent, UnixMillis};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::Notify;

use crate::Error;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocked (card TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS session (slot INTEGER PRIMARY KEY CHECK (slot = 1), body TEXT NOT NULL)",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1)",
];

/// What a write does to the saved session state.
#[derive(Debug, Clone, Copy)]
pub enum SessionChange<'a> {
    Keep,
    Set(&'a str),
    Clear,
}

/// The terminal's local store. Clone it freely; every clone shares the pool and the notifier.
#[derive(Clone)]
pub struct Outbox {
    pool: SqlitePool,
    written: Arc<Notify>,
}

impl Outbox {
    /// Opens (creating if needed) the store at `path`.
    pub async fn open(path: &Path) -> Result<Outbox, Error> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        // One connection: the agent is the only writer, and one connection keeps writes ordered.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Outbox { pool, written: Arc::new(Notify::new()) })
    }

    /// Woken after every write of an event.
    pub fn written(&self) -> Arc<Notify> {
        self.written.clone()
    }

    /// Appends one event; returns its sequence number.
    pub async fn push(&self, at: UnixMillis, event: &TerminalEvent) -> Result<u64, Error> {
        Ok(self.push_all(at, std::slice::from_ref(event), SessionChange::Keep).await?[0])
    }

    /// Appends events and changes the saved session in one transaction.
    pub async fn push_all(&self, at: UnixMillis, events: &[TerminalEvent], session: SessionChange<'_>) -> Result<Vec<u64>, Error> {
        let mut tx = self.pool.begin().await?;
        let mut next = next_seq(&mut tx).await?;
        let mut seqs = Vec::with_capacity(events.len());
        for event in events {
            sqlx::query("INSERT INTO outbox (seq, at, body) VALUES ($1, $2, $3)")
                .bind(next)
                .bind(at)
                .bind(serde_json::to_string(event).expect("events serialise"))
                .execute(&mut *tx)
                .await?;
            seqs.push(next as u64);
            next += 1;
        }
        sqlx::query("UPDATE meta SET value = $1 WHERE key = 'next_seq'").bind(next).execute(&mut *tx).await?;
        match session {
            SessionChange::Keep => {}
            SessionChange::Set(body) => {
                sqlx::query("INSERT INTO session (slot, body) VALUES (1, $1) ON CONFLICT (slot) DO UPDATE SET body = excluded.body")
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
            }
            SessionChange::Clear => {
                sqlx::query("DELETE FROM session").execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        if !events.is_empty() {
            self.written.notify_one();
        }
        Ok(seqs)
    }

    /// Up to `limit` events after sequence number `after`, in order.
    pub async fn pending(&self, after: u64, limit: u32) -> Result<Vec<Envelope>, Error> {
        let rows = sqlx::query("SELECT seq, at, body FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(Envelope {
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    at: r.try_get("at")?,
                    event: serde_json::from_str(&body).map_err(|e| Error::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// How many events wait for an acknowledgement.
    pub async fn len(&self) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    /// Whether no event waits.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    /// The server has committed every event up to `seq`: they leave the outbox.
    pub async fn acknowledged(&self, seq: u64) -> Result<(), Error> {
        sqlx::query("DELETE FROM outbox WHERE seq <= $1").bind(seq as i64).execute(&self.pool).await?;
        Ok(())
    }

    /// Lines the outbox up with the server's last committed number after a Hello. Normally the
    /// events up to it were committed and their acknowledgements lost: they leave. If the server
    /// has committed numbers this store never handed out (the terminal's store was replaced),
    /// the waiting events are renumbered after the server's, so none of them is taken for a repeat.
    pub async fn align(&self, server_last: u64) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        let next = next_seq(&mut tx).await? as u64;
        if server_last >= next {
            let shift = (server_last + 1 - first_pending(&mut tx).await?.unwrap_or(next)) as i64;
            // Renumber from the top down so the primary key never collides.
            let rows: Vec<i64> = sqlx::query_scalar("SELECT seq FROM outbox ORDER BY seq DESC").fetch_all(&mut *tx).await?;
            for seq in rows {
                sqlx::query("UPDATE outbox SET seq = $1 WHERE seq = $2").bind(seq + shift).bind(seq).execute(&mut *tx).await?;
            }
            let new_next = next as i64 + shift;
            let new_next = new_next.max(server_last as i64 + 1);
            sqlx::query("UPDATE meta SET value = $1 WHERE key = 'next_seq'").bind(new_next).execute(&mut *tx).await?;
            tracing::warn!(server_last, local_next = next, "the server is ahead of this terminal's store; waiting events renumbered");
        } else {
            sqlx::query("DELETE FROM outbox WHERE seq <= $1").bind(server_last as i64).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the block list (from a HelloAck).
    pub async fn set_block_list(&self, cards: &[CardNumber]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM blocked").execute(&mut *tx).await?;
        for card in cards {
            if let Ok(n) = card.normalised() {
                sqlx::query("INSERT OR IGNORE INTO blocked (card) VALUES ($1)").bind(n.expose().to_owned()).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a card to the block list (a BlockCard push).
    pub async fn block(&self, card: &CardNumber) -> Result<(), Error> {
        let n = card.normalised().map_err(Error::Corrupt)?;
        sqlx::query("INSERT OR IGNORE INTO blocked (card) VALUES ($1)").bind(n.expose().to_owned()).execute(&self.pool).await?;
        Ok(())
    }

    /// Takes a card off the block list (an UnblockCard push).
    pub async fn unblock(&self, card: &CardNumber) -> Result<(), Error> {
        let n = card.normalised().map_err(Error::Corrupt)?;
        sqlx::query("DELETE FROM blocked WHERE card = $1").bind(n.expose().to_owned()).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the card is on the block list.
    pub async fn is_blocked(&self, card: &CardNumber) -> Result<bool, Error> {
        let Ok(n) = card.normalised() else { return Ok(false) };
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blocked WHERE card = $1").bind(n.expose().to_owned()).fetch_optional(&self.pool).await?;
        Ok(found.is_some())
    }

    /// The saved session state, if a session was open.
    pub async fn saved_session(&self) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar("SELECT body FROM session WHERE slot = 1").fetch_optional(&self.pool).await?)
    }

    /// Changes the saved session without an event.
    pub async fn save_session(&self, change: SessionChange<'_>) -> Result<(), Error> {
        self.push_all(0, &[], change).await.map(|_| ())
    }

    /// Closes the pool (flushes the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn next_seq(tx: &mut Transaction<'static, Sqlite>) -> Result<i64, Error> {
    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = 'next_seq'").fetch_one(&mut **tx).await?)
}

async fn first_pending(tx: &mut Transaction<'static, Sqlite>) -> Result<Option<u64>, Error> {
    let first: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM outbox").fetch_one(&mut **tx).await?;
    Ok(first.map(|s| s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floor_protocol::CardOutReason;

    fn out(session: &str) -> TerminalEvent {
        TerminalEvent::CardOut { session: session.into(), reason: CardOutReason::Removed, meters: None }
    }

    async fn store() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
        (dir, outbox)
    }

    #[tokio::test]
    async fn events_are_numbered_in_order_and_leave_only_when_acknowledged() {
        let (_dir, outbox) = store().await;
        assert_eq!(outbox.push(1, &out("a")).await.unwrap(), 1);
        assert_eq!(outbox.push(2, &out("b")).await.unwrap(), 2);
        assert_eq!(outbox.push(3, &out("c")).await.unwrap(), 3);
        let waiting = outbox.pending(0, 10).await.unwrap();
        assert_eq!(waiting.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(outbox.pending(1, 1).await.unwrap()[0].event, out("b"));
        outbox.acknowledged(2).await.unwrap();
        assert_eq!(outbox.pending(0, 10).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(outbox.push(4, &out("d")).await.unwrap(), 4, "numbers are never reused");
    }

    #[tokio::test]
    async fn a_reopened_store_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let outbox = Outbox::open(&path).await.unwrap();
        outbox.push_all(1, &[out("a"), out("b")], SessionChange::Set("{\"s\":1}")).await.unwrap();
        outbox.acknowledged(1).await.unwrap();
        outbox.close().await;
        let again = Outbox::open(&path).await.unwrap();
        assert_eq!(again.pending(0, 10).await.unwrap().len(), 1);
        assert_eq!(again.saved_session().await.unwrap().as_deref(), Some("{\"s\":1}"));
        assert_eq!(again.push(2, &out("c")).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn align_drops_what_the_server_has_and_renumbers_when_the_store_is_behind() {
        let (_dir, outbox) = store().await;
        for s in ["a", "b", "c"] {
            outbox.push(1, &out(s)).await.unwrap();
        }
        outbox.align(2).await.unwrap();
        assert_eq!(outbox.pending(0, 10).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
        // The server has committed up to 40: this store never gave those numbers out.
        outbox.align(40).await.unwrap();
        let waiting = outbox.pending(0, 10).await.unwrap();
        assert_eq!(waiting.iter().map(|e| e.seq).collect::<Vec<_>>(), [41]);
        assert_eq!(waiting[0].event, out("c"));
        assert_eq!(outbox.push(1, &out("d")).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn the_block_list_compares_normalised_numbers() {
        let (_dir, outbox) = store().await;
        outbox.set_block_list(&[CardNumber::new("04a1 0001")]).await.unwrap();
        assert!(outbox.is_blocked(&CardNumber::new("04A10001")).await.unwrap());
        outbox.block(&CardNumber::new("beef")).await.unwrap();
        assert!(outbox.is_blocked(&CardNumber::new("BEEF")).await.unwrap());
        outbox.unblock(&CardNumber::new("04A10001")).await.unwrap();
        assert!(!outbox.is_blocked(&CardNumber::new("04A10001")).await.unwrap());
        outbox.set_block_list(&[]).await.unwrap();
        assert!(!outbox.is_blocked(&CardNumber::new("BEEF")).await.unwrap());
    }
}
