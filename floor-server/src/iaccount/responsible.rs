//! Responsible gaming on the i-Account: deposit, stake and loss limits; self-exclusion; closing
//! and reopening the account.
//!
//! Key decision: a self-exclusion is an `own_request` row in the club's `exclusions` table, with
//! the person's id, so the floor refuses the club card for as long as it lasts (and every terminal
//! gets the block at once), exactly as a self-exclusion made at reception does online.
//!
//! Not here: the rules of when a limit takes effect (`club_rules::online`).

use club_rules::membership::EndReason;
use club_rules::online::{self, LimitKind, Period, SelfExclusion};
use club_rules::{Money, Rules};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Refusal, WalletResult, lock};
use crate::audit::Actor;
use crate::club::{self, NewExclusion};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::{millis, time};
use crate::store::Store;

/// Sets (or with `None` removes) a limit. Returns when it takes effect: now when stricter, in 24
/// hours otherwise.
pub async fn set_limit(store: &Store, account_id: i64, kind: LimitKind, period: Period, amount: Option<Money>, now: Millis) -> Result<Millis> {
    if amount.is_some_and(|a| a.is_negative()) {
        return Err(Error::invalid("a limit cannot be negative"));
    }
    let mut tx = store.begin().await?;
    lock(&mut tx, account_id).await?;
    let now_t = time(now)?;
    let current = online::limits_in_force(&super::limit_rows(&mut tx, account_id).await?, now_t)
        .into_iter()
        .find(|l| l.kind == kind && l.period == period)
        .map(|l| l.amount);
    let effective = millis(online::limit_effective_at(current, amount, now_t));
    sqlx::query("INSERT INTO iaccount_limits (account_id, kind, period, amount_cents, effective_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(account_id)
        .bind(kind.code())
        .bind(period.code())
        .bind(amount.map(|a| a.cents()))
        .bind(effective)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(effective)
}

/// A limit as the player sees it: in force now, or waiting to take effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LimitView {
    #[schema(value_type = String)]
    pub kind: LimitKind,
    #[schema(value_type = String)]
    pub period: Period,
    #[schema(value_type = Option<String>)]
    pub amount: Option<Money>,
    pub effective_at: Millis,
    pub pending: bool,
}

/// The limits in force and any waiting to take effect.
pub async fn limits(store: &Store, account_id: i64, now: Millis) -> Result<Vec<LimitView>> {
    let mut tx = store.begin().await?;
    let rows = super::limit_rows(&mut tx, account_id).await?;
    tx.rollback().await?;
    let now_t = time(now)?;
    let mut out: Vec<LimitView> = online::limits_in_force(&rows, now_t)
        .into_iter()
        .map(|l| LimitView { kind: l.kind, period: l.period, amount: Some(l.amount), effective_at: 0, pending: false })
        .collect();
    for r in rows.iter().filter(|r| r.effective_at > now_t) {
        // A waiting row counts only if no later row overrides it.
        if !rows.iter().any(|o| o.kind == r.kind && o.period == r.period && o.seq > r.seq) {
            out.push(LimitView { kind: r.kind, period: r.period, amount: r.amount, effective_at: millis(r.effective_at), pending: true });
        }
    }
    Ok(out)
}

/// What a self-exclusion request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ExclusionOutcome {
    /// In force now, until `until`.
    InForce { exclusion_id: i64, until: Millis },
    /// Longer than 365 days: waiting for the player's confirmation by `confirm_by`.
    AwaitingConfirmation { request_id: i64, confirm_by: Millis },
}

async fn person_of(store: &Store, account_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("i-account {account_id}")))
}

async fn exclude(store: &Store, account_id: i64, person_id: i64, ends_at: Millis, now: Millis) -> Result<i64> {
    let e = NewExclusion::of_person(club_rules::gate::ExclusionKind::OwnRequest, person_id, now, Some(ends_at), Some("self-exclusion in the i-Account".into()));
    club::add_exclusion(store, &e, &Actor::System("iaccount"), now).await.inspect(|id| {
        tracing::info!(account_id, exclusion_id = id, "self-exclusion in force");
    })
}

/// Self-exclusion from the player's profile: 1 to 365 days at once; longer ones wait for a
/// confirmation within 3 days.
pub async fn self_exclude(store: &Store, account_id: i64, days: i64, now: Millis) -> Result<ExclusionOutcome> {
    let person_id = person_of(store, account_id).await?;
    match online::self_exclusion(days, time(now)?) {
        None => Err(Error::invalid("a self-exclusion lasts at least one day")),
        Some(SelfExclusion::Immediate { until }) => {
            let until = millis(until);
            Ok(ExclusionOutcome::InForce { exclusion_id: exclude(store, account_id, person_id, until, now).await?, until })
        }
        Some(SelfExclusion::NeedsConfirmation { confirm_by }) => {
            let confirm_by = millis(confirm_by);
            let mut tx = store.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO iaccount_requests (account_id, kind, days, requested_at, confirm_by) VALUES ($1, 'long_exclusion', $2, $3, $4) RETURNING id",
            )
            .bind(account_id)
            .bind(days)
            .bind(now)
            .bind(confirm_by)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ExclusionOutcome::AwaitingConfirmation { request_id: id, confirm_by })
        }
    }
}

/// What a confirmed request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confirmed {
    Excluded { exclusion_id: i64 },
    Closed,
}

/// Confirms a waiting request (a long self-exclusion or closing the account) before its deadline.
/// A confirmed closing also ends the person's club membership, as the member's own request (the
/// points stay, unusable; the club cards are blocked on every terminal), in the same transaction:
/// closures count on the floor too. Reopening the account does not bring the membership back
/// (that is a new enrolment at reception).
pub async fn confirm(store: &Store, rules: &Rules, account_id: i64, request_id: i64, now: Millis) -> Result<Confirmed> {
    let mut tx = store.begin().await?;
    let account = lock(&mut tx, account_id).await?;
    let row = sqlx::query(
        "SELECT kind, days, confirm_by FROM iaccount_requests WHERE id = $1 AND account_id = $2 AND confirmed_at IS NULL AND cancelled_at IS NULL",
    )
    .bind(request_id)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("open request {request_id}")))?;
    let confirm_by: i64 = row.try_get("confirm_by")?;
    if now > confirm_by {
        return Err(Error::Conflict("the time to confirm this request has passed".into()));
    }
    sqlx::query("UPDATE iaccount_requests SET confirmed_at = $1 WHERE id = $2").bind(now).bind(request_id).execute(&mut *tx).await?;
    let kind: String = row.try_get("kind")?;
    if kind == "close" {
        sqlx::query("UPDATE iaccounts SET state = 'closed', closed_at = $1 WHERE id = $2").bind(now).bind(account_id).execute(&mut *tx).await?;
        let actor = Actor::System("iaccount.close");
        super::end_floor_membership(&mut tx, rules, account.person_id, EndReason::MemberRequest, &actor, now).await?;
        tx.commit().await?;
        return Ok(Confirmed::Closed);
    }
    tx.commit().await?;
    let days: i64 = row.try_get("days")?;
    let person_id = person_of(store, account_id).await?;
    let until = now + chrono::Duration::days(days).num_milliseconds();
    Ok(Confirmed::Excluded { exclusion_id: exclude(store, account_id, person_id, until, now).await? })
}

/// Asks to close the account; it closes when the player confirms within three weeks.
pub async fn request_close(store: &Store, account_id: i64, now: Millis) -> Result<(i64, Millis)> {
    let confirm_by = millis(online::close_confirm_by(time(now)?));
    let mut tx = store.begin().await?;
    lock(&mut tx, account_id).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO iaccount_requests (account_id, kind, requested_at, confirm_by) VALUES ($1, 'close', $2, $3) RETURNING id",
    )
    .bind(account_id)
    .bind(now)
    .bind(confirm_by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((id, confirm_by))
}

/// Reopens a closed account on the player's written request, handled by staff.
pub async fn reopen(store: &Store, account_id: i64, actor: &Actor, now: Millis) -> WalletResult<()> {
    let mut tx = store.begin().await?;
    let a = lock(&mut tx, account_id).await?;
    if a.state != super::AccountState::Closed {
        return Err(Refusal::Blocked.into());
    }
    sqlx::query("UPDATE iaccounts SET state = 'active', closed_at = NULL WHERE id = $1").bind(account_id).execute(&mut *tx).await?;
    crate::audit::record(&mut tx, now, actor, "iaccount.reopen", &format!("iaccount:{account_id}"), Some("closed"), Some("active")).await?;
    tx.commit().await?;
    Ok(())
}
