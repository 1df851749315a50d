//! Lots: points as earned (and free play as issued), each with the moment it stops being usable.
//!
//! Key decision: one mechanism for points and free play. Spending draws from the oldest usable
//! lot first (earning time, then id), a lot is usable from its opening until its expiry moment
//! (exclusive), and an expiry is an entry dated at that moment, so the balance available at `now`
//! is the same whether or not the expiry sweep has run yet. A balance can never go negative: a
//! draw larger than what is available is refused whole.
//!
//! Not here: loading lots (the server passes the member's open lots, those with something left).

use std::fmt::Debug;
use std::ops::{Add, Sub};

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::gate::Member;
use crate::ledger::{Entry, LotRef, PointsEntry, PointsKind, RedeemFor, RuleVersion};
use crate::types::{LotId, Money, Points};

/// What a lot holds: points or EUR of free play.
pub trait Quantity: Copy + Ord + Default + Debug + Add<Output = Self> + Sub<Output = Self> {}
impl Quantity for Points {}
impl Quantity for Money {}

/// A lot as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot<Q> {
    /// The id of the entry that opened it.
    pub id: LotId,
    /// When it was earned or issued.
    pub opened_at: DateTime<Utc>,
    /// The first moment it can no longer be used.
    pub expires_at: DateTime<Utc>,
    /// What is left of it.
    pub remaining: Q,
}

/// A lot of points.
pub type PointsLot = Lot<Points>;

impl<Q: Quantity> Lot<Q> {
    /// Whether something of it can be spent at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.opened_at <= now && now < self.expires_at && self.remaining > Q::default()
    }
}

/// What can be spent at `now`: the sum of the usable lots.
pub fn available<Q: Quantity>(lots: &[Lot<Q>], now: DateTime<Utc>) -> Q {
    lots.iter().filter(|l| l.usable_at(now)).fold(Q::default(), |sum, l| sum + l.remaining)
}

/// The entries that spend `amount`, oldest lot first, or `None` when less than that is usable.
pub(crate) fn draw<Q: Quantity, K: Clone>(
    lots: &[Lot<Q>],
    amount: Q,
    kind: K,
    now: DateTime<Utc>,
    version: &RuleVersion,
) -> Option<Vec<Entry<Q, K>>> {
    let mut usable: Vec<&Lot<Q>> = lots.iter().filter(|l| l.usable_at(now)).collect();
    usable.sort_by_key(|l| (l.opened_at, l.id));
    let mut left = amount;
    let mut entries = Vec::new();
    for lot in usable {
        if left == Q::default() {
            break;
        }
        let take = left.min(lot.remaining);
        entries.push(change(lot.id, Q::default() - take, kind.clone(), now, version));
        left = left - take;
    }
    (left == Q::default()).then_some(entries)
}

/// One entry that opens a lot.
pub(crate) fn open<Q, K>(
    amount: Q,
    kind: K,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    version: &RuleVersion,
) -> Entry<Q, K> {
    Entry { at: now, kind, amount, lot: LotRef::Opens { expires_at }, rule_version: version.clone() }
}

/// One entry that changes an existing lot.
pub(crate) fn change<Q, K>(lot: LotId, amount: Q, kind: K, at: DateTime<Utc>, version: &RuleVersion) -> Entry<Q, K> {
    Entry { at, kind, amount, lot: LotRef::Existing(lot), rule_version: version.clone() }
}

/// Empties every lot with something left: those past their expiry get `expired` entries dated at
/// their expiry, the others get `live` entries dated `now`.
pub(crate) fn close_all<Q: Quantity, K: Clone>(
    lots: &[Lot<Q>],
    now: DateTime<Utc>,
    live: Option<K>,
    expired: K,
    version: &RuleVersion,
) -> Vec<Entry<Q, K>> {
    let mut ordered: Vec<&Lot<Q>> = lots.iter().filter(|l| l.remaining > Q::default()).collect();
    ordered.sort_by_key(|l| (l.opened_at, l.id));
    ordered
        .into_iter()
        .filter_map(|lot| {
            let gone = Q::default() - lot.remaining;
            if lot.expires_at <= now {
                Some(change(lot.id, gone, expired.clone(), lot.expires_at, version))
            } else {
                live.clone().map(|kind| change(lot.id, gone, kind, now, version))
            }
        })
        .collect()
}

/// When a points lot earned at `earned_at` expires under these rules.
pub fn points_expiry(rules: &Rules, earned_at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    earned_at.checked_add_months(Months::new(rules.config().points.validity_months)).ok_or(RulesError::DateOutOfRange)
}

/// The expiry entries for every lot whose validity has ended by `now` with points left.
pub fn expire_points(rules: &Rules, lots: &[PointsLot], now: DateTime<Utc>) -> Vec<PointsEntry> {
    close_all(lots, now, None, PointsKind::Expired, rules.version())
}

/// Spends `points` for `purpose`, oldest lot first: the exclusion gate must let the member
/// redeem, and the points must be available now (this is also the daily limit at bars and
/// restaurants).
pub fn spend(
    rules: &Rules,
    member: &Member,
    lots: &[PointsLot],
    points: Points,
    purpose: RedeemFor,
    now: DateTime<Utc>,
) -> Result<Vec<PointsEntry>> {
    member.gate(now).map_err(RulesError::Refused)?;
    if points <= Points::ZERO {
        return Err(RulesError::NotPositive { what: "points to redeem", value: points.to_string() });
    }
    draw_points(lots, points, PointsKind::Redeemed(purpose), now, rules.version())
}

/// `draw` for points, refused with the shortfall when the lots do not cover `points`.
pub(crate) fn draw_points(
    lots: &[PointsLot],
    points: Points,
    kind: PointsKind,
    now: DateTime<Utc>,
    version: &RuleVersion,
) -> Result<Vec<PointsEntry>> {
    draw(lots, points, kind, now, version)
        .ok_or_else(|| RulesError::InsufficientPoints { wanted: points, available: available(lots, now) })
}
