//! Requests from outlet terminals (the pos-bridge of a bar, restaurant, hotel desk or showcase):
//! the catalogue, pricing a ticket, settling it, voiding or refunding it.
//!
//! Key decision: this file only translates between the wire and [`crate::ledger::outlet`]; the
//! rules' refusals become `Refused` (the exclusion gate) or `Failed` with a code the bridge maps
//! to an HTTP status (`Declined` for limits and too few points, `NotFound` for an unknown
//! article, `Invalid` for tenders that do not add up). Only bar terminals may ask.
//!
//! Not here: the offline path (a cash ticket arrives as a `Purchase` event through `ingest`).

use club_rules::RulesError;
use club_rules::earning::{Tender, TenderKind};
use floor_protocol::{
    CardNumber, CatalogueArticle, ErrorCode, OutletTicket, PricedOutletLine, Reply, Reversal, money,
};

use crate::app::AppState;
use crate::catalogue;
use crate::club;
use crate::error::{Error, Result};
use crate::ledger::outlet::{self, ReversalKind, Sale, SaleLine};
use crate::terminals::{Terminal, TerminalKind};

fn outlet_terminal(terminal: &Terminal) -> Result<()> {
    if terminal.kind == TerminalKind::Bar { Ok(()) } else { Err(Error::invalid("outlet requests come from bar terminals")) }
}

/// What the rules said no to, for the terminal.
fn declined(e: RulesError) -> Reply {
    match e {
        RulesError::Refused(code) => Reply::refused(code),
        RulesError::UnknownArticle(sku) => Reply::failed(ErrorCode::NotFound, format!("the article {sku:?} is not in the club catalogue")),
        e @ (RulesError::InsufficientPoints { .. } | RulesError::ShowcaseLimit { .. } | RulesError::NotForPoints(_)) => {
            Reply::failed(ErrorCode::Declined, e.to_string())
        }
        e => Reply::failed(ErrorCode::Invalid, e.to_string()),
    }
}

fn sale(terminal: &Terminal, card: &CardNumber, ticket: OutletTicket) -> Result<Sale> {
    let lines = ticket
        .lines
        .into_iter()
        .map(|l| {
            if l.quantity == 0 {
                return Err(Error::invalid(format!("{}: quantity must be at least 1", l.sku)));
            }
            let unit_price = money(l.unit_price).map_err(|e| Error::invalid(format!("{}: unit price: {e}", l.sku)))?;
            Ok(SaleLine { sku: l.sku, quantity: l.quantity, unit_price, already_discounted: l.already_discounted, pay_with: l.pay_with })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Sale { terminal: terminal.id.clone(), ticket: ticket.id, card: club::normalise_card(card)?, outlet: ticket.outlet, lines })
}

fn wire_lines(priced: &club_rules::pricing::PricedTicket) -> Vec<PricedOutletLine> {
    priced
        .lines
        .iter()
        .map(|l| PricedOutletLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            pay_with: l.pay_with,
            discount_percent: l.discount_percent,
            free_drink: l.free_drink,
            money: l.money.as_decimal(),
            points: l.points.0,
        })
        .collect()
}

pub(super) async fn catalogue(state: &AppState, terminal: &Terminal) -> Result<Reply> {
    outlet_terminal(terminal)?;
    let articles = catalogue::active(&state.store)
        .await?
        .into_iter()
        .map(|a| {
            // Free for members when the catalogue says so or the rules' free-drink list does.
            let free = &state.rules.config().redemption;
            let member_free = a.member_free
                || free.free_drink_skus.contains(&a.sku)
                || free.free_drink_categories.iter().any(|c| c.eq_ignore_ascii_case(&a.category));
            CatalogueArticle {
                sku: a.sku,
                name: a.name,
                category: a.category,
                points_price: a.points_price,
                showcase: a.showcase,
                member_free,
                already_discounted: a.already_discounted,
            }
        })
        .collect();
    Ok(Reply::Catalogue { articles })
}

pub(super) async fn price(state: &AppState, terminal: &Terminal, card: &CardNumber, ticket: OutletTicket) -> Result<Reply> {
    outlet_terminal(terminal)?;
    let sale = sale(terminal, card, ticket)?;
    let now = crate::ledger::time(state.clock.now_ms())?;
    Ok(match outlet::price(&state.store, &state.rules, &sale, now).await? {
        Ok(p) => Reply::OutletPriced {
            tier: p.tier,
            lines: wire_lines(&p.ticket),
            money_due: p.ticket.money_due.as_decimal(),
            points_due: p.ticket.points_due.0,
            points_available: p.points_available.0,
        },
        Err(e) => declined(e),
    })
}

pub(super) async fn settle(
    state: &AppState,
    terminal: &Terminal,
    card: &CardNumber,
    ticket: OutletTicket,
    tenders: Vec<floor_protocol::Tender>,
    points: i64,
) -> Result<Reply> {
    outlet_terminal(terminal)?;
    let sale = sale(terminal, card, ticket)?;
    if points < 0 {
        return Err(Error::invalid("the points tender cannot be negative"));
    }
    let tenders = tenders
        .into_iter()
        .map(|t| {
            let kind = match t.kind {
                floor_protocol::TenderKind::Cash => TenderKind::Cash,
                floor_protocol::TenderKind::Card => TenderKind::Card,
                floor_protocol::TenderKind::Points => return Err(Error::invalid("points are tendered as `points`, not as money")),
            };
            Ok(Tender { kind, amount: money(t.amount).map_err(Error::Invalid)? })
        })
        .collect::<Result<Vec<_>>>()?;
    let now = crate::ledger::time(state.clock.now_ms())?;
    Ok(match outlet::settle(&state.store, &state.rules, &sale, &tenders, club_rules::Points(points), now).await? {
        Ok(s) => Reply::OutletSettled {
            ticket: s.ticket,
            lines: wire_lines(&s.priced),
            money_due: s.priced.money_due.as_decimal(),
            points_spent: s.points_spent.0,
            points_earned: s.points_earned.0,
            points_balance: s.points_balance.0,
            repeated: s.repeated,
        },
        Err(e) => declined(e),
    })
}

pub(super) async fn reverse(state: &AppState, terminal: &Terminal, ticket: &str, reversal: Reversal) -> Result<Reply> {
    outlet_terminal(terminal)?;
    let kind = match reversal {
        Reversal::Void => ReversalKind::Void,
        Reversal::Refund => ReversalKind::Refund,
    };
    let now = crate::ledger::time(state.clock.now_ms())?;
    Ok(match outlet::reverse(&state.store, &state.rules, &terminal.id, ticket, kind, now).await? {
        Ok(r) => Reply::OutletReversed {
            ticket: r.ticket,
            reversal,
            points_returned: r.points_returned.0,
            points_taken_back: r.points_taken_back.0,
            points_balance: r.points_balance.0,
            repeated: r.repeated,
        },
        Err(e) => declined(e),
    })
}
