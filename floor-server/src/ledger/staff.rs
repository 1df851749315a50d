//! Staff decisions on a member's ledgers: manual corrections (with a second person above the
//! threshold), a manager's tier review, the end of a membership. Every one is audited in the
//! transaction that makes it.
//!
//! Key decision: a correction above the threshold is stored as a request and written to the ledger
//! only when a different staff member approves it; the balance is checked again at approval, and
//! the database refuses an approver equal to the requester as well (`CHECK`).
//!
//! Not here: roles (who may call these: the consoles' routes check them).

use chrono::{DateTime, Utc};
use club_rules::corrections::{self, Correction, CorrectionRequest};
use club_rules::membership::{self, EndReason};
use club_rules::tiers::{self, TierEvent};
use club_rules::{MemberState, Points, Rules, StaffId, Tier};
use sqlx::{Any, Row, Transaction};

use super::{Decision, Origin, apply_tier_events, grants, load_member, millis, points_lots, staff_id, write_free_play, write_points};
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// What became of a correction request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionOutcome {
    /// Within the threshold: written now.
    Applied,
    /// Above the threshold: request `request` waits for a second person.
    Pending { request: i64 },
}

/// A manual correction of `points` (signed) with a reason, by the staff member `actor`.
pub async fn request_correction(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    points: Points,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Decision<CorrectionOutcome>> {
    let request = CorrectionRequest { points, reason: reason.to_owned(), by: staff_id(actor)? };
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    let lots = points_lots(&mut tx, member_id).await?;
    let outcome = match corrections::request(rules, &request, &lots, now) {
        Ok(Correction::Applied(entries)) => {
            write_points(&mut tx, member_id, &entries, &Origin::default()).await?;
            CorrectionOutcome::Applied
        }
        Ok(Correction::NeedsApproval { .. }) => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO correction_requests (member_id, points, reason, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(member_id)
            .bind(points.0)
            .bind(reason)
            .bind(request.by.0)
            .bind(millis(now))
            .fetch_one(&mut *tx)
            .await?;
            CorrectionOutcome::Pending { request: id }
        }
        Err(e) => return Ok(Err(e)),
    };
    let subject = format!("member:{member_id}");
    audit::record(&mut tx, millis(now), actor, "points.correction.request", &subject, None::<()>, Some((points.0, reason))).await?;
    tx.commit().await?;
    Ok(Ok(outcome))
}

/// A second staff member approves pending correction `request`; its entries are written now.
pub async fn approve_correction(store: &Store, rules: &Rules, request: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Decision<()>> {
    let approver = staff_id(actor)?;
    let mut tx = store.begin().await?;
    let row = sqlx::query("SELECT member_id, points, reason, requested_by, approved_at FROM correction_requests WHERE id = $1")
        .bind(request)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("correction request {request}")))?;
    let member_id: i64 = row.try_get("member_id")?;
    store::lock_member(&mut tx, member_id).await?;
    let pending = sqlx::query_scalar::<_, Option<i64>>("SELECT approved_at FROM correction_requests WHERE id = $1")
        .bind(request)
        .fetch_one(&mut *tx)
        .await?
        .is_none();
    if !pending {
        return Err(Error::Conflict(format!("correction request {request} is already approved")));
    }
    let asked = CorrectionRequest {
        points: Points(row.try_get("points")?),
        reason: row.try_get("reason")?,
        by: StaffId(row.try_get("requested_by")?),
    };
    let lots = points_lots(&mut tx, member_id).await?;
    let entries = match corrections::approve(rules, &asked, approver, &lots, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    write_points(&mut tx, member_id, &entries, &Origin { key: Some(format!("correction:{request}")), ..Origin::default() }).await?;
    sqlx::query("UPDATE correction_requests SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_at IS NULL")
        .bind(approver.0)
        .bind(millis(now))
        .bind(request)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, millis(now), actor, "points.correction.approve", &format!("correction:{request}"), None::<()>, Some(asked.points.0))
        .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// A manager sets a member's tier at any time: VIP Exclusive only for an eligible member,
/// Chairman by invitation. Takes the member off the manager's list.
pub async fn manager_review(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    target: Tier,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Decision<TierEvent>> {
    let manager = staff_id(actor)?;
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    let member = load_member(&mut tx, rules, member_id, None, now).await?.member;
    let event = match tiers::manager_review(rules, member.tier, member.qualifying, target, manager, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    apply_tier_events(&mut tx, member_id, std::slice::from_ref(&event)).await?;
    audit::record(&mut tx, millis(now), actor, "tier.review", &format!("member:{member_id}"), Some(member.tier.code()), Some(target.code()))
        .await?;
    tx.commit().await?;
    Ok(Ok(event))
}

/// A manager promotes an eligible member to VIP Exclusive.
pub async fn promote_vip(store: &Store, rules: &Rules, member_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Decision<TierEvent>> {
    manager_review(store, rules, member_id, Tier::VipExclusive, actor, now).await
}

/// A manager invites a member to Chairman (the only way there).
pub async fn invite_chairman(store: &Store, rules: &Rules, member_id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Decision<TierEvent>> {
    manager_review(store, rules, member_id, Tier::Chairman, actor, now).await
}

/// Ends a membership at `now`: on the member's request or the club's closure the balances stay,
/// unusable; for any other reason they are deleted by ledger entries. Returns the new state.
pub async fn end_membership(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    reason: EndReason,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<MemberState> {
    let mut tx = store.begin().await?;
    let state = end_membership_in(&mut tx, rules, member_id, reason, actor, now).await?;
    tx.commit().await?;
    Ok(state)
}

/// [`end_membership`] inside the caller's transaction (the i-Account closes an account and the
/// person's membership together).
pub async fn end_membership_in(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    member_id: i64,
    reason: EndReason,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<MemberState> {
    store::lock_member(tx, member_id).await?;
    let state: String = sqlx::query_scalar("SELECT state FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("member {member_id}")))?;
    if matches!(state.as_str(), "left" | "terminated") {
        return Err(Error::Conflict(format!("membership {member_id} has already ended")));
    }
    let lots = points_lots(tx, member_id).await?;
    let held = grants(tx, member_id).await?;
    let end = membership::end(rules, reason, &lots, &held, now);
    write_points(tx, member_id, &end.points, &Origin::default()).await?;
    write_free_play(tx, member_id, &end.free_play, &Origin::default()).await?;
    sqlx::query("UPDATE members SET state = $1, ended_reason = $2, state_changed_at = $3 WHERE id = $4")
        .bind(end.state.code())
        .bind(reason.code())
        .bind(millis(now))
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
    audit::record(tx, millis(now), actor, "membership.end", &format!("member:{member_id}"), Some(state), Some(reason.code())).await?;
    Ok(end.state)
}
