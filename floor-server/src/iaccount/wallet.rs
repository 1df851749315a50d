//! The wallet as game servers use it: game sessions (tokens), balance, bet, win, rollback and end
//! of round.
//!
//! Key decision: every request carries the game server's transaction id and is stored once in
//! `wallet_requests` with its first answer, after the account's lock is taken; a repeat gets that
//! answer again and changes nothing. Refusals are not stored (the game server may retry the same
//! id once the player has funds). A rollback whose bet is unknown is stored as a tombstone, so the
//! bet, if it arrives later, is refused. Bets need a live token; wins, rollbacks and round ends
//! are accepted after it expired (the round was started while it was valid).
//!
//! Not here: HTTP and signatures (`api`).

use chrono::Duration;
use club_rules::Money;
use club_rules::online::{self, Balances, OnlineRefusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{Delta, Entry, EntryKind, Refusal, WalletError, WalletResult, gate, limit_rows, lock, period_index, post, usage};
use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::time;
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

fn token_hash(token: &str) -> String {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bet,
    Win,
    Rollback,
    EndRound,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Bet => "bet",
            Kind::Win => "win",
            Kind::Rollback => "rollback",
            Kind::EndRound => "end_round",
        }
    }
}

/// Looks up a previous request with this id: its stored answer if it is the same request.
async fn repeat(tx: &mut Transaction<'static, Any>, game_server: &str, kind: Kind, account_id: i64, req: &TxnRequest) -> WalletResult<Option<TxnReply>> {
    let row = sqlx::query("SELECT kind, account_id, amount_cents, reply FROM wallet_requests WHERE game_server = $1 AND txn_id = $2")
        .bind(game_server)
        .bind(&req.transaction_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let same = row.try_get::<String, _>("kind")? == kind.code()
        && row.try_get::<i64, _>("account_id")? == account_id
        && row.try_get::<i64, _>("amount_cents")? == req.amount.cents();
    if !same {
        return Err(Refusal::TransactionMismatch.into());
    }
    let reply: String = row.try_get("reply")?;
    Ok(Some(serde_json::from_str(&reply).map_err(|e| Error::Config(format!("stored reply: {e}")))?))
}

#[allow(clippy::too_many_arguments)]
async fn store_request(
    tx: &mut Transaction<'static, Any>,
    game_server: &str,
    kind: Kind,
    account_id: i64,
    req: &TxnRequest,
    ledger_id: Option<i64>,
    reply: &TxnReply,
    now: Millis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO wallet_requests (game_server, txn_id, kind, account_id, round_id, amount_cents, ref_txn_id, ledger_id, status, reply, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 200, $9, $10)",
    )
    .bind(game_server)
    .bind(&req.transaction_id)
    .bind(kind.code())
    .bind(account_id)
    .bind(&req.round_id)
    .bind(req.amount.cents())
    .bind(&req.rollback_transaction_id)
    .bind(ledger_id)
    .bind(serde_json::to_string(reply).expect("reply serialises"))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn balances_now(tx: &mut Transaction<'static, Any>, account_id: i64) -> Result<Balances> {
    let row = sqlx::query("SELECT bonus_cents, deposit_cents, winnings_cents FROM iaccounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Balances {
        bonus: Money::from_cents(row.try_get("bonus_cents")?),
        deposited: Money::from_cents(row.try_get("deposit_cents")?),
        winnings: Money::from_cents(row.try_get("winnings_cents")?),
    })
}

fn actor(game_server: &str) -> String {
    format!("game_server:{game_server}")
}

/// A stake: bonus first, then deposits, then winnings, within the player's limits.
pub async fn bet(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, &req.token).await?;
    let account = lock(&mut tx, s.account_id).await?;
    if let Some(reply) = repeat(&mut tx, game_server, Kind::Bet, account.id, req).await? {
        return Ok(reply);
    }
    let stake = super::positive(req.amount)?;
    let tombstone: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM wallet_requests WHERE game_server = $1 AND ref_txn_id = $2 AND kind = 'rollback'")
            .bind(game_server)
            .bind(&req.transaction_id)
            .fetch_optional(&mut *tx)
            .await?;
    if tombstone.is_some() {
        return Err(Refusal::RolledBack.into());
    }
    if now >= s.expires_at {
        return Err(Refusal::TokenExpired.into());
    }
    gate(&mut tx, &account, now).await?;
    let now_t = time(now)?;
    let limits = online::limits_in_force(&limit_rows(&mut tx, account.id).await?, now_t);
    if !limits.is_empty() {
        let used = usage(&mut tx, account.id, now_t).await?;
        online::check_stake(&limits, |p| used[period_index(p)], stake).map_err(refusal(account.balances))?;
    }
    let split = online::split_stake(&account.balances, stake).map_err(refusal(account.balances))?;
    let who = actor(game_server);
    let ledger_id = post(
        &mut tx,
        account.id,
        &Entry {
            kind: EntryKind::Bet,
            delta: Delta { bonus: -split.bonus.cents(), deposit: -split.deposited.cents(), winnings: -split.winnings.cents() },
            reference: Some(&req.transaction_id),
            round_id: Some(&req.round_id),
            actor: &who,
        },
        true,
        now,
    )
    .await?;
    let w = online::wager(account.balances.bonus - split.bonus, account.wagering_left, stake, req.regular);
    if w.wagering_left != account.wagering_left {
        sqlx::query("UPDATE iaccounts SET wagering_left_cents = $1 WHERE id = $2")
            .bind(w.wagering_left.cents())
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
    }
    if w.release > Money::ZERO {
        post(
            &mut tx,
            account.id,
            &Entry {
                kind: EntryKind::BonusRelease,
                delta: Delta { bonus: -w.release.cents(), deposit: 0, winnings: w.release.cents() },
                reference: Some(&req.transaction_id),
                round_id: None,
                actor: "system:wagering",
            },
            false,
            now,
        )
        .await?;
    }
    // The balances now, from those read under the lock and what this bet changed (the updates
    // above succeed only by exactly these amounts): no second read while the lock is held.
    let after = Balances {
        bonus: account.balances.bonus - split.bonus - w.release,
        deposited: account.balances.deposited - split.deposited,
        winnings: account.balances.winnings - split.winnings + w.release,
    };
    let reply = TxnReply { transaction_id: req.transaction_id.clone(), ledger_id: Some(ledger_id), balance: after.into() };
    store_request(&mut tx, game_server, Kind::Bet, account.id, req, Some(ledger_id), &reply, now).await?;
    tx.commit().await?;
    Ok(reply)
}

fn refusal(b: Balances) -> impl Fn(OnlineRefusal) -> WalletError {
    move |r| {
        match r {
            OnlineRefusal::InsufficientFunds => Refusal::InsufficientFunds { balance: b.total() },
            OnlineRefusal::LimitReached { kind, period } => Refusal::LimitReached { kind, period },
            OnlineRefusal::NotPositive => Refusal::InvalidAmount,
            OnlineRefusal::BelowMinimum => Refusal::BelowMinimum,
        }
        .into()
    }
}

/// A win, credited as winnings. Accepted after the token expired and whatever the gate says: it
/// pays a stake already taken.
pub async fn win(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, &req.token).await?;
    let account = lock(&mut tx, s.account_id).await?;
    if let Some(reply) = repeat(&mut tx, game_server, Kind::Win, account.id, req).await? {
        return Ok(reply);
    }
    if req.amount.is_negative() {
        return Err(Refusal::InvalidAmount.into());
    }
    let who = actor(game_server);
    let ledger_id = if req.amount > Money::ZERO {
        Some(
            post(
                &mut tx,
                account.id,
                &Entry {
                    kind: EntryKind::Win,
                    delta: Delta { bonus: 0, deposit: 0, winnings: req.amount.cents() },
                    reference: Some(&req.transaction_id),
                    round_id: Some(&req.round_id),
                    actor: &who,
                },
                true,
                now,
            )
            .await?,
        )
    } else {
        None
    };
    let after = Balances { winnings: account.balances.winnings + req.amount, ..account.balances };
    let reply = TxnReply { transaction_id: req.transaction_id.clone(), ledger_id, balance: after.into() };
    store_request(&mut tx, game_server, Kind::Win, account.id, req, ledger_id, &reply, now).await?;
    tx.commit().await?;
    Ok(reply)
}

/// Undoes a bet: gives back exactly what it took from each balance. A rollback of an unknown bet
/// is kept as a tombstone; a second rollback of the same bet gives nothing back again.
pub async fn rollback(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    let Some(target) = req.rollback_transaction_id.clone() else { return Err(Refusal::NotABet.into()) };
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, &req.token).await?;
    let account = lock(&mut tx, s.account_id).await?;
    let req = TxnRequest { amount: Money::ZERO, ..req.clone() };
    if let Some(reply) = repeat(&mut tx, game_server, Kind::Rollback, account.id, &req).await? {
        return Ok(reply);
    }
    let bet = sqlx::query("SELECT kind, account_id, ledger_id FROM wallet_requests WHERE game_server = $1 AND txn_id = $2")
        .bind(game_server)
        .bind(&target)
        .fetch_optional(&mut *tx)
        .await?;
    let earlier: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM wallet_requests WHERE game_server = $1 AND ref_txn_id = $2 AND kind = 'rollback'")
            .bind(game_server)
            .bind(&target)
            .fetch_optional(&mut *tx)
            .await?;
    let mut ledger_id = None;
    if let Some(bet) = bet {
        if bet.try_get::<String, _>("kind")? != "bet" || bet.try_get::<i64, _>("account_id")? != account.id {
            return Err(Refusal::NotABet.into());
        }
        if earlier.is_none() {
            let bet_entry: i64 = bet.try_get("ledger_id")?;
            let taken = sqlx::query("SELECT bonus_cents, deposit_cents, winnings_cents FROM wallet_ledger WHERE id = $1")
                .bind(bet_entry)
                .fetch_one(&mut *tx)
                .await?;
            let who = actor(game_server);
            ledger_id = Some(
                post(
                    &mut tx,
                    account.id,
                    &Entry {
                        kind: EntryKind::Rollback,
                        delta: Delta {
                            bonus: -taken.try_get::<i64, _>("bonus_cents")?,
                            deposit: -taken.try_get::<i64, _>("deposit_cents")?,
                            winnings: -taken.try_get::<i64, _>("winnings_cents")?,
                        },
                        reference: Some(&req.transaction_id),
                        round_id: Some(&req.round_id),
                        actor: &who,
                    },
                    true,
                    now,
                )
                .await?,
            );
        }
    }
    let reply =
        TxnReply { transaction_id: req.transaction_id.clone(), ledger_id, balance: balances_now(&mut tx, account.id).await?.into() };
    store_request(&mut tx, game_server, Kind::Rollback, account.id, &req, ledger_id, &reply, now).await?;
    tx.commit().await?;
    Ok(reply)
}

/// The end of a round: recorded, nothing moves.
pub async fn end_round(store: &Store, game_server: &str, req: &TxnRequest, now: Millis) -> WalletResult<TxnReply> {
    let mut tx = store.begin().await?;
    let s = session(&mut tx, game_server, &req.token).await?;
    let account = lock(&mut tx, s.account_id).await?;
    let req = TxnRequest { amount: Money::ZERO, ..req.clone() };
    if let Some(reply) = repeat(&mut tx, game_server, Kind::EndRound, account.id, &req).await? {
        return Ok(reply);
    }
    let reply = TxnReply { transaction_id: req.transaction_id.clone(), ledger_id: None, balance: account.balances.into() };
    store_request(&mut tx, game_server, Kind::EndRound, account.id, &req, None, &reply, now).await?;
    tx.commit().await?;
    Ok(reply)
}
