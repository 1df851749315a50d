//! Pricing and settling a member's ticket at a bar, restaurant, hotel desk or showcase.
//!
//! Key decisions:
//! - Prices come from the catalogue the server passes (the outlet's articles); each line is paid
//!   either with money or with points. The tier discount applies to both, per unit, except on
//!   articles that already carry a discount; a discounted money price is rounded to the nearest
//!   cent and a discounted point price to the nearest point, halves up. "Cash payments" in
//!   RULES.md is read as any payment in money (cash, card), as opposed to points.
//! - Members' free drinks (configured categories and SKUs, at the bar) cost nothing.
//! - A member the exclusion gate refuses gets no member benefits: list prices, no free drinks, and
//!   a ticket with a line paid by points is refused.
//! - The daily limit at bars and restaurants is the member's available points: a settlement spends
//!   them oldest first and is refused whole if they do not cover the points due.
//! - At most one showcase article per member per day (configurable); the server counts what the
//!   member took today by the casino's day and passes it in.
//! - Settling also earns: the lines paid with money form a receipt, and `earning::receipt` decides
//!   its points (cash only, tobacco excluded), so there is one earning rule for the POS and here.
//!
//! Not here: the catalogue's storage, the POS protocol, stock.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::config::Rules;
use crate::earning::{self, Earning, Receipt, ReceiptLine, Tender, amount_in_range, category_in, receipt_total};
use crate::error::{Result, RulesError};
use crate::gate::Member;
use crate::ledger::{EarnSource, PointsEntry, PointsKind, RedeemFor};
use crate::lots::{PointsLot, change, spend};
use crate::types::LotId;
use crate::types::{Money, Points, Tier};

/// Where a member buys or redeems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outlet {
    Bar,
    Restaurant,
    Hotel,
    /// The showcase ("vitrina") of articles for points.
    Showcase,
}

/// An article of an outlet's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub sku: String,
    /// The POS category (`coffee`, `tobacco`, ...), compared without regard to case.
    pub category: String,
    /// Money price per unit.
    pub price: Money,
    /// Point price per unit; `None` when it cannot be paid with points.
    pub points_price: Option<Points>,
    /// Already on a discount: the tier discount does not apply.
    pub already_discounted: bool,
    /// The catalogue marks it a members' free drink (besides the configured categories and SKUs).
    #[serde(default)]
    pub member_free: bool,
}

/// How a line is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayWith {
    Money,
    Points,
}

/// A line of a member's ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLine {
    /// The article, by the catalogue's SKU.
    pub sku: String,
    /// How many; at least 1.
    pub quantity: u32,
    /// Money or points.
    pub pay_with: PayWith,
}

/// A member's ticket at one outlet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Where the member buys.
    pub outlet: Outlet,
    /// What the member asks for.
    pub lines: Vec<TicketLine>,
    /// Showcase articles the member already took today (the casino's day).
    pub showcase_taken_today: u32,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: String,
    pub category: String,
    pub quantity: u32,
    pub pay_with: PayWith,
    /// The tier discount applied, in percent (0 when none applied).
    pub discount_percent: u32,
    /// A member's free drink.
    pub free_drink: bool,
    /// Money due for the line (zero when paid with points).
    pub money: Money,
    /// Points due for the line (zero when paid with money).
    pub points: Points,
}

/// A priced ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedTicket {
    /// Where.
    pub outlet: Outlet,
    /// Each line priced, in the ticket's order.
    pub lines: Vec<PricedLine>,
    /// The money the tenders must add up to.
    pub money_due: Money,
    /// The points the member's available points must cover.
    pub points_due: Points,
}

/// Prices a ticket for a member at `now`.
pub fn price(
    rules: &Rules,
    member: &Member,
    catalogue: &[Article],
    ticket: &Ticket,
    now: DateTime<Utc>,
) -> Result<PricedTicket> {
    let gate = member.gate(now);
    if ticket.outlet == Outlet::Showcase {
        let asked: u32 = ticket.lines.iter().map(|l| l.quantity).sum();
        let limit = rules.config().redemption.showcase_articles_per_day;
        if ticket.showcase_taken_today.saturating_add(asked) > limit {
            return Err(RulesError::ShowcaseLimit { limit, already: ticket.showcase_taken_today, asked });
        }
    }
    let mut priced =
        PricedTicket { outlet: ticket.outlet, lines: Vec::new(), money_due: Money::ZERO, points_due: Points::ZERO };
    for line in &ticket.lines {
        if line.pay_with == PayWith::Points {
            gate.map_err(RulesError::Refused)?;
        }
        let article =
            catalogue.iter().find(|a| a.sku == line.sku).ok_or_else(|| RulesError::UnknownArticle(line.sku.clone()))?;
        let tier = gate.is_ok().then_some(member.tier);
        let priced_line = price_line(rules, tier, ticket.outlet, article, line)?;
        priced.money_due += priced_line.money;
        priced.points_due += priced_line.points;
        priced.lines.push(priced_line);
    }
    Ok(priced)
}

/// One line; `tier` is `None` for a person who gets no member benefits.
fn price_line(
    rules: &Rules,
    tier: Option<Tier>,
    outlet: Outlet,
    article: &Article,
    line: &TicketLine,
) -> Result<PricedLine> {
    if line.quantity == 0 {
        return Err(RulesError::NotPositive { what: "quantity", value: "0".to_owned() });
    }
    amount_in_range("a catalogue price", article.price)?;
    let config = &rules.config().redemption;
    let free_drink = tier.is_some()
        && outlet == Outlet::Bar
        && (category_in(&config.free_drink_categories, &article.category)
            || config.free_drink_skus.contains(&article.sku)
            || article.member_free);
    let discount_percent = match tier {
        Some(tier) if !article.already_discounted && !free_drink => rules.config().discounts.get(tier),
        _ => 0,
    };
    let keep = Decimal::from(100 - discount_percent) / Decimal::from(100);
    let quantity = Decimal::from(line.quantity);
    let (money, points) = match (free_drink, line.pay_with) {
        (true, _) => (Money::ZERO, Points::ZERO),
        (false, PayWith::Money) => {
            let unit =
                (article.price.as_decimal() * keep).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            (Money::from_decimal_floor(unit * quantity), Points::ZERO)
        }
        (false, PayWith::Points) => {
            let list = article
                .points_price
                .filter(|p| *p > Points::ZERO)
                .ok_or_else(|| RulesError::NotForPoints(article.sku.clone()))?;
            let unit = (Decimal::from(list.0) * keep).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
            let total = (unit * quantity).to_i64().ok_or(RulesError::OutOfRange("a point price"))?;
            (Money::ZERO, Points(total))
        }
    };
    Ok(PricedLine {
        sku: article.sku.clone(),
        category: article.category.clone(),
        quantity: line.quantity,
        pay_with: line.pay_with,
        discount_percent,
        free_drink,
        money,
        points,
    })
}

/// The outcome of a settled ticket: points spent and points earned, to write with the sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The ticket as priced.
    pub ticket: PricedTicket,
    /// The points spent on the lines paid with points, oldest lot first.
    pub points: Vec<PointsEntry>,
    /// What the money paid earns.
    pub earning: Earning,
}

/// Prices and settles a ticket: the money tenders must add up to the money due and the member's
/// available points must cover the points due; anything wrong refuses the whole ticket.
pub fn settle(
    rules: &Rules,
    member: &Member,
    catalogue: &[Article],
    ticket: &Ticket,
    tenders: &[Tender],
    lots: &[PointsLot],
    now: DateTime<Utc>,
) -> Result<Settlement> {
    let priced = price(rules, member, catalogue, ticket, now)?;
    let receipt = Receipt {
        outlet: priced.outlet,
        lines: priced
            .lines
            .iter()
            .filter(|l| l.pay_with == PayWith::Money)
            .map(|l| ReceiptLine { category: l.category.clone(), amount: l.money })
            .collect(),
        tenders: tenders.to_vec(),
    };
    receipt_total(&receipt.lines, &receipt.tenders)?;
    let points = if priced.points_due > Points::ZERO {
        spend(rules, member, lots, priced.points_due, RedeemFor::Purchase(priced.outlet), now)?
    } else {
        Vec::new()
    };
    let earning = earning::receipt(rules, member, &receipt, now)?;
    Ok(Settlement { ticket: priced, points, earning })
}

/// What a settled ticket did to the member's points, as the store recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledPoints {
    /// Where it was settled.
    pub outlet: Outlet,
    /// The points spent, per lot (positive amounts).
    pub spent: Vec<(LotId, Points)>,
    /// The lot the ticket's earning opened and the points it earned.
    pub earned: Option<(LotId, Points)>,
}

/// Voids or refunds a settled ticket: the points it spent go back into the lots they came from,
/// then the points it earned are taken back, from the lot the earning opened first and then from
/// the member's other lots, oldest first. Refused whole when the member no longer has the points
/// the ticket earned. The exclusion gate does not stop a reversal: it only undoes what was done.
pub fn reverse(rules: &Rules, settled: &SettledPoints, lots: &[PointsLot], now: DateTime<Utc>) -> Result<Vec<PointsEntry>> {
    let version = rules.version();
    let mut lots: Vec<PointsLot> = lots.to_vec();
    let mut entries = Vec::new();
    for &(lot, points) in &settled.spent {
        if points <= Points::ZERO {
            return Err(RulesError::NotPositive { what: "points spent", value: points.to_string() });
        }
        entries.push(change(lot, points, PointsKind::Returned(RedeemFor::Purchase(settled.outlet)), now, version));
        if let Some(l) = lots.iter_mut().find(|l| l.id == lot) {
            l.remaining += points;
        }
    }
    if let Some((earned_lot, earned)) = settled.earned.filter(|(_, p)| *p > Points::ZERO) {
        // The earning's own lot first, then the usable lots oldest first.
        let mut order: Vec<&PointsLot> = lots.iter().filter(|l| l.id == earned_lot && l.remaining > Points::ZERO).collect();
        let mut others: Vec<&PointsLot> = lots.iter().filter(|l| l.id != earned_lot && l.usable_at(now)).collect();
        others.sort_by_key(|l| (l.opened_at, l.id));
        order.extend(others);
        let mut left = earned;
        for lot in order {
            if left == Points::ZERO {
                break;
            }
            let take = left.min(lot.remaining);
            entries.push(change(lot.id, Points::ZERO - take, PointsKind::EarningReversed(EarnSource::Receipt), now, version));
            left = left - take;
        }
        if left > Points::ZERO {
            let available = lots.iter().filter(|l| l.id == earned_lot || l.usable_at(now)).fold(Points::ZERO, |s, l| s + l.remaining);
            return Err(RulesError::InsufficientPoints { wanted: earned, available });
        }
    }
    Ok(entries)
}
