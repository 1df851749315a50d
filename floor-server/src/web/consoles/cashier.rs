//! The cashier desk: find the member, check their identity, redeem points for free play at the
//! desk, and the cash a person moved today (warning at the reporting threshold) with the list of
//! reportable days.
//!
//! The online account's cash deposits, withdrawals (also those approved after review, paid out
//! here) and activation vouchers are moved by the i-Account's desk functions (`iaccount::cashier`)
//! after the identity check; they record the cash for the person's gaming day in the movement's
//! own transaction, and the desk shows the day's total they return.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use club_rules::{Money, Points};
use serde::Deserialize;

use super::{MemberView, done, member_by_number, member_view, money, parse_money, refusal_text};
use crate::app::AppState;
use crate::cashdesk::{self, CashTotal, REPORT_THRESHOLD_CENTS};
use crate::error::{Error, Result};
use crate::iaccount::WalletError;
use crate::iaccount::cashier::{self as iaccount_cashier, WithdrawalState};
use crate::ledger;
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    let c = Access::Roles(roles::CASHIER);
    vec![
        Route { method: Method::GET, path: "/cashier", access: c, handler: get(desk_page) },
        Route { method: Method::POST, path: "/cashier/member/{id}/identity", access: c, handler: post(identity) },
        Route { method: Method::POST, path: "/cashier/member/{id}/cashback", access: c, handler: post(cashback) },
        Route { method: Method::GET, path: "/cashier/reports", access: c, handler: get(reports_page) },
        Route { method: Method::POST, path: "/cashier/member/{id}/deposit", access: c, handler: post(online_deposit) },
        Route { method: Method::POST, path: "/cashier/member/{id}/withdraw", access: c, handler: post(online_withdrawal) },
        Route { method: Method::POST, path: "/cashier/member/{id}/voucher", access: c, handler: post(voucher) },
        Route { method: Method::POST, path: "/cashier/member/{id}/withdrawal/{wid}/pay", access: c, handler: post(pay_approved) },
    ]
}

#[derive(Deserialize, Default)]
struct DeskQuery {
    #[serde(default)]
    number: String,
    #[serde(default)]
    member: Option<i64>,
}

#[derive(Template)]
#[template(path = "cashier/desk.html")]
struct DeskPage {
    ctx: Ctx,
    number: String,
    member: Option<MemberView>,
    identity_ok: bool,
    day_total: String,
    over_threshold: bool,
    warning_text: String,
    not_found: bool,
    /// The online account's withdrawable balance, when the person has an account.
    online: Option<String>,
    /// Desk withdrawals approved after review, waiting to be paid out here: (id, amount).
    payable: Vec<(i64, String)>,
    /// A voucher just sold: its code (shown once) and the message.
    voucher: Option<(String, String)>,
}

async fn desk_page(State(state): State<AppState>, user: StaffUser, Query(q): Query<DeskQuery>) -> Response {
    match load_desk(&state, &user, q, None).await {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

async fn load_desk(state: &AppState, user: &StaffUser, q: DeskQuery, voucher: Option<(String, String)>) -> Result<DeskPage> {
    let now = state.clock.now_ms();
    let member_id = match (q.member, q.number.trim()) {
        (Some(id), _) => Some(id),
        (None, "") => None,
        (None, n) => member_by_number(state, n).await.ok(),
    };
    let not_found = member_id.is_none() && !q.number.trim().is_empty();
    let (member, identity_ok, total, online, payable) = match member_id {
        Some(id) => {
            let m = member_view(state, id).await?;
            let ok = cashdesk::identity_is_fresh(&state.store, m.person_id, &user.actor(), now).await?;
            let total = cashdesk::day_total(&state.store, &state.rules, m.person_id, now).await?;
            let account = online_account(state, m.person_id).await?;
            let payable = match account {
                Some((account, _)) => iaccount_cashier::payable_at_desk(&state.store, account).await?.into_iter().map(|(w, a)| (w, money(&a))).collect(),
                None => Vec::new(),
            };
            (Some(m), ok, total, account.map(|(_, balance)| money(&balance)), payable)
        }
        None => (None, false, Money::ZERO, None, Vec::new()),
    };
    let ctx = if voucher.is_some() { Ctx::for_user(user, "/cashier") } else { Ctx::staff(state, user, "/cashier").await };
    Ok(DeskPage {
        ctx,
        number: q.number.clone(),
        member,
        identity_ok,
        day_total: money(&total),
        over_threshold: total.cents() >= REPORT_THRESHOLD_CENTS,
        warning_text: user.tr().fmt("cashier.over_threshold", &[("threshold", &money(&Money::from_cents(REPORT_THRESHOLD_CENTS)))]),
        not_found,
        online,
        payable,
        voucher,
    })
}

#[derive(Deserialize)]
struct IdentityForm {
    document: String,
    last_digits: String,
}

async fn person_of(state: &AppState, member: i64) -> Result<i64> {
    Ok(member_view(state, member).await?.person_id)
}

async fn identity(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<IdentityForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let person = person_of(&state, member).await?;
        cashdesk::identity_checked(&state.store, person, &f.document, &f.last_digits, &user.actor(), now).await?;
        Ok(user.tr().get("cashier.identity_recorded").to_owned())
    }
    .await;
    done(&state, &user, result, &format!("/cashier?member={member}")).await
}

#[derive(Deserialize)]
struct CashbackForm {
    points: String,
}

async fn cashback(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<CashbackForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        identified(&state, &user, member, now).await?;
        let points: i64 = f.points.trim().parse().map_err(|_| Error::invalid(t.get("cashier.points")))?;
        match ledger::redeem_cashback(&state.store, &state.rules, member, Points(points), &user.actor(), ledger::time(now)?).await? {
            Ok(amount) => Ok(t.fmt("cashier.redeemed", &[("points", &points.to_string()), ("amount", &money(&amount))])),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, &format!("/cashier?member={member}")).await
}

struct ReportRow {
    name: String,
    day: String,
    total: String,
    movements: i64,
}

#[derive(Template)]
#[template(path = "cashier/reports.html")]
struct ReportsPage {
    ctx: Ctx,
    rows: Vec<ReportRow>,
    intro: String,
}

async fn reports_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let from = cashdesk::gaming_day(&state.rules, now - 31 * 86_400_000)?;
        let rows = cashdesk::reportable_days(&state.store, from)
            .await?
            .into_iter()
            .map(|r| ReportRow { name: r.name, day: r.gaming_day, total: money(&r.total), movements: r.movements })
            .collect();
        Ok::<_, Error>(ReportsPage { ctx: Ctx::staff(&state, &user, "/cashier/reports").await, rows, intro: user.tr().fmt("cashier.reports_intro", &[("threshold", &money(&Money::from_cents(REPORT_THRESHOLD_CENTS)))]) })
    }
    .await;
    match result {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

// ---- the online account at the desk (i-Account) -----------------------------------------------

/// The person's online account, if they have one: (id, withdrawable balance).
async fn online_account(state: &AppState, person: i64) -> Result<Option<(i64, Money)>> {
    let Some(id): Option<i64> = sqlx::query_scalar("SELECT id FROM iaccounts WHERE person_id = $1").bind(person).fetch_optional(state.store.read()).await?
    else {
        return Ok(None);
    };
    let account = crate::iaccount::get(&state.store, id).await?;
    Ok(Some((id, account.balances.withdrawable())))
}

#[derive(Deserialize)]
struct AmountForm {
    amount: String,
}

/// The desk's words for a wallet refusal or fault.
fn wallet_error(t: &crate::web::Tr, e: WalletError) -> Error {
    match e {
        WalletError::Refused(r) => Error::invalid(format!("{}: {r}", t.get("error.refused"))),
        WalletError::Fault(e) => e,
    }
}

/// What the desk says of the person's cash for the day after a movement.
fn cash_text(t: &crate::web::Tr, total: &CashTotal) -> String {
    let mut text = t.fmt("cashier.cash_total", &[("total", &money(&total.day_total))]);
    if total.reportable {
        text.push(' ');
        text.push_str(&t.fmt("cashier.over_threshold", &[("threshold", &money(&Money::from_cents(REPORT_THRESHOLD_CENTS)))]));
    }
    text
}

/// The member's person, once this desk has checked their identity within the last minutes.
async fn identified(state: &AppState, user: &StaffUser, member: i64, now: i64) -> Result<i64> {
    let person = person_of(state, member).await?;
    if !cashdesk::identity_is_fresh(&state.store, person, &user.actor(), now).await? {
        return Err(Error::invalid(user.tr().get("cashier.identity_first")));
    }
    Ok(person)
}

/// The checks every cash form makes first: the member's person, a fresh identity check, an amount.
async fn cash_form(state: &AppState, user: &StaffUser, member: i64, amount: &str, now: i64) -> Result<(i64, Money)> {
    let t = user.tr();
    let person = identified(state, user, member, now).await?;
    let amount = parse_money(amount)?;
    if amount.cents() <= 0 {
        return Err(Error::invalid(t.get("error.invalid")));
    }
    Ok((person, amount))
}

async fn online_deposit(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<AmountForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let (person, amount) = cash_form(&state, &user, member, &f.amount, now).await?;
        let (account, _) = online_account(&state, person).await?.ok_or_else(|| Error::invalid(t.get("cashier.no_online_account")))?;
        let (_, cash) = iaccount_cashier::desk_deposit(&state.store, &state.rules, account, amount, &user.actor(), now).await.map_err(|e| wallet_error(&t, e))?;
        Ok(format!("{} {}", t.fmt("cashier.deposited", &[("amount", &money(&amount))]), cash_text(&t, &cash)))
    }
    .await;
    done(&state, &user, result, &format!("/cashier?member={member}")).await
}

async fn online_withdrawal(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<AmountForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let (person, amount) = cash_form(&state, &user, member, &f.amount, now).await?;
        let (account, _) = online_account(&state, person).await?.ok_or_else(|| Error::invalid(t.get("cashier.no_online_account")))?;
        match iaccount_cashier::desk_withdrawal(&state.store, &state.rules, account, amount, &user.actor(), now).await.map_err(|e| wallet_error(&t, e))? {
            (w, Some(cash)) if w.state == WithdrawalState::Paid => Ok(format!("{} {}", t.fmt("cashier.paid_out", &[("amount", &money(&amount))]), cash_text(&t, &cash))),
            // Held for a manager's review: no cash leaves the desk now.
            _ => Ok(t.get("cashier.withdrawal_review").to_owned()),
        }
    }
    .await;
    done(&state, &user, result, &format!("/cashier?member={member}")).await
}

async fn voucher(State(state): State<AppState>, user: StaffUser, Path(member): Path<i64>, Form(f): Form<AmountForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let (person, amount) = cash_form(&state, &user, member, &f.amount, now).await?;
        let (code, cash) = iaccount_cashier::sell_voucher(&state.store, &state.rules, person, amount, &user.actor(), now).await.map_err(|e| wallet_error(&t, e))?;
        Ok((code, format!("{} {}", t.fmt("cashier.voucher_sold", &[("amount", &money(&amount))]), cash_text(&t, &cash))))
    }
    .await;
    match result {
        // The code is shown once, on this answer, for the buyer's printout (it is stored hashed,
        // and never in a session's message).
        Ok((code, text)) => {
            let q = DeskQuery { number: String::new(), member: Some(member) };
            match load_desk(&state, &user, q, Some((code, text))).await {
                Ok(p) => render(&p),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => done(&state, &user, Err(e), &format!("/cashier?member={member}")).await,
    }
}

/// Pays out at the desk a withdrawal that a manager approved after review, once the identity is
/// checked again: the cash is recorded for the person's day when it leaves the desk.
async fn pay_approved(State(state): State<AppState>, user: StaffUser, Path((member, withdrawal)): Path<(i64, i64)>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let person = identified(&state, &user, member, now).await?;
        let (account, _) = online_account(&state, person).await?.ok_or_else(|| Error::invalid(t.get("cashier.no_online_account")))?;
        // Only this member's own approved desk withdrawals are paid from their desk page.
        let amount = iaccount_cashier::payable_at_desk(&state.store, account)
            .await?
            .into_iter()
            .find_map(|(w, a)| (w == withdrawal).then_some(a))
            .ok_or_else(|| Error::Conflict(t.get("cashier.not_payable").to_owned()))?;
        let cash = iaccount_cashier::mark_paid(&state.store, &state.rules, withdrawal, iaccount_cashier::WithdrawalMethod::Desk, &user.actor(), now).await?.ok_or_else(|| Error::Conflict(t.get("cashier.not_payable").to_owned()))?;
        Ok(format!("{} {}", t.fmt("cashier.paid_out", &[("amount", &money(&amount))]), cash_text(&t, &cash)))
    }
    .await;
    done(&state, &user, result, &format!("/cashier?member={member}")).await
}
