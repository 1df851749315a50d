//! The bar staff's view: a member looked up by card (standing, tier, discount, points, free
//! drinks) and today's receipts that earned or spent points. Read only.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use sqlx::Row;

use super::{day_start, when};
use crate::app::AppState;
use crate::club;
use crate::error::Result;
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    vec![Route { method: Method::GET, path: "/bar", access: Access::Roles(roles::BAR), handler: get(bar_page) }]
}

#[derive(Deserialize, Default)]
struct BarQuery {
    #[serde(default)]
    card: String,
}

struct Looked {
    first_name: String,
    tier: String,
    points: i64,
    discount: u32,
    /// `None`: may earn and redeem; else the refusal's words.
    refused: Option<String>,
}

struct Receipt {
    at: String,
    member_no: String,
    kind: String,
    points: i64,
    terminal: String,
}

#[derive(Template)]
#[template(path = "bar.html")]
struct BarPage {
    ctx: Ctx,
    card: String,
    looked: Option<Looked>,
    not_found: bool,
    free_drinks: String,
    receipts: Vec<Receipt>,
}

async fn bar_page(State(state): State<AppState>, user: StaffUser, Query(q): Query<BarQuery>) -> Response {
    match load(&state, &user, q).await {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

async fn load(state: &AppState, user: &StaffUser, q: BarQuery) -> Result<BarPage> {
    let now = state.clock.now_ms();
    let t = user.tr();
    let mut looked = None;
    let mut not_found = false;
    if !q.card.trim().is_empty() {
        let number = club::normalise_card(&floor_protocol::CardNumber::new(q.card.trim()))?;
        let mut tx = state.store.begin().await?;
        let holder = club::card_holder(&mut tx, &number, now).await?;
        drop(tx);
        match holder {
            Some(h) => {
                let refused = club::card_in_decision(&h)
                    .err()
                    .map(|code| t.get(&format!("refusal.{}", serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())).to_owned());
                looked = Some(Looked {
                    first_name: h.first_name.clone(),
                    tier: h.tier.code().to_owned(),
                    points: h.points,
                    discount: state.rules.config().discounts.get(h.tier),
                    refused,
                });
            }
            None => not_found = true,
        }
    }
    let receipts = sqlx::query(
        "SELECT l.created_at, l.kind, l.points, l.terminal_id, m.member_no FROM points_ledger l JOIN members m ON m.id = l.member_id \
         WHERE l.created_at >= $1 AND ((l.kind = 'earned' AND l.category = 'receipt') OR (l.kind = 'redeemed' AND l.category IN ('bar', 'restaurant'))) \
         ORDER BY l.created_at DESC, l.id DESC LIMIT 100",
    )
    .bind(day_start(state, now))
    .fetch_all(state.store.read())
    .await?
    .iter()
    .map(|r| {
        Ok(Receipt {
            at: when(state, r.try_get("created_at")?),
            member_no: r.try_get("member_no")?,
            kind: r.try_get("kind")?,
            points: r.try_get("points")?,
            terminal: r.try_get::<Option<String>, _>("terminal_id")?.unwrap_or_default(),
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let free = &state.rules.config().redemption.free_drink_categories;
    Ok(BarPage {
        ctx: Ctx::staff(state, user, "/bar").await,
        card: q.card,
        looked,
        not_found,
        free_drinks: free.iter().cloned().collect::<Vec<_>>().join(", "),
        receipts,
    })
}

