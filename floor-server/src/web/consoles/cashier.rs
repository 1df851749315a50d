//! The cashier desk: find the member, check their identity, redeem points for free play at the
//! desk, and the cash a person moved today (warning at the reporting threshold) with the list of
//! reportable days.
//!
//! The online account's cash deposits, withdrawals and activation vouchers are moved by the
//! i-Account's functions (`floor_server::iaccount`); the desk records their cash with
//! `cashdesk::record_cash` in the same transaction. The page marks where those forms go.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use club_rules::{Money, Points};
use serde::Deserialize;

use super::{MemberView, done, member_by_number, member_view, money, refusal_text};
use crate::app::AppState;
use crate::cashdesk::{self, REPORT_THRESHOLD_CENTS};
use crate::error::{Error, Result};
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
}

async fn desk_page(State(state): State<AppState>, user: StaffUser, Query(q): Query<DeskQuery>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let member_id = match (q.member, q.number.trim()) {
            (Some(id), _) => Some(id),
            (None, "") => None,
            (None, n) => member_by_number(&state, n).await.ok(),
        };
        let not_found = member_id.is_none() && !q.number.trim().is_empty();
        let (member, identity_ok, total) = match member_id {
            Some(id) => {
                let m = member_view(&state, id).await?;
                let ok = cashdesk::identity_is_fresh(&state.store, m.person_id, &user.actor(), now).await?;
                let total = cashdesk::day_total(&state.store, &state.rules, m.person_id, now).await?;
                (Some(m), ok, total)
            }
            None => (None, false, Money::ZERO),
        };
        Ok::<_, Error>(DeskPage {
            ctx: Ctx::staff(&state, &user, "/cashier").await,
            number: q.number.clone(),
            member,
            identity_ok,
            day_total: money(&total),
            over_threshold: total.cents() >= REPORT_THRESHOLD_CENTS,
            warning_text: user.tr().fmt("cashier.over_threshold", &[("threshold", &money(&Money::from_cents(REPORT_THRESHOLD_CENTS)))]),
            not_found,
        })
    }
    .await;
    match result {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
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
        let person = person_of(&state, member).await?;
        if !cashdesk::identity_is_fresh(&state.store, person, &user.actor(), now).await? {
            return Err(Error::invalid(t.get("cashier.identity_first")));
        }
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
