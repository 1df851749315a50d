//! The cash desk's own records: identity checks before a redemption or a cash movement, and cash
//! per person per gaming day, added up, with a warning at the reporting threshold (EUR 2,000) and
//! a row kept for every movement for anti-money-laundering reports.
//!
//! Key decision: the desk records cash in the same transaction as the movement it belongs to
//! ([`record_cash`] takes the caller's transaction), so the day's total can never miss a movement
//! nor count one that did not happen. The gaming day comes from the rules' calendar (local time,
//! starting at 06:00 by default).
//!
//! Not here: the online account's balances (`iaccount`), the points ledgers.

use chrono::{NaiveDate, TimeZone};
use club_rules::{Money, Rules};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// Cash per person per gaming day from which a movement is reportable and the desk is warned.
pub const REPORT_THRESHOLD_CENTS: i64 = 200_000;

/// An identity check is good for this long at the desk that made it.
pub const IDENTITY_VALID_MS: Millis = 15 * 60 * 1000;

/// A kind of cash movement at the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CashKind {
    OnlineDeposit,
    OnlineWithdrawal,
    VoucherSale,
}

impl CashKind {
    pub fn code(self) -> &'static str {
        match self {
            CashKind::OnlineDeposit => "online_deposit",
            CashKind::OnlineWithdrawal => "online_withdrawal",
            CashKind::VoucherSale => "voucher_sale",
        }
    }
}

/// The gaming day of `now`, by the rules' calendar.
pub fn gaming_day(rules: &Rules, now: Millis) -> Result<NaiveDate> {
    Ok(rules.config().calendar.gaming_day(crate::ledger::time(now)?))
}

/// When the gaming day of `now` started (for "today" figures on the desks).
pub fn gaming_day_start(rules: &Rules, now: Millis) -> Result<Millis> {
    let cal = &rules.config().calendar;
    let day = gaming_day(rules, now)?;
    let local = day.and_hms_opt(cal.gaming_day_starts_at_hour, 0, 0).ok_or_else(|| Error::invalid("gaming day start hour"))?;
    // A start inside a clock change takes its earliest meaning (or the hour after a gap).
    let start = cal
        .time_zone
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| cal.time_zone.from_local_datetime(&(local + chrono::TimeDelta::hours(1))).earliest())
        .ok_or_else(|| Error::invalid("gaming day start"))?;
    Ok(start.timestamp_millis())
}

/// What the desk is told after a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CashTotal {
    /// The person's cash for the gaming day, this movement included.
    pub day_total: Money,
    /// The total reached the threshold: the movement is reportable; warn the cashier.
    pub reportable: bool,
}

/// Records `amount` of cash moved for `person_id`, inside the caller's transaction (the one that
/// moves the money), and returns the day's total.
#[allow(clippy::too_many_arguments)] // the record's own columns, plus the transaction, rules and clock
pub async fn record_cash(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    person_id: i64,
    kind: CashKind,
    amount: Money,
    reference: Option<&str>,
    actor: &Actor,
    now: Millis,
) -> Result<CashTotal> {
    let staff = match actor {
        Actor::Staff { id, .. } => *id,
        _ => return Err(Error::Forbidden),
    };
    if amount.cents() <= 0 {
        return Err(Error::invalid("a cash amount is positive"));
    }
    let day = gaming_day(rules, now)?.to_string();
    let before: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM cash_desk_records WHERE person_id = $1 AND gaming_day = $2")
        .bind(person_id)
        .bind(&day)
        .fetch_one(&mut **tx)
        .await?;
    let total = before + amount.cents();
    let reportable = total >= REPORT_THRESHOLD_CENTS;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cash_desk_records (person_id, gaming_day, kind, amount_cents, day_total_cents, reportable, reference, staff_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(person_id)
    .bind(&day)
    .bind(kind.code())
    .bind(amount.cents())
    .bind(total)
    .bind(i64::from(reportable))
    .bind(reference)
    .bind(staff)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let result = CashTotal { day_total: Money::from_cents(total), reportable };
    audit::record(tx, now, actor, "cash.record", &format!("cash_desk_record:{id}"), None::<()>, Some((kind, amount.cents(), total, reportable))).await?;
    Ok(result)
}

/// The person's cash so far on the gaming day of `now`.
pub async fn day_total(store: &Store, rules: &Rules, person_id: i64, now: Millis) -> Result<Money> {
    let cents: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM cash_desk_records WHERE person_id = $1 AND gaming_day = $2")
        .bind(person_id)
        .bind(gaming_day(rules, now)?.to_string())
        .fetch_one(store.read())
        .await?;
    Ok(Money::from_cents(cents))
}

/// A reportable day of one person, for the report list.
#[derive(Debug, Clone)]
pub struct Reportable {
    pub person_id: i64,
    pub name: String,
    pub gaming_day: String,
    pub total: Money,
    pub movements: i64,
}

/// Persons whose cash on a gaming day since `from_day` reached the threshold.
pub async fn reportable_days(store: &Store, from_day: NaiveDate) -> Result<Vec<Reportable>> {
    let rows = sqlx::query(
        "SELECT r.person_id, r.gaming_day, CAST(SUM(r.amount_cents) AS BIGINT) AS total, COUNT(*) AS movements, p.first_name, p.last_name \
         FROM cash_desk_records r JOIN persons p ON p.id = r.person_id WHERE r.gaming_day >= $1 \
         GROUP BY r.person_id, r.gaming_day, p.first_name, p.last_name HAVING SUM(r.amount_cents) >= $2 \
         ORDER BY r.gaming_day DESC, r.person_id",
    )
    .bind(from_day.to_string())
    .bind(REPORT_THRESHOLD_CENTS)
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Reportable {
                person_id: r.try_get("person_id")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                gaming_day: r.try_get("gaming_day")?,
                total: Money::from_cents(r.try_get("total")?),
                movements: r.try_get("movements")?,
            })
        })
        .collect()
}

/// Records that the cashier saw the person's identity document (its type and the last characters
/// of its number, never the whole number).
pub async fn identity_checked(store: &Store, person_id: i64, document: &str, last_digits: &str, actor: &Actor, now: Millis) -> Result<()> {
    let document = document.trim();
    let last = last_digits.trim();
    if document.is_empty() || last.chars().count() < 3 || last.chars().count() > 6 {
        return Err(Error::invalid("the document type and the last 3 to 6 characters of its number"));
    }
    let mut tx = store.begin().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM persons WHERE id = $1").bind(person_id).fetch_optional(&mut *tx).await?;
    if exists.is_none() {
        return Err(Error::NotFound(format!("person {person_id}")));
    }
    audit::record(&mut tx, now, actor, "cash.identity", &format!("person:{person_id}"), None::<()>, Some((document, last))).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether `actor` checked the person's identity in the last [`IDENTITY_VALID_MS`].
pub async fn identity_is_fresh(store: &Store, person_id: i64, actor: &Actor, now: Millis) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'cash.identity' AND subject = $1 AND actor = $2 AND at > $3 AND at <= $4")
        .bind(format!("person:{person_id}"))
        .bind(actor.code())
        .bind(now - IDENTITY_VALID_MS)
        .bind(now)
        .fetch_one(store.read())
        .await?;
    Ok(n > 0)
}
