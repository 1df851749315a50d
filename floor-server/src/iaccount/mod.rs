//! The online i-Account (RULES.md 2): accounts with bonus, deposited and winnings balances, the
//! wallet ledger, responsible gaming, the cashier, and the wallet API that game servers call.
//!
//! Key decision: every money movement is one append-only `wallet_ledger` entry written in the same
//! transaction as the change of the cached balances on `iaccounts`, after taking the account's row
//! lock ([`lock`], like `store::lock_member`), with an update that is conditional on no balance
//! going negative (and CHECK constraints behind it). So concurrent requests on one account
//! serialise on PostgreSQL and SQLite alike, and the ledger always sums to the balances.
//!
//! The rules themselves (stake split, limits, wagering, inactivity) are pure, in
//! `club_rules::online`. The exclusion gate is the club's: an online self-exclusion is a row in
//! `exclusions`, so it refuses the club card on the floor too, and a floor exclusion or ban refuses
//! online play. Closures count on the floor as well: a confirmed closing of the account ends the
//! person's club membership as the member's own request, and a minor's closure ends it as a
//! breach of the club's rules ([`end_floor_membership`]).
//!
//! The player pages and JSON API are in [`player`], on the shared web foundation.

pub mod api;
pub mod batch;
pub mod cashier;
pub mod jobs;
pub mod player;
pub mod psp;
pub mod register;
pub mod responsible;
pub mod testkit;
pub mod wallet;

use chrono::{DateTime, Utc};
use club_rules::Money;
use club_rules::gate::ExclusionKind;
use club_rules::online::{Balances, LimitKind, LimitRow, Period, Usage};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::time;
use crate::store::Store;

/// An i-Account's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Registered; identity and age not yet verified: no money moves.
    Unverified,
    Active,
    /// Blocked by staff (duplicate accounts, fraud, a minor).
    Blocked,
    /// Closed on the player's confirmed request; reopened on request.
    Closed,
}

impl AccountState {
    pub const ALL: [AccountState; 4] = [AccountState::Unverified, AccountState::Active, AccountState::Blocked, AccountState::Closed];
    pub fn code(self) -> &'static str {
        match self {
            AccountState::Unverified => "unverified",
            AccountState::Active => "active",
            AccountState::Blocked => "blocked",
            AccountState::Closed => "closed",
        }
    }
    pub fn from_code(s: &str) -> Option<AccountState> {
        AccountState::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// An account as read under its lock.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub person_id: i64,
    pub state: AccountState,
    pub balances: Balances,
    pub wagering_left: Money,
    pub last_activity_at: Millis,
}

/// Why the wallet refuses a request. Each has a stable code for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "error")]
pub enum Refusal {
    #[error("insufficient funds")]
    InsufficientFunds { balance: Money },
    #[error("{kind:?} limit per {period:?} reached")]
    LimitReached { kind: LimitKind, period: Period },
    #[error("self-excluded")]
    SelfExcluded,
    #[error("account blocked")]
    Blocked,
    #[error("the session token has expired")]
    TokenExpired,
    #[error("unknown session token")]
    InvalidToken,
    #[error("the transaction was rolled back")]
    RolledBack,
    #[error("the transaction id was used for a different request")]
    TransactionMismatch,
    #[error("only a bet can be rolled back")]
    NotABet,
    #[error("invalid amount")]
    InvalidAmount,
    #[error("below the minimum")]
    BelowMinimum,
    /// The game server is unknown or disabled: to the caller, its signature is not accepted.
    #[serde(rename = "bad_signature")]
    #[error("unknown or disabled game server")]
    UnknownGameServer,
}

/// A wallet operation's failure: a refusal the caller can act on, or a fault.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Fault(#[from] Error),
}

impl From<sqlx::Error> for WalletError {
    fn from(e: sqlx::Error) -> Self {
        WalletError::Fault(e.into())
    }
}

pub type WalletResult<T> = std::result::Result<T, WalletError>;

/// The kinds of wallet ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Deposit,
    Bet,
    Win,
    Rollback,
    Withdrawal,
    WithdrawalCancel,
    BonusGrant,
    BonusRelease,
    BonusVoid,
    InactivityPayout,
    WriteOff,
}

impl EntryKind {
    pub fn code(self) -> &'static str {
        match self {
            EntryKind::Deposit => "deposit",
            EntryKind::Bet => "bet",
            EntryKind::Win => "win",
            EntryKind::Rollback => "rollback",
            EntryKind::Withdrawal => "withdrawal",
            EntryKind::WithdrawalCancel => "withdrawal_cancel",
            EntryKind::BonusGrant => "bonus_grant",
            EntryKind::BonusRelease => "bonus_release",
            EntryKind::BonusVoid => "bonus_void",
            EntryKind::InactivityPayout => "inactivity_payout",
            EntryKind::WriteOff => "write_off",
        }
    }
}

/// Signed changes of the three balances, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    pub bonus: i64,
    pub deposit: i64,
    pub winnings: i64,
}

/// One ledger entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub kind: EntryKind,
    pub delta: Delta,
    pub reference: Option<&'a str>,
    pub round_id: Option<&'a str>,
    pub actor: &'a str,
}

/// Takes the account's row lock for the rest of the transaction and reads it.
pub async fn lock(tx: &mut Transaction<'static, Any>, account_id: i64) -> Result<Account> {
    let row = sqlx::query(
        "UPDATE iaccounts SET lock_version = lock_version + 1 WHERE id = $1 \
         RETURNING id, person_id, state, bonus_cents, deposit_cents, winnings_cents, wagering_left_cents, last_activity_at",
    )
    .bind(account_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("i-account {account_id}")))?;
    account_from_row(&row)
}

pub(crate) fn account_from_row(row: &sqlx::any::AnyRow) -> Result<Account> {
    let state: String = row.try_get("state")?;
    Ok(Account {
        id: row.try_get("id")?,
        person_id: row.try_get("person_id")?,
        state: AccountState::from_code(&state).ok_or_else(|| Error::invalid("account state"))?,
        balances: Balances {
            bonus: Money::from_cents(row.try_get("bonus_cents")?),
            deposited: Money::from_cents(row.try_get("deposit_cents")?),
            winnings: Money::from_cents(row.try_get("winnings_cents")?),
        },
        wagering_left: Money::from_cents(row.try_get("wagering_left_cents")?),
        last_activity_at: row.try_get("last_activity_at")?,
    })
}

/// Reads an account without locking it.
pub async fn get(store: &Store, account_id: i64) -> Result<Account> {
    let row = sqlx::query(
        "SELECT id, person_id, state, bonus_cents, deposit_cents, winnings_cents, wagering_left_cents, last_activity_at \
         FROM iaccounts WHERE id = $1",
    )
    .bind(account_id)
    .fetch_optional(store.read())
    .await?
    .ok_or_else(|| Error::NotFound(format!("i-account {account_id}")))?;
    account_from_row(&row)
}

/// Writes one ledger entry and applies it to the cached balances. Call after [`lock`]. Refuses
/// (with a conflict, writing nothing) a change that would take any balance below zero.
/// `activity` marks a payment transaction for the inactivity rule.
pub async fn post(tx: &mut Transaction<'static, Any>, account_id: i64, e: &Entry<'_>, activity: bool, now: Millis) -> Result<i64> {
    let changed = sqlx::query(
        "UPDATE iaccounts SET bonus_cents = bonus_cents + $1, deposit_cents = deposit_cents + $2, \
         winnings_cents = winnings_cents + $3, last_activity_at = CASE WHEN $4 = 1 THEN $5 ELSE last_activity_at END \
         WHERE id = $6 AND bonus_cents + $1 >= 0 AND deposit_cents + $2 >= 0 AND winnings_cents + $3 >= 0",
    )
    .bind(e.delta.bonus)
    .bind(e.delta.deposit)
    .bind(e.delta.winnings)
    .bind(crate::store::flag(activity))
    .bind(now)
    .bind(account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(Error::Conflict("a balance would go below zero".into()));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO wallet_ledger (account_id, kind, bonus_cents, deposit_cents, winnings_cents, reference, round_id, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(account_id)
    .bind(e.kind.code())
    .bind(e.delta.bonus)
    .bind(e.delta.deposit)
    .bind(e.delta.winnings)
    .bind(e.reference)
    .bind(e.round_id)
    .bind(e.actor)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// The one exclusion gate, for online play and deposits: the account must be active, and the
/// person may have no exclusion or ban in force and no club membership that is self-excluded or
/// banned. Withdrawals do not ask (a self-excluded player can still withdraw).
pub async fn gate(tx: &mut Transaction<'static, Any>, account: &Account, now: Millis) -> WalletResult<()> {
    if account.state != AccountState::Active {
        return standing(account.state, &[], Vec::new());
    }
    let rows = sqlx::query(
        "SELECT p.personal_id, p.first_name, p.last_name, p.birth_date, m.state AS member_state \
         FROM persons p LEFT JOIN members m ON m.person_id = p.id WHERE p.id = $1",
    )
    .bind(account.person_id)
    .fetch_all(&mut **tx)
    .await?;
    let row = rows.first().ok_or_else(|| Error::NotFound(format!("person {}", account.person_id)))?;
    let personal_id: Option<String> = row.try_get("personal_id")?;
    let first: String = row.try_get("first_name")?;
    let last: String = row.try_get("last_name")?;
    let birth: String = row.try_get("birth_date")?;
    let members = rows.iter().map(|r| r.try_get("member_state")).collect::<std::result::Result<Vec<Option<String>>, _>>()?;
    let kinds = crate::club::active_exclusions(tx, account.person_id, personal_id.as_deref(), &first, &last, &birth, now).await?;
    standing(account.state, &members, kinds)
}

/// The gate's verdict from what it read: the account's state, the states of the person's club
/// memberships, and the kinds of exclusion in force.
pub(crate) fn standing(state: AccountState, member_states: &[Option<String>], exclusions: Vec<ExclusionKind>) -> WalletResult<()> {
    match state {
        AccountState::Active => {}
        AccountState::Unverified | AccountState::Blocked | AccountState::Closed => return Err(Refusal::Blocked.into()),
    }
    let member = |s: &str| member_states.iter().any(|m| m.as_deref() == Some(s));
    if member("self_excluded") {
        return Err(Refusal::SelfExcluded.into());
    }
    if member("banned") {
        return Err(Refusal::Blocked.into());
    }
    match exclusions.into_iter().min() {
        Some(ExclusionKind::Register | ExclusionKind::OwnRequest) => Err(Refusal::SelfExcluded.into()),
        Some(ExclusionKind::Ban) => Err(Refusal::Blocked.into()),
        None => Ok(()),
    }
}

/// A refusal of the pure rules as the wallet's, reporting `balance` with insufficient funds
/// (what can be staked for a bet, what can be withdrawn for a withdrawal).
pub(crate) fn refusal_from(balance: Money) -> impl Fn(club_rules::online::OnlineRefusal) -> WalletError {
    use club_rules::online::OnlineRefusal;
    move |r| {
        match r {
            OnlineRefusal::InsufficientFunds => Refusal::InsufficientFunds { balance },
            OnlineRefusal::LimitReached { kind, period } => Refusal::LimitReached { kind, period },
            OnlineRefusal::NotPositive => Refusal::InvalidAmount,
            OnlineRefusal::BelowMinimum => Refusal::BelowMinimum,
        }
        .into()
    }
}

/// Ends the person's club membership, when they have one that is still running, for `reason`
/// (RULES.md 1, "End of membership"), inside the caller's transaction: the member's request keeps
/// the points and free play unusable, any other reason deletes them; every terminal gets a block
/// for the person's active cards at once. Returns the membership's new state, or `None` when the
/// person has no running membership.
pub async fn end_floor_membership(
    tx: &mut Transaction<'static, Any>,
    rules: &club_rules::Rules,
    person_id: i64,
    reason: club_rules::membership::EndReason,
    actor: &crate::audit::Actor,
    now: Millis,
) -> Result<Option<club_rules::MemberState>> {
    let member: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE person_id = $1 AND state NOT IN ('left', 'terminated')")
        .bind(person_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(member) = member else { return Ok(None) };
    let state = crate::ledger::end_membership_in(tx, rules, member, reason, actor, time(now)?).await?;
    crate::reception::block_cards(tx, person_id, now).await?;
    Ok(Some(state))
}

/// The account's limit history.
pub async fn limit_rows(tx: &mut Transaction<'static, Any>, account_id: i64) -> Result<Vec<LimitRow>> {
    let rows = sqlx::query("SELECT id, kind, period, amount_cents, effective_at FROM iaccount_limits WHERE account_id = $1 ORDER BY id")
        .bind(account_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(limit_row).collect()
}

/// One row of `iaccount_limits`.
pub(crate) fn limit_row(r: &sqlx::any::AnyRow) -> Result<LimitRow> {
    limit_row_of(r.try_get("id")?, &r.try_get::<String, _>("kind")?, &r.try_get::<String, _>("period")?, r.try_get("amount_cents")?, r.try_get("effective_at")?)
}

/// A limit from its stored fields.
pub(crate) fn limit_row_of(id: i64, kind: &str, period: &str, amount_cents: Option<i64>, effective_at: Millis) -> Result<LimitRow> {
    Ok(LimitRow {
        seq: id,
        kind: LimitKind::from_code(kind).ok_or_else(|| Error::invalid("limit kind"))?,
        period: Period::from_code(period).ok_or_else(|| Error::invalid("limit period"))?,
        amount: amount_cents.map(Money::from_cents),
        effective_at: time(effective_at)?,
    })
}

/// What the account staked, won and deposited in each rolling window ending at `now`.
pub async fn usage(tx: &mut sqlx::AnyConnection, account_id: i64, now: DateTime<Utc>) -> Result<[Usage; 3]> {
    let since = |p: Period| (now - p.window()).timestamp_millis();
    let row = sqlx::query(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN created_at > $2 AND kind IN ('bet', 'rollback') THEN -(bonus_cents + deposit_cents + winnings_cents) ELSE 0 END), 0) AS BIGINT) AS s1, \
         CAST(COALESCE(SUM(CASE WHEN created_at > $2 AND kind = 'win' THEN winnings_cents ELSE 0 END), 0) AS BIGINT) AS w1, \
         CAST(COALESCE(SUM(CASE WHEN created_at > $2 AND kind = 'deposit' THEN deposit_cents ELSE 0 END), 0) AS BIGINT) AS d1, \
         CAST(COALESCE(SUM(CASE WHEN created_at > $3 AND kind IN ('bet', 'rollback') THEN -(bonus_cents + deposit_cents + winnings_cents) ELSE 0 END), 0) AS BIGINT) AS s2, \
         CAST(COALESCE(SUM(CASE WHEN created_at > $3 AND kind = 'win' THEN winnings_cents ELSE 0 END), 0) AS BIGINT) AS w2, \
         CAST(COALESCE(SUM(CASE WHEN created_at > $3 AND kind = 'deposit' THEN deposit_cents ELSE 0 END), 0) AS BIGINT) AS d2, \
         CAST(COALESCE(SUM(CASE WHEN kind IN ('bet', 'rollback') THEN -(bonus_cents + deposit_cents + winnings_cents) ELSE 0 END), 0) AS BIGINT) AS s3, \
         CAST(COALESCE(SUM(CASE WHEN kind = 'win' THEN winnings_cents ELSE 0 END), 0) AS BIGINT) AS w3, \
         CAST(COALESCE(SUM(CASE WHEN kind = 'deposit' THEN deposit_cents ELSE 0 END), 0) AS BIGINT) AS d3 \
         FROM wallet_ledger WHERE account_id = $1 AND created_at > $4",
    )
    .bind(account_id)
    .bind(since(Period::Day))
    .bind(since(Period::Week))
    .bind(since(Period::Month))
    .fetch_one(&mut *tx)
    .await?;
    let u = |s: &str, w: &str, d: &str| -> Result<Usage> {
        Ok(Usage {
            staked: Money::from_cents(row.try_get(s)?),
            won: Money::from_cents(row.try_get(w)?),
            deposited: Money::from_cents(row.try_get(d)?),
        })
    };
    Ok([u("s1", "w1", "d1")?, u("s2", "w2", "d2")?, u("s3", "w3", "d3")?])
}

/// Index of a period in [`usage`]'s answer.
pub fn period_index(p: Period) -> usize {
    match p {
        Period::Day => 0,
        Period::Week => 1,
        Period::Month => 2,
    }
}

/// The sums of an account's ledger entries per balance: what its cached balances must equal.
pub async fn ledger_sums(store: &Store, account_id: i64) -> Result<Delta> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(bonus_cents), 0) AS BIGINT) AS b, CAST(COALESCE(SUM(deposit_cents), 0) AS BIGINT) AS d, CAST(COALESCE(SUM(winnings_cents), 0) AS BIGINT) AS w \
         FROM wallet_ledger WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_one(store.read())
    .await?;
    Ok(Delta { bonus: row.try_get("b")?, deposit: row.try_get("d")?, winnings: row.try_get("w")? })
}

/// A money amount from an API or a form: positive, whole cents.
pub fn positive(amount: Money) -> WalletResult<Money> {
    if amount <= Money::ZERO { Err(Refusal::InvalidAmount.into()) } else { Ok(amount) }
}
