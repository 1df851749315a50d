//! Requests: questions a person at a terminal is waiting for, answered at once (not sequenced,
//! not stored as events). Each kind of request lives in its own function below; one that changes
//! anything is idempotent on a key the request names, and writes the audit log as the terminal.

use club_rules::RefusalCode;
use floor_protocol::{CardNumber, ErrorCode, Reply, Request};

use crate::app::AppState;
use crate::club;
use crate::error::Error;
use crate::ledger;
use crate::terminals::Terminal;

/// Answers one request. Never fails: a problem becomes a `Failed` reply the terminal can show.
pub async fn answer(state: &AppState, terminal: &Terminal, request: Request) -> Reply {
    let kind = request_kind(&request);
    let result = match request {
        Request::Balance { card } => balance(state, &card).await,
        Request::Catalogue => super::outlet::catalogue(state, terminal).await,
        Request::OutletPrice { card, ticket } => super::outlet::price(state, terminal, &card, ticket).await,
        Request::OutletSettle { card, ticket, tenders, points } => {
            super::outlet::settle(state, terminal, &card, ticket, tenders, points).await
        }
        Request::OutletReverse { ticket, reversal } => super::outlet::reverse(state, terminal, &ticket, reversal).await,
    };
    let reply = result.unwrap_or_else(|e| failure(&e));
    let label = match &reply {
        Reply::Refused { .. } => "refused",
        Reply::Failed { .. } => "failed",
        _ => "ok",
    };
    metrics::counter!("floor_gateway_requests_total", "kind" => kind, "result" => label).increment(1);
    tracing::debug!(terminal = %terminal.id, kind, result = label, "request answered");
    reply
}

fn request_kind(r: &Request) -> &'static str {
    match r {
        Request::Balance { .. } => "balance",
        Request::Catalogue => "catalogue",
        Request::OutletPrice { .. } => "outlet_price",
        Request::OutletSettle { .. } => "outlet_settle",
        Request::OutletReverse { .. } => "outlet_reverse",
    }
}

/// Maps a server error to what the terminal may show: the detail of an internal failure stays in
/// the server's log.
fn failure(e: &Error) -> Reply {
    match e {
        Error::Invalid(m) => Reply::failed(ErrorCode::Invalid, m.clone()),
        Error::NotFound(m) => Reply::failed(ErrorCode::NotFound, m.clone()),
        Error::Conflict(m) => Reply::failed(ErrorCode::Conflict, m.clone()),
        other => {
            tracing::error!(error = %other, "request failed");
            Reply::failed(ErrorCode::Unavailable, "not possible right now; try again")
        }
    }
}

async fn balance(state: &AppState, card: &CardNumber) -> crate::error::Result<Reply> {
    let number = club::normalise_card(card)?;
    let now = state.clock.now_ms();
    let mut tx = state.store.read().begin().await?;
    let holder = club::card_holder(&mut tx, &number, now).await?;
    tx.rollback().await?;
    let Some(h) = holder else {
        return Ok(Reply::refused(RefusalCode::UnknownCard));
    };
    if let Err(code) = club::card_in_decision(&h) {
        return Ok(Reply::refused(code));
    }
    let b = ledger::balances(&state.store, h.member_id).await?;
    Ok(Reply::Balance { name: h.first_name, tier: b.tier, points: b.points.0, free_play: b.free_play.as_decimal() })
}
