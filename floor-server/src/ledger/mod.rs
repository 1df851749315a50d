//! The club's ledgers: the imperative shell around `club_rules`.
//!
//! Every operation has the same shape: inside one write transaction, take the member's row lock
//! ([`store::lock_member`]), load the small state the rule needs (standing, tier, qualifying
//! points, open lots, carry-over), call the pure rule with `now`, and write what it decided (ledger
//! entries, lots, cached balances, tier, lists) before the transaction commits. So an earning and
//! the promotion it causes, or a redemption and the free play it buys, exist together or not at
//! all, and several floor-server processes stay correct on one PostgreSQL database.
//!
//! Key decision: the ledgers (`points_ledger`, `free_play_ledger`, `tier_events`) stay append-only;
//! a lot's `remaining` lives in a separate mutable table (`points_lots`, `free_play_grants`) keyed
//! by the id of the entry that opened it, and `members.points_balance` / `free_play_cents` are
//! cached sums, all changed in the transaction that appends the entries. A rule refusal (an
//! excluded member, too few points) is a [`Decision`] value, never an error string; the
//! transaction is then dropped and nothing is written.
//!
//! Days are the casino's (`club_rules::CalendarConfig`): anniversaries on its local date, the
//! showcase limit per gaming day.
//!
//! Not here: the rules themselves (`club_rules`) and HTTP routes for the consoles. Outlet
//! tickets are in [`outlet`].

pub mod earn;
pub mod free_play;
pub mod jobs;
pub mod outlet;
pub mod staff;

use chrono::{DateTime, NaiveDate, Utc};
use club_rules::cashback::FreePlayGrant;
use club_rules::gate::{Exclusion, ExclusionKind};
use club_rules::ledger::{EarnSource, FreePlayKind, PointsKind, RedeemFor};
use club_rules::lots::PointsLot;
use club_rules::tiers::{self, Reviewer, TierEvent, TierEventKind};
use club_rules::{CardState, Entry, LotId, LotRef, MemberState, Money, Points, RulesError, Rules, StaffId, Tier};
use sqlx::{Any, Row, Transaction};

use crate::audit::Actor;
use crate::clock::Millis;
use crate::error::{Error, Result};

pub use earn::{EventRef, PlayBatch, apply_play, apply_receipt, rate_table};
pub use free_play::{free_play_failed, free_play_sent, redeem_cashback};
pub use jobs::{anniversary_reviews, expire_due, spawn_jobs};
pub use staff::{CorrectionOutcome, approve_correction, end_membership, end_membership_in, invite_chairman, manager_review, promote_vip, request_correction};

/// What the rules decided: the value, or why they refused (nothing was written then).
pub type Decision<T> = std::result::Result<T, RulesError>;

/// A time from the database (unix milliseconds).
pub fn time(ms: Millis) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::invalid(format!("time out of range: {ms}")))
}

/// A time for the database.
pub fn millis(t: DateTime<Utc>) -> Millis {
    t.timestamp_millis()
}

/// The staff member behind an action that the rules attribute to a person.
pub(crate) fn staff_id(actor: &Actor) -> Result<StaffId> {
    match actor {
        Actor::Staff { id, .. } => Ok(StaffId(*id)),
        _ => Err(Error::Forbidden),
    }
}

/// The member's record as the rules need it, read under the member's lock.
pub(crate) struct MemberRow {
    pub member: club_rules::Member,
    pub joined_at: Millis,
    pub last_reviewed_on: Option<NaiveDate>,
    /// Where the qualifying sum was taken, so that a later time can tell whether it still holds.
    pub window: Window,
}

/// The member's earned points after `since` as the database holds them, with the nearest earned
/// entries on either side of `since`: another `since'` gives the same sum exactly when no earned
/// entry lies between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub since: Millis,
    pub sum: i64,
    /// The latest earned entry at or before `since` (not counted).
    pub below: Option<Millis>,
    /// The earliest earned entry after `since` (counted).
    pub above: Option<Millis>,
}

impl Window {
    /// Whether the sum taken at `since` is also the sum at `other`.
    pub fn holds_at(&self, other: Millis) -> bool {
        if other >= self.since { self.above.is_none_or(|a| a > other) } else { self.below.is_none_or(|b| b <= other) }
    }
}

/// Loads the member's standing (state, `card`'s state, every exclusion on record for the person),
/// tier and qualifying points at `now`. Call after [`crate::store::lock_member`].
pub(crate) async fn load_member(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    member_id: i64,
    card_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<MemberRow> {
    // Earned entries dated after the window's start, with no upper bound (see club_rules::tiers).
    let since = tiers::qualifying_since(rules, now).map_err(|e| Error::invalid(e.to_string()))?;
    // One statement for the member, the card and the qualifying points: this runs for every
    // play event inside the gateway's batch.
    let row = sqlx::query(
        "SELECT m.state, m.tier, m.joined_at, m.last_reviewed_on, p.id AS person_id, p.personal_id, p.first_name, \
         p.last_name, p.birth_date, (SELECT c.state FROM cards c WHERE c.id = $2) AS card_state, \
         (SELECT CAST(COALESCE(SUM(l.points), 0) AS BIGINT) FROM points_ledger l \
          WHERE l.member_id = m.id AND l.kind = 'earned' AND l.created_at > $3) AS qualifying, \
         (SELECT MAX(l.created_at) FROM points_ledger l \
          WHERE l.member_id = m.id AND l.kind = 'earned' AND l.created_at <= $3) AS below, \
         (SELECT MIN(l.created_at) FROM points_ledger l \
          WHERE l.member_id = m.id AND l.kind = 'earned' AND l.created_at > $3) AS above \
         FROM members m JOIN persons p ON p.id = m.person_id WHERE m.id = $1",
    )
    .bind(member_id)
    .bind(card_id)
    .bind(millis(since))
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("member {member_id}")))?;
    let state = MemberState::from_code(&row.try_get::<String, _>("state")?).ok_or_else(|| Error::invalid("member state"))?;
    let tier = Tier::from_code(&row.try_get::<String, _>("tier")?).ok_or_else(|| Error::invalid("tier"))?;
    let exclusions = sqlx::query(
        "SELECT kind, starts_at, ends_at FROM exclusions WHERE person_id = $1 OR (personal_id IS NOT NULL AND personal_id = $2) \
         OR (LOWER(first_name) = LOWER($3) AND LOWER(last_name) = LOWER($4) AND birth_date = $5)",
    )
    .bind(row.try_get::<i64, _>("person_id")?)
    .bind(row.try_get::<Option<String>, _>("personal_id")?)
    .bind(row.try_get::<String, _>("first_name")?)
    .bind(row.try_get::<String, _>("last_name")?)
    .bind(row.try_get::<String, _>("birth_date")?)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Exclusion {
            kind: ExclusionKind::from_code(&r.try_get::<String, _>("kind")?).ok_or_else(|| Error::invalid("exclusion kind"))?,
            from: time(r.try_get("starts_at")?)?,
            until: r.try_get::<Option<i64>, _>("ends_at")?.map(time).transpose()?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let card = match (card_id, row.try_get::<Option<String>, _>("card_state")?) {
        (Some(_), Some(code)) => Some(CardState::from_code(&code).ok_or_else(|| Error::invalid("card state"))?),
        (Some(id), None) => return Err(Error::NotFound(format!("card {id}"))),
        (None, _) => None,
    };
    let qualifying: i64 = row.try_get("qualifying")?;
    let last_reviewed_on = row
        .try_get::<Option<String>, _>("last_reviewed_on")?
        .map(|d| d.parse::<NaiveDate>().map_err(|_| Error::invalid("last review date")))
        .transpose()?;
    Ok(MemberRow {
        member: club_rules::Member {
            standing: club_rules::Standing { member: state, card, exclusions },
            tier,
            qualifying: Points(qualifying),
        },
        joined_at: row.try_get("joined_at")?,
        last_reviewed_on,
        window: Window { since: millis(since), sum: qualifying, below: row.try_get("below")?, above: row.try_get("above")? },
    })
}

/// The member's lots with something left, oldest first, from a query of (lot_id, opened_at,
/// expires_at, remaining) for member `$1`.
async fn open_lots<Q>(
    tx: &mut Transaction<'static, Any>,
    sql: &'static str,
    member_id: i64,
    quantity: fn(i64) -> Q,
) -> Result<Vec<club_rules::lots::Lot<Q>>> {
    let rows = sqlx::query(sql).bind(member_id).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            Ok(club_rules::lots::Lot {
                id: LotId(r.try_get(0)?),
                opened_at: time(r.try_get(1)?)?,
                expires_at: time(r.try_get(2)?)?,
                remaining: quantity(r.try_get(3)?),
            })
        })
        .collect()
}

/// The member's points lots with something left.
pub(crate) async fn points_lots(tx: &mut Transaction<'static, Any>, member_id: i64) -> Result<Vec<PointsLot>> {
    let sql = "SELECT lot_id, opened_at, expires_at, remaining FROM points_lots WHERE member_id = $1 AND remaining > 0 \
               ORDER BY opened_at, lot_id";
    open_lots(tx, sql, member_id, Points).await
}

/// The member's free-play grants with something left.
pub(crate) async fn grants(tx: &mut Transaction<'static, Any>, member_id: i64) -> Result<Vec<FreePlayGrant>> {
    let sql = "SELECT lot_id, opened_at, expires_at, remaining_cents FROM free_play_grants WHERE member_id = $1 \
               AND remaining_cents > 0 ORDER BY opened_at, lot_id";
    open_lots(tx, sql, member_id, Money::from_cents).await
}

/// What a member can use at `now`: points in unexpired lots, free play in unexpired grants. This
/// is what a terminal's Welcome shows; an expiry the job has not written yet is already left out.
pub async fn available(tx: &mut Transaction<'static, Any>, member_id: i64, now: Millis) -> Result<(Points, Money)> {
    let (points, cents): (i64, i64) = sqlx::query_as(
        "SELECT \
         (SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM points_lots \
          WHERE member_id = $1 AND remaining > 0 AND opened_at <= $2 AND expires_at > $2), \
         (SELECT CAST(COALESCE(SUM(remaining_cents), 0) AS BIGINT) FROM free_play_grants \
          WHERE member_id = $1 AND remaining_cents > 0 AND opened_at <= $2 AND expires_at > $2)",
    )
    .bind(member_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok((Points(points), Money::from_cents(cents)))
}

/// Where an entry came from, beyond what the rules say.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin<'a> {
    /// The terminal event that caused it.
    pub event: Option<&'a EventRef>,
    /// The machine transfer, for free play sent and returned.
    pub transfer: Option<&'a str>,
    /// Makes a repeat write nothing: entry `i` is stored under `<key>:<i>` (unique).
    pub key: Option<String>,
}

/// The columns of one ledger row that depend on the kind of entry.
struct Columns {
    kind: &'static str,
    /// Points: the earning category or redemption purpose; free play: unused.
    category: Option<String>,
    reason: Option<String>,
    staff: Option<i64>,
    /// Points: the approving second person; free play: the points a cashback spent.
    extra: Option<i64>,
}

/// One of the two lot-based ledgers: how its entries map onto its tables.
trait Book {
    type Q: Copy;
    type K;
    const INSERT: &'static str;
    const OPEN_LOT: &'static str;
    const CHANGE_LOT: &'static str;
    const BALANCE: &'static str;
    /// Whether rows name the terminal event (`$13`, `$14`) and lots their category (`$3`).
    const EVENT_AND_CATEGORY: bool;
    fn units(q: Self::Q) -> i64;
    fn columns(kind: &Self::K) -> Columns;
}

struct PointsBook;
struct FreePlayBook;

impl Book for PointsBook {
    type Q = Points;
    type K = PointsKind;
    const INSERT: &'static str = "INSERT INTO points_ledger (member_id, kind, points, category, lot_id, expires_at, reason, staff_id, \
        approved_by, rule_version, source_key, created_at, terminal_id, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id";
    const OPEN_LOT: &'static str =
        "INSERT INTO points_lots (lot_id, member_id, category, opened_at, expires_at, remaining) VALUES ($1, $2, $3, $4, $5, $6)";
    const CHANGE_LOT: &'static str = "UPDATE points_lots SET remaining = remaining + $1 WHERE lot_id = $2 AND member_id = $3";
    const BALANCE: &'static str = "UPDATE members SET points_balance = points_balance + $1 WHERE id = $2";
    const EVENT_AND_CATEGORY: bool = true;
    fn units(q: Points) -> i64 {
        q.0
    }
    fn columns(kind: &PointsKind) -> Columns {
        let plain = |kind, category: Option<String>| Columns { kind, category, reason: None, staff: None, extra: None };
        match kind {
            PointsKind::Earned(source) => plain("earned", Some(earn_category(source))),
            PointsKind::Redeemed(RedeemFor::Cashback) => plain("redeemed", Some("cashback".into())),
            PointsKind::Redeemed(RedeemFor::Purchase(outlet)) => plain("redeemed", Some(code_of(outlet))),
            PointsKind::Returned(RedeemFor::Cashback) => plain("returned", Some("cashback".into())),
            PointsKind::Returned(RedeemFor::Purchase(outlet)) => plain("returned", Some(code_of(outlet))),
            // Stored as a negative `earned` line so the qualifying sum stays the sum of earnings.
            PointsKind::EarningReversed(source) => {
                Columns { reason: Some("reversed".into()), ..plain("earned", Some(earn_category(source))) }
            }
            PointsKind::Expired => plain("expired", None),
            PointsKind::Deleted(reason) => Columns { reason: Some(reason.code().into()), ..plain("deleted", None) },
            PointsKind::Corrected { reason, by, approved_by } => Columns {
                kind: "corrected",
                category: None,
                reason: Some(reason.clone()),
                staff: Some(by.0),
                extra: approved_by.map(|s| s.0),
            },
        }
    }
}

impl Book for FreePlayBook {
    type Q = Money;
    type K = FreePlayKind;
    const INSERT: &'static str = "INSERT INTO free_play_ledger (member_id, kind, amount_cents, transfer_id, lot_id, expires_at, reason, \
        staff_id, points, rule_version, source_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";
    const OPEN_LOT: &'static str =
        "INSERT INTO free_play_grants (lot_id, member_id, opened_at, expires_at, remaining_cents) VALUES ($1, $2, $3, $4, $5)";
    const CHANGE_LOT: &'static str =
        "UPDATE free_play_grants SET remaining_cents = remaining_cents + $1 WHERE lot_id = $2 AND member_id = $3";
    const BALANCE: &'static str = "UPDATE members SET free_play_cents = free_play_cents + $1 WHERE id = $2";
    const EVENT_AND_CATEGORY: bool = false;
    fn units(q: Money) -> i64 {
        q.cents()
    }
    fn columns(kind: &FreePlayKind) -> Columns {
        let plain = |kind| Columns { kind, category: None, reason: None, staff: None, extra: None };
        match kind {
            FreePlayKind::Issued { points } => Columns { extra: Some(points.0), ..plain("issued") },
            FreePlayKind::Sent => plain("sent"),
            FreePlayKind::Returned => plain("returned"),
            FreePlayKind::Expired => plain("expired"),
            FreePlayKind::Deleted(reason) => Columns { reason: Some(reason.code().into()), ..plain("deleted") },
        }
    }
}

/// The storage code of a serde enum without data (`"bar"` for `Outlet::Bar`).
fn code_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The category stored with an earning (also its lot's category).
pub(crate) fn earn_category(source: &EarnSource) -> String {
    match source {
        EarnSource::Machine(m) => m.code().into(),
        EarnSource::Receipt => "receipt".into(),
        EarnSource::Table(game) => format!("table:{game}"),
    }
}

/// Appends `entries` to a ledger, opens or changes their lots and moves the cached balance.
async fn write<B: Book>(
    tx: &mut Transaction<'static, Any>,
    member_id: i64,
    entries: &[Entry<B::Q, B::K>],
    origin: &Origin<'_>,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(entries.len());
    let mut total = 0i64;
    for (i, entry) in entries.iter().enumerate() {
        let c = B::columns(&entry.kind);
        let units = B::units(entry.amount);
        let (lot, expires_at) = match entry.lot {
            LotRef::Opens { expires_at } => (None, Some(millis(expires_at))),
            LotRef::Existing(lot) => (Some(lot.0), None),
        };
        let mut q = sqlx::query_scalar::<_, i64>(B::INSERT)
            .bind(member_id)
            .bind(c.kind)
            .bind(units)
            // points: the category; free play: the transfer
            .bind(c.category.clone().or_else(|| origin.transfer.map(str::to_owned)))
            .bind(lot)
            .bind(expires_at)
            .bind(c.reason)
            .bind(c.staff)
            .bind(c.extra)
            .bind(entry.rule_version.as_str())
            .bind(origin.key.as_ref().map(|k| format!("{k}:{i}")))
            .bind(millis(entry.at));
        if B::EVENT_AND_CATEGORY {
            q = q.bind(origin.event.map(|e| e.terminal.clone())).bind(origin.event.map(|e| e.seq));
        }
        let id = q.fetch_one(&mut **tx).await?;
        match entry.lot {
            LotRef::Opens { expires_at } => {
                let mut q = sqlx::query(B::OPEN_LOT).bind(id).bind(member_id);
                if B::EVENT_AND_CATEGORY {
                    q = q.bind(c.category.unwrap_or_else(|| c.kind.to_owned()));
                }
                q.bind(millis(entry.at))
                    .bind(millis(expires_at))
                    .bind(units)
                    .execute(&mut **tx)
                    .await?;
            }
            LotRef::Existing(lot) => {
                let n = sqlx::query(B::CHANGE_LOT).bind(units).bind(lot.0).bind(member_id).execute(&mut **tx).await?.rows_affected();
                if n != 1 {
                    return Err(Error::Conflict(format!("lot {} of member {member_id} not found", lot.0)));
                }
            }
        }
        total += units;
        ids.push(id);
    }
    if total != 0 {
        sqlx::query(B::BALANCE).bind(total).bind(member_id).execute(&mut **tx).await?;
    }
    Ok(ids)
}

/// Appends points entries (see [`write`]).
pub(crate) async fn write_points(
    tx: &mut Transaction<'static, Any>,
    member_id: i64,
    entries: &[club_rules::PointsEntry],
    origin: &Origin<'_>,
) -> Result<Vec<i64>> {
    write::<PointsBook>(tx, member_id, entries, origin).await
}

/// Appends free-play entries (see [`write`]).
pub(crate) async fn write_free_play(
    tx: &mut Transaction<'static, Any>,
    member_id: i64,
    entries: &[club_rules::FreePlayEntry],
    origin: &Origin<'_>,
) -> Result<Vec<i64>> {
    write::<FreePlayBook>(tx, member_id, entries, origin).await
}

/// Whether an entry was already written under this origin key (a repeat of an event or a job).
pub(crate) async fn already_written(tx: &mut Transaction<'static, Any>, key: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_ledger WHERE source_key = $1")
        .bind(format!("{key}:0"))
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

/// Applies tier decisions: the member's tier, the tier history, the manager's list.
pub(crate) async fn apply_tier_events(tx: &mut Transaction<'static, Any>, member_id: i64, events: &[TierEvent]) -> Result<()> {
    for event in events {
        let at = millis(event.at);
        let (kind, from, to, staff, anniversary) = match &event.kind {
            TierEventKind::Promoted { from, to } => ("promoted", Some(*from), Some(*to), None, None),
            TierEventKind::EligibleForVip => ("eligible_for_vip", None, None, None, None),
            TierEventKind::Reviewed { from, to, by: Reviewer::Manager(s) } => ("reviewed", Some(*from), Some(*to), Some(s.0), None),
            TierEventKind::Reviewed { from, to, by: Reviewer::Anniversary(d) } => ("reviewed", Some(*from), Some(*to), None, Some(*d)),
            TierEventKind::ListedForManagerReview { anniversary } => ("listed_for_review", None, None, None, Some(*anniversary)),
        };
        sqlx::query(
            "INSERT INTO tier_events (member_id, kind, from_tier, to_tier, staff_id, anniversary, rule_version, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(member_id)
        .bind(kind)
        .bind(from.map(Tier::code))
        .bind(to.map(Tier::code))
        .bind(staff)
        .bind(anniversary.map(|d| d.to_string()))
        .bind(event.rule_version.as_str())
        .bind(at)
        .execute(&mut **tx)
        .await?;
        if let Some(to) = to {
            sqlx::query("UPDATE members SET tier = $1 WHERE id = $2").bind(to.code()).bind(member_id).execute(&mut **tx).await?;
        }
        match &event.kind {
            TierEventKind::EligibleForVip => list_for_review(tx, member_id, "vip_eligible", "", at).await?,
            TierEventKind::ListedForManagerReview { anniversary } => {
                list_for_review(tx, member_id, "anniversary", &anniversary.to_string(), at).await?;
            }
            TierEventKind::Reviewed { by: Reviewer::Manager(s), .. } => {
                sqlx::query("UPDATE review_list SET done_at = $1, done_by = $2 WHERE member_id = $3 AND done_at IS NULL")
                    .bind(at)
                    .bind(s.0)
                    .bind(member_id)
                    .execute(&mut **tx)
                    .await?;
            }
            _ => {}
        }
        if let Some(day) = anniversary {
            sqlx::query("UPDATE members SET last_reviewed_on = $1 WHERE id = $2")
                .bind(day.to_string())
                .bind(member_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Puts a member on the manager's list (again, if an earlier entry was already dealt with).
async fn list_for_review(tx: &mut Transaction<'static, Any>, member_id: i64, reason: &str, anniversary: &str, at: Millis) -> Result<()> {
    sqlx::query(
        "INSERT INTO review_list (member_id, reason, anniversary, listed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (member_id, reason, anniversary) DO UPDATE SET listed_at = excluded.listed_at, done_at = NULL, done_by = NULL",
    )
    .bind(member_id)
    .bind(reason)
    .bind(anniversary)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A member on the manager's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub member_id: i64,
    /// `vip_eligible` or `anniversary`.
    pub reason: String,
    /// The anniversary, for `anniversary` rows.
    pub anniversary: Option<NaiveDate>,
    pub listed_at: Millis,
}

/// The manager's open list: members eligible for VIP Exclusive and VIP / Chairman members due
/// their annual review, oldest first.
pub async fn review_list(store: &crate::store::Store) -> Result<Vec<Listed>> {
    let rows = sqlx::query(
        "SELECT member_id, reason, anniversary, listed_at FROM review_list WHERE done_at IS NULL ORDER BY listed_at, member_id, reason",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            let day: String = r.try_get("anniversary")?;
            Ok(Listed {
                member_id: r.try_get("member_id")?,
                reason: r.try_get("reason")?,
                anniversary: if day.is_empty() { None } else { Some(day.parse().map_err(|_| Error::invalid("anniversary"))?) },
                listed_at: r.try_get("listed_at")?,
            })
        })
        .collect()
}

/// A member's balances as the ledgers hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    /// The cached sum of the points ledger (`members.points_balance`).
    pub points: Points,
    /// The cached sum of the free-play ledger.
    pub free_play: Money,
    pub tier: Tier,
}

/// The cached balances and tier of a member.
pub async fn balances(store: &crate::store::Store, member_id: i64) -> Result<Balances> {
    let row = sqlx::query("SELECT points_balance, free_play_cents, tier FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("member {member_id}")))?;
    Ok(Balances {
        points: Points(row.try_get("points_balance")?),
        free_play: Money::from_cents(row.try_get("free_play_cents")?),
        tier: Tier::from_code(&row.try_get::<String, _>("tier")?).ok_or_else(|| Error::invalid("tier"))?,
    })
}

/// Loads the rules: the file at `path` (parsed and validated by `club_rules`), else RULES.md's.
pub fn load_rules(path: Option<&std::path::Path>) -> Result<Rules> {
    match path {
        None => Ok(Rules::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::Config(format!("reading rules {}: {e}", p.display())))?;
            Rules::from_toml_str(&text).map_err(|e| Error::Config(format!("rules {}: {e}", p.display())))
        }
    }
}
