//! Earning: machine play and bar receipts from terminal events, table ratings from the pit.
//!
//! Key decision: an earning is decided at the event's own time (`at`), against the member's
//! standing at that time, so play in an offline session by a member excluded in the meantime
//! earns nothing, and it is written in the transaction of the event that caused it (the gateway's
//! batch). A refused member's event still leaves a zero-point `no_points` line with the refusal
//! as its reason; less than a whole point leaves only the carry-over.
//!
//! Not here: de-duplication of terminal events (the gateway keys them by terminal and sequence);
//! who may enter a rating (the pit console's roles).

use chrono::{DateTime, Utc};
use club_rules::earning::{self, Earning, MachinePlay, NoPointsReason, Receipt};
use club_rules::table::{self, PointFraction, TableEarning, TableRating};
use club_rules::{MachineType, Money, Points, Rules};
use rust_decimal::Decimal;
use sqlx::{Any, Transaction};

use super::{Decision, Origin, apply_tier_events, load_member, millis, write_points};
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// The terminal event an earning comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub terminal: String,
    pub seq: i64,
}

/// The carry-over category of table ratings (one for every game).
const TABLE_CARRY: &str = "table";

async fn carry_row(tx: &mut Transaction<'static, Any>, member_id: i64, category: &str) -> Result<Option<(i64, String)>> {
    Ok(sqlx::query_as("SELECT carry_cents, carry_points FROM points_carry WHERE member_id = $1 AND category = $2")
        .bind(member_id)
        .bind(category)
        .fetch_optional(&mut **tx)
        .await?)
}

async fn store_carry(
    tx: &mut Transaction<'static, Any>,
    member_id: i64,
    category: &str,
    cents: i64,
    points: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO points_carry (member_id, category, carry_cents, carry_points, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (member_id, category) DO UPDATE SET carry_cents = excluded.carry_cents, carry_points = excluded.carry_points, \
         updated_at = excluded.updated_at",
    )
    .bind(member_id)
    .bind(category)
    .bind(cents)
    .bind(points)
    .bind(millis(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes an earning: its entry (opening a lot) and tier events, or the refusal line.
async fn write_earning(tx: &mut Transaction<'static, Any>, member_id: i64, earning: &Earning, origin: &Origin<'_>, at: DateTime<Utc>) -> Result<()> {
    match earning {
        Earning::Points { entry, tier } => {
            write_points(tx, member_id, std::slice::from_ref(entry), origin).await?;
            apply_tier_events(tx, member_id, tier).await?;
        }
        Earning::NoPoints { reason: NoPointsReason::Refused(code), rule_version } => {
            sqlx::query(
                "INSERT INTO points_ledger (member_id, kind, points, reason, rule_version, source_key, created_at, terminal_id, seq) \
                 VALUES ($1, 'no_points', 0, $2, $3, $4, $5, $6, $7)",
            )
            .bind(member_id)
            .bind(format!("refused:{}", super::code_of(code)))
            .bind(rule_version.as_str())
            .bind(origin.key.as_ref().map(|k| format!("{k}:0")))
            .bind(millis(at))
            .bind(origin.event.map(|e| e.terminal.clone()))
            .bind(origin.event.map(|e| e.seq))
            .execute(&mut **tx)
            .await?;
        }
        Earning::NoPoints { .. } => {}
    }
    Ok(())
}

/// Points for play at a machine of `machine` type: `wagered` EUR at `at`, by the member holding
/// card `card_id` in the session. Call inside the event's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn apply_play(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    member_id: i64,
    card_id: Option<i64>,
    machine: MachineType,
    wagered: Money,
    at: DateTime<Utc>,
    event: Option<&EventRef>,
) -> Result<Decision<Earning>> {
    store::lock_member(tx, member_id).await?;
    let member = load_member(tx, rules, member_id, card_id, at).await?.member;
    let carry = carry_row(tx, member_id, machine.code()).await?.map_or(0, |(cents, _)| cents);
    let decided = match earning::machine_play(rules, &member, MachinePlay { machine, wagered }, Money::from_cents(carry), at) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    if decided.carry.cents() != carry {
        store_carry(tx, member_id, machine.code(), decided.carry.cents(), "0", at).await?;
    }
    let origin = Origin { event, key: None, ..Origin::default() };
    write_earning(tx, member_id, &decided.earning, &origin, at).await?;
    Ok(Ok(decided.earning))
}

/// Points for a bar or restaurant receipt. `key` identifies the receipt (the terminal and the
/// POS receipt number): a receipt already on record earns nothing again and gives `None`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_receipt(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    member_id: i64,
    card_id: Option<i64>,
    receipt: &Receipt,
    at: DateTime<Utc>,
    event: Option<&EventRef>,
    key: &str,
) -> Result<Option<Decision<Earning>>> {
    store::lock_member(tx, member_id).await?;
    if super::already_written(tx, key).await? {
        return Ok(None);
    }
    let member = load_member(tx, rules, member_id, card_id, at).await?.member;
    let earning = match earning::receipt(rules, &member, receipt, at) {
        Ok(e) => e,
        Err(e) => return Ok(Some(Err(e))),
    };
    let origin = Origin { event, key: Some(key.to_owned()), ..Origin::default() };
    write_earning(tx, member_id, &earning, &origin, at).await?;
    Ok(Some(Ok(earning)))
}

/// Rates a live table session for a member identified at the table (no card): stores the rating
/// with its theoretical win and flags, and the points it earned, at `now`. Audited.
pub async fn rate_table(
    store: &Store,
    rules: &Rules,
    member_id: i64,
    rating: &TableRating,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Decision<TableEarning>> {
    let staff = super::staff_id(actor)?;
    let mut tx = store.begin().await?;
    store::lock_member(&mut tx, member_id).await?;
    let member = load_member(&mut tx, rules, member_id, None, now).await?.member;
    let carry = match carry_row(&mut tx, member_id, TABLE_CARRY).await? {
        Some((_, text)) => PointFraction::new(text.parse::<Decimal>().map_err(|_| Error::invalid("table carry-over"))?)
            .map_err(|e| Error::invalid(e.to_string()))?,
        None => PointFraction::ZERO,
    };
    let decided = match table::rate(rules, &member, rating, carry, now) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    if decided.carry != carry {
        store_carry(&mut tx, member_id, TABLE_CARRY, 0, &decided.carry.as_decimal().to_string(), now).await?;
    }
    let seconds = match rating.played {
        table::Played::Minutes(m) => i64::from(m) * 60,
        table::Played::Between { start, end } => (end - start).num_seconds(),
    };
    let no_points = match &decided.earning {
        Earning::NoPoints { reason, .. } => Some(serde_json::to_string(reason).expect("reason serialises")),
        Earning::Points { .. } => None,
    };
    let rating_id: i64 = sqlx::query_scalar(
        "INSERT INTO table_ratings (member_id, game, seconds, average_bet_cents, theoretical_win_cents, points, no_points, flags, \
         rated_by, rule_version, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(member_id)
    .bind(&rating.game)
    .bind(seconds)
    .bind(rating.average_bet.cents())
    .bind(decided.theoretical_win.map(Money::cents))
    .bind(decided.earning.points().0)
    .bind(no_points)
    .bind(serde_json::to_string(&decided.flags).expect("flags serialise"))
    .bind(staff.0)
    .bind(rules.version().as_str())
    .bind(millis(now))
    .fetch_one(&mut *tx)
    .await?;
    let origin = Origin { key: Some(format!("rating:{rating_id}")), ..Origin::default() };
    write_earning(&mut tx, member_id, &decided.earning, &origin, now).await?;
    let points: Points = decided.earning.points();
    audit::record(&mut tx, millis(now), actor, "table.rating", &format!("member:{member_id}"), None::<()>, Some((rating, points))).await?;
    tx.commit().await?;
    Ok(Ok(decided))
}
