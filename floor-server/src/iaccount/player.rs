//! The player's own pages and JSON API: register, log in, the account page (balances, limits in
//! force, history with printable receipts), deposits (processor, voucher), withdrawals, limits,
//! self-exclusion, closing, marketing opt-out, data export, and starting a game.
//!
//! Key decision: built on the shared web foundation: the player's session is a `PLAYER` row in
//! `web_sessions`; every route but login and registration is declared in `web::table()` with
//! `Access::Player`, so the guard loads the session and checks each form's CSRF token; login and
//! registration, which come before a session, carry a double-submit token (`auth::form_token`)
//! and logins pass the process's player login limit (`auth::PLAYER_LOGIN_LIMIT`) before the
//! account's own lockout; texts come from the catalogues (`account.*`) in every language. Pages
//! are plain HTML without scripts.
//!
//! Not here: the staff side (verification queue, withdrawal review, game servers, bank
//! statements: `web::consoles::iaccount`).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use club_rules::Money;
use club_rules::online::{LimitKind, Period};
use serde::Deserialize;
use sqlx::Row;

use super::cashier::{self, WithdrawalMethod};
use super::register::{self, LoginError, Registration};
use super::{Refusal, WalletError, psp, responsible, wallet};
use crate::app::AppState;
use crate::error::Error;
use crate::web::auth::{PLAYER_LOGIN, PLAYER_LOGIN_LIMIT, PlayerSession, REGISTRATION_LIMIT, form_token, form_token_ok};
use crate::web::session::{self, Flash, PLAYER};
use crate::web::{Access, Lang, Route, Tr};

/// The routes behind the player's session (for `web::table()`).
pub fn routes() -> Vec<Route> {
    let p = Access::Player;
    vec![
        Route { method: Method::GET, path: "/account", access: p, handler: get(home) },
        Route { method: Method::POST, path: "/account/deposit", access: p, handler: post(deposit) },
        Route { method: Method::POST, path: "/account/voucher", access: p, handler: post(voucher) },
        Route { method: Method::POST, path: "/account/withdraw", access: p, handler: post(withdraw) },
        Route { method: Method::POST, path: "/account/withdrawals/cancel", access: p, handler: post(cancel_withdrawal) },
        Route { method: Method::POST, path: "/account/limit", access: p, handler: post(set_limit) },
        Route { method: Method::POST, path: "/account/exclude", access: p, handler: post(exclude) },
        Route { method: Method::POST, path: "/account/close", access: p, handler: post(close) },
        Route { method: Method::POST, path: "/account/confirm", access: p, handler: post(confirm) },
        Route { method: Method::POST, path: "/account/marketing", access: p, handler: post(marketing) },
        Route { method: Method::POST, path: "/account/play", access: p, handler: post(play) },
        Route { method: Method::POST, path: "/account/logout", access: p, handler: post(logout) },
        Route { method: Method::GET, path: "/account/receipt/{id}", access: p, handler: get(receipt) },
        Route { method: Method::GET, path: "/account/export", access: p, handler: get(export) },
        Route { method: Method::GET, path: "/iaccount/api/me", access: p, handler: get(me) },
    ]
}

/// Registration and login: public (merged beside the wallet API, outside the session guard).
pub fn public_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(PLAYER_LOGIN, get(login_page).post(login))
        .route("/account/register", get(register_page).post(register_form))
        .route("/iaccount/api/register", post(register_json))
}

fn lang(headers: &HeaderMap) -> Lang {
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language).unwrap_or_default()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(t: &Tr, title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {}</title><link rel=\"stylesheet\" href=\"/static/club.css\"></head><body>\
         <header class=\"top\"><a class=\"brand\" href=\"/account\">{}</a></header><main>{}</main></body></html>",
        t.code(),
        esc(title),
        esc(t.get("account.brand")),
        esc(t.get("account.brand")),
        body
    ))
}

fn refusal_text(t: &Tr, e: &WalletError) -> String {
    match e {
        WalletError::Refused(r) => match r {
            Refusal::InsufficientFunds { balance } => t.fmt("account.insufficient", &[("balance", &balance.to_string())]),
            Refusal::LimitReached { .. } => t.get("account.limit_reached").to_owned(),
            Refusal::SelfExcluded => t.get("account.self_excluded").to_owned(),
            Refusal::BelowMinimum => t.get("account.below_minimum").to_owned(),
            _ => t.get("account.refused").to_owned(),
        },
        WalletError::Fault(e) => fault_text(t, e),
    }
}

fn fault_text(t: &Tr, e: &Error) -> String {
    match e {
        Error::Invalid(m) | Error::Conflict(m) | Error::NotFound(m) => format!("{}: {m}", t.get("account.refused")),
        _ => t.get("error.internal").to_owned(),
    }
}

fn money(s: &str) -> Option<Money> {
    s.trim().replace(',', ".").parse::<rust_decimal::Decimal>().ok().and_then(|d| Money::from_decimal(d).ok())
}

// ---- public: login and registration ----

/// The cookie of the login and registration forms' double-submit CSRF token (there is no
/// session yet to bind it to).
const FORM_COOKIE: &str = "club_player_form";

/// The login page with a fresh form token, and a message when a try failed.
fn login_body(t: &Tr, jar: CookieJar, headers: &HeaderMap, note: Option<&str>, status: StatusCode) -> Response {
    let (jar, token) = form_token(jar, headers, FORM_COOKIE);
    let note = note.map(|m| format!("<p class=\"flash error\" id=\"message\">{}</p>", esc(m))).unwrap_or_default();
    let html = page(
        t,
        t.get("account.login_title"),
        &format!(
            "<section class=\"card narrow\"><h1>{title}</h1>{note}<form method=\"post\" action=\"{PLAYER_LOGIN}\">\
             <input type=\"hidden\" name=\"form_token\" value=\"{token}\">\
             <label>{u}<input name=\"username\" id=\"username\" autocomplete=\"username\"></label>\
             <label>{p}<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\" id=\"login\">{s}</button></form><p><a href=\"/account/register\" id=\"register\">{r}</a></p></section>",
            title = esc(t.get("account.login_title")),
            token = esc(&token),
            u = esc(t.get("account.username")),
            p = esc(t.get("account.password")),
            s = esc(t.get("account.login")),
            r = esc(t.get("account.register_link")),
        ),
    );
    (status, jar, html).into_response()
}

async fn login_page(headers: HeaderMap, jar: CookieJar) -> Response {
    login_body(&Tr::new(lang(&headers)), jar, &headers, None, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    form_token: String,
}

/// A login: the form's token first, then this process's login rate limit, then the password with
/// the account's lockout (`register::login`).
async fn login(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, Form(f): Form<LoginForm>) -> Response {
    let t = Tr::new(lang(&headers));
    if !form_token_ok(&jar, FORM_COOKIE, &f.form_token) {
        return login_body(&t, jar, &headers, Some(t.get("account.expired")), StatusCode::BAD_REQUEST);
    }
    if !PLAYER_LOGIN_LIMIT.allow() {
        return login_body(&t, jar, &headers, Some(t.get("account.slow_down")), StatusCode::TOO_MANY_REQUESTS);
    }
    let now = state.clock.now_ms();
    match register::login(&state.store, &f.username, &f.password, now).await {
        Ok(Ok(id)) => match session::create(&state.store, &PLAYER, id, now).await {
            Ok((token, _)) => {
                let jar = jar.remove(session::removal(FORM_COOKIE, &headers)).add(session::cookie(PLAYER.cookie, token, &headers));
                (jar, Redirect::to("/account")).into_response()
            }
            Err(e) => e.into_response(),
        },
        Ok(Err(LoginError::Locked)) => login_body(&t, jar, &headers, Some(t.get("account.locked")), StatusCode::UNAUTHORIZED),
        Ok(Err(LoginError::Wrong)) => login_body(&t, jar, &headers, Some(t.get("account.wrong")), StatusCode::UNAUTHORIZED),
        Err(e) => e.into_response(),
    }
}

const REG_FIELDS: &[(&str, &str)] = &[
    ("username", "account.username"),
    ("password", "account.password"),
    ("email", "account.email"),
    ("first_name", "account.first_name"),
    ("last_name", "account.last_name"),
    ("birth_date", "account.birth_date"),
    ("personal_id", "account.personal_id"),
    ("iban", "account.iban"),
    ("phone", "account.phone"),
    ("address", "account.address"),
    ("city", "account.city"),
    ("postal_code", "account.postal_code"),
    ("country", "account.country"),
    ("nationality", "account.nationality"),
    ("id_doc_type", "account.id_doc_type"),
    ("id_doc_number", "account.id_doc_number"),
    ("id_doc_country", "account.id_doc_country"),
    ("id_doc_issuer", "account.id_doc_issuer"),
];

/// The registration form with a fresh form token, and the error of a failed try.
fn register_body(t: &Tr, jar: CookieJar, headers: &HeaderMap, error: Option<&str>, status: StatusCode) -> Response {
    let (jar, token) = form_token(jar, headers, FORM_COOKIE);
    let fields: String = REG_FIELDS
        .iter()
        .map(|(name, key)| {
            let kind = match *name {
                "password" => "password",
                "email" => "email",
                _ => "text",
            };
            let hint = if *name == "birth_date" { " placeholder=\"YYYY-MM-DD\"" } else { "" };
            format!("<label>{}<input name=\"{name}\" id=\"{name}\" type=\"{kind}\"{hint} required></label>", esc(t.get(key)))
        })
        .collect();
    let error = error.map(|e| format!("<p class=\"flash error\" id=\"message\">{}</p>", esc(e))).unwrap_or_default();
    let html = page(
        t,
        t.get("account.register_title"),
        &format!(
            "<section class=\"card narrow\"><h1>{}</h1>{error}<form method=\"post\" action=\"/account/register\">\
             <input type=\"hidden\" name=\"form_token\" value=\"{}\">{fields}\
             <button type=\"submit\" id=\"submit\">{}</button></form></section>",
            esc(t.get("account.register_title")),
            esc(&token),
            esc(t.get("account.register"))
        ),
    );
    (status, jar, html).into_response()
}

async fn register_page(headers: HeaderMap, jar: CookieJar) -> Response {
    register_body(&Tr::new(lang(&headers)), jar, &headers, None, StatusCode::OK)
}

/// The registration form as posted: the registration and the form's token.
#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    form_token: String,
    #[serde(flatten)]
    registration: Registration,
}

/// A registration from the form: refused (and nothing stored) without the form's token.
async fn register_form(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, Form(f): Form<RegisterForm>) -> Response {
    let t = Tr::new(lang(&headers));
    if !form_token_ok(&jar, FORM_COOKIE, &f.form_token) {
        return register_body(&t, jar, &headers, Some(t.get("account.expired")), StatusCode::BAD_REQUEST);
    }
    if !REGISTRATION_LIMIT.allow() {
        return register_body(&t, jar, &headers, Some(t.get("account.slow_down")), StatusCode::TOO_MANY_REQUESTS);
    }
    match register::register(&state.store, &state.rules.config().calendar, &f.registration, state.clock.now_ms()).await {
        Ok(_) => {
            let body = format!(
                "<section class=\"card narrow\"><p id=\"message\">{}</p><p><a href=\"{PLAYER_LOGIN}\">{}</a></p></section>",
                esc(t.get("account.registered")),
                esc(t.get("account.login"))
            );
            (jar.remove(session::removal(FORM_COOKIE, &headers)), page(&t, t.get("account.register_title"), &body)).into_response()
        }
        Err(e) => register_body(&t, jar, &headers, Some(&fault_text(&t, &e)), StatusCode::UNPROCESSABLE_ENTITY),
    }
}

async fn register_json(State(state): State<AppState>, axum::Json(r): axum::Json<Registration>) -> Response {
    if !REGISTRATION_LIMIT.allow() {
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(serde_json::json!({ "error": "too many registrations; try again shortly" }))).into_response();
    }
    match register::register(&state.store, &state.rules.config().calendar, &r, state.clock.now_ms()).await {
        Ok(id) => axum::Json(serde_json::json!({ "account_id": id, "state": "unverified" })).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- the account page ----

async fn home(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession) -> Response {
    let t = Tr::new(lang(&headers));
    let now = state.clock.now_ms();
    let id = s.subject_id;
    let result: crate::Result<String> = async {
        let a = super::get(&state.store, id).await?;
        let flash = session::take_flash(&state.store, &s.id).await?;
        let limits = responsible::limits(&state.store, id, now).await?;
        let info = sqlx::query("SELECT username, player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(state.store.read()).await?;
        let username: String = info.try_get("username")?;
        let player_no: Option<String> = info.try_get("player_no")?;
        let history = sqlx::query(
            "SELECT id, kind, bonus_cents + deposit_cents + winnings_cents AS amount, reference, created_at FROM wallet_ledger \
             WHERE account_id = $1 ORDER BY id DESC LIMIT 50",
        )
        .bind(id)
        .fetch_all(state.store.read())
        .await?;
        let pending = sqlx::query("SELECT id, amount_cents, state FROM withdrawals WHERE account_id = $1 AND state IN ('pending', 'review') ORDER BY id")
            .bind(id)
            .fetch_all(state.store.read())
            .await?;
        let requests = sqlx::query("SELECT id, kind, confirm_by FROM iaccount_requests WHERE account_id = $1 AND confirmed_at IS NULL AND cancelled_at IS NULL AND confirm_by > $2")
            .bind(id)
            .bind(now)
            .fetch_all(state.store.read())
            .await?;
        let csrf = esc(&s.csrf);
        let form = |action: &str, inner: String, button: &str, bid: &str| {
            format!("<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{inner}<button type=\"submit\" id=\"{bid}\">{}</button></form>", esc(t.get(button)))
        };
        let input = |name: &str, key: &str, value: &str| format!("<label>{}<input name=\"{name}\" id=\"{name}\" value=\"{}\"></label>", esc(t.get(key)), esc(value));
        let select = |name: &str, key: &str, options: &[(&str, &str)]| {
            let o: String = options.iter().map(|(v, k)| format!("<option value=\"{v}\">{}</option>", esc(t.get(k)))).collect();
            format!("<label>{}<select name=\"{name}\" id=\"{name}\">{o}</select></label>", esc(t.get(key)))
        };
        let mut b = String::new();
        if let Some(f) = flash {
            b += &format!("<p class=\"flash {}\" role=\"status\" id=\"message\">{}</p>", esc(&f.kind), esc(&f.text));
        }
        b += &format!(
            "<h1>{}</h1><section class=\"card\"><p>{}: <strong id=\"username\">{}</strong> · {}: <span id=\"player-no\">{}</span> · {}: <span id=\"account-state\">{}</span></p>\
             <p>{}: EUR <strong id=\"total\">{}</strong> ({}: <span id=\"bonus\">{}</span>, {}: <span id=\"deposited\">{}</span>, {}: <span id=\"winnings\">{}</span>)</p></section>",
            esc(t.get("account.title")),
            esc(t.get("account.username")),
            esc(&username),
            esc(t.get("account.player_no")),
            esc(player_no.as_deref().unwrap_or("-")),
            esc(t.get("account.state")),
            esc(t.get(&format!("account.state_{}", a.state.code()))),
            esc(t.get("account.balance")),
            a.balances.total().as_decimal(),
            esc(t.get("account.bonus")),
            a.balances.bonus.as_decimal(),
            esc(t.get("account.deposited")),
            a.balances.deposited.as_decimal(),
            esc(t.get("account.winnings")),
            a.balances.winnings.as_decimal(),
        );
        b += "<div class=\"grid\">";
        b += &format!("<section class=\"card\"><h2>{}</h2>{}</section>", esc(t.get("account.play")), form("/account/play", String::new(), "account.play", "play"));
        b += &format!(
            "<section class=\"card\"><h2>{}</h2>{}{}</section>",
            esc(t.get("account.deposit")),
            form("/account/deposit", input("amount", "account.amount", "20.00"), "account.deposit_card", "deposit"),
            form("/account/voucher", input("code", "account.voucher_code", ""), "account.redeem", "redeem"),
        );
        let pending_html: String = pending
            .iter()
            .map(|w| {
                let wid: i64 = w.try_get("id").unwrap_or_default();
                let cents: i64 = w.try_get("amount_cents").unwrap_or_default();
                format!(
                    "<li>EUR {} ({}) {}</li>",
                    Money::from_cents(cents).as_decimal(),
                    esc(t.get(&format!("account.w_{}", w.try_get::<String, _>("state").unwrap_or_default()))),
                    form("/account/withdrawals/cancel", format!("<input type=\"hidden\" name=\"id\" value=\"{wid}\">"), "account.cancel", &format!("cancel-{wid}"))
                )
            })
            .collect();
        b += &format!(
            "<section class=\"card\"><h2>{}</h2>{}<ul id=\"withdrawals\">{pending_html}</ul></section>",
            esc(t.get("account.withdraw")),
            form(
                "/account/withdraw",
                input("amount", "account.amount", "10.00") + &select("method", "account.method", &[("bank", "account.method_bank"), ("desk", "account.method_desk")]),
                "account.withdraw",
                "withdraw"
            ),
        );
        let limits_html: String = limits
            .iter()
            .map(|l| {
                format!(
                    "<li>{} / {}: {}{}</li>",
                    esc(t.get(&format!("account.limit_{}", l.kind.code()))),
                    esc(t.get(&format!("account.period_{}", l.period.code()))),
                    l.amount.map_or_else(|| t.get("account.no_limit").to_owned(), |m| format!("EUR {}", m.as_decimal())),
                    if l.pending { format!(" ({})", esc(t.get("account.pending"))) } else { String::new() }
                )
            })
            .collect();
        b += &format!(
            "<section class=\"card\"><h2>{}</h2><ul id=\"limits\">{limits_html}</ul>{}</section>",
            esc(t.get("account.limits")),
            form(
                "/account/limit",
                select("kind", "account.limit_kind", &[("loss", "account.limit_loss"), ("stake", "account.limit_stake"), ("deposit", "account.limit_deposit")])
                    + &select("period", "account.period", &[("day", "account.period_day"), ("week", "account.period_week"), ("month", "account.period_month")])
                    + &input("limit_amount", "account.amount", ""),
                "account.set_limit",
                "set-limit"
            ),
        );
        let requests_html: String = requests
            .iter()
            .map(|r| {
                let rid: i64 = r.try_get("id").unwrap_or_default();
                form("/account/confirm", format!("<input type=\"hidden\" name=\"id\" value=\"{rid}\">"), &format!("account.confirm_{}", r.try_get::<String, _>("kind").unwrap_or_default()), &format!("confirm-{rid}"))
            })
            .collect();
        b += &format!(
            "<section class=\"card\"><h2>{}</h2>{}{requests_html}{}{}<p><a href=\"/account/export\" id=\"export\">{}</a></p></section>",
            esc(t.get("account.responsible")),
            form("/account/exclude", input("days", "account.days", "30"), "account.exclude", "exclude"),
            form("/account/close", String::new(), "account.close", "close"),
            form("/account/marketing", "<input type=\"hidden\" name=\"opt_out\" value=\"1\">".into(), "account.marketing_opt_out", "marketing"),
            esc(t.get("account.export")),
        );
        b += "</div>";
        let rows: String = history
            .iter()
            .map(|h| {
                let lid: i64 = h.try_get("id").unwrap_or_default();
                let kind: String = h.try_get("kind").unwrap_or_default();
                let amount: i64 = h.try_get("amount").unwrap_or_default();
                let at: i64 = h.try_get("created_at").unwrap_or_default();
                let when = chrono::DateTime::from_timestamp_millis(at).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
                let link = if kind == "bet" || kind == "win" || kind == "rollback" {
                    format!("<a href=\"/account/receipt/{lid}\">{}</a>", esc(t.get("account.receipt")))
                } else {
                    String::new()
                };
                format!("<tr><td>{lid}</td><td>{when}</td><td>{}</td><td class=\"num\">{}</td><td>{link}</td></tr>", esc(t.get(&format!("account.kind_{kind}"))), Money::from_cents(amount).as_decimal())
            })
            .collect();
        b += &format!(
            "<section class=\"card\"><h2>{}</h2><table id=\"history\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>EUR</th><th></th></tr></thead><tbody>{rows}</tbody></table></section>",
            esc(t.get("account.history")),
            esc(t.get("account.when")),
            esc(t.get("account.what")),
        );
        b += &form("/account/logout", String::new(), "account.logout", "logout");
        Ok(b)
    }
    .await;
    match result {
        Ok(body) => page(&t, t.get("account.title"), &body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn back(state: &AppState, s: &session::Session, flash: Flash) -> Response {
    if let Err(e) = session::set_flash(&state.store, &s.id, &flash).await {
        return e.into_response();
    }
    Redirect::to("/account").into_response()
}

#[derive(Deserialize)]
struct AmountForm {
    amount: String,
}

async fn deposit(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<AmountForm>) -> Response {
    let t = Tr::new(lang(&headers));
    let Some(amount) = money(&f.amount) else { return back(&state, &s, Flash::error(t.get("error.invalid"))).await };
    match psp::start_card_deposit(&state.store, &psp::Simulator, s.subject_id, amount, state.clock.now_ms()).await {
        Ok(started) => Redirect::to(&started.payment_page).into_response(),
        Err(e) => back(&state, &s, Flash::error(refusal_text(&t, &e))).await,
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn voucher(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<CodeForm>) -> Response {
    let t = Tr::new(lang(&headers));
    match cashier::redeem_voucher(&state.store, s.subject_id, &f.code, state.clock.now_ms()).await {
        Ok(m) => back(&state, &s, Flash::ok(t.fmt("account.deposited_ok", &[("amount", &m.to_string())]))).await,
        Err(e) => back(&state, &s, Flash::error(refusal_text(&t, &e))).await,
    }
}

#[derive(Deserialize)]
struct WithdrawForm {
    amount: String,
    method: String,
}

async fn withdraw(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<WithdrawForm>) -> Response {
    let t = Tr::new(lang(&headers));
    let method = if f.method == "desk" { WithdrawalMethod::Desk } else { WithdrawalMethod::Bank };
    let Some(amount) = money(&f.amount) else { return back(&state, &s, Flash::error(t.get("error.invalid"))).await };
    match cashier::request_withdrawal(&state.store, s.subject_id, method, amount, state.clock.now_ms()).await {
        Ok(_) => back(&state, &s, Flash::ok(t.get("account.withdrawal_ok"))).await,
        Err(e) => back(&state, &s, Flash::error(refusal_text(&t, &e))).await,
    }
}

#[derive(Deserialize)]
struct IdForm {
    id: i64,
}

async fn cancel_withdrawal(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<IdForm>) -> Response {
    let t = Tr::new(lang(&headers));
    match cashier::cancel_withdrawal(&state.store, s.subject_id, f.id, state.clock.now_ms()).await {
        Ok(()) => back(&state, &s, Flash::ok(t.get("account.cancelled"))).await,
        Err(e) => back(&state, &s, Flash::error(fault_text(&t, &e))).await,
    }
}

#[derive(Deserialize)]
struct LimitForm {
    kind: String,
    period: String,
    limit_amount: String,
}

async fn set_limit(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<LimitForm>) -> Response {
    let t = Tr::new(lang(&headers));
    let (Some(kind), Some(period)) = (LimitKind::from_code(&f.kind), Period::from_code(&f.period)) else {
        return back(&state, &s, Flash::error(t.get("error.invalid"))).await;
    };
    let amount = if f.limit_amount.trim().is_empty() {
        None
    } else {
        match money(&f.limit_amount) {
            Some(m) => Some(m),
            None => return back(&state, &s, Flash::error(t.get("error.invalid"))).await,
        }
    };
    let now = state.clock.now_ms();
    match responsible::set_limit(&state.store, s.subject_id, kind, period, amount, now).await {
        Ok(at) if at <= now => back(&state, &s, Flash::ok(t.get("account.limit_now"))).await,
        Ok(_) => back(&state, &s, Flash::ok(t.get("account.limit_later"))).await,
        Err(e) => back(&state, &s, Flash::error(fault_text(&t, &e))).await,
    }
}

#[derive(Deserialize)]
struct DaysForm {
    days: i64,
}

async fn exclude(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<DaysForm>) -> Response {
    let t = Tr::new(lang(&headers));
    match responsible::self_exclude(&state.store, s.subject_id, f.days, state.clock.now_ms()).await {
        Ok(responsible::ExclusionOutcome::InForce { .. }) => back(&state, &s, Flash::ok(t.get("account.excluded"))).await,
        Ok(responsible::ExclusionOutcome::AwaitingConfirmation { .. }) => back(&state, &s, Flash::ok(t.get("account.confirm_needed"))).await,
        Err(e) => back(&state, &s, Flash::error(fault_text(&t, &e))).await,
    }
}

async fn close(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession) -> Response {
    let t = Tr::new(lang(&headers));
    match responsible::request_close(&state.store, s.subject_id, state.clock.now_ms()).await {
        Ok(_) => back(&state, &s, Flash::ok(t.get("account.confirm_needed"))).await,
        Err(e) => back(&state, &s, Flash::error(fault_text(&t, &e))).await,
    }
}

async fn confirm(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Form(f): Form<IdForm>) -> Response {
    let t = Tr::new(lang(&headers));
    match responsible::confirm(&state.store, &state.rules, s.subject_id, f.id, state.clock.now_ms()).await {
        Ok(_) => back(&state, &s, Flash::ok(t.get("account.confirmed"))).await,
        Err(e) => back(&state, &s, Flash::error(fault_text(&t, &e))).await,
    }
}

async fn marketing(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession) -> Response {
    let t = Tr::new(lang(&headers));
    let done = async {
        let mut tx = state.store.begin().await?;
        sqlx::query("UPDATE persons SET marketing_opt_out = 1 WHERE id = (SELECT person_id FROM iaccounts WHERE id = $1)")
            .bind(s.subject_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match done {
        Ok(()) => back(&state, &s, Flash::ok(t.get("account.marketing_done"))).await,
        Err(e) => e.into_response(),
    }
}

/// Starts a game: a page with the link that opens it (a link, not a redirect: the pages' CSP
/// lets forms go only to this server).
async fn play(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession) -> Response {
    let t = Tr::new(lang(&headers));
    let game = match wallet::launchable_game(&state.store).await {
        Ok(Some(g)) => g,
        Ok(None) => return back(&state, &s, Flash::error(t.get("account.refused"))).await,
        Err(e) => return e.into_response(),
    };
    match wallet::launch(&state.store, s.subject_id, &game.0, "slot", state.clock.now_ms()).await {
        Ok(token) => {
            let sep = if game.1.contains('?') { '&' } else { '?' };
            let url = format!("{}{sep}token={token}", game.1);
            page(&t, t.get("account.play"), &format!("<section class=\"card narrow\"><p><a id=\"open-game\" href=\"{}\">{}</a></p></section>", esc(&url), esc(t.get("account.play")))).into_response()
        }
        Err(e) => back(&state, &s, Flash::error(refusal_text(&t, &e))).await,
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, PlayerSession(s): PlayerSession) -> Response {
    if let Err(e) = session::end(&state.store, &s.id, state.clock.now_ms()).await {
        return e.into_response();
    }
    (jar.add(session::removal(PLAYER.cookie, &headers)), Redirect::to(PLAYER_LOGIN)).into_response()
}

/// A printable receipt for one game payment, with its identifier.
async fn receipt(State(state): State<AppState>, headers: HeaderMap, PlayerSession(s): PlayerSession, Path(id): Path<i64>) -> Response {
    let t = Tr::new(lang(&headers));
    let row = sqlx::query(
        "SELECT id, kind, bonus_cents, deposit_cents, winnings_cents, reference, round_id, created_at FROM wallet_ledger \
         WHERE id = $1 AND account_id = $2 AND kind IN ('bet', 'win', 'rollback')",
    )
    .bind(id)
    .bind(s.subject_id)
    .fetch_optional(state.store.read())
    .await;
    let row = match row {
        Ok(Some(r)) => r,
        Ok(None) => return (StatusCode::NOT_FOUND, page(&t, t.get("account.receipt"), "<p>-</p>")).into_response(),
        Err(e) => return Error::from(e).into_response(),
    };
    let get = |c: &str| row.try_get::<i64, _>(c).unwrap_or_default();
    let text = |c: &str| row.try_get::<Option<String>, _>(c).ok().flatten().unwrap_or_default();
    let kind: String = row.try_get("kind").unwrap_or_default();
    let when = chrono::DateTime::from_timestamp_millis(get("created_at")).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
    let body = format!(
        "<section class=\"card narrow\"><h1>{}</h1><dl id=\"receipt\"><dt>{}</dt><dd id=\"receipt-id\">{}</dd><dt>{}</dt><dd>{when}</dd>\
         <dt>{}</dt><dd>{}</dd><dt>EUR</dt><dd id=\"receipt-amount\">{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></section>",
        esc(t.get("account.receipt")),
        esc(t.get("account.receipt_id")),
        get("id"),
        esc(t.get("account.when")),
        esc(t.get("account.what")),
        esc(t.get(&format!("account.kind_{kind}"))),
        Money::from_cents(get("bonus_cents") + get("deposit_cents") + get("winnings_cents")).as_decimal(),
        esc(t.get("account.round")),
        esc(&text("round_id")),
        esc(t.get("account.game_txn")),
        esc(&text("reference")),
    );
    page(&t, t.get("account.receipt"), &body).into_response()
}

/// The player's data export (portability): personal data, balances, limits and the ledger.
async fn export(State(state): State<AppState>, PlayerSession(s): PlayerSession) -> Response {
    let result = async {
        let person = sqlx::query(
            "SELECT p.first_name, p.last_name, p.birth_date, p.personal_id, p.email, p.phone, p.address, p.city, p.postal_code, \
             p.country, p.nationality, p.iban, p.marketing_opt_out, a.username, a.player_no, a.state FROM iaccounts a \
             JOIN persons p ON p.id = a.person_id WHERE a.id = $1",
        )
        .bind(s.subject_id)
        .fetch_one(state.store.read())
        .await?;
        let mut personal = serde_json::Map::new();
        for c in ["first_name", "last_name", "birth_date", "personal_id", "email", "phone", "address", "city", "postal_code", "country", "nationality", "iban", "username", "player_no", "state"] {
            personal.insert(c.into(), serde_json::json!(person.try_get::<Option<String>, _>(c)?));
        }
        personal.insert("marketing_opt_out".into(), serde_json::json!(person.try_get::<i64, _>("marketing_opt_out")? == 1));
        let ledger = sqlx::query("SELECT id, kind, bonus_cents, deposit_cents, winnings_cents, reference, round_id, created_at FROM wallet_ledger WHERE account_id = $1 ORDER BY id")
            .bind(s.subject_id)
            .fetch_all(state.store.read())
            .await?;
        let mut entries = Vec::new();
        for r in ledger {
            entries.push(serde_json::json!({
                "id": r.try_get::<i64, _>("id")?, "kind": r.try_get::<String, _>("kind")?,
                "bonus_cents": r.try_get::<i64, _>("bonus_cents")?, "deposit_cents": r.try_get::<i64, _>("deposit_cents")?,
                "winnings_cents": r.try_get::<i64, _>("winnings_cents")?, "reference": r.try_get::<Option<String>, _>("reference")?,
                "round_id": r.try_get::<Option<String>, _>("round_id")?, "at": r.try_get::<i64, _>("created_at")?,
            }));
        }
        let limits = responsible::limits(&state.store, s.subject_id, state.clock.now_ms()).await?;
        Ok::<_, Error>(serde_json::json!({ "personal": personal, "limits": limits, "ledger": entries }))
    }
    .await;
    match result {
        Ok(v) => ([(header::CONTENT_DISPOSITION, "attachment; filename=\"i-account-export.json\"")], axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The JSON view of the account: balances and limits.
async fn me(State(state): State<AppState>, PlayerSession(s): PlayerSession) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let a = super::get(&state.store, s.subject_id).await?;
        let limits = responsible::limits(&state.store, s.subject_id, now).await?;
        Ok::<_, Error>(serde_json::json!({
            "account_id": a.id, "state": a.state, "balance": wallet::BalanceView::from(a.balances),
            "wagering_left": a.wagering_left, "limits": limits, "csrf": s.csrf,
        }))
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
