//! A test game server: a three-reel slot that plays through the i-Account wallet API, for the demo
//! and the tests. The player arrives with a session token (`/?token=...`), spins for a stake, and
//! each spin is a signed bet, a win when the reels pay, and an end of round.
//!
//! Pays: three of a kind x10, two cherries x2. Reels come from `TEST_GAME_SEED` when set (a fixed
//! sequence for tests), else from the operating system.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use clap::Parser;
use floor_server::iaccount::psp::sign;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Parser, Debug, Clone)]
#[command(about = "A three-reel test slot that plays through the i-Account wallet API")]
struct Args {
    /// Where to serve the game.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The floor server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    wallet_url: String,
    /// This game server's id at the wallet.
    #[arg(long, default_value = "test-slot")]
    id: String,
    /// The shared secret requests are signed with.
    #[arg(long, env = "TEST_GAME_SECRET")]
    secret: String,
}

struct Game {
    args: Args,
    http: reqwest::Client,
    rng: Mutex<StdRng>,
}

const SYMBOLS: [&str; 5] = ["cherry", "lemon", "bell", "bar", "seven"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    let rng = match std::env::var("TEST_GAME_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.context("binding")?;
    // The real address (port 0 picks one), on the first line, for whoever started us.
    println!("listening on http://{}", listener.local_addr()?);
    let game = Arc::new(Game { args, http: reqwest::Client::new(), rng: Mutex::new(rng) });
    let app = Router::new()
        .route("/", get(page))
        .route("/spin", post(spin_form))
        .route("/api/spin", post(spin_json))
        .with_state(game);
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

#[derive(Deserialize)]
struct SpinForm {
    token: String,
    stake: String,
}

#[derive(Serialize)]
struct Spin {
    reels: [&'static str; 3],
    stake: String,
    win: String,
    balance: Value,
}

impl Game {
    async fn call(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let body = serde_json::to_vec(&body)?;
        let resp = self
            .http
            .post(format!("{}/wallet/v1/{path}", self.args.wallet_url))
            .header("x-game-server", &self.args.id)
            .header("x-signature", sign(&self.args.secret, &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn spin(&self, token: &str, stake: Decimal) -> anyhow::Result<Result<Spin, Value>> {
        let round = uuid::Uuid::new_v4().simple().to_string();
        let (status, bet) = self
            .call("bet", json!({ "token": token, "transaction_id": format!("{round}-bet"), "round_id": round, "amount": stake.to_string() }))
            .await?;
        if status != 200 {
            return Ok(Err(bet));
        }
        let reels = {
            let mut rng = self.rng.lock().expect("rng");
            [0, 1, 2].map(|_| SYMBOLS[rng.random_range(0..SYMBOLS.len())])
        };
        let multiplier = if reels[0] == reels[1] && reels[1] == reels[2] {
            10
        } else if reels.iter().filter(|s| **s == "cherry").count() == 2 {
            2
        } else {
            0
        };
        let win = stake * Decimal::from(multiplier);
        let mut balance = bet["balance"].clone();
        if multiplier > 0 {
            let (status, w) = self
                .call("win", json!({ "token": token, "transaction_id": format!("{round}-win"), "round_id": round, "amount": win.to_string() }))
                .await?;
            if status != 200 {
                return Ok(Err(w));
            }
            balance = w["balance"].clone();
        }
        let _ = self.call("end-round", json!({ "token": token, "transaction_id": format!("{round}-end"), "round_id": round })).await?;
        Ok(Ok(Spin { reels, stake: stake.to_string(), win: win.to_string(), balance }))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn render(token: &str, balance: &Value, last: Option<Result<&Spin, &Value>>) -> Html<String> {
    let total = balance["total"].as_str().unwrap_or("?");
    let outcome = match last {
        None => String::new(),
        Some(Ok(s)) => format!("<p id=reels>{} | {} | {}</p><p id=win>Win: EUR {}</p>", s.reels[0], s.reels[1], s.reels[2], s.win),
        Some(Err(e)) => format!("<p id=refused>Refused: {}</p>", escape(e["error"].as_str().unwrap_or("error"))),
    };
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Test slot</title></head><body>\
         <h1>Test slot</h1><p>Balance: EUR <span id=balance>{total}</span></p>{outcome}\
         <form method=post action=/spin><input type=hidden name=token value=\"{t}\">\
         <label>Stake <input name=stake id=stake value=\"1.00\"></label> <button id=spin type=submit>Spin</button></form></body></html>",
        t = escape(token)
    ))
}

async fn page(State(game): State<Arc<Game>>, Query(q): Query<TokenQuery>) -> Response {
    match game.call("authenticate", json!({ "token": q.token })).await {
        Ok((200, v)) => render(&q.token, &v["balance"], None).into_response(),
        Ok((_, v)) => render(&q.token, &Value::Null, Some(Err(&v))).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, format!("wallet unreachable: {e}")).into_response(),
    }
}

async fn spin_form(State(game): State<Arc<Game>>, Form(f): Form<SpinForm>) -> Response {
    let Ok(stake) = f.stake.trim().parse::<Decimal>() else {
        return (axum::http::StatusCode::BAD_REQUEST, "stake must be a number").into_response();
    };
    match game.spin(&f.token, stake).await {
        Ok(Ok(s)) => render(&f.token, &s.balance, Some(Ok(&s))).into_response(),
        Ok(Err(v)) => {
            let balance = game.call("balance", json!({ "token": f.token })).await.map(|(_, b)| b["balance"].clone()).unwrap_or(Value::Null);
            render(&f.token, &balance, Some(Err(&v))).into_response()
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, format!("wallet unreachable: {e}")).into_response(),
    }
}

async fn spin_json(State(game): State<Arc<Game>>, Json(f): Json<SpinFormJson>) -> Response {
    match game.spin(&f.token, f.stake).await {
        Ok(Ok(s)) => Json(s).into_response(),
        Ok(Err(v)) => (axum::http::StatusCode::FORBIDDEN, Json(v)).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, format!("wallet unreachable: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
struct SpinFormJson {
    token: String,
    #[serde(with = "rust_decimal::serde::str")]
    stake: Decimal,
}
