//! Members' PINs for redemption at a machine: set by staff at reception, checked by the terminal
//! gateway, locked after [`MAX_TRIES`] wrong tries until staff unlock them.
//!
//! Key decision: a wrong try is committed on its own, before any answer, so no number of
//! retries, reconnections or parallel requests gets more than [`MAX_TRIES`] guesses. The PIN is
//! kept only as an argon2id hash (`staff::hash_password`), and never logged.
//! What it does not do: the redemption itself (`machine_cashback`).

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::staff;
use crate::store::{self, Store};

/// Wrong tries that lock redemption.
pub const MAX_TRIES: i64 = 5;

/// The result of checking a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Good,
    Wrong { tries_left: u32 },
    /// Locked after too many wrong tries.
    Locked,
    /// The member has no PIN yet (reception sets one).
    NotSet,
}

/// A PIN is 4 to 12 digits.
pub fn validate(pin: &str) -> Result<()> {
    if !(4..=12).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid("a PIN is 4 to 12 digits"));
    }
    Ok(())
}

/// Sets (or replaces) a member's PIN; clears wrong tries and any lock.
pub async fn set_pin(store: &Store, member_id: i64, pin: &str, actor: &Actor, now: Millis) -> Result<()> {
    validate(pin)?;
    let pin = pin.to_owned();
    let hash = tokio::task::spawn_blocking(move || staff::hash_password(&pin)).await.map_err(|e| Error::Config(format!("PIN hashing task: {e}")))??;
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    sqlx::query(
        "INSERT INTO member_pins (member_id, pin_hash, failed_tries, locked_at, updated_at) VALUES ($1, $2, 0, NULL, $3) \
         ON CONFLICT (member_id) DO UPDATE SET pin_hash = excluded.pin_hash, failed_tries = 0, locked_at = NULL, updated_at = excluded.updated_at",
    )
    .bind(member_id)
    .bind(hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(&mut tx, now, actor, "member.pin_set", &format!("member:{member_id}"), None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(())
}

/// Unlocks redemption after too many wrong tries. Returns whether it was locked.
pub async fn unlock(store: &Store, member_id: i64, actor: &Actor, now: Millis) -> Result<bool> {
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    let before: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT failed_tries, locked_at FROM member_pins WHERE member_id = $1").bind(member_id).fetch_optional(&mut *tx).await?;
    let Some((tries, locked_at)) = before else {
        return Err(Error::NotFound(format!("member {member_id} has no PIN")));
    };
    sqlx::query("UPDATE member_pins SET failed_tries = 0, locked_at = NULL, updated_at = $1 WHERE member_id = $2")
        .bind(now)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "member.pin_unlocked",
        &format!("member:{member_id}"),
        Some(serde_json::json!({ "failed_tries": tries, "locked": locked_at.is_some() })),
        Some(serde_json::json!({ "failed_tries": 0, "locked": false })),
    )
    .await?;
    tx.commit().await?;
    Ok(locked_at.is_some())
}

/// Checks a PIN; a wrong one counts (committed before this returns), the last allowed one locks.
pub async fn check(store: &Store, member_id: i64, pin: &str, actor: &Actor, now: Millis) -> Result<PinCheck> {
    let row: Option<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT pin_hash, failed_tries, locked_at FROM member_pins WHERE member_id = $1")
            .bind(member_id)
            .fetch_optional(store.read())
            .await?;
    let Some((hash, _, locked_at)) = row else { return Ok(PinCheck::NotSet) };
    if locked_at.is_some() {
        return Ok(PinCheck::Locked);
    }
    let typed = pin.to_owned();
    let good = tokio::task::spawn_blocking(move || staff::verify_password(&typed, &hash)).await.map_err(|e| Error::Config(format!("PIN hashing task: {e}")))?;
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    // Re-read under the lock: parallel checks count every wrong try.
    let (tries, locked_at): (i64, Option<i64>) =
        sqlx::query_as("SELECT failed_tries, locked_at FROM member_pins WHERE member_id = $1").bind(member_id).fetch_one(&mut *tx).await?;
    if locked_at.is_some() {
        return Ok(PinCheck::Locked);
    }
    if good {
        if tries > 0 {
            sqlx::query("UPDATE member_pins SET failed_tries = 0, updated_at = $1 WHERE member_id = $2").bind(now).bind(member_id).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        return Ok(PinCheck::Good);
    }
    let tries = tries + 1;
    let lock = tries >= MAX_TRIES;
    sqlx::query("UPDATE member_pins SET failed_tries = $1, locked_at = $2, updated_at = $3 WHERE member_id = $4")
        .bind(tries)
        .bind(lock.then_some(now))
        .bind(now)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    if lock {
        audit::record(&mut tx, now, actor, "member.pin_locked", &format!("member:{member_id}"), None::<()>, Some(serde_json::json!({ "failed_tries": tries })))
            .await?;
    }
    tx.commit().await?;
    metrics::counter!("floor_pin_wrong_total").increment(1);
    Ok(if lock { PinCheck::Locked } else { PinCheck::Wrong { tries_left: u32::try_from(MAX_TRIES - tries).unwrap_or(0) } })
}
