//! Tiers: rolling qualifying points, automatic promotion, VIP eligibility, invitation-only
//! Chairman, the annual review.
//!
//! Key decisions:
//! - Qualifying points are the `Earned` entries dated after `now - 12 months`. Entries dated after
//!   `now` count too: when events arrive out of order (a terminal forwarding its outbox late), an
//!   event is decided at its own time against everything already recorded, so a day's promotions
//!   do not depend on the order its events arrive. Redemptions, expiries and corrections do not
//!   count: a correction that should move the tier is followed by a manager review.
//! - Promotion to Silver or Gold happens at the earning that crosses the threshold (qualifying
//!   before it below, after it at or above), so it is written with that earning. A member a manager
//!   placed below their points is not promoted back until the next crossing or review.
//! - Nothing here ever demotes except a review: at the membership anniversary, automatic tiers
//!   (Bronze, Silver, Gold) follow the qualifying points, up or down; VIP Exclusive and Chairman
//!   members are listed for a manager. A manager may review anyone at any time.
//! - Anniversary due: the most recent anniversary on or before today is later than the last review
//!   (or the joining day). Reviews missed in earlier years are not replayed: one review, with
//!   today's qualifying points. A member who joined on 29 February has the anniversary on
//!   28 February in other years.
//!
//! Not here: the manager's lists and the calendar day (the server passes the casino's local date).

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::ledger::{PointsEntry, RuleVersion};
use crate::types::{Points, StaffId, Tier};

/// A decision about a member's tier, for the server to apply and record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierEvent {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// What was decided.
    pub kind: TierEventKind,
    /// The rules that decided it.
    pub rule_version: RuleVersion,
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierEventKind {
    /// Automatic promotion by the earning that crossed a threshold.
    Promoted { from: Tier, to: Tier },
    /// The member reached the VIP Exclusive threshold: list them for a manager, who promotes.
    EligibleForVip,
    /// A review set the tier (`from == to` when it was kept).
    Reviewed { from: Tier, to: Tier, by: Reviewer },
    /// A VIP Exclusive or Chairman member's anniversary: list them for a manager's decision.
    ListedForManagerReview { anniversary: NaiveDate },
}

/// Who reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reviewer {
    /// The annual review on this membership anniversary.
    Anniversary(NaiveDate),
    /// A manager's review at any time.
    Manager(StaffId),
}

/// The qualifying window's open start: `Earned` entries dated after it qualify.
pub fn qualifying_since(rules: &Rules, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    now.checked_sub_months(Months::new(rules.config().tiers.qualifying_window_months)).ok_or(RulesError::DateOutOfRange)
}

/// A member's qualifying points at `now`, from the points entries recorded so far.
pub fn qualifying_points<'a>(
    rules: &Rules,
    entries: impl IntoIterator<Item = &'a PointsEntry>,
    now: DateTime<Utc>,
) -> Result<Points> {
    let since = qualifying_since(rules, now)?;
    Ok(entries.into_iter().filter(|e| since < e.at).fold(Points::ZERO, |sum, e| sum + e.qualifying()))
}

/// The automatic tier these qualifying points earn (never above Gold).
pub fn automatic_tier(rules: &Rules, qualifying: Points) -> Tier {
    let t = &rules.config().tiers;
    if qualifying >= t.gold {
        Tier::Gold
    } else if qualifying >= t.silver {
        Tier::Silver
    } else {
        Tier::Bronze
    }
}

/// What an earning of `earned` points does to the tier of a member at `tier` with `before`
/// qualifying points.
pub fn on_earning(rules: &Rules, tier: Tier, before: Points, earned: Points, now: DateTime<Utc>) -> Vec<TierEvent> {
    let after = before + earned;
    let event = |kind| TierEvent { at: now, kind, rule_version: rules.version().clone() };
    let mut events = Vec::new();
    let reached = automatic_tier(rules, after);
    if reached > tier && reached > automatic_tier(rules, before) {
        events.push(event(TierEventKind::Promoted { from: tier, to: reached }));
    }
    let vip = rules.config().tiers.vip_exclusive;
    if tier < Tier::VipExclusive && before < vip && after >= vip {
        events.push(event(TierEventKind::EligibleForVip));
    }
    events
}

/// The membership anniversary in `year`.
pub fn anniversary(joined_on: NaiveDate, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, joined_on.month(), joined_on.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, joined_on.month(), joined_on.day() - 1))
}

/// The anniversary whose review is due on `today`, if one is.
pub fn review_due(joined_on: NaiveDate, last_reviewed_on: Option<NaiveDate>, today: NaiveDate) -> Option<NaiveDate> {
    let this_year = anniversary(joined_on, today.year())?;
    let latest = if this_year <= today { this_year } else { anniversary(joined_on, today.year() - 1)? };
    let last = last_reviewed_on.unwrap_or(joined_on).max(joined_on);
    (latest > last).then_some(latest)
}

/// The annual review on `anniversary` for a member at `tier` with `qualifying` points now.
pub fn anniversary_review(
    rules: &Rules,
    tier: Tier,
    qualifying: Points,
    anniversary: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<TierEvent> {
    let event = |kind| TierEvent { at: now, kind, rule_version: rules.version().clone() };
    if tier >= Tier::VipExclusive {
        return vec![event(TierEventKind::ListedForManagerReview { anniversary })];
    }
    let to = automatic_tier(rules, qualifying);
    let mut events = vec![event(TierEventKind::Reviewed { from: tier, to, by: Reviewer::Anniversary(anniversary) })];
    if qualifying >= rules.config().tiers.vip_exclusive {
        events.push(event(TierEventKind::EligibleForVip));
    }
    events
}

/// A manager's review, at any time, to any tier: VIP Exclusive only for a member who has reached
/// its threshold; Chairman by the manager's invitation (this is the only way to it).
pub fn manager_review(
    rules: &Rules,
    tier: Tier,
    qualifying: Points,
    target: Tier,
    manager: StaffId,
    now: DateTime<Utc>,
) -> Result<TierEvent> {
    let threshold = rules.config().tiers.vip_exclusive;
    if target == Tier::VipExclusive && tier != Tier::VipExclusive && qualifying < threshold {
        return Err(RulesError::NotEligibleForVip { qualifying, threshold });
    }
    Ok(TierEvent {
        at: now,
        kind: TierEventKind::Reviewed { from: tier, to: target, by: Reviewer::Manager(manager) },
        rule_version: rules.version().clone(),
    })
}
