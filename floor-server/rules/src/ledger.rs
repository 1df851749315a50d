//! The ledger entries the rules hand to the floor server: points and free play.
//!
//! Key decision: the ledgers are append-only and lot-based. An entry either opens a lot (an
//! earning, a positive correction, an issue of free play) or changes one existing lot (a
//! redemption, an expiry, a deletion, a transfer). The store applies every entry the same way:
//! `lot.remaining += entry.amount`, so a balance is the sum of its entries and also the sum of its
//! lots' remainders. Every entry records the rule version that produced it.
//!
//! Not here: ids of entries and members (the store's), and writing anything.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::membership::EndReason;
use crate::pricing::Outlet;
use crate::types::{LotId, MachineType, Money, Points, StaffId};

/// The configuration a decision was made under: `<operator's label>+<content hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleVersion(String);

impl RuleVersion {
    pub(crate) fn new(text: String) -> RuleVersion {
        RuleVersion(text)
    }

    /// The storage form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which lot an entry concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotRef {
    /// The entry opens a new lot holding its amount, usable until `expires_at` (exclusive).
    Opens { expires_at: DateTime<Utc> },
    /// The entry adds its (signed) amount to this existing lot.
    Existing(LotId),
}

/// One ledger line. `amount` is signed: what it adds to the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<Q, K> {
    /// When it took effect: the event's time, or a lot's expiry moment for an expiry.
    pub at: DateTime<Utc>,
    /// Why the balance moved.
    pub kind: K,
    /// What it adds to the balance (negative when it takes away).
    pub amount: Q,
    /// The lot it opens or changes.
    pub lot: LotRef,
    /// The rules that decided it.
    pub rule_version: RuleVersion,
}

/// A line of a member's points ledger.
pub type PointsEntry = Entry<Points, PointsKind>;

/// A line of a member's free-play ledger (EUR of non-cashable promotional credit).
pub type FreePlayEntry = Entry<Money, FreePlayKind>;

/// Why points moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointsKind {
    /// Earned by play or a purchase; these, and only these, count toward the tier.
    Earned(EarnSource),
    /// Spent.
    Redeemed(RedeemFor),
    /// Given back into the lot it was spent from, by a voided or refunded purchase.
    Returned(RedeemFor),
    /// An earning taken back by a voided or refunded purchase (a negative amount). It counts
    /// against the qualifying points as the earning counted for them.
    EarningReversed(EarnSource),
    /// The lot reached the end of its validity unspent.
    Expired,
    /// Deleted at the end of a membership.
    Deleted(EndReason),
    /// A manual correction with its reason and the people who made and approved it.
    Corrected { reason: String, by: StaffId, approved_by: Option<StaffId> },
}

/// What earned the points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarnSource {
    /// Play at a machine of this type.
    Machine(MachineType),
    /// A bar or restaurant receipt paid (partly) in cash.
    Receipt,
    /// A live table rating, by game code.
    Table(String),
}

/// What the points were spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedeemFor {
    /// Free play for the machines.
    Cashback,
    /// Articles or services at an outlet.
    Purchase(Outlet),
}

/// Why free play moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreePlayKind {
    /// Bought with this many points (cashback).
    Issued { points: Points },
    /// Sent to a machine.
    Sent,
    /// Back from a transfer that failed.
    Returned,
    /// Not used before its expiry.
    Expired,
    /// Deleted at the end of a membership.
    Deleted(EndReason),
}

impl PointsEntry {
    /// What this entry adds to the member's tier qualifying points.
    pub fn qualifying(&self) -> Points {
        match self.kind {
            PointsKind::Earned(_) | PointsKind::EarningReversed(_) => self.amount,
            _ => Points::ZERO,
        }
    }
}
