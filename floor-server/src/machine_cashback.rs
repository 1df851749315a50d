//! Cashback at a machine: the player redeems points at the terminal with a PIN; the points become
//! free play, which is sent at once to that machine under the transfer id the terminal chose.
//!
//! Key decisions:
//! - One transaction writes the points spent, the free play issued, the free play sent (from that
//!   very grant) and a `machine_redemptions` row; a repeat with the same transfer id answers as
//!   the first time and writes nothing.
//! - A machine redemption whose transfer fails is **reversed**, not left as free play: the points
//!   go back into the lots they came from (keeping those lots' expiry), and the free play issued
//!   for it is cancelled, as new ledger entries, once only, inside the gateway's batch
//!   transaction. Free play issued at a desk that fails on its way to a machine stays free play
//!   (`ledger::free_play_failed`).
//!
//! What it does not do: the AFT transfer (the terminal), the PIN itself (`pins`).

use chrono::{DateTime, Utc};
use club_rules::cashback::{self, FreePlayGrant};
use club_rules::{LotId, LotRef, Money, Points, RefusalCode, Rules};
use floor_protocol::{CardNumber, ErrorCode, Reply};
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::club;
use crate::error::{Error, Result};
use crate::ledger::{self, Origin};
use crate::pins::{self, PinCheck};
use crate::store::{self, Store};

/// A transfer id a terminal may choose: 1-20 letters, digits or dashes (it travels in SAS AFT).
pub fn valid_transfer(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Answers a `RedeemCashback` request from terminal `terminal`.
#[allow(clippy::too_many_arguments)]
pub async fn redeem_at_machine(
    store: &Store,
    rules: &Rules,
    terminal: &str,
    card: &CardNumber,
    points: i64,
    pin: &str,
    transfer: &str,
    now: DateTime<Utc>,
) -> Result<Reply> {
    if !valid_transfer(transfer) {
        return Ok(Reply::failed(ErrorCode::Invalid, "transfer id must be 1-20 letters, digits or dashes"));
    }
    if points <= 0 {
        return Ok(Reply::failed(ErrorCode::Invalid, "points must be positive"));
    }
    if let Some(first) = earlier(store, terminal, transfer).await? {
        return Ok(first);
    }
    let number = club::normalise_card(card)?;
    let now_ms = ledger::millis(now);
    let mut tx = store.read().begin().await?;
    let holder = club::card_holder(&mut tx, &number, now_ms).await?;
    tx.rollback().await?;
    let Some(h) = holder else { return Ok(Reply::refused(RefusalCode::UnknownCard)) };
    if let Err(code) = club::card_in_decision(&h) {
        return Ok(Reply::refused(code));
    }
    let actor = Actor::Terminal(terminal.to_owned());
    match pins::check(store, h.member_id, pin, &actor, now_ms).await? {
        PinCheck::Good => {}
        PinCheck::Wrong { tries_left } => return Ok(Reply::PinRefused { tries_left }),
        PinCheck::Locked | PinCheck::NotSet => return Ok(Reply::PinLocked),
    }

    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, h.member_id).await?;
    // A parallel request with the same id may have committed while the PIN was checked.
    if machine_redemption(&mut tx, transfer).await?.is_some() {
        drop(tx);
        return Ok(earlier(store, terminal, transfer).await?.unwrap_or_else(|| Reply::failed(ErrorCode::Invalid, "transfer id already used")));
    }
    let member = ledger::load_member(&mut tx, rules, h.member_id, Some(h.card_id), now).await?.member;
    let lots = ledger::points_lots(&mut tx, h.member_id).await?;
    let decided = match cashback::redeem(rules, &member, &lots, Points(points), now) {
        Ok(d) => d,
        Err(club_rules::RulesError::Refused(code)) => return Ok(Reply::refused(code)),
        Err(e) => return Ok(Reply::failed(ErrorCode::Invalid, e.to_string())),
    };
    let amount = decided.free_play.amount;
    let key = |part: &str| Some(format!("mredeem:{transfer}:{part}"));
    ledger::write_points(&mut tx, h.member_id, &decided.points, &Origin { key: key("p"), ..Origin::default() }).await?;
    let issued = ledger::write_free_play(&mut tx, h.member_id, std::slice::from_ref(&decided.free_play), &Origin { key: key("f"), ..Origin::default() })
        .await?;
    let LotRef::Opens { expires_at } = decided.free_play.lot else {
        return Err(Error::Config("cashback free play must open a grant".into()));
    };
    // Sent from the grant just issued, so a reversal cancels exactly that free play.
    let grant = FreePlayGrant { id: LotId(issued[0]), opened_at: now, expires_at, remaining: amount };
    let sent = match cashback::send(rules, &member, &[grant], amount, now) {
        Ok(s) => s,
        Err(e) => return Ok(Reply::failed(ErrorCode::Invalid, e.to_string())),
    };
    ledger::write_free_play(&mut tx, h.member_id, &sent, &Origin { transfer: Some(transfer), key: key("s"), ..Origin::default() }).await?;
    sqlx::query(
        "INSERT INTO machine_redemptions (transfer_id, member_id, terminal_id, points, amount_cents, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'sent', $6)",
    )
    .bind(transfer)
    .bind(h.member_id)
    .bind(terminal)
    .bind(points)
    .bind(amount.cents())
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        now_ms,
        &actor,
        "cashback.redeem_at_machine",
        &format!("member:{}", h.member_id),
        None::<()>,
        Some(serde_json::json!({ "transfer": transfer, "points": points, "amount": amount.to_string() })),
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("floor_machine_cashback_total").increment(1);
    Ok(Reply::Redeemed { transfer: transfer.to_owned(), points, amount: amount.as_decimal() })
}

/// The first answer to a redemption already made under this transfer id.
async fn earlier(store: &Store, terminal: &str, transfer: &str) -> Result<Option<Reply>> {
    let row: Option<(String, i64, i64, String)> =
        sqlx::query_as("SELECT terminal_id, points, amount_cents, state FROM machine_redemptions WHERE transfer_id = $1")
            .bind(transfer)
            .fetch_optional(store.read())
            .await?;
    Ok(row.map(|(t, points, cents, state)| {
        if t != terminal {
            Reply::failed(ErrorCode::Invalid, "transfer id already used")
        } else if state == "reversed" {
            Reply::failed(ErrorCode::Invalid, "this redemption was reversed after its transfer failed")
        } else {
            Reply::Redeemed { transfer: transfer.to_owned(), points, amount: Money::from_cents(cents).as_decimal() }
        }
    }))
}

struct Redemption {
    member_id: i64,
    terminal: String,
    state: String,
}

async fn machine_redemption(tx: &mut Transaction<'static, Any>, transfer: &str) -> Result<Option<Redemption>> {
    let row = sqlx::query("SELECT member_id, terminal_id, state FROM machine_redemptions WHERE transfer_id = $1")
        .bind(transfer)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| Ok(Redemption { member_id: r.try_get("member_id")?, terminal: r.try_get("terminal_id")?, state: r.try_get("state")? })).transpose()
}

/// What a failed transfer reported by a terminal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedTransfer {
    /// A machine redemption was reversed: these points went back.
    Reversed { points: i64 },
    /// Free play from a desk went back to the member's free play.
    Returned(Money),
    /// Nothing to do (already handled, or nothing was sent under that id).
    Nothing,
}

/// Handles a failed transfer inside the gateway's batch transaction (see the module header).
pub async fn transfer_failed(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    terminal: &str,
    transfer: &str,
    now: DateTime<Utc>,
) -> Result<ledger::Decision<FailedTransfer>> {
    let Some(r) = machine_redemption(tx, transfer).await? else {
        return Ok(ledger::free_play_failed(tx, rules, transfer, now).await?.map(|m| {
            if m == Money::ZERO { FailedTransfer::Nothing } else { FailedTransfer::Returned(m) }
        }));
    };
    if r.terminal != terminal {
        return Err(Error::invalid("the transfer belongs to another terminal"));
    }
    store::lock_member(tx, r.member_id).await?;
    if r.state == "reversed" {
        return Ok(Ok(FailedTransfer::Nothing));
    }
    let at = ledger::millis(now);
    let moved = sqlx::query("UPDATE machine_redemptions SET state = 'reversed', reversed_at = $1 WHERE transfer_id = $2 AND state = 'sent'")
        .bind(at)
        .bind(transfer)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if moved != 1 {
        return Ok(Ok(FailedTransfer::Nothing));
    }
    // The free play comes back to its grant, then the grant is cancelled.
    let returned = match ledger::free_play_failed(tx, rules, transfer, now).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let issued: Option<(i64,)> = sqlx::query_as("SELECT id FROM free_play_ledger WHERE source_key = $1")
        .bind(format!("mredeem:{transfer}:f:0"))
        .fetch_optional(&mut **tx)
        .await?;
    let version = rules.version().as_str().to_owned();
    if let Some((grant,)) = issued
        && returned > Money::ZERO
    {
        sqlx::query(
            "INSERT INTO free_play_ledger (member_id, kind, amount_cents, transfer_id, lot_id, reason, rule_version, source_key, created_at) \
             VALUES ($1, 'deleted', $2, $3, $4, 'redemption_reversed', $5, $6, $7)",
        )
        .bind(r.member_id)
        .bind(-returned.cents())
        .bind(transfer)
        .bind(grant)
        .bind(&version)
        .bind(format!("mreverse:{transfer}:f"))
        .bind(at)
        .execute(&mut **tx)
        .await?;
        change(tx, "UPDATE free_play_grants SET remaining_cents = remaining_cents - $1 WHERE lot_id = $2 AND member_id = $3", returned.cents(), grant, r.member_id)
            .await?;
        sqlx::query("UPDATE members SET free_play_cents = free_play_cents - $1 WHERE id = $2")
            .bind(returned.cents())
            .bind(r.member_id)
            .execute(&mut **tx)
            .await?;
    }
    // The points go back into the lots they were taken from.
    let spent = sqlx::query("SELECT points, lot_id FROM points_ledger WHERE member_id = $1 AND source_key LIKE $2 ORDER BY id")
        .bind(r.member_id)
        .bind(format!("mredeem:{transfer}:p:%"))
        .fetch_all(&mut **tx)
        .await?;
    let mut total = 0i64;
    for (i, row) in spent.iter().enumerate() {
        let points: i64 = row.try_get("points")?;
        let lot: Option<i64> = row.try_get("lot_id")?;
        let lot = lot.ok_or_else(|| Error::invalid("a redeemed entry names its lot"))?;
        let back = -points;
        sqlx::query(
            "INSERT INTO points_ledger (member_id, kind, points, category, lot_id, reason, rule_version, source_key, created_at) \
             VALUES ($1, 'reversed', $2, 'cashback', $3, 'machine_transfer_failed', $4, $5, $6)",
        )
        .bind(r.member_id)
        .bind(back)
        .bind(lot)
        .bind(&version)
        .bind(format!("mreverse:{transfer}:p:{i}"))
        .bind(at)
        .execute(&mut **tx)
        .await?;
        change(tx, "UPDATE points_lots SET remaining = remaining + $1 WHERE lot_id = $2 AND member_id = $3", back, lot, r.member_id).await?;
        total += back;
    }
    sqlx::query("UPDATE members SET points_balance = points_balance + $1 WHERE id = $2").bind(total).bind(r.member_id).execute(&mut **tx).await?;
    audit::record(
        tx,
        at,
        &Actor::Terminal(terminal.to_owned()),
        "cashback.reversed",
        &format!("member:{}", r.member_id),
        None::<()>,
        Some(serde_json::json!({ "transfer": transfer, "points": total, "free_play_cancelled": returned.to_string() })),
    )
    .await?;
    metrics::counter!("floor_machine_cashback_reversed_total").increment(1);
    Ok(Ok(FailedTransfer::Reversed { points: total }))
}

async fn change(tx: &mut Transaction<'static, Any>, sql: &'static str, units: i64, lot: i64, member: i64) -> Result<()> {
    let n = sqlx::query(sql).bind(units).bind(lot).bind(member).execute(&mut **tx).await?.rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!("lot {lot} of member {member} not found")));
    }
    Ok(())
}
