//! The pit: open a rating when a player's card is presented at a table seat, record the average
//! bet as it changes, close it into points at once; who rated what; flagged ratings and the
//! tables' games for the pit boss.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use floor_protocol::CardNumber;
use serde::Deserialize;

use super::{day_start, done, money, parse_money, refusal_text, when};
use crate::app::AppState;
use crate::error::Error;
use crate::pit::{self, OpenRefusal, PitTable};
use crate::staff::Role;
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    let p = Access::Roles(roles::PIT);
    let boss = Access::Roles(roles::PIT_BOSS);
    vec![
        Route { method: Method::GET, path: "/pit", access: p, handler: get(pit_page) },
        Route { method: Method::POST, path: "/pit/open", access: p, handler: post(open) },
        Route { method: Method::POST, path: "/pit/rating/{id}/bet", access: p, handler: post(bet) },
        Route { method: Method::POST, path: "/pit/rating/{id}/close", access: p, handler: post(close) },
        Route { method: Method::GET, path: "/pit/tables", access: boss, handler: get(tables_page) },
        Route { method: Method::POST, path: "/pit/tables", access: boss, handler: post(set_table) },
    ]
}

/// A player who presented a card at a table-mode terminal (`tables::players_at`).
struct PresentedView {
    table: String,
    location: String,
    seat: String,
    member_no: String,
    name: String,
    tier: String,
    since: String,
}

struct OpenView {
    id: i64,
    table: String,
    seat: i64,
    game: String,
    member_no: String,
    name: String,
    since: String,
    bet: String,
    interrupted: bool,
}

struct RatedView {
    member_no: String,
    name: String,
    game: String,
    minutes: i64,
    bet: String,
    points: i64,
    rated_by: String,
    at: String,
    flags: Vec<String>,
}

#[derive(Template)]
#[template(path = "pit/pit.html")]
struct PitPage {
    ctx: Ctx,
    tables: Vec<PitTable>,
    open: Vec<OpenView>,
    rated: Vec<RatedView>,
    flagged: Vec<RatedView>,
    presented: Vec<PresentedView>,
    is_boss: bool,
}

fn rated_view(state: &AppState, r: pit::RatingRow) -> RatedView {
    RatedView {
        member_no: r.member_no,
        name: r.name,
        game: r.game,
        minutes: r.minutes,
        bet: money(&r.average_bet),
        points: r.points,
        rated_by: r.rated_by,
        at: when(state, r.at),
        flags: r.flags,
    }
}

async fn pit_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    let is_boss = user.has(Role::PitBoss) || user.has(Role::Manager);
    let result = async {
        let tables = pit::tables(&state.store).await?;
        let open = pit::open_ratings(&state.store)
            .await?
            .into_iter()
            .map(|o| OpenView {
                id: o.id,
                table: o.table,
                seat: o.seat,
                game: o.game,
                member_no: o.member_no,
                name: o.name,
                since: when(&state, o.opened_at),
                bet: money(&o.average_bet),
                interrupted: o.interrupted,
            })
            .collect();
        let rated = pit::ratings(&state.store, day_start(&state, now), false).await?.into_iter().map(|r| rated_view(&state, r)).collect();
        let flagged = if is_boss { pit::ratings(&state.store, now - 7 * 86_400_000, true).await?.into_iter().map(|r| rated_view(&state, r)).collect() } else { Vec::new() };
        let mut presented = Vec::new();
        for t in crate::terminals::list(&state.store).await?.into_iter().filter(|t| t.kind == "table" && !t.revoked) {
            for p in crate::tables::players_at(&state.store, &t.id, now).await? {
                presented.push(PresentedView {
                    table: t.id.clone(),
                    location: t.location.clone(),
                    seat: p.seat.map(|s| s.to_string()).unwrap_or_default(),
                    member_no: crate::club::member_number(p.member_id),
                    name: p.first_name,
                    tier: user.tr().get(&format!("tier.{}", p.tier.code())).to_owned(),
                    since: when(&state, p.since),
                });
            }
        }
        Ok::<_, Error>(PitPage { ctx: Ctx::staff(&state, &user, "/pit").await, tables, open, rated, flagged, presented, is_boss })
    }
    .await;
    match result {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct OpenForm {
    table: String,
    seat: String,
    card: String,
    average_bet: String,
}

async fn open(State(state): State<AppState>, user: StaffUser, Form(f): Form<OpenForm>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        let seat: i64 = f.seat.trim().parse().map_err(|_| Error::invalid(t.get("pit.seat")))?;
        let bet = parse_money(&f.average_bet)?;
        match pit::open_rating(&state.store, f.table.trim(), seat, &CardNumber::new(f.card.trim()), bet, &user.actor(), now).await? {
            Ok(_) => Ok(t.get("pit.opened").to_owned()),
            Err(OpenRefusal::UnknownCard) => Err(Error::invalid(t.get("refusal.unknown_card"))),
            Err(OpenRefusal::Refused(code)) => Err(Error::invalid(t.get(&format!("refusal.{code}")))),
        }
    }
    .await;
    done(&state, &user, result, "/pit").await
}

#[derive(Deserialize)]
struct BetForm {
    average_bet: String,
}

async fn bet(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>, Form(f): Form<BetForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let bet = parse_money(&f.average_bet)?;
        pit::change_bet(&state.store, id, bet, &user.actor(), now).await?;
        Ok(user.tr().get("pit.bet_recorded").to_owned())
    }
    .await;
    done(&state, &user, result, "/pit").await
}

async fn close(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let t = user.tr();
    let result = async {
        match pit::close_rating(&state.store, &state.rules, id, &user.actor(), crate::ledger::time(now)?).await? {
            Ok(c) => Ok(t.fmt("pit.closed", &[("points", &c.points.to_string()), ("minutes", &c.minutes.to_string()), ("bet", &money(&c.average_bet))])),
            Err(refused) => Err(Error::invalid(refusal_text(&t, &refused))),
        }
    }
    .await;
    done(&state, &user, result, "/pit").await
}

#[derive(Template)]
#[template(path = "pit/tables.html")]
struct TablesPage {
    ctx: Ctx,
    tables: Vec<PitTable>,
    games: Vec<String>,
}

async fn tables_page(State(state): State<AppState>, user: StaffUser) -> Response {
    match pit::tables(&state.store).await {
        Ok(tables) => render(&TablesPage {
            ctx: Ctx::staff(&state, &user, "/pit/tables").await,
            tables,
            games: pit::games(&state.rules).into_iter().map(|(g, _)| g).collect(),
        }),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct TableForm {
    id: String,
    game: String,
    seats: String,
    min_bet: String,
    max_bet: String,
}

async fn set_table(State(state): State<AppState>, user: StaffUser, Form(f): Form<TableForm>) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        let t = PitTable {
            id: f.id.trim().to_owned(),
            game: f.game.trim().to_owned(),
            seats: f.seats.trim().parse().map_err(|_| Error::invalid("seats"))?,
            min_bet: parse_money(&f.min_bet)?,
            max_bet: parse_money(&f.max_bet)?,
        };
        pit::set_table(&state.store, &state.rules, &t, &user.actor(), now).await?;
        Ok(user.tr().get("pit.table_saved").to_owned())
    }
    .await;
    done(&state, &user, result, "/pit/tables").await
}
