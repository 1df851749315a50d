//! The terminal's local store (SQLite, WAL, `synchronous=FULL`): the outbox of sequenced events,
//! the card block list, the open card session, and the dead letters.
//!
//! Key decision: an event gets its sequence number when it is written, and it is deleted only once
//! the server has acknowledged that number (or a later one); the session state that an event
//! changes (meters counted so far) is written in the **same** transaction, so after a crash the
//! agent never counts play twice nor forgets it. A restart resumes from whatever is left here.
//!
//! A **dead letter** is an event the server will not take (it answered with an error for that
//! event, again and again): it leaves the outbox for the `dead_letters` table, whole and with the
//! server's answer, so that it is never lost and no longer holds up the events behind it. Staff
//! list it and put it back in line (`terminal-agent dead-letters`, `requeue`) once the cause is
//! fixed.
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
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, at INTEGER NOT NULL, \
     body TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, dead_at INTEGER NOT NULL)",
];

/// An event taken out of the outbox because the server would not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    /// The sequence number it had when the server refused it.
    pub seq: u64,
    /// When the event happened.
    pub at: UnixMillis,
    /// The event's kind (`play`, `purchase`, ...); the body itself stays in the store because it
    /// may hold a card number.
    pub kind: String,
    /// The server's error code and message.
    pub code: String,
    pub message: String,
    pub dead_at: UnixMillis,
}

/// Whether the server stored anything under the refused event's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberUsed {
    /// The server has nothing under that number: the events behind move up one, so the numbers
    /// the server sees stay without a hole.
    No,
    /// The server already has that number: the events behind keep theirs.
    Yes,
}

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

    /// Moves event `seq` out of the outbox to the dead letters with the server's answer, in one
    /// transaction. Returns the dead letter, or `None` when `seq` is not waiting (already gone).
    pub async fn dead_letter(&self, seq: u64, code: &str, message: &str, used: NumberUsed, now: UnixMillis) -> Result<Option<DeadLetter>, Error> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT at, body FROM outbox WHERE seq = $1").bind(seq as i64).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Ok(None) };
        let at: i64 = row.try_get("at")?;
        let body: String = row.try_get("body")?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dead_letters (seq, at, body, code, message, dead_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(seq as i64)
        .bind(at)
        .bind(&body)
        .bind(code)
        .bind(message)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outbox WHERE seq = $1").bind(seq as i64).execute(&mut *tx).await?;
        if used == NumberUsed::No {
            // Upwards, so that no two rows ever hold one number.
            let rows: Vec<i64> = sqlx::query_scalar("SELECT seq FROM outbox WHERE seq > $1 ORDER BY seq").bind(seq as i64).fetch_all(&mut *tx).await?;
            for s in rows {
                sqlx::query("UPDATE outbox SET seq = $1 WHERE seq = $2").bind(s - 1).bind(s).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE meta SET value = value - 1 WHERE key = 'next_seq'").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(DeadLetter { id, seq, at, kind: kind_of(&body), code: code.to_owned(), message: message.to_owned(), dead_at: now }))
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Error> {
        let rows = sqlx::query("SELECT id, seq, at, body, code, message, dead_at FROM dead_letters ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    id: r.try_get("id")?,
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    at: r.try_get("at")?,
                    kind: kind_of(&r.try_get::<String, _>("body")?),
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    dead_at: r.try_get("dead_at")?,
                })
            })
            .collect()
    }

    /// Puts dead letter `id` back at the end of the outbox (with a new sequence number, its
    /// original time). Returns the new number, or `None` when there is no such dead letter.
    pub async fn requeue(&self, id: i64) -> Result<Option<u64>, Error> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT at, body FROM dead_letters WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Ok(None) };
        let next = next_seq(&mut tx).await?;
        sqlx::query("INSERT INTO outbox (seq, at, body) VALUES ($1, $2, $3)")
            .bind(next)
            .bind(row.try_get::<i64, _>("at")?)
            .bind(row.try_get::<String, _>("body")?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE meta SET value = $1 WHERE key = 'next_seq'").bind(next + 1).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM dead_letters WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.written.notify_one();
        Ok(Some(next as u64))
    }

    /// The lowest sequence number waiting, if any.
    pub async fn first_waiting(&self) -> Result<Option<u64>, Error> {
        let first: Option<i64> = sqlx::query_scalar("SELECT MIN(seq) FROM outbox").fetch_one(&self.pool).await?;
        Ok(first.map(|s| s as u64))
    }

    /// Closes the pool (flushes the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `kind` of a stored event body (the tag of `TerminalEvent`).
fn kind_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unreadable".into())
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
    async fn a_dead_letter_keeps_the_event_and_closes_the_hole_behind_it() {
        let (_dir, outbox) = store().await;
        for s in ["a", "b", "c"] {
            outbox.push(1, &out(s)).await.unwrap();
        }
        let dead = outbox.dead_letter(2, "unavailable", "not committed", NumberUsed::No, 9).await.unwrap().unwrap();
        assert_eq!((dead.seq, dead.kind.as_str(), dead.code.as_str()), (2, "card_out", "unavailable"));
        let waiting = outbox.pending(0, 10).await.unwrap();
        assert_eq!(waiting.iter().map(|e| (e.seq, e.event.clone())).collect::<Vec<_>>(), [(1, out("a")), (2, out("c"))]);
        assert_eq!(outbox.push(1, &out("d")).await.unwrap(), 3, "the next number follows without a hole");
        assert_eq!(outbox.dead_letter(2, "x", "y", NumberUsed::No, 9).await.unwrap().unwrap().seq, 2);
        assert_eq!(outbox.dead_letter(7, "x", "y", NumberUsed::No, 9).await.unwrap(), None, "not waiting");
        // A number the server has already used stays used.
        outbox.dead_letter(1, "invalid", "used", NumberUsed::Yes, 9).await.unwrap().unwrap();
        assert_eq!(outbox.pending(0, 10).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        let letters = outbox.dead_letters().await.unwrap();
        assert_eq!(letters.len(), 3);
        // Back in line, at the end, with the event as it was.
        let seq = outbox.requeue(letters[0].id).await.unwrap().unwrap();
        assert_eq!(seq, 3);
        let waiting = outbox.pending(0, 10).await.unwrap();
        assert_eq!(waiting.iter().map(|e| (e.seq, e.event.clone())).collect::<Vec<_>>(), [(2, out("d")), (3, out("b"))]);
        assert_eq!(outbox.dead_letters().await.unwrap().len(), 2);
        assert_eq!(outbox.requeue(letters[0].id).await.unwrap(), None, "requeued once");
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
