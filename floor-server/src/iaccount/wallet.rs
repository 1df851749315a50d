//! The wallet as game servers use it: game sessions (tokens), balance, bet, win, rollback and end
//! of round.
//!
//! Key decision: every request carries the game server's transaction id and is stored once in
//! `wallet_requests` with its first answer, after the account's lock is taken; a repeat gets that
//! answer again and changes nothing. Refusals are not stored (the game server may retry the same
//! id once the player has funds). A rollback whose bet is unknown is stored as a tombstone, so the
//! bet, if it arrives later, is refused. Bets need a live token; wins, rollbacks and round ends
//! are accepted after it expired (the round was started while it was valid). A disabled game
//! server's requests are refused, each checked in its own transaction.
//!
//! The money requests are decided in `batch`, many to a transaction for the wallet API; the
//! functions here apply one request in its own transaction, through the same code.
//!
//! Not here: HTTP and signatures (`api`).

use chrono::Duration;
use club_rules::Money;
use club_rules::online::Balances;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::batch::{self, Op};
use super::{Refusal, WalletResult, gate, lock};
use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// How long a game session token is good for bets.
pub const SESSION_TTL: Duration = Duration::hours(1);

/// Balances as the API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceView {
    /// Everything the player can stake, EUR.
    #[schema(value_type = String, example = "12.50")]
    pub total: Money,
    #[schema(value_type = String)]
    pub bonus: Money,
    #[schema(value_type = String)]
    pub deposited: Money,
    #[schema(value_type = String)]
    pub winnings: Money,
}

impl From<Balances> for BalanceView {
    fn from(b: Balances) -> Self {
        BalanceView { total: b.total(), bonus: b.bonus, deposited: b.deposited, winnings: b.winnings }
    }
}

/// The answer to a money request; a repeat of the request gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TxnReply {
    pub transaction_id: String,
    /// Our ledger entry for it (none for a zero win, a round end or a rollback tombstone).
    pub ledger_id: Option<i64>,
    pub balance: BalanceView,
}

/// A session, as a game server's token resolves.
#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: i64,
    pub game: String,
    pub expires_at: Millis,
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Registers a game server with the secret it signs requests with and, for a game players start
/// from their account page, the URL that starts it.
pub async fn add_game_server(store: &Store, id: &str, name: &str, secret: &str, launch_url: Option<&str>, actor: &Actor, now: Millis) -> Result<()> {
    if id.is_empty() || secret.len() < 32 {
        return Err(Error::invalid("a game server needs an id and a secret of at least 32 characters"));
    }
    let mut tx = store.begin().await?;
    sqlx::query("INSERT INTO game_servers (id, name, secret, launch_url, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(name)
        .bind(secret)
        .bind(launch_url)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, now, actor, "game_server.add", &format!("game_server:{id}"), None::<()>, Some(name)).await?;
    tx.commit().await?;
    Ok(())
}

/// A fresh shared secret for a game server: 32 random bytes as hex (shown once to staff).
pub fn new_game_server_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// A registered game server as staff see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameServerRow {
    pub id: String,
    pub name: String,
    pub launch_url: Option<String>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// Every registered game server, the newest first.
pub async fn game_servers(store: &Store) -> Result<Vec<GameServerRow>> {
    let rows = sqlx::query("SELECT id, name, launch_url, created_at, revoked_at FROM game_servers ORDER BY created_at DESC, id")
        .fetch_all(store.read())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(GameServerRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                launch_url: r.try_get("launch_url")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Disables a game server: its signature is no longer accepted, so every request it signs from
/// now on is refused, wins and rollbacks included.
pub async fn disable_game_server(store: &Store, id: &str, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE game_servers SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!("no enabled game server {id}")));
    }
    audit::record(&mut tx, now, actor, "game_server.disable", &format!("game_server:{id}"), None::<()>, Some(now)).await?;
    tx.commit().await?;
    Ok(())
}

/// The game players can start from their account page: its id and launch URL.
pub async fn launchable_game(store: &Store) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT id, launch_url FROM game_servers WHERE revoked_at IS NULL AND launch_url IS NOT NULL ORDER BY created_at, id LIMIT 1")
        .fetch_optional(store.read())
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("id")?, r.try_get("launch_url")?)),
        None => None,
    })
}

/// The secret of a game server that is not revoked.
pub async fn game_server_secret(store: &Store, id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT secret FROM game_servers WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .fetch_optional(store.read())
        .await?)
}

/// Starts a game for the player: checks the gate and returns the token the game server will
/// authenticate with (shown once; only its hash is kept).
pub async fn launch(store: &Store, account_id: i64, game_server: &str, game: &str, now: Millis) -> WalletResult<String> {
    let mut tx = store.begin().await?;
    let account = lock(&mut tx, account_id).await?;
    gate(&mut tx, &account, now).await?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let token = hex::encode(bytes);
    sqlx::query("INSERT INTO wallet_sessions (token_hash, account_id, game_server, game, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(token_hash(&token))
        .bind(account_id)
        .bind(game_server)
        .bind(game)
        .bind(now)
        .bind(now + SESSION_TTL.num_milliseconds())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(token)
}

async fn session(tx: &mut Transaction<'static, Any>, game_server: &str, token: &str) -> WalletResult<Session> {
    let enabled: Option<i64> = sqlx::query_scalar("SELECT 1 FROM game_servers WHERE id = $1 AND revoked_at IS NULL")
        .bind(game_server)
        .fetch_optional(&mut **tx)
        .await?;
    if enabled.is_none() {
        return Err(Refusal::UnknownGameServer.into());
    }
    let row = sqlx::query("SELECT account_id, game, expires_at FROM wallet_sessions WHERE token_hash = $1 AND game_server = $2")
        .bind(token_hash(token))
        .bind(game_server)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Refusal::InvalidToken)?;
    Ok(Session { account_id: row.try_get("account_id")?, game: row.try_get("game")?, expires_at: row.try_get("expires_at")? })
}

/// The player behind a live token, with balances. Refused when the player may not play.
pub async fn authenticate(store: &Store, game_server: &str, token: &str, now: Millis) -> WalletResult<(i64, BalanceView)> {
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, token).await?;
    if now >= s.expires_at {
        return Err(Refusal::TokenExpired.into());
    }
    let account = lock(&mut tx, s.account_id).await?;
    gate(&mut tx, &account, now).await?;
    tx.commit().await?;
    Ok((s.account_id, account.balances.into()))
}

/// The balances behind a token (expired or not).
pub async fn balance(store: &Store, game_server: &str, token: &str) -> WalletResult<(i64, BalanceView)> {
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, token).await?;
    let account = super::get(store, s.account_id).await?;
    tx.rollback().await?;
    Ok((s.account_id, account.balances.into()))
}

/// A bet, win, rollback or round end from a game server.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TxnRequest {
    pub token: String,
    /// The game server's id for this transaction: the idempotency key.
    pub transaction_id: String,
    pub round_id: String,
    /// EUR, as a decimal string; zero for a rollback or a round end.
    #[serde(default)]
    #[schema(value_type = String, example = "1.00")]
    pub amount: Money,
    /// For a bet: false for a doubling or gamble feature (does not count toward bonus wagering).
    #[serde(default = "yes")]
    pub regular: bool,
    /// For a rollback: the transaction it undoes.
    #[serde(default)]
    pub rollback_transaction_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// The kinds of money request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bet,
    Win,
    Rollback,
    EndRound,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Bet, Kind::Win, Kind::Rollback, Kind::EndRound];
    pub fn code(self) -> &'static str {
        match self {
            Kind::Bet => "bet",
            Kind::Win => "win",
            Kind::Rollback => "rollback",
            Kind::EndRound => "end_round",
        }
    }
    pub fn from_code(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// A stake: bonus first, then deposits, then winnings, within the player's limits.
pub async fn bet(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    batch::one(store, Op::new(game_server, Kind::Bet, req, now)).await
}

/// A win, credited as winnings. Accepted after the token expired and whatever the gate says: it
/// pays a stake already taken.
pub async fn win(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    batch::one(store, Op::new(game_server, Kind::Win, req, now)).await
}

/// Undoes a bet: gives back exactly what it took from each balance. A rollback of an unknown bet
/// is kept as a tombstone; a second rollback of the same bet gives nothing back again.
pub async fn rollback(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    batch::one(store, Op::new(game_server, Kind::Rollback, req, now)).await
}

/// The end of a round: recorded, nothing moves.
pub async fn end_round(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    batch::one(store, Op::new(game_server, Kind::EndRound, req, now)).await
}
