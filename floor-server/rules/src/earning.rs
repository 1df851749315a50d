//! Earning points at machines and at bars and restaurants (tables: `table`).
//!
//! Key decisions:
//! - Carry-over categories: each machine type is its own category (a EUR 3 slot wager and a EUR 5
//!   video poker wager do not add up); live tables are one category (`table`); bar and restaurant
//!   receipts have no carry, each receipt stands alone (RULES.md 1). Machine carry is the EUR
//!   wagered not yet making a point, in whole cents, so the arithmetic is exact integers and the
//!   points of a day do not depend on the order its plays arrive.
//! - A receipt paid partly in cash: the receipt does not say which tender paid which line, so every
//!   tender pays every line in proportion. The earning base is the earning lines' total (not
//!   tobacco, only bar and restaurant) times the cash share of the tenders, rounded down to the
//!   cent; then one point per EUR 4.00 of it, rounded down. Amounts are net of change given.
//! - A refused member (exclusion gate) earns nothing and their carry does not grow; the event is
//!   still recorded, with the reason (`Earning::NoPoints`).
//! - Every earning opens a points lot dated at `now` (the event's own time), and in the same
//!   decision says what it does to the tier.
//!
//! Not here: de-duplication of events (the server keys them by event id) and the POS protocol.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::error::{Result, RulesError};
use crate::gate::Member;
use crate::ledger::{EarnSource, PointsEntry, PointsKind, RuleVersion};
use crate::lots::{open, points_expiry};
use crate::pricing::Outlet;
use crate::tiers::{TierEvent, on_earning};
use crate::types::{MachineType, Money, Points, RefusalCode};

/// What an event earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Earning {
    /// Write the entry (it opens a lot) and apply the tier events, with the event.
    Points { entry: PointsEntry, tier: Vec<TierEvent> },
    /// Record the event with this reason; no points.
    NoPoints { reason: NoPointsReason, rule_version: RuleVersion },
}

/// Why an event earned no points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPointsReason {
    /// The exclusion gate refused the member.
    Refused(RefusalCode),
    /// Less than a whole point so far; it waits in the carry-over.
    CarriedOver,
    /// Nothing on the receipt earns (tobacco only, or no cash tender).
    NothingEligible,
    /// The receipt's earning base is less than one point (receipts do not carry over).
    LessThanAPoint,
}

impl Earning {
    /// The points given (zero when none).
    pub fn points(&self) -> Points {
        match self {
            Earning::Points { entry, .. } => entry.amount,
            Earning::NoPoints { .. } => Points::ZERO,
        }
    }

    /// The entries to write (none or one).
    pub fn entries(&self) -> &[PointsEntry] {
        match self {
            Earning::Points { entry, .. } => std::slice::from_ref(entry),
            Earning::NoPoints { .. } => &[],
        }
    }
}

fn no_points(rules: &Rules, reason: NoPointsReason) -> Earning {
    Earning::NoPoints { reason, rule_version: rules.version().clone() }
}

/// Gives `points` (or records `otherwise` when there are none) after the gate let the member earn.
pub(crate) fn award(
    rules: &Rules,
    member: &Member,
    points: Points,
    source: EarnSource,
    otherwise: NoPointsReason,
    now: DateTime<Utc>,
) -> Result<Earning> {
    if points == Points::ZERO {
        return Ok(no_points(rules, otherwise));
    }
    let entry = open(points, PointsKind::Earned(source), now, points_expiry(rules, now)?, rules.version());
    let tier = on_earning(rules, member.tier, member.qualifying, points, now);
    Ok(Earning::Points { entry, tier })
}

/// The gate's refusal as a recorded no-points earning.
pub(crate) fn refused(rules: &Rules, member: &Member, now: DateTime<Utc>) -> Option<Earning> {
    member.gate(now).err().map(|code| no_points(rules, NoPointsReason::Refused(code)))
}

/// Play recorded at a machine while the member's card was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachinePlay {
    /// The machine type of the terminal's machine: it decides the rate and the carry category.
    pub machine: MachineType,
    /// Coin-in (total wagered) in this event.
    pub wagered: Money,
}

/// The decision on a machine play, and the member's new carry for that machine type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineEarning {
    /// Points given, or why none.
    pub earning: Earning,
    /// The member's carry-over for this machine type, to store in place of the old one.
    pub carry: Money,
}

/// Points for machine play: one per EUR 4.00 wagered at slots, EUR 8.00 at electronic roulette
/// and video poker (configurable), the remainder carried over for this member and machine type.
pub fn machine_play(
    rules: &Rules,
    member: &Member,
    play: MachinePlay,
    carry: Money,
    now: DateTime<Utc>,
) -> Result<MachineEarning> {
    amount_in_range("amount wagered", play.wagered)?;
    amount_in_range("carry-over", carry)?;
    if let Some(earning) = refused(rules, member, now) {
        return Ok(MachineEarning { earning, carry });
    }
    let rate = rules.config().earning.eur_per_point(play.machine).cents();
    let total = carry.cents() + play.wagered.cents();
    let points = Points(total / rate);
    let earning = award(rules, member, points, EarnSource::Machine(play.machine), NoPointsReason::CarriedOver, now)?;
    Ok(MachineEarning { earning, carry: Money::from_cents(total % rate) })
}

/// A receipt as the POS reports it. Only bar and restaurant receipts earn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Where it was rung up.
    pub outlet: Outlet,
    /// What was bought.
    pub lines: Vec<ReceiptLine>,
    /// How it was paid; together exactly the lines' total.
    pub tenders: Vec<Tender>,
}

/// A receipt line: what the member paid for it, after any discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    /// The POS article category (`tobacco`, `coffee`, ...), compared without regard to case.
    pub category: String,
    pub amount: Money,
}

/// How (part of) a receipt was paid, net of change given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tender {
    pub kind: TenderKind,
    pub amount: Money,
}

/// Means of payment in money. Only cash earns points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenderKind {
    Cash,
    Card,
    /// Vouchers, room charge, anything else.
    Other,
}

/// Whether a category is in a configured set of category names.
pub(crate) fn category_in(set: &BTreeSet<String>, category: &str) -> bool {
    set.iter().any(|c| c.eq_ignore_ascii_case(category.trim()))
}

/// Checks that a receipt's tenders pay exactly its lines; returns the total.
pub(crate) fn receipt_total(lines: &[ReceiptLine], tenders: &[Tender]) -> Result<Money> {
    let mut due = Money::ZERO;
    for line in lines {
        amount_in_range("a receipt line", line.amount)?;
        due += line.amount;
    }
    let mut tendered = Money::ZERO;
    for tender in tenders {
        amount_in_range("a tender", tender.amount)?;
        tendered += tender.amount;
    }
    if due != tendered {
        return Err(RulesError::TendersDoNotAddUp { due, tendered });
    }
    Ok(due)
}

/// Points for a bar or restaurant receipt: cash purchases earn, tobacco and other outlets do not.
pub fn receipt(rules: &Rules, member: &Member, receipt: &Receipt, now: DateTime<Utc>) -> Result<Earning> {
    let total = receipt_total(&receipt.lines, &receipt.tenders)?;
    if let Some(earning) = refused(rules, member, now) {
        return Ok(earning);
    }
    let config = &rules.config().earning;
    let earns_here = matches!(receipt.outlet, Outlet::Bar | Outlet::Restaurant);
    let eligible: i64 = receipt
        .lines
        .iter()
        .filter(|l| !category_in(&config.non_earning_categories, &l.category))
        .map(|l| l.amount.cents())
        .sum();
    let cash: i64 = receipt.tenders.iter().filter(|t| t.kind == TenderKind::Cash).map(|t| t.amount.cents()).sum();
    if !earns_here || eligible == 0 || cash == 0 {
        return Ok(no_points(rules, NoPointsReason::NothingEligible));
    }
    let base = i128::from(eligible) * i128::from(cash) / i128::from(total.cents());
    let points = i64::try_from(base / i128::from(config.bar_cash.cents())).expect("points of a receipt fit i64");
    award(rules, member, Points(points), EarnSource::Receipt, NoPointsReason::LessThanAPoint, now)
}

/// The largest amount in cents an event may carry (EUR 1,000,000,000,000): far above any real
/// wager, price or tender, far below what integer cents can hold, so a corrupt input is refused
/// rather than overflowing.
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000_000;

/// Refuses a negative amount or one above [`MAX_AMOUNT_CENTS`].
pub(crate) fn amount_in_range(what: &'static str, amount: Money) -> Result<()> {
    if amount.is_negative() {
        return Err(RulesError::Negative { what, value: amount.to_string() });
    }
    if amount > Money::from_cents(MAX_AMOUNT_CENTS) {
        return Err(RulesError::OutOfRange(what));
    }
    Ok(())
}
