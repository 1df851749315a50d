//! Outlets: pricing, settling, voiding and refunding a member's ticket at a bar, restaurant,
//! hotel desk or showcase.
//!
//! Key decisions:
//! - One transaction per operation under the member's lock; the rules (`club_rules::pricing`)
//!   decide prices, discounts, free drinks, the showcase limit and the points spent; the cash
//!   part earns through [`super::apply_receipt`] under the key `receipt:<terminal>:<ticket>`,
//!   the same key a `Purchase` event recorded offline for that ticket uses, so a ticket earns
//!   once whichever way it reaches the server.
//! - A ticket is idempotent by (terminal, ticket number): settling it again with the same content
//!   answers the first settlement (`repeated`), with other content is a conflict. The ticket row
//!   keeps the request and the first answer; its points entries are keyed `outlet:<row id>:...`.
//! - A void or refund gives the spent points back into the lots they came from and takes back
//!   what the ticket earned (`pricing::reverse`); a second one changes nothing.
//! - The showcase limit counts the showcase articles of the member's tickets settled on the same
//!   gaming day (`club_rules` calendar: the casino's time zone, the day starting at 06:00 local)
//!   and not reversed.
//!
//! Not here: money prices (the till's, per line), the POS protocol, stock.

use chrono::{DateTime, Utc};
use club_rules::earning::{Receipt, ReceiptLine, Tender};
use club_rules::pricing::{self, Outlet, PayWith, PricedTicket, SettledPoints, Ticket, TicketLine};
use club_rules::{LotId, Money, Points, RefusalCode, Rules, RulesError, Tier};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use super::{Decision, Origin, load_member, millis, points_lots, write_points};
use crate::audit::{self, Actor};
use crate::catalogue;
use crate::club;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// A line as the till rang it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub sku: String,
    pub quantity: u32,
    /// The till's money price per unit, before any member discount.
    pub unit_price: Money,
    /// The till says the article already carries a discount.
    pub already_discounted: bool,
    pub pay_with: PayWith,
}

/// A member's ticket at an outlet terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub terminal: String,
    /// The till's ticket number, unique per terminal.
    pub ticket: String,
    /// The member's card as read (normalised by the server).
    pub card: String,
    pub outlet: Outlet,
    pub lines: Vec<SaleLine>,
}

/// A ticket priced for a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    pub tier: Tier,
    pub ticket: PricedTicket,
    /// What the member can spend now (the daily limit).
    pub points_available: Points,
}

/// A settled ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub ticket: String,
    pub priced: PricedTicket,
    pub points_spent: Points,
    pub points_earned: Points,
    pub points_balance: Points,
    /// Already settled before: this is the first answer.
    pub repeated: bool,
}

/// How a ticket is taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalKind {
    Void,
    Refund,
}

/// A voided or refunded ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversed {
    pub ticket: String,
    pub reversal: ReversalKind,
    pub points_returned: Points,
    pub points_taken_back: Points,
    pub points_balance: Points,
    /// Already reversed before: nothing changed now.
    pub repeated: bool,
}

fn check_ticket_number(ticket: &str) -> Result<()> {
    let ok = !ticket.is_empty()
        && ticket.len() <= 64
        && ticket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(Error::invalid("a ticket number is 1-64 letters, digits, '-', '_' or '.'")) }
}

/// The gaming day a showcase article counts in.
fn day(rules: &Rules, now: DateTime<Utc>) -> String {
    rules.config().calendar.gaming_day(now).to_string()
}

/// The rules' catalogue and ticket for a sale: every SKU must be an active article; showcase
/// articles go on showcase tickets and nothing else does; one SKU, one price per ticket.
async fn rules_view(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    sale: &Sale,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<Decision<(Vec<pricing::Article>, Ticket, u32)>> {
    if sale.lines.is_empty() {
        return Err(Error::invalid("a ticket needs at least one line"));
    }
    let mut articles: Vec<pricing::Article> = Vec::new();
    let mut showcase_items = 0u32;
    for line in &sale.lines {
        let Some(article) = catalogue::get_in(tx, &line.sku).await?.filter(|a| a.active) else {
            return Ok(Err(RulesError::UnknownArticle(line.sku.clone())));
        };
        if article.showcase != (sale.outlet == Outlet::Showcase) {
            return Err(Error::invalid(format!(
                "{}: showcase articles are sold on showcase tickets, and only they are",
                line.sku
            )));
        }
        if article.showcase {
            showcase_items = showcase_items.saturating_add(line.quantity);
        }
        let priced = article.for_pricing(line.unit_price, line.already_discounted);
        match articles.iter().find(|a| a.sku == priced.sku) {
            Some(same) if *same != priced => {
                return Err(Error::invalid(format!("{}: one article, one price per ticket", line.sku)));
            }
            Some(_) => {}
            None => articles.push(priced),
        }
    }
    let taken: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(showcase_items), 0) AS BIGINT) FROM outlet_tickets \
         WHERE member_id = $1 AND day = $2 AND showcase_items > 0 AND reversed_at IS NULL",
    )
    .bind(member_id)
    .bind(day(rules, now))
    .fetch_one(&mut **tx)
    .await?;
    let ticket = Ticket {
        outlet: sale.outlet,
        lines: sale.lines.iter().map(|l| TicketLine { sku: l.sku.clone(), quantity: l.quantity, pay_with: l.pay_with }).collect(),
        showcase_taken_today: u32::try_from(taken).unwrap_or(u32::MAX),
    };
    Ok(Ok((articles, ticket, showcase_items)))
}

/// Prices a sale for the card's holder at `now`. Changes nothing.
pub async fn price(store: &Store, rules: &Rules, sale: &Sale, now: DateTime<Utc>) -> Result<Decision<Priced>> {
    check_ticket_number(&sale.ticket)?;
    let mut tx = store.read().begin().await?;
    let Some(holder) = club::card_holder(&mut tx, &sale.card, millis(now)).await? else {
        return Ok(Err(RulesError::Refused(RefusalCode::UnknownCard)));
    };
    let member = load_member(&mut tx, rules, holder.member_id, Some(holder.card_id), now).await?.member;
    let (catalogue, ticket, _) = match rules_view(&mut tx, rules, sale, holder.member_id, now).await? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let lots = points_lots(&mut tx, holder.member_id).await?;
    tx.rollback().await?;
    let priced = match pricing::price(rules, &member, &catalogue, &ticket, now) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let available = if member.gate(now).is_ok() { club_rules::lots::available(&lots, now) } else { Points::ZERO };
    Ok(Ok(Priced { tier: member.tier, ticket: priced, points_available: available }))
}

/// The earning key shared with the `Purchase` event of the same ticket.
pub fn receipt_key(terminal: &str, ticket: &str) -> String {
    format!("receipt:{terminal}:{ticket}")
}

async fn points_balance(tx: &mut Transaction<'static, Any>, member_id: i64) -> Result<Points> {
    let p: i64 = sqlx::query_scalar("SELECT points_balance FROM members WHERE id = $1").bind(member_id).fetch_one(&mut **tx).await?;
    Ok(Points(p))
}

/// Settles a sale: the money `tenders` must pay the money due and `points` must be the points
/// due; the points are spent oldest lot first and the cash earns. Audited as the terminal.
pub async fn settle(
    store: &Store,
    rules: &Rules,
    sale: &Sale,
    tenders: &[Tender],
    points: Points,
    now: DateTime<Utc>,
) -> Result<Decision<Settled>> {
    check_ticket_number(&sale.ticket)?;
    let request = serde_json::to_string(&(sale, tenders, points)).expect("a sale serialises");
    let mut tx = store.begin().await?;
    let Some(holder) = club::card_holder(&mut tx, &sale.card, millis(now)).await? else {
        return Ok(Err(RulesError::Refused(RefusalCode::UnknownCard)));
    };
    store::lock_member(&mut tx, holder.member_id).await?;
    let existing = sqlx::query("SELECT request, reply FROM outlet_tickets WHERE terminal_id = $1 AND ticket = $2")
        .bind(&sale.terminal)
        .bind(&sale.ticket)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = existing {
        if row.try_get::<String, _>("request")? != request {
            return Err(Error::Conflict(format!("ticket {} was already settled with other content", sale.ticket)));
        }
        let mut first: Settled =
            serde_json::from_str(&row.try_get::<String, _>("reply")?).map_err(|e| Error::invalid(format!("stored settlement: {e}")))?;
        first.repeated = true;
        return Ok(Ok(first));
    }
    let key = receipt_key(&sale.terminal, &sale.ticket);
    if super::already_written(&mut tx, &key).await? {
        return Err(Error::Conflict(format!("ticket {} was already recorded as a cash sale", sale.ticket)));
    }
    let member = load_member(&mut tx, rules, holder.member_id, Some(holder.card_id), now).await?.member;
    let (catalogue, ticket, showcase_items) = match rules_view(&mut tx, rules, sale, holder.member_id, now).await? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let lots = points_lots(&mut tx, holder.member_id).await?;
    let settlement = match pricing::settle(rules, &member, &catalogue, &ticket, tenders, &lots, now) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if settlement.ticket.points_due != points {
        return Err(Error::invalid(format!(
            "the points tender is {points} but the ticket needs {} points",
            settlement.ticket.points_due
        )));
    }
    let row_id: i64 = sqlx::query_scalar(
        "INSERT INTO outlet_tickets (terminal_id, ticket, member_id, outlet, day, showcase_items, money_due_cents, points_spent, \
         request, reply, rule_version, settled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10, $11) RETURNING id",
    )
    .bind(&sale.terminal)
    .bind(&sale.ticket)
    .bind(holder.member_id)
    .bind(super::code_of(&sale.outlet))
    .bind(day(rules, now))
    .bind(i64::from(showcase_items))
    .bind(settlement.ticket.money_due.cents())
    .bind(settlement.ticket.points_due.0)
    .bind(&request)
    .bind(rules.version().as_str())
    .bind(millis(now))
    .fetch_one(&mut *tx)
    .await?;
    write_points(&mut tx, holder.member_id, &settlement.points, &Origin { key: Some(format!("outlet:{row_id}:spend")), ..Origin::default() })
        .await?;
    // The cash part earns by the one receipt rule, written by the one receipt writer.
    let receipt = Receipt {
        outlet: sale.outlet,
        lines: settlement
            .ticket
            .lines
            .iter()
            .filter(|l| l.pay_with == PayWith::Money)
            .map(|l| ReceiptLine { category: l.category.clone(), amount: l.money })
            .collect(),
        tenders: tenders.to_vec(),
    };
    let earned = match super::apply_receipt(&mut tx, rules, holder.member_id, Some(holder.card_id), &receipt, now, None, &key).await? {
        Some(Ok(earning)) => earning.points(),
        Some(Err(e)) => return Ok(Err(e)),
        None => return Err(Error::Conflict(format!("ticket {} was already recorded as a cash sale", sale.ticket))),
    };
    let settled = Settled {
        ticket: sale.ticket.clone(),
        priced: settlement.ticket.clone(),
        points_spent: settlement.ticket.points_due,
        points_earned: earned,
        points_balance: points_balance(&mut tx, holder.member_id).await?,
        repeated: false,
    };
    sqlx::query("UPDATE outlet_tickets SET reply = $1, points_earned = $2, spend_entries = $3 WHERE id = $4")
        .bind(serde_json::to_string(&settled).expect("a settlement serialises"))
        .bind(earned.0)
        .bind(settlement.points.len() as i64)
        .bind(row_id)
        .execute(&mut *tx)
        .await?;
    let actor = Actor::Terminal(sale.terminal.clone());
    let summary = (&sale.outlet, settled.priced.money_due, settled.points_spent, settled.points_earned, rules.version().as_str());
    audit::record(&mut tx, millis(now), &actor, "outlet.settle", &format!("ticket:{}:{}", sale.terminal, sale.ticket), None::<()>, Some(summary))
        .await?;
    tx.commit().await?;
    Ok(Ok(settled))
}

/// One points entry of a ticket, by its key: (points, the lot it changed or opened).
async fn keyed_entry(tx: &mut Transaction<'static, Any>, key: &str) -> Result<Option<(i64, LotId)>> {
    let row = sqlx::query("SELECT id, points, lot_id FROM points_ledger WHERE source_key = $1").bind(key).fetch_optional(&mut **tx).await?;
    row.map(|r| {
        let id: i64 = r.try_get("id")?;
        let lot: Option<i64> = r.try_get("lot_id")?;
        Ok((r.try_get("points")?, LotId(lot.unwrap_or(id))))
    })
    .transpose()
}

/// Voids or refunds the terminal's settled ticket: what it spent goes back into its lots and
/// what it earned is taken back, in one transaction; a second reversal changes nothing.
/// Audited as the terminal.
pub async fn reverse(
    store: &Store,
    rules: &Rules,
    terminal: &str,
    ticket: &str,
    reversal: ReversalKind,
    now: DateTime<Utc>,
) -> Result<Decision<Reversed>> {
    check_ticket_number(ticket)?;
    let mut tx = store.begin().await?;
    let find = "SELECT id, member_id, outlet, spend_entries, reversed_at, reversal_reply FROM outlet_tickets \
                WHERE terminal_id = $1 AND ticket = $2";
    let Some(row) = sqlx::query(find).bind(terminal).bind(ticket).fetch_optional(&mut *tx).await? else {
        return Err(Error::NotFound(format!("no settled ticket {ticket} at this terminal")));
    };
    let member_id: i64 = row.try_get("member_id")?;
    store::lock_member(&mut tx, member_id).await?;
    // Read again under the lock: another reversal may have committed in between.
    let row = sqlx::query(find).bind(terminal).bind(ticket).fetch_one(&mut *tx).await?;
    if row.try_get::<Option<i64>, _>("reversed_at")?.is_some() {
        let stored: String = row.try_get::<Option<String>, _>("reversal_reply")?.unwrap_or_default();
        let mut first: Reversed = serde_json::from_str(&stored).map_err(|e| Error::invalid(format!("stored reversal: {e}")))?;
        first.repeated = true;
        return Ok(Ok(first));
    }
    let row_id: i64 = row.try_get("id")?;
    let outlet: Outlet = serde_json::from_value(serde_json::Value::String(row.try_get("outlet")?))
        .map_err(|e| Error::invalid(format!("stored outlet: {e}")))?;
    let mut spent = Vec::new();
    for i in 0..row.try_get::<i64, _>("spend_entries")? {
        let (points, lot) = keyed_entry(&mut tx, &format!("outlet:{row_id}:spend:{i}"))
            .await?
            .ok_or_else(|| Error::Conflict(format!("ticket {ticket}: a spend entry is missing")))?;
        spent.push((lot, Points(-points)));
    }
    let earned = keyed_entry(&mut tx, &format!("{}:0", receipt_key(terminal, ticket))).await?.map(|(p, lot)| (lot, Points(p)));
    let settled = SettledPoints { outlet, spent, earned };
    let lots = points_lots(&mut tx, member_id).await?;
    let entries = match pricing::reverse(rules, &settled, &lots, now) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    write_points(&mut tx, member_id, &entries, &Origin { key: Some(format!("outlet:{row_id}:reverse")), ..Origin::default() }).await?;
    let returned = settled.spent.iter().fold(Points::ZERO, |s, (_, p)| s + *p);
    let taken_back = settled.earned.map_or(Points::ZERO, |(_, p)| p);
    let reversed = Reversed {
        ticket: ticket.to_owned(),
        reversal,
        points_returned: returned,
        points_taken_back: taken_back,
        points_balance: points_balance(&mut tx, member_id).await?,
        repeated: false,
    };
    let n = sqlx::query(
        "UPDATE outlet_tickets SET reversal = $1, reversed_at = $2, reversal_reply = $3 WHERE id = $4 AND reversed_at IS NULL",
    )
    .bind(super::code_of(&reversal))
    .bind(millis(now))
    .bind(serde_json::to_string(&reversed).expect("a reversal serialises"))
    .bind(row_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!("ticket {ticket} was reversed meanwhile")));
    }
    let actor = Actor::Terminal(terminal.to_owned());
    let action = match reversal {
        ReversalKind::Void => "outlet.void",
        ReversalKind::Refund => "outlet.refund",
    };
    audit::record(&mut tx, millis(now), &actor, action, &format!("ticket:{terminal}:{ticket}"), None::<()>, Some((returned, taken_back)))
        .await?;
    tx.commit().await?;
    Ok(Ok(reversed))
}
