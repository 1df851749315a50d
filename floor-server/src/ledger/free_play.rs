//! Cashback and the free-play ledger: points into free play, free play to a machine and back.
//!
//! Key decision: a machine transfer is named by the id the caller gives it, stored on its `sent`
//! entries; sending under a known id and returning a transfer twice change nothing, so a terminal
//! or console that repeats itself after a lost answer is safe.
//!
//! Not here: the SAS AFT transfer itself (the terminal's) and the PIN check.

use chrono::{DateTime, Utc};
use club_rules::cashback;
use club_rules::ledger::FreePlayKind;
use club_rules::{Entry, FreePlayEntry, LotId, LotRef, Money, Points, Rules};
use sqlx::{Any, Row, Transaction};

use super::{Decision, Origin, grants, load_member, millis, points_lots, write_free_play, write_points};
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Redeems `points` for free play at the member's tier rate (at a desk: no card). Refused for a
/// member the exclusion gate refuses, below the minimum, off the step, or beyond what is available.
pub async fn redeem_cashback(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    points: Points,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Decision<Money>> {
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    let member = load_member(&mut tx, rules, member_id, None, now).await?.member;
    let lots = points_lots(&mut tx, member_id).await?;
    let decided = match cashback::redeem(rules, &member, &lots, points, now) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    write_points(&mut tx, member_id, &decided.points, &Origin::default()).await?;
    write_free_play(&mut tx, member_id, std::slice::from_ref(&decided.free_play), &Origin::default()).await?;
    audit::record(&mut tx, millis(now), actor, "cashback.redeem", &format!("member:{member_id}"), Some(points), Some(decided.free_play.amount))
        .await?;
    tx.commit().await?;
    Ok(Ok(decided.free_play.amount))
}

async fn transfer_rows(tx: &mut Transaction<'static, Any>, transfer: &str) -> Result<Vec<(i64, String, i64, Option<i64>, i64)>> {
    let rows = sqlx::query(
        "SELECT member_id, kind, amount_cents, lot_id, created_at FROM free_play_ledger WHERE transfer_id = $1 ORDER BY id",
    )
    .bind(transfer)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("member_id")?, r.try_get("kind")?, r.try_get("amount_cents")?, r.try_get("lot_id")?, r.try_get("created_at")?)))
        .collect()
}

/// Takes `amount` of the member's free play, oldest grant first, for machine transfer `transfer`.
/// A transfer id already on record changes nothing.
pub async fn free_play_sent(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    amount: Money,
    transfer: &str,
    now: DateTime<Utc>,
) -> Result<Decision<()>> {
    if transfer.is_empty() || transfer.len() > 64 {
        return Err(Error::invalid("transfer id must be 1-64 characters"));
    }
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    if !transfer_rows(&mut tx, transfer).await?.is_empty() {
        return Ok(Ok(()));
    }
    let member = load_member(&mut tx, rules, member_id, None, now).await?.member;
    let held = grants(&mut tx, member_id).await?;
    let entries = match cashback::send(rules, &member, &held, amount, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    write_free_play(&mut tx, member_id, &entries, &Origin { transfer: Some(transfer), ..Origin::default() }).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Puts back what transfer `transfer` took, into the grants it came from, inside the caller's
/// transaction (the gateway's batch, when a terminal reports the failure). Returns what came back
/// (zero when it was already returned, or nothing was sent under that id).
pub async fn free_play_failed(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    transfer: &str,
    now: DateTime<Utc>,
) -> Result<Decision<Money>> {
    let Some(member_id) = transfer_rows(tx, transfer).await?.first().map(|r| r.0) else {
        return Ok(Ok(Money::ZERO));
    };
    store::lock_member(tx, member_id).await?;
    let rows = transfer_rows(tx, transfer).await?;
    if rows.iter().any(|r| r.1 == "returned") {
        return Ok(Ok(Money::ZERO));
    }
    let sent = rows
        .iter()
        .filter(|r| r.1 == "sent")
        .map(|r| {
            Ok(Entry {
                at: super::time(r.4)?,
                kind: FreePlayKind::Sent,
                amount: Money::from_cents(r.2),
                lot: LotRef::Existing(LotId(r.3.ok_or_else(|| Error::invalid("a sent entry names its grant"))?)),
                rule_version: rules.version().clone(),
            })
        })
        .collect::<Result<Vec<FreePlayEntry>>>()?;
    let entries = match cashback::transfer_failed(rules, &sent, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    write_free_play(tx, member_id, &entries, &Origin { transfer: Some(transfer), ..Origin::default() }).await?;
    Ok(Ok(entries.iter().fold(Money::ZERO, |sum, e| sum + e.amount)))
}
