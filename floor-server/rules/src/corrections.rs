//! Manual corrections of a points balance: audited ledger entries, never edits.
//!
//! Key decisions: a correction names its reason and the staff member; one larger than the
//! configured size (either sign) is only written once a second, different person approves it. A
//! positive correction opens a lot dated at the correction (valid from then like any earning); a
//! negative one draws from the oldest lots and can never take the balance below zero. Corrections
//! do not count toward the tier (see `tiers`), and the exclusion gate does not apply to them: staff
//! may correct any member's balance.
//!
//! Not here: storing the pending request between asking and approving (the server's).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::ledger::{PointsEntry, PointsKind};
use crate::lots::{PointsLot, draw_points, open, points_expiry};
use crate::types::{Points, StaffId};

/// A correction as staff enter it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRequest {
    /// Points to add (positive) or take away (negative).
    pub points: Points,
    /// Why (a system fault, a fraud attempt, ...): recorded on every entry.
    pub reason: String,
    /// Who asked for it.
    pub by: StaffId,
}

/// What happens to a correction request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Small enough: write these entries now.
    Applied(Vec<PointsEntry>),
    /// Larger than the threshold: keep the request until a second person approves it.
    NeedsApproval { threshold: Points },
}

/// Decides a correction request at `now`.
pub fn request(
    rules: &Rules,
    request: &CorrectionRequest,
    lots: &[PointsLot],
    now: DateTime<Utc>,
) -> Result<Correction> {
    let threshold = rules.config().corrections.approval_above_points;
    let entries = entries(rules, request, None, lots, now)?;
    if request.points.0.abs() > threshold.0 {
        return Ok(Correction::NeedsApproval { threshold });
    }
    Ok(Correction::Applied(entries))
}

/// Approves a correction that needed a second person; the balance is checked again at `now`.
pub fn approve(
    rules: &Rules,
    request: &CorrectionRequest,
    approver: StaffId,
    lots: &[PointsLot],
    now: DateTime<Utc>,
) -> Result<Vec<PointsEntry>> {
    let threshold = rules.config().corrections.approval_above_points;
    if request.points.0.abs() <= threshold.0 {
        return Err(RulesError::NoApprovalNeeded { points: request.points, threshold });
    }
    if approver == request.by {
        return Err(RulesError::SameApprover(approver));
    }
    entries(rules, request, Some(approver), lots, now)
}

fn entries(
    rules: &Rules,
    request: &CorrectionRequest,
    approved_by: Option<StaffId>,
    lots: &[PointsLot],
    now: DateTime<Utc>,
) -> Result<Vec<PointsEntry>> {
    if request.reason.trim().is_empty() {
        return Err(RulesError::MissingReason);
    }
    let kind = PointsKind::Corrected { reason: request.reason.clone(), by: request.by, approved_by };
    let version = rules.version();
    match request.points {
        Points::ZERO => Err(RulesError::EmptyCorrection),
        add if add > Points::ZERO => Ok(vec![open(add, kind, now, points_expiry(rules, now)?, version)]),
        take => draw_points(lots, Points::ZERO - take, kind, now, version),
    }
}
