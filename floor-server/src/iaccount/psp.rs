//! Card deposits through a payment processor: the player pays on the processor's hosted page (card
//! data never reaches us) and the processor tells us the outcome in a signed webhook. Only the
//! webhook credits; the browser's return shows the state and changes nothing.
//!
//! Key decision: a notification is stored once per event id (a duplicate is acknowledged and
//! ignored), and a deposit only moves forward from `pending` (to `completed` with its ledger
//! entry, or to `failed`), so duplicates and reordering credit once. The processor is behind
//! [`Processor`]; [`Simulator`] is the one shipped (hosted page and webhooks under `/psp-sim`,
//! with declines, duplicates, delays and stale events), for the demo and the tests.
//!
//! Not here: refunds and chargebacks.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use club_rules::Money;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;

use super::{WalletResult, lock};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// The header a processor signs its webhook with: hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "x-psp-signature";

/// The webhook secret shared with the processor: `FLOOR_PSP_WEBHOOK_SECRET`, or for the built-in
/// simulator a random one per process (several processes behind one address need the variable).
pub fn webhook_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        std::env::var("FLOOR_PSP_WEBHOOK_SECRET").unwrap_or_else(|_| {
            let mut b = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
            hex::encode(b)
        })
    })
}

/// Hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex) is the HMAC of `body`; compared in constant time.
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(sig) = hex::decode(signature.trim()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A payment processor: where to send the player to pay.
pub trait Processor: Send + Sync {
    /// The hosted payment page for a deposit.
    fn payment_page(&self, provider_ref: &str, amount: Money, return_url: &str) -> String;
}

/// The built-in simulator, served by this server under `/psp-sim`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Simulator;

impl Processor for Simulator {
    fn payment_page(&self, provider_ref: &str, amount: Money, return_url: &str) -> String {
        format!("/psp-sim/pay/{provider_ref}?amount={}&return={}", amount.as_decimal(), urlencode(return_url))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A card deposit started: send the player to `payment_page`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Started {
    pub deposit_id: i64,
    pub provider_ref: String,
    pub payment_page: String,
}

/// Starts a card deposit: the gate and the deposit limits are checked now, a pending deposit is
/// recorded, and the player goes to the processor's page.
pub async fn start_card_deposit(store: &Store, processor: &dyn Processor, account_id: i64, amount: Money, now: Millis) -> WalletResult<Started> {
    let amount = super::positive(amount)?;
    let mut tx = store.begin().await?;
    let account = lock(&mut tx, account_id).await?;
    super::cashier::deposit_allowed(&mut tx, &account, amount, now).await?;
    let provider_ref = format!("pay_{}", uuid::Uuid::new_v4().simple());
    let deposit_id: i64 = sqlx::query_scalar(
        "INSERT INTO deposits (account_id, method, amount_cents, state, provider_ref, created_at) VALUES ($1, 'card', $2, 'pending', $3, $4) RETURNING id",
    )
    .bind(account_id)
    .bind(amount.cents())
    .bind(&provider_ref)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let payment_page = processor.payment_page(&provider_ref, amount, &format!("/iaccount/deposits/{provider_ref}/return"));
    Ok(Started { deposit_id, provider_ref, payment_page })
}

/// A processor's notification.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub event_id: String,
    pub provider_ref: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    #[schema(value_type = String)]
    pub amount: Money,
    #[serde(default)]
    pub card_brand: Option<String>,
}

/// What a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Credited,
    Failed,
    /// A repeat, a stale event, or one about a deposit already settled.
    Ignored,
}

/// Applies a verified notification.
pub async fn apply(store: &Store, n: &Notification, body: &str, now: Millis) -> Result<Applied> {
    let deposit = sqlx::query("SELECT id, account_id, amount_cents FROM deposits WHERE provider_ref = $1 AND method = 'card'")
        .bind(&n.provider_ref)
        .fetch_optional(store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("payment {}", n.provider_ref)))?;
    let account_id: i64 = deposit.try_get("account_id")?;
    let deposit_id: i64 = deposit.try_get("id")?;
    let mut tx = store.begin().await?;
    lock(&mut tx, account_id).await?;
    let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM psp_events WHERE event_id = $1").bind(&n.event_id).fetch_optional(&mut *tx).await?;
    if seen.is_some() {
        return Ok(Applied::Ignored);
    }
    sqlx::query("INSERT INTO psp_events (event_id, provider_ref, status, received_at, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(&n.event_id)
        .bind(&n.provider_ref)
        .bind(&n.status)
        .bind(now)
        .bind(body)
        .execute(&mut *tx)
        .await?;
    let applied = match n.status.as_str() {
        "succeeded" => {
            if n.amount.cents() != deposit.try_get::<i64, _>("amount_cents")? {
                tracing::warn!(deposit_id, "processor reported another amount than was started; left for staff");
                Applied::Ignored
            } else {
                let moved = sqlx::query("UPDATE deposits SET state = 'completed', completed_at = $1, card_brand = $2 WHERE id = $3 AND state = 'pending'")
                    .bind(now)
                    .bind(&n.card_brand)
                    .bind(deposit_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved == 1 {
                    let ledger_id = super::post(
                        &mut tx,
                        account_id,
                        &super::Entry {
                            kind: super::EntryKind::Deposit,
                            delta: super::Delta { bonus: 0, deposit: n.amount.cents(), winnings: 0 },
                            reference: Some(&n.provider_ref),
                            round_id: None,
                            actor: "psp",
                        },
                        true,
                        now,
                    )
                    .await?;
                    sqlx::query("UPDATE deposits SET ledger_id = $1 WHERE id = $2").bind(ledger_id).bind(deposit_id).execute(&mut *tx).await?;
                    Applied::Credited
                } else {
                    Applied::Ignored
                }
            }
        }
        "failed" => {
            let moved = sqlx::query("UPDATE deposits SET state = 'failed', completed_at = $1 WHERE id = $2 AND state = 'pending'")
                .bind(now)
                .bind(deposit_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 1 { Applied::Failed } else { Applied::Ignored }
        }
        _ => Applied::Ignored,
    };
    tx.commit().await?;
    Ok(applied)
}

/// A deposit's state, for the browser's return page.
pub async fn deposit_state(store: &Store, provider_ref: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT state FROM deposits WHERE provider_ref = $1").bind(provider_ref).fetch_optional(store.read()).await?)
}

// ---- the simulator's routes ----

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    amount: String,
    #[serde(rename = "return")]
    return_url: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The hosted payment page: the card number is typed here and never leaves the simulator.
pub(crate) async fn sim_page(Path(provider_ref): Path<String>, Query(q): Query<PageQuery>) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>PaySim</title></head><body>\
         <h1>PaySim secure payment</h1><p>Amount: EUR <span id=amount>{amount}</span></p>\
         <form method=post action=\"/psp-sim/pay/{r}\">\
         <input type=hidden name=amount value=\"{amount}\"><input type=hidden name=return_url value=\"{ret}\">\
         <label>Card number <input name=card_number id=card_number autocomplete=off></label>\
         <p>Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined; 4000 0000 0000 0259 pays with duplicated, delayed and stale notifications.</p>\
         <button type=submit id=pay>Pay</button></form></body></html>",
        amount = escape(&q.amount),
        r = escape(&provider_ref),
        ret = escape(&q.return_url),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PayForm {
    amount: String,
    return_url: String,
    card_number: String,
}

/// The simulator takes the payment, sends its webhook(s) to this server and returns the player.
pub(crate) async fn sim_pay(headers: HeaderMap, Path(provider_ref): Path<String>, Form(f): Form<PayForm>) -> Response {
    let digits: String = f.card_number.chars().filter(char::is_ascii_digit).collect();
    let Some(amount) = f.amount.parse::<rust_decimal::Decimal>().ok().and_then(|d| Money::from_decimal(d).ok()) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad amount").into_response();
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned();
    let url = format!("http://{host}/iaccount/psp/webhook");
    let brand = if digits.starts_with('4') { Some("visa".to_owned()) } else { Some("other".to_owned()) };
    let event = |status: &str| Notification {
        event_id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
        provider_ref: provider_ref.clone(),
        status: status.to_owned(),
        amount,
        card_brand: brand.clone(),
    };
    let (status, plan): (&str, Vec<(Notification, u64)>) = match digits.as_str() {
        "4000000000000002" => ("failed", vec![(event("failed"), 0)]),
        "4000000000000259" => {
            let ok = event("succeeded");
            // the success twice (a duplicate), after a delay, then a stale `pending` event
            ("succeeded", vec![(ok.clone(), 300), (ok, 50), (event("pending"), 50)])
        }
        _ => ("succeeded", vec![(event("succeeded"), 0)]),
    };
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for (n, delay) in plan {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let body = serde_json::to_vec(&n).expect("notification serialises");
            let sig = sign(webhook_secret(), &body);
            // A real processor retries until acknowledged; so does the simulator, a few times.
            for attempt in 0..5u64 {
                match client.post(&url).header(SIGNATURE_HEADER, &sig).header("content-type", "application/json").body(body.clone()).send().await {
                    Ok(r) if r.status().is_success() => break,
                    _ => tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await,
                }
            }
        }
    });
    let sep = if f.return_url.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{sep}status={status}", f.return_url)).into_response()
}

