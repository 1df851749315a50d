//! Terminal enrolment and per-terminal credentials.
//!
//! A terminal's secret is 256 random bits shown once at enrolment; the database keeps only its
//! SHA-256 (a slow password hash adds nothing for a secret of that entropy, and verifying stays
//! cheap when a whole floor reconnects at once). Revoking a terminal refuses its next connection
//! and closes the one it has.

use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;
use club_rules::MachineType;

/// Where a terminal works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalKind {
    Slot,
    Bar,
    Table,
}

impl TerminalKind {
    pub fn code(self) -> &'static str {
        match self {
            TerminalKind::Slot => "slot",
            TerminalKind::Bar => "bar",
            TerminalKind::Table => "table",
        }
    }
    pub fn from_code(s: &str) -> Option<TerminalKind> {
        [TerminalKind::Slot, TerminalKind::Bar, TerminalKind::Table].into_iter().find(|k| k.code() == s)
    }
}

/// What enrolment needs to know about a terminal.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalSpec {
    pub id: String,
    pub kind: TerminalKind,
    /// For slot terminals: the machine beside it.
    pub machine_type: Option<MachineType>,
    pub location: String,
}

/// A terminal as the gateway knows it after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub id: String,
    pub kind: TerminalKind,
    pub machine_type: Option<MachineType>,
    pub location: String,
}

/// A freshly issued secret. Shown once; never logged.
pub struct Credentials {
    pub terminal_id: String,
    pub secret: secrecy::SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("terminal_id", &self.terminal_id).finish_non_exhaustive()
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn validate(spec: &TerminalSpec) -> Result<()> {
    if spec.id.is_empty() || spec.id.len() > 64 || !spec.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::invalid("terminal id: 1-64 letters, digits, '-' or '_'"));
    }
    match (spec.kind, spec.machine_type) {
        (TerminalKind::Slot, None) => Err(Error::invalid("a slot terminal needs a machine type")),
        (TerminalKind::Bar | TerminalKind::Table, Some(_)) => Err(Error::invalid("only slot terminals have a machine type")),
        _ => Ok(()),
    }
}

/// Enrols a new terminal and returns its credentials.
pub async fn enrol(store: &Store, spec: &TerminalSpec, actor: &Actor, now: Millis) -> Result<Credentials> {
    validate(spec)?;
    let secret = new_secret();
    let mut tx = store.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO terminals (id, kind, machine_type, location, secret_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&spec.id)
    .bind(spec.kind.code())
    .bind(spec.machine_type.map(MachineType::code))
    .bind(&spec.location)
    .bind(hash_secret(&secret))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(Error::from);
    match inserted {
        Err(e) if e.is_unique_violation() => return Err(Error::Conflict(format!("terminal {} exists", spec.id))),
        other => other?,
    };
    audit::record(&mut tx, now, actor, "terminal.enrol", &spec.id, None::<()>, Some(spec)).await?;
    tx.commit().await?;
    Ok(Credentials { terminal_id: spec.id.clone(), secret: secret.into() })
}

/// Issues a new secret for an existing terminal (also un-revokes it). The old secret stops working.
pub async fn reissue(store: &Store, id: &str, actor: &Actor, now: Millis) -> Result<Credentials> {
    let secret = new_secret();
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE terminals SET secret_hash = $1, revoked_at = NULL WHERE id = $2")
        .bind(hash_secret(&secret))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::NotFound(format!("terminal {id}")));
    }
    audit::record(&mut tx, now, actor, "terminal.reissue", id, None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(Credentials { terminal_id: id.to_owned(), secret: secret.into() })
}

/// Revokes a terminal's credentials.
pub async fn revoke(store: &Store, id: &str, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE terminals SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::NotFound(format!("active terminal {id}")));
    }
    audit::record(&mut tx, now, actor, "terminal.revoke", id, None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(())
}

fn terminal_from_row(row: &sqlx::any::AnyRow) -> Result<Terminal> {
    let kind: String = row.try_get("kind")?;
    let machine_type: Option<String> = row.try_get("machine_type")?;
    Ok(Terminal {
        id: row.try_get("id")?,
        kind: TerminalKind::from_code(&kind).ok_or_else(|| Error::invalid(format!("terminal kind {kind}")))?,
        machine_type: machine_type.as_deref().and_then(MachineType::from_code),
        location: row.try_get("location")?,
    })
}

/// Checks a terminal's credentials. `None` for an unknown terminal, a wrong secret or a revoked
/// terminal (the caller learns no more than "refused").
pub async fn authenticate(store: &Store, id: &str, secret: &str) -> Result<Option<Terminal>> {
    let row = sqlx::query("SELECT id, kind, machine_type, location, secret_hash, revoked_at FROM terminals WHERE id = $1")
        .bind(id)
        .fetch_optional(store.read())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("secret_hash")?;
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    let matches: bool = stored.as_bytes().ct_eq(hash_secret(secret).as_bytes()).into();
    if !matches || revoked.is_some() {
        return Ok(None);
    }
    Ok(Some(terminal_from_row(&row)?))
}

/// Whether the terminal is still allowed to be connected (not revoked).
pub async fn is_active(store: &Store, id: &str) -> Result<bool> {
    let revoked: Option<Option<i64>> = sqlx::query_scalar("SELECT revoked_at FROM terminals WHERE id = $1")
        .bind(id)
        .fetch_optional(store.read())
        .await?;
    Ok(matches!(revoked, Some(None)))
}

/// A terminal seen within this long is online: it sends a heartbeat every few seconds, and its
/// connection marks it seen every `GatewaySettings::seen_mark_ms` (20 s) while it is up.
pub const ONLINE_WITHIN_MS: i64 = 60_000;

/// Notes that the terminal was in contact at `now` (hello, heartbeats, the end of a connection).
pub async fn mark_seen(store: &Store, id: &str, now: Millis) -> Result<()> {
    sqlx::query("UPDATE terminals SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)")
        .bind(now)
        .bind(id)
        .execute(store.read())
        .await?;
    Ok(())
}

/// A terminal's status for the manager's console.
#[derive(Debug, Clone, Serialize)]
pub struct TerminalStatus {
    pub id: String,
    pub kind: String,
    pub machine_type: Option<String>,
    pub location: String,
    pub last_seq: i64,
    pub last_seen_at: Option<i64>,
    pub revoked: bool,
}

impl TerminalStatus {
    /// Whether the terminal is in contact now: not revoked and seen within [`ONLINE_WITHIN_MS`].
    pub fn is_online(&self, now: Millis) -> bool {
        !self.revoked && self.last_seen_at.is_some_and(|s| now - s <= ONLINE_WITHIN_MS)
    }
}

pub async fn list(store: &Store) -> Result<Vec<TerminalStatus>> {
    let rows = sqlx::query(
        "SELECT id, kind, machine_type, location, last_seq, last_seen_at, revoked_at FROM terminals ORDER BY id",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TerminalStatus {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                machine_type: r.try_get("machine_type")?,
                location: r.try_get("location")?,
                last_seq: r.try_get("last_seq")?,
                last_seen_at: r.try_get("last_seen_at")?,
                revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .collect()
}
