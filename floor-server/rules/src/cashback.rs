//! Cashback and the free-play ledger: points into non-cashable promotional credit for the
//! machines.
//!
//! Key decisions: free play is held in grants, lots of EUR with the same mechanism as points
//! (`lots`): a cashback issues one grant that expires a configurable number of days later; a
//! transfer to a machine draws from the oldest grant first; a failed transfer puts the amounts back
//! into the grants they came from (keeping their expiry); expiry is an entry dated at the grant's
//! expiry moment. The amount is the tier's rate per 1,000 points, rounded down to the cent.
//!
//! Not here: the machine transfer itself (SAS AFT, the terminal's) and the PIN check.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::gate::Member;
use crate::ledger::{FreePlayEntry, FreePlayKind, LotRef, PointsEntry, RedeemFor};
use crate::lots::{Lot, PointsLot, available, change, close_all, draw, open, spend};
use crate::types::{Money, Points, Tier};

/// A free-play grant: EUR of free play issued by one cashback.
pub type FreePlayGrant = Lot<Money>;

/// What `points` buy as free play at `tier`, if it is a valid cashback amount.
pub fn quote(rules: &Rules, tier: Tier, points: Points) -> Result<Money> {
    let c = &rules.config().cashback;
    if points < c.minimum_points {
        return Err(RulesError::BelowCashbackMinimum { points, minimum: c.minimum_points });
    }
    if points.0 % c.step_points.0 != 0 {
        return Err(RulesError::NotACashbackStep { points, step: c.step_points });
    }
    let per_1000 = c.eur_per_1000_points.get(tier).as_decimal();
    Ok(Money::from_decimal_floor(per_1000 * Decimal::from(points.0) / Decimal::from(1_000)))
}

/// The entries of one cashback: the points spent (oldest first) and the free play issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cashback {
    /// The points spent, one entry per lot drawn from.
    pub points: Vec<PointsEntry>,
    /// The free play issued: it opens a grant.
    pub free_play: FreePlayEntry,
}

/// Redeems `points` for free play at the member's tier rate.
pub fn redeem(
    rules: &Rules,
    member: &Member,
    lots: &[PointsLot],
    points: Points,
    now: DateTime<Utc>,
) -> Result<Cashback> {
    let amount = quote(rules, member.tier, points)?;
    let spent = spend(rules, member, lots, points, RedeemFor::Cashback, now)?;
    let expires_at = now
        .checked_add_signed(TimeDelta::days(i64::from(rules.config().free_play.expiry_days)))
        .ok_or(RulesError::DateOutOfRange)?;
    Ok(Cashback {
        points: spent,
        free_play: open(amount, FreePlayKind::Issued { points }, now, expires_at, rules.version()),
    })
}

/// Sends `amount` of the member's free play to a machine, oldest grant first.
pub fn send(
    rules: &Rules,
    member: &Member,
    grants: &[FreePlayGrant],
    amount: Money,
    now: DateTime<Utc>,
) -> Result<Vec<FreePlayEntry>> {
    member.gate(now).map_err(RulesError::Refused)?;
    if amount <= Money::ZERO {
        return Err(RulesError::NotPositive { what: "free play to send", value: amount.to_string() });
    }
    draw(grants, amount, FreePlayKind::Sent, now, rules.version())
        .ok_or_else(|| RulesError::InsufficientFreePlay { wanted: amount, available: available(grants, now) })
}

/// Puts back what a failed transfer took: `sent` are the entries `send` returned.
pub fn transfer_failed(rules: &Rules, sent: &[FreePlayEntry], now: DateTime<Utc>) -> Result<Vec<FreePlayEntry>> {
    sent.iter()
        .map(|entry| match (entry.kind, entry.lot) {
            (FreePlayKind::Sent, LotRef::Existing(grant)) => {
                Ok(change(grant, Money::ZERO - entry.amount, FreePlayKind::Returned, now, rules.version()))
            }
            _ => Err(RulesError::NotASentTransfer),
        })
        .collect()
}

/// The expiry entries for every grant whose time has run out by `now` with free play left.
pub fn expire(rules: &Rules, grants: &[FreePlayGrant], now: DateTime<Utc>) -> Vec<FreePlayEntry> {
    close_all(grants, now, None, FreePlayKind::Expired, rules.version())
}
