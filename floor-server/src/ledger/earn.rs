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

use std::collections::HashMap;

use club_rules::ledger::PointsKind;
use club_rules::tiers;
use club_rules::{CardState, LotRef};
use sqlx::Row;

use super::{Decision, Origin, Window, apply_tier_events, load_member, millis, write_points};
use crate::clock::Millis;
use crate::store::multirow::MultiRowInsert;
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
    store_carry_at(tx, member_id, category, cents, points, millis(at)).await
}

async fn store_carry_at(
    tx: &mut Transaction<'static, Any>,
    member_id: i64,
    category: &str,
    cents: i64,
    points: &str,
    at: Millis,
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
    .bind(at)
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
/// card `card_id` in the session. Call inside the event's transaction. (The gateway decides a
/// whole batch of play at once with [`PlayBatch`]; this is the same for one play.)
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
    let mut batch = PlayBatch::default();
    let decided = batch.apply_play(tx, rules, member_id, card_id, machine, wagered, at, event).await?;
    batch.flush(tx).await?;
    Ok(decided)
}

/// Machine play of one transaction (the gateway's batch), decided in memory and written once.
///
/// Each member the batch touches is locked and loaded once (standing, tier, qualifying points,
/// carry-overs); every play is then decided by the same pure rule as a lone play, against that
/// state as the earlier plays of the batch left it, and the entries, lots, balances and carries
/// are written together by [`PlayBatch::flush`]. The result is the same rows a play-by-play
/// application writes, in a handful of statements per batch instead of several per play.
///
/// Qualifying points are exact at every play's own time: the database's sum is kept with the
/// nearest earned entries around the window's start and taken again only when a play's window
/// start crosses one of them; the batch's own earnings are added in memory.
///
/// Other ledger operations read the database, so the caller must [`flush`](PlayBatch::flush)
/// before anything else touches a member in the same transaction, and [`forget`](PlayBatch::forget)
/// the members such an operation changed.
#[derive(Default)]
pub struct PlayBatch {
    members: HashMap<i64, Cached>,
    pending: Vec<Pending>,
}

/// What a batch knows about one member (locked for the rest of the transaction).
struct Cached {
    standing: club_rules::Standing,
    tier: club_rules::Tier,
    cards: HashMap<i64, Option<CardState>>,
    window: Window,
    /// Earnings this batch wrote or will write since `window` was taken: (time, points).
    unseen: Vec<(Millis, i64)>,
    /// Carry-over per machine category: (as stored, as decided, time of the last decision).
    carries: HashMap<&'static str, (i64, i64, Millis)>,
}

struct Pending {
    member_id: i64,
    entry: club_rules::PointsEntry,
    event: Option<EventRef>,
}

static INSERT_EARNED: MultiRowInsert = MultiRowInsert::new(
    "INSERT INTO points_ledger (member_id, kind, points, category, expires_at, rule_version, created_at, terminal_id, seq) VALUES",
    9,
    "RETURNING id, terminal_id, seq",
);
static INSERT_LOTS: MultiRowInsert =
    MultiRowInsert::new("INSERT INTO points_lots (lot_id, member_id, category, opened_at, expires_at, remaining) VALUES", 6, "");
/// Rows per multi-row statement (at most 9 parameters each: within both backends' limits).
const ROWS_PER_INSERT: usize = 128;

impl PlayBatch {
    /// Decides one play (see [`apply_play`]); what it earns is written by [`flush`](Self::flush),
    /// a refusal line and tier changes at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_play(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        rules: &Rules,
        member_id: i64,
        card_id: Option<i64>,
        machine: MachineType,
        wagered: Money,
        at: DateTime<Utc>,
        event: Option<&EventRef>,
    ) -> Result<Decision<Earning>> {
        let since = millis(tiers::qualifying_since(rules, at).map_err(|e| Error::invalid(e.to_string()))?);
        if let std::collections::hash_map::Entry::Vacant(slot) = self.members.entry(member_id) {
            store::lock_member(tx, member_id).await?;
            let row = load_member(tx, rules, member_id, card_id, at).await?;
            let carries = sqlx::query_as::<_, (String, i64)>("SELECT category, carry_cents FROM points_carry WHERE member_id = $1")
                .bind(member_id)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .filter_map(|(category, cents)| MachineType::from_code(&category).map(|m| (m.code(), (cents, cents, 0))))
                .collect();
            let mut cards = HashMap::new();
            if let Some(id) = card_id {
                cards.insert(id, row.member.standing.card);
            }
            let cached = Cached {
                standing: row.member.standing,
                tier: row.member.tier,
                cards,
                window: row.window,
                unseen: Vec::new(),
                carries,
            };
            slot.insert(cached);
        }
        if let Some(id) = card_id
            && !self.members[&member_id].cards.contains_key(&id)
        {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM cards WHERE id = $1").bind(id).fetch_optional(&mut **tx).await?;
            let state = state.ok_or_else(|| Error::NotFound(format!("card {id}")))?;
            let state = CardState::from_code(&state).ok_or_else(|| Error::invalid("card state"))?;
            self.members.get_mut(&member_id).expect("loaded above").cards.insert(id, Some(state));
        }
        if !self.members[&member_id].window.holds_at(since) {
            // The window start crossed an earned entry: take the sum again, with everything this
            // batch decided so far written first.
            self.flush(tx).await?;
            let window = qualifying_window(tx, member_id, since).await?;
            let m = self.members.get_mut(&member_id).expect("loaded above");
            m.window = window;
            m.unseen.clear();
        }
        let m = self.members.get_mut(&member_id).expect("loaded above");
        let qualifying = m.window.sum + m.unseen.iter().filter(|(t, _)| *t > since).map(|(_, p)| p).sum::<i64>();
        let member = club_rules::Member {
            standing: club_rules::Standing {
                member: m.standing.member,
                card: card_id.and_then(|id| m.cards.get(&id).copied().flatten()),
                exclusions: m.standing.exclusions.clone(),
            },
            tier: m.tier,
            qualifying: Points(qualifying),
        };
        let category = machine.code();
        let carry = m.carries.get(category).map_or(0, |c| c.1);
        let decided = match earning::machine_play(rules, &member, MachinePlay { machine, wagered }, Money::from_cents(carry), at) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let c = m.carries.entry(category).or_insert((0, 0, 0));
        (c.1, c.2) = (decided.carry.cents(), millis(at));
        match &decided.earning {
            Earning::Points { entry, tier } => {
                m.unseen.push((millis(entry.at), entry.qualifying().0));
                if let Some(to) = tier.iter().rev().find_map(tier_after) {
                    m.tier = to;
                }
                apply_tier_events(tx, member_id, tier).await?;
                self.pending.push(Pending { member_id, entry: entry.clone(), event: event.cloned() });
            }
            Earning::NoPoints { .. } => {
                let origin = Origin { event, key: None, ..Origin::default() };
                write_earning(tx, member_id, &decided.earning, &origin, at).await?;
            }
        }
        Ok(Ok(decided.earning))
    }

    /// Writes what the batch decided: entries and their lots, balances, carry-overs. The cached
    /// state stays valid (it is what was written).
    pub async fn flush(&mut self, tx: &mut Transaction<'static, Any>) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let (with_event, without): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.event.is_some());
        for p in &without {
            write_points(tx, p.member_id, std::slice::from_ref(&p.entry), &Origin::default()).await?;
        }
        let backend = store::Backend::of(tx);
        let mut balances: HashMap<i64, i64> = HashMap::new();
        for chunk in with_event.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::query(INSERT_EARNED.sql(backend, chunk.len()));
            for p in chunk {
                let LotRef::Opens { expires_at } = p.entry.lot else {
                    return Err(Error::invalid("an earning opens a lot"));
                };
                let PointsKind::Earned(source) = &p.entry.kind else {
                    return Err(Error::invalid("a play earns"));
                };
                let event = p.event.as_ref().expect("partitioned on the event");
                q = q
                    .bind(p.member_id)
                    .bind("earned")
                    .bind(p.entry.amount.0)
                    .bind(super::earn_category(source))
                    .bind(millis(expires_at))
                    .bind(p.entry.rule_version.as_str())
                    .bind(millis(p.entry.at))
                    .bind(event.terminal.clone())
                    .bind(event.seq);
            }
            let ids: HashMap<(String, i64), i64> = q
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| Ok(((r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?), r.try_get::<i64, _>(0)?)))
                .collect::<Result<_>>()?;
            let mut lots = sqlx::query(INSERT_LOTS.sql(backend, chunk.len()));
            for p in chunk {
                let event = p.event.as_ref().expect("partitioned on the event");
                let id = ids
                    .get(&(event.terminal.clone(), event.seq))
                    .ok_or_else(|| Error::Conflict(format!("no entry id for event {}:{}", event.terminal, event.seq)))?;
                let (LotRef::Opens { expires_at }, PointsKind::Earned(source)) = (&p.entry.lot, &p.entry.kind) else {
                    unreachable!("checked above");
                };
                lots = lots
                    .bind(*id)
                    .bind(p.member_id)
                    .bind(super::earn_category(source))
                    .bind(millis(p.entry.at))
                    .bind(millis(*expires_at))
                    .bind(p.entry.amount.0);
                *balances.entry(p.member_id).or_default() += p.entry.amount.0;
            }
            lots.execute(&mut **tx).await?;
        }
        let mut balances: Vec<_> = balances.into_iter().filter(|(_, d)| *d != 0).collect();
        balances.sort_unstable();
        for (member_id, delta) in balances {
            sqlx::query("UPDATE members SET points_balance = points_balance + $1 WHERE id = $2")
                .bind(delta)
                .bind(member_id)
                .execute(&mut **tx)
                .await?;
        }
        let mut members: Vec<_> = self.members.iter_mut().collect();
        members.sort_unstable_by_key(|(id, _)| **id);
        for (member_id, m) in members {
            for (category, (stored, decided, at)) in &mut m.carries {
                if stored != decided {
                    store_carry_at(tx, *member_id, category, *decided, "0", *at).await?;
                    *stored = *decided;
                }
            }
        }
        Ok(())
    }

    /// Drops what the batch knows about a member that another operation changed (after a flush).
    pub fn forget(&mut self, member_id: i64) {
        debug_assert!(self.pending.iter().all(|p| p.member_id != member_id), "flush before forgetting");
        self.members.remove(&member_id);
    }

    /// Drops everything the batch knows (after a flush).
    pub fn forget_all(&mut self) {
        debug_assert!(self.pending.is_empty(), "flush before forgetting");
        self.members.clear();
    }
}

/// The tier a tier event leaves the member in, if it changes it.
fn tier_after(event: &tiers::TierEvent) -> Option<club_rules::Tier> {
    match &event.kind {
        tiers::TierEventKind::Promoted { to, .. } | tiers::TierEventKind::Reviewed { to, .. } => Some(*to),
        _ => None,
    }
}

/// The earned-points window at `since` (see [`Window`]).
async fn qualifying_window(tx: &mut Transaction<'static, Any>, member_id: i64, since: Millis) -> Result<Window> {
    let (sum, below, above): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT \
         (SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE member_id = $1 AND kind = 'earned' AND created_at > $2), \
         (SELECT MAX(created_at) FROM points_ledger WHERE member_id = $1 AND kind = 'earned' AND created_at <= $2), \
         (SELECT MIN(created_at) FROM points_ledger WHERE member_id = $1 AND kind = 'earned' AND created_at > $2)",
    )
    .bind(member_id)
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Window { since, sum, below, above })
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
