//! The staff side of the online i-Account: the identity verification queue (reception), held and
//! pending withdrawals (manager), closing the account of a player found to be a minor (manager),
//! game server registration (administrator) and the bank statement import (cashier desk).
//!
//! Key decision: the handlers only read forms and show decisions; every change is made by the
//! i-Account's own functions (`iaccount::register`, `iaccount::cashier`, `iaccount::wallet`),
//! which audit it in the same transaction as the change. Withdrawal decisions are for managers
//! only, so a cashier never approves a payout they may have taken in; game servers are for the
//! administrator only, because a game server's secret can credit wins, and the manager who
//! approves payouts must not also be able to create a source of winnings.
//!
//! Not here: the cash a desk moves for an online account (`consoles::cashier`).

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{done, money, uploaded, when};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::iaccount::cashier::{self, LineOutcome, WithdrawalMethod, WithdrawalState};
use crate::iaccount::{register, wallet};
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    let reception = Access::Roles(roles::RECEPTION);
    let manager = Access::Roles(roles::MANAGER);
    let admin = Access::Roles(roles::GAME_SERVERS);
    let cashier = Access::Roles(roles::CASHIER);
    vec![
        Route { method: Method::GET, path: "/iaccount/verification", access: reception, handler: get(queue_page) },
        Route { method: Method::POST, path: "/iaccount/verification/{id}/verify", access: reception, handler: post(verify) },
        Route { method: Method::POST, path: "/iaccount/verification/{id}/refuse", access: reception, handler: post(refuse) },
        Route { method: Method::GET, path: "/iaccount/withdrawals", access: manager, handler: get(withdrawals_page) },
        Route { method: Method::POST, path: "/iaccount/withdrawals/{id}/approve", access: manager, handler: post(approve) },
        Route { method: Method::POST, path: "/iaccount/withdrawals/{id}/reject", access: manager, handler: post(reject) },
        Route { method: Method::POST, path: "/iaccount/withdrawals/{id}/paid", access: manager, handler: post(paid) },
        Route { method: Method::GET, path: "/iaccount/accounts", access: manager, handler: get(accounts_page) },
        Route { method: Method::POST, path: "/iaccount/accounts/{id}/minor", access: manager, handler: post(close_minor) },
        Route { method: Method::GET, path: "/iaccount/game-servers", access: admin, handler: get(game_servers_page) },
        Route { method: Method::POST, path: "/iaccount/game-servers", access: admin, handler: post(add_game_server) },
        Route { method: Method::POST, path: "/iaccount/game-servers/{id}/disable", access: admin, handler: post(disable_game_server) },
        Route { method: Method::GET, path: "/iaccount/bank", access: cashier, handler: get(bank_page) },
        Route { method: Method::POST, path: "/iaccount/bank", access: cashier, handler: post(bank_import) },
    ]
}

fn page_or_error<T: Template>(r: Result<T>) -> Response {
    match r {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

// ---- identity verification (reception) ---------------------------------------------------------

struct QueueRow {
    account_id: i64,
    username: String,
    name: String,
    birth_date: String,
    document: String,
    registered: String,
}

#[derive(Template)]
#[template(path = "iaccount/verification.html")]
struct QueuePage {
    ctx: Ctx,
    rows: Vec<QueueRow>,
}

async fn queue_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let result = async {
        let rows = register::verification_queue(&state.store)
            .await?
            .into_iter()
            .map(|q| QueueRow {
                account_id: q.account_id,
                username: q.username,
                name: q.name,
                birth_date: q.birth_date,
                document: format!("{} {}", q.id_doc_type.unwrap_or_default(), q.id_doc_number.unwrap_or_default()).trim().to_owned(),
                registered: when(&state, q.registered_at),
            })
            .collect();
        Ok(QueuePage { ctx: Ctx::staff(&state, &user, "/iaccount/verification").await, rows })
    }
    .await;
    page_or_error(result)
}

async fn verify(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = register::verify(&state.store, id, &user.actor(), now).await.map(|player_no| user.tr().fmt("iaccount.verified", &[("player_no", &player_no)]));
    done(&state, &user, result, "/iaccount/verification").await
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn refuse(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>, Form(f): Form<ReasonForm>) -> Response {
    let now = state.clock.now_ms();
    let result = register::refuse(&state.store, id, &f.reason, &user.actor(), now).await.map(|()| user.tr().get("iaccount.refused").to_owned());
    done(&state, &user, result, "/iaccount/verification").await
}

// ---- a player found to be a minor (manager) -----------------------------------------------------

struct AccountRow {
    account_id: i64,
    player_no: String,
    username: String,
    name: String,
    birth_date: String,
    state: String,
    closable: bool,
}

#[derive(Template)]
#[template(path = "iaccount/accounts.html")]
struct AccountsPage {
    ctx: Ctx,
    q: String,
    rows: Vec<AccountRow>,
}

#[derive(Deserialize)]
struct AccountsQuery {
    #[serde(default)]
    q: String,
}

async fn accounts_page(State(state): State<AppState>, user: StaffUser, Query(query): Query<AccountsQuery>) -> Response {
    let result = async {
        let t = user.tr();
        let rows = register::find_accounts(&state.store, &query.q)
            .await?
            .into_iter()
            .map(|f| AccountRow {
                account_id: f.account_id,
                player_no: f.player_no.unwrap_or_default(),
                username: f.username,
                name: f.name,
                birth_date: f.birth_date,
                state: t.get(&format!("account.state_{}", f.state.code())).to_owned(),
                closable: f.state != crate::iaccount::AccountState::Closed,
            })
            .collect();
        Ok(AccountsPage { ctx: Ctx::staff(&state, &user, "/iaccount/accounts").await, q: query.q, rows })
    }
    .await;
    page_or_error(result)
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// Irreversible (the personal data are deleted), so the form must say so.
async fn close_minor(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>, Form(f): Form<ConfirmForm>) -> Response {
    let now = state.clock.now_ms();
    let result = if f.confirm == "yes" {
        register::close_minor(&state.store, &state.rules, id, &user.actor(), now).await.map(|()| user.tr().get("iaccount.minor_closed").to_owned())
    } else {
        Err(Error::invalid(user.tr().get("iaccount.minor_confirm_needed")))
    };
    done(&state, &user, result, "/iaccount/accounts").await
}

// ---- withdrawals (manager) ----------------------------------------------------------------------

struct WithdrawalRow {
    id: i64,
    player: String,
    name: String,
    method: &'static str,
    iban: String,
    amount: String,
    in_review: bool,
    requested: String,
}

#[derive(Template)]
#[template(path = "iaccount/withdrawals.html")]
struct WithdrawalsPage {
    ctx: Ctx,
    rows: Vec<WithdrawalRow>,
    intro: String,
}

async fn withdrawals_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let result = async {
        let rows = cashier::open_withdrawals(&state.store)
            .await?
            .into_iter()
            .map(|w| WithdrawalRow {
                id: w.id,
                player: w.player_no.unwrap_or_default(),
                name: w.name,
                method: match w.method {
                    WithdrawalMethod::Bank => "iaccount.method_bank",
                    WithdrawalMethod::Desk => "iaccount.method_desk",
                },
                iban: w.iban.unwrap_or_default(),
                amount: money(&w.amount),
                in_review: w.state == WithdrawalState::Review,
                requested: when(&state, w.requested_at),
            })
            .collect();
        let intro = user.tr().fmt("iaccount.withdrawals_intro", &[("threshold", &money(&cashier::aml_review_threshold()))]);
        Ok(WithdrawalsPage { ctx: Ctx::staff(&state, &user, "/iaccount/withdrawals").await, rows, intro })
    }
    .await;
    page_or_error(result)
}

async fn approve(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = cashier::review_withdrawal(&state.store, id, true, &user.actor(), now).await.map(|()| user.tr().get("iaccount.approved").to_owned());
    done(&state, &user, result, "/iaccount/withdrawals").await
}

async fn reject(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = cashier::review_withdrawal(&state.store, id, false, &user.actor(), now).await.map(|()| user.tr().get("iaccount.rejected").to_owned());
    done(&state, &user, result, "/iaccount/withdrawals").await
}

async fn paid(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    // Only a bank transfer is marked paid here: cash is handed over, and recorded, at a desk.
    let result = cashier::mark_paid(&state.store, &state.rules, id, WithdrawalMethod::Bank, &user.actor(), now).await.map(|_| user.tr().get("iaccount.marked_paid").to_owned());
    done(&state, &user, result, "/iaccount/withdrawals").await
}

// ---- game servers (administrator) ---------------------------------------------------------------

struct GameServerView {
    id: String,
    name: String,
    launch_url: String,
    registered: String,
    disabled: Option<String>,
}

#[derive(Template)]
#[template(path = "iaccount/game_servers.html")]
struct GameServersPage {
    ctx: Ctx,
    servers: Vec<GameServerView>,
    /// A server just registered: its id and secret, shown once.
    secret: Option<(String, String)>,
}

async fn game_servers_list(state: &AppState) -> Result<Vec<GameServerView>> {
    Ok(wallet::game_servers(&state.store)
        .await?
        .into_iter()
        .map(|g| GameServerView {
            registered: when(state, g.created_at),
            disabled: g.revoked_at.map(|t| when(state, t)),
            id: g.id,
            name: g.name,
            launch_url: g.launch_url.unwrap_or_default(),
        })
        .collect())
}

async fn game_servers_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let result = async { Ok(GameServersPage { ctx: Ctx::staff(&state, &user, "/iaccount/game-servers").await, servers: game_servers_list(&state).await?, secret: None }) }.await;
    page_or_error(result)
}

#[derive(Deserialize)]
struct GameServerForm {
    id: String,
    name: String,
    #[serde(default)]
    launch_url: String,
}

async fn add_game_server(State(state): State<AppState>, user: StaffUser, Form(f): Form<GameServerForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let id = f.id.trim();
        let valid_id = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_id {
            return Err(Error::invalid(user.tr().get("iaccount.game_server_id_rule")));
        }
        let launch = f.launch_url.trim();
        if !(launch.is_empty() || launch.starts_with("https://") || launch.starts_with("http://")) {
            return Err(Error::invalid(user.tr().get("iaccount.launch_url_rule")));
        }
        let secret = wallet::new_game_server_secret();
        let launch = (!launch.is_empty()).then_some(launch);
        wallet::add_game_server(&state.store, id, f.name.trim(), &secret, launch, &user.actor(), now).await?;
        Ok((id.to_owned(), secret))
    }
    .await;
    match result {
        // The secret is shown once, on this answer, never in a session's message or a log.
        Ok(secret) => match game_servers_list(&state).await {
            Ok(servers) => render(&GameServersPage { ctx: Ctx::for_user(&user, "/iaccount/game-servers"), servers, secret: Some(secret) }),
            Err(e) => e.into_response(),
        },
        Err(e) => done(&state, &user, Err(e), "/iaccount/game-servers").await,
    }
}

async fn disable_game_server(State(state): State<AppState>, user: StaffUser, Path(id): Path<String>) -> Response {
    let now = state.clock.now_ms();
    let result = wallet::disable_game_server(&state.store, &id, &user.actor(), now).await.map(|()| user.tr().get("iaccount.game_server_disabled").to_owned());
    done(&state, &user, result, "/iaccount/game-servers").await
}

// ---- bank statement import (cashier desk) -------------------------------------------------------

struct LineView {
    bank_ref: String,
    booked_on: String,
    amount: String,
    reference: String,
    credited: bool,
    /// Catalogue key of what became of the line.
    outcome: &'static str,
}

#[derive(Template)]
#[template(path = "iaccount/bank.html")]
struct BankPage {
    ctx: Ctx,
    /// The summary and the lines of the file just imported.
    result: Option<(String, Vec<LineView>)>,
}

async fn bank_page(State(state): State<AppState>, user: StaffUser) -> Response {
    render(&BankPage { ctx: Ctx::staff(&state, &user, "/iaccount/bank").await, result: None })
}

async fn bank_import(State(state): State<AppState>, user: StaffUser, m: Multipart) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let bytes = uploaded(m).await?;
        let text = String::from_utf8(bytes).map_err(|_| Error::invalid(t.get("iaccount.not_text")))?;
        cashier::import_bank_statement(&state.store, &text, &user.actor(), now).await
    }
    .await;
    match result {
        Ok(imported) => {
            let summary = t.fmt(
                "iaccount.imported",
                &[("credited", &imported.credited.to_string()), ("unmatched", &imported.unmatched.to_string()), ("repeated", &imported.repeated.to_string())],
            );
            let lines = imported
                .lines
                .into_iter()
                .map(|l| LineView {
                    credited: matches!(l.outcome, LineOutcome::Credited { .. }),
                    outcome: match l.outcome {
                        LineOutcome::Credited { .. } => "iaccount.line_credited",
                        LineOutcome::NoReference => "iaccount.line_no_reference",
                        LineOutcome::NoSuchPlayer => "iaccount.line_no_such_player",
                        LineOutcome::Repeated => "iaccount.line_repeated",
                    },
                    bank_ref: l.bank_ref,
                    booked_on: l.booked_on,
                    amount: money(&l.amount),
                    reference: l.reference,
                })
                .collect();
            render(&BankPage { ctx: Ctx::for_user(&user, "/iaccount/bank"), result: Some((summary, lines)) })
        }
        Err(e) => done(&state, &user, Err(e), "/iaccount/bank").await,
    }
}
