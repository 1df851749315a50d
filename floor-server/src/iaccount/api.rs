//! HTTP for the i-Account: the wallet API that game servers call (`/wallet/v1/...`), its OpenAPI
//! document, the payment processor's webhook, the browser's return from the processor, and the
//! processor simulator.
//!
//! Key decision: a game server signs every request body with its shared secret (header
//! `X-Game-Server` with its id, `X-Signature` with the hex HMAC-SHA256 of the body); the
//! signature is checked in constant time before the body is even parsed. Answers are JSON; a
//! refusal is `{"error": code, ...}` with a 4xx status, insufficient funds with the balance.
//! A server's secret never changes, so it is read from the database once per process; whether the
//! server is still enabled is checked in each request's own transaction (`batch`), so disabling
//! one takes effect at once on every process. Bets, wins, rollbacks and round ends go to the
//! wallet's writers and are answered after their batch's commit.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::batch::{Op, WalletWriter};
use super::psp;
use super::wallet::{self, BalanceView, Kind, TxnReply, TxnRequest};
use super::{Refusal, WalletError};
use crate::app::AppState;
use crate::error::Result;
use crate::store::Store;

/// Header naming the calling game server.
pub const GAME_SERVER_HEADER: &str = "x-game-server";
/// Header with the hex HMAC-SHA256 of the request body.
pub const SIGNATURE_HEADER: &str = "x-signature";

/// What the wallet API shares between requests: the writers, and the game servers' secrets.
#[derive(Clone)]
pub struct WalletApi {
    pub writer: WalletWriter,
    secrets: Arc<RwLock<HashMap<String, Arc<str>>>>,
}

impl WalletApi {
    pub fn new(writer: WalletWriter) -> WalletApi {
        WalletApi { writer, secrets: Arc::default() }
    }

    /// The secret of a game server: from memory after the first request (a server's secret never
    /// changes); only an enabled server's is loaded.
    async fn secret(&self, store: &Store, id: &str) -> Result<Option<Arc<str>>> {
        if let Some(s) = self.secrets.read().expect("secrets lock").get(id) {
            return Ok(Some(s.clone()));
        }
        let Some(secret) = wallet::game_server_secret(store, id).await? else { return Ok(None) };
        let secret: Arc<str> = secret.into();
        self.secrets.write().expect("secrets lock").insert(id.to_owned(), secret.clone());
        Ok(Some(secret))
    }
}

/// The i-Account's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/wallet/v1/authenticate", post(authenticate))
        .route("/wallet/v1/balance", post(balance))
        .route("/wallet/v1/bet", post(bet))
        .route("/wallet/v1/win", post(win))
        .route("/wallet/v1/rollback", post(rollback))
        .route("/wallet/v1/end-round", post(end_round))
        .route("/wallet/v1/openapi.json", get(openapi))
        .route("/iaccount/psp/webhook", post(webhook))
        .route("/iaccount/deposits/{provider_ref}/return", get(deposit_return))
        .route("/psp-sim/pay/{provider_ref}", get(psp::sim_page).post(psp::sim_pay))
        .merge(super::player::public_routes())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "i-Account wallet API", description = "Called by game servers. Every request is signed: X-Game-Server: <id>, X-Signature: hex HMAC-SHA256 of the body with the server's shared secret."),
    paths(authenticate, balance, bet, win, rollback, end_round),
    components(schemas(TokenRequest, AuthReply, BalanceView, TxnRequest, TxnReply, ErrorBody))
)]
pub struct WalletApiDoc;

async fn openapi() -> impl IntoResponse {
    axum::Json(WalletApiDoc::openapi())
}

/// A request that names only the player's session.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    pub token: String,
}

/// The player behind a token.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthReply {
    pub player_id: i64,
    pub currency: String,
    pub balance: BalanceView,
}

/// A refusal: `error` is one of `insufficient_funds` (with `balance`), `limit_reached` (with
/// `kind` and `period`), `self_excluded`, `blocked`, `token_expired`, `invalid_token`,
/// `rolled_back`, `transaction_mismatch`, `not_a_bet`, `invalid_amount`, `bad_signature`,
/// `bad_request`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
}

/// An API failure as an HTTP answer.
pub struct ApiError(StatusCode, serde_json::Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::Refused(r) => {
                let status = match r {
                    Refusal::InsufficientFunds { .. } => StatusCode::PAYMENT_REQUIRED,
                    Refusal::LimitReached { .. } | Refusal::SelfExcluded | Refusal::Blocked => StatusCode::FORBIDDEN,
                    Refusal::TokenExpired | Refusal::InvalidToken | Refusal::UnknownGameServer => StatusCode::UNAUTHORIZED,
                    Refusal::RolledBack | Refusal::TransactionMismatch => StatusCode::CONFLICT,
                    Refusal::NotABet | Refusal::InvalidAmount | Refusal::BelowMinimum => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError(status, serde_json::to_value(&r).expect("refusal serialises"))
            }
            WalletError::Fault(e) => {
                let status = e.into_response().status();
                if status.is_server_error() {
                    ApiError(status, serde_json::json!({ "error": "internal" }))
                } else {
                    ApiError(status, serde_json::json!({ "error": "bad_request" }))
                }
            }
        }
    }
}

/// Checks the signature and parses the body; answers with the game server's id.
async fn signed<T: serde::de::DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: &Bytes) -> std::result::Result<(String, T), ApiError> {
    let bad = || ApiError(StatusCode::UNAUTHORIZED, serde_json::json!({ "error": "bad_signature" }));
    let id = headers.get(GAME_SERVER_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(bad)?.to_owned();
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(bad)?;
    let secret = state.wallet.secret(&state.store, &id).await.map_err(|e| ApiError::from(WalletError::Fault(e)))?.ok_or_else(bad)?;
    if !psp::verify(&secret, body, sig) {
        tracing::warn!(game_server = %id, "wallet request with a bad signature refused");
        return Err(bad());
    }
    let parsed = serde_json::from_slice(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, serde_json::json!({ "error": "bad_request", "detail": e.to_string() })))?;
    Ok((id, parsed))
}

/// The player behind a live session token.
#[utoipa::path(post, path = "/wallet/v1/authenticate", request_body = TokenRequest,
    responses((status = 200, body = AuthReply), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn authenticate(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<AuthReply>, ApiError> {
    let (gs, req): (String, TokenRequest) = signed(&state, &headers, &body).await?;
    let (player_id, balance) = wallet::authenticate(&state.store, &gs, &req.token, state.clock.now_ms()).await?;
    Ok(axum::Json(AuthReply { player_id, currency: "EUR".into(), balance }))
}

/// The balances behind a token (also after it expired).
#[utoipa::path(post, path = "/wallet/v1/balance", request_body = TokenRequest,
    responses((status = 200, body = AuthReply), (status = 401, body = ErrorBody)))]
async fn balance(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<AuthReply>, ApiError> {
    let (gs, req): (String, TokenRequest) = signed(&state, &headers, &body).await?;
    let (player_id, balance) = wallet::balance(&state.store, &gs, &req.token).await?;
    Ok(axum::Json(AuthReply { player_id, currency: "EUR".into(), balance }))
}

/// A stake; idempotent on `transaction_id`.
#[utoipa::path(post, path = "/wallet/v1/bet", request_body = TxnRequest,
    responses((status = 200, body = TxnReply), (status = 402, description = "insufficient funds", body = ErrorBody),
              (status = 403, description = "limit reached, self-excluded or blocked", body = ErrorBody),
              (status = 409, description = "rolled back before it arrived", body = ErrorBody)))]
async fn bet(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<TxnReply>, ApiError> {
    let (gs, req): (String, TxnRequest) = signed(&state, &headers, &body).await?;
    Ok(axum::Json(state.wallet.writer.submit(Op::new(&gs, Kind::Bet, &req, state.clock.now_ms())).await?))
}

/// A win, credited as winnings; accepted after the token expired.
#[utoipa::path(post, path = "/wallet/v1/win", request_body = TxnRequest, responses((status = 200, body = TxnReply), (status = 401, body = ErrorBody)))]
async fn win(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<TxnReply>, ApiError> {
    let (gs, req): (String, TxnRequest) = signed(&state, &headers, &body).await?;
    Ok(axum::Json(state.wallet.writer.submit(Op::new(&gs, Kind::Win, &req, state.clock.now_ms())).await?))
}

/// Undoes a bet (`rollback_transaction_id`); may arrive before the bet.
#[utoipa::path(post, path = "/wallet/v1/rollback", request_body = TxnRequest, responses((status = 200, body = TxnReply), (status = 422, body = ErrorBody)))]
async fn rollback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<TxnReply>, ApiError> {
    let (gs, req): (String, TxnRequest) = signed(&state, &headers, &body).await?;
    Ok(axum::Json(state.wallet.writer.submit(Op::new(&gs, Kind::Rollback, &req, state.clock.now_ms())).await?))
}

/// The end of a round.
#[utoipa::path(post, path = "/wallet/v1/end-round", request_body = TxnRequest, responses((status = 200, body = TxnReply)))]
async fn end_round(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> std::result::Result<axum::Json<TxnReply>, ApiError> {
    let (gs, req): (String, TxnRequest) = signed(&state, &headers, &body).await?;
    Ok(axum::Json(state.wallet.writer.submit(Op::new(&gs, Kind::EndRound, &req, state.clock.now_ms())).await?))
}

/// The processor's webhook: signed with the shared webhook secret; the only thing that credits a
/// card deposit.
async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let sig = headers.get(psp::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !psp::verify(psp::webhook_secret(), &body, sig) {
        tracing::warn!("payment webhook with a bad signature refused");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Ok(n) = serde_json::from_slice::<psp::Notification>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a notification").into_response();
    };
    let text = String::from_utf8_lossy(&body);
    match psp::apply(&state.store, &n, &text, state.clock.now_ms()).await {
        Ok(applied) => axum::Json(serde_json::json!({ "applied": applied })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Where the processor sends the player back: shows the state; never credits.
async fn deposit_return(State(state): State<AppState>, Path(provider_ref): Path<String>) -> Response {
    match psp::deposit_state(&state.store, &provider_ref).await {
        Ok(Some(s)) => Html(format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Deposit</title></head><body>\
             <h1>Deposit</h1><p>State: <span id=state>{s}</span></p>\
             <p>A card deposit is credited when the payment processor confirms it.</p><p><a href=\"/iaccount\">Back to the account</a></p></body></html>"
        ))
        .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such deposit").into_response(),
        Err(e) => e.into_response(),
    }
}
