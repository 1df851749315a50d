//! The pit: tables and their games, ratings in progress at a seat, and closing a rating into
//! points (`ledger::rate_table`).
//!
//! Key decision: a rating records each average bet the croupier enters with its time
//! (`pit_bets`, append-only); at close the average is weighted by how long each bet lasted, and
//! the time played is from opening to closing. Closing marks the rating closed first (only one
//! close wins, even across processes), then rates it, then links the rating row; a rating closed
//! but not linked (a crash between the steps) is listed for the pit boss, who rates it again, and
//! the link step looks for an existing rating first, so points are never given twice.
//!
//! Not here: the rating rule (`club_rules::table`), the table-mode terminal's "player presented"
//! rows (the gateway's).

use chrono::{DateTime, Utc};
use club_rules::table::{Played, TableRating};
use club_rules::config::TableGame;
use club_rules::{Money, Rules};
use floor_protocol::CardNumber;
use sqlx::Row;

use crate::audit::{self, Actor};
use crate::club;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::{self, Decision};
use crate::store::Store;

/// A table of the pit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitTable {
    pub id: String,
    pub game: String,
    pub seats: i64,
    pub min_bet: Money,
    pub max_bet: Money,
}

/// Creates or changes a table's game and limits. The game must be one the rules rate.
pub async fn set_table(store: &Store, rules: &Rules, t: &PitTable, actor: &Actor, now: Millis) -> Result<()> {
    if t.id.trim().is_empty() {
        return Err(Error::invalid("a table needs a name"));
    }
    if !rules.config().tables.contains_key(&t.game) {
        return Err(Error::invalid(format!("the rules have no game {}", t.game)));
    }
    if !(1..=12).contains(&t.seats) || t.min_bet.cents() <= 0 || t.max_bet.cents() < t.min_bet.cents() {
        return Err(Error::invalid("1 to 12 seats, a positive minimum bet and a maximum not below it"));
    }
    let mut tx = store.begin().await?;
    let before = sqlx::query("SELECT game, seats, min_bet_cents, max_bet_cents FROM pit_tables WHERE id = $1")
        .bind(t.id.trim())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| -> Result<_> {
            Ok((r.try_get::<String, _>("game")?, r.try_get::<i64, _>("seats")?, r.try_get::<i64, _>("min_bet_cents")?, r.try_get::<i64, _>("max_bet_cents")?))
        })
        .transpose()?;
    sqlx::query(
        "INSERT INTO pit_tables (id, game, seats, min_bet_cents, max_bet_cents, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET game = excluded.game, seats = excluded.seats, min_bet_cents = excluded.min_bet_cents, \
         max_bet_cents = excluded.max_bet_cents, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(t.id.trim())
    .bind(&t.game)
    .bind(t.seats)
    .bind(t.min_bet.cents())
    .bind(t.max_bet.cents())
    .bind(actor.code())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let after = (&t.game, t.seats, t.min_bet.cents(), t.max_bet.cents());
    audit::record(&mut tx, now, actor, "pit.table", &format!("table:{}", t.id.trim()), before, Some(after)).await?;
    tx.commit().await?;
    Ok(())
}

/// The pit's tables.
pub async fn tables(store: &Store) -> Result<Vec<PitTable>> {
    let rows = sqlx::query("SELECT id, game, seats, min_bet_cents, max_bet_cents FROM pit_tables ORDER BY id").fetch_all(store.read()).await?;
    rows.iter()
        .map(|r| {
            Ok(PitTable {
                id: r.try_get("id")?,
                game: r.try_get("game")?,
                seats: r.try_get("seats")?,
                min_bet: Money::from_cents(r.try_get("min_bet_cents")?),
                max_bet: Money::from_cents(r.try_get("max_bet_cents")?),
            })
        })
        .collect()
}

/// Why a rating cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRefusal {
    UnknownCard,
    /// The card-in gate refused the card (its code).
    Refused(String),
}

/// Opens a rating for the player whose card was presented at `table`, `seat`, with a first
/// average bet. One open rating per seat and per member.
pub async fn open_rating(
    store: &Store,
    table: &str,
    seat: i64,
    card: &CardNumber,
    average_bet: Money,
    actor: &Actor,
    now: Millis,
) -> Result<std::result::Result<i64, OpenRefusal>> {
    let staff = staff_of(actor)?;
    if average_bet.cents() <= 0 {
        return Err(Error::invalid("the average bet is positive"));
    }
    let number = club::normalise_card(card)?;
    let mut tx = store.begin().await?;
    let t = sqlx::query("SELECT game, seats FROM pit_tables WHERE id = $1")
        .bind(table)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("table {table}")))?;
    let game: String = t.try_get("game")?;
    let seats: i64 = t.try_get("seats")?;
    if !(1..=seats).contains(&seat) {
        return Err(Error::invalid(format!("table {table} has seats 1 to {seats}")));
    }
    let Some(holder) = club::card_holder(&mut tx, &number, now).await? else {
        return Ok(Err(OpenRefusal::UnknownCard));
    };
    if let Err(code) = club::card_in_decision(&holder) {
        return Ok(Err(OpenRefusal::Refused(serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())));
    }
    let id: i64 = match sqlx::query_scalar(
        "INSERT INTO pit_ratings (member_id, table_id, seat, game, opened_at, opened_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(holder.member_id)
    .bind(table)
    .bind(seat)
    .bind(&game)
    .bind(now)
    .bind(staff)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    {
        Err(e) if e.is_unique_violation() => return Err(Error::Conflict("this seat or this player already has an open rating".into())),
        other => other?,
    };
    sqlx::query("INSERT INTO pit_bets (pit_rating_id, average_bet_cents, at, recorded_by) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(average_bet.cents())
        .bind(now)
        .bind(staff)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "pit.open",
        &format!("pit_rating:{id}"),
        None::<()>,
        Some(serde_json::json!({ "member_id": holder.member_id, "table": table, "seat": seat, "game": game, "average_bet_cents": average_bet.cents() })),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(id))
}

fn staff_of(actor: &Actor) -> Result<i64> {
    match actor {
        Actor::Staff { id, .. } => Ok(*id),
        _ => Err(Error::Forbidden),
    }
}

/// Records a change of the average bet from `now` on.
pub async fn change_bet(store: &Store, rating: i64, average_bet: Money, actor: &Actor, now: Millis) -> Result<()> {
    let staff = staff_of(actor)?;
    if average_bet.cents() <= 0 {
        return Err(Error::invalid("the average bet is positive"));
    }
    let mut tx = store.begin().await?;
    let open: Option<Option<Millis>> =
        sqlx::query_scalar("SELECT closed_at FROM pit_ratings WHERE id = $1").bind(rating).fetch_optional(&mut *tx).await?;
    match open {
        None => return Err(Error::NotFound(format!("rating {rating}"))),
        Some(Some(_)) => return Err(Error::Conflict("the rating is closed".into())),
        Some(None) => {}
    }
    let before: Option<i64> =
        sqlx::query_scalar("SELECT average_bet_cents FROM pit_bets WHERE pit_rating_id = $1 ORDER BY at DESC, id DESC LIMIT 1").bind(rating).fetch_optional(&mut *tx).await?;
    sqlx::query("INSERT INTO pit_bets (pit_rating_id, average_bet_cents, at, recorded_by) VALUES ($1, $2, $3, $4)")
        .bind(rating)
        .bind(average_bet.cents())
        .bind(now)
        .bind(staff)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, now, actor, "pit.bet", &format!("pit_rating:{rating}"), before, Some(average_bet.cents())).await?;
    tx.commit().await?;
    Ok(())
}

/// The average of bets weighted by how long each lasted, from `opened` to `closed`, rounded down
/// to the cent. Bets are `(from, cents)` in time order; the first starts at `opened`.
pub fn weighted_average(bets: &[(Millis, i64)], opened: Millis, closed: Millis) -> Money {
    let total = closed - opened;
    if bets.is_empty() {
        return Money::ZERO;
    }
    if total <= 0 {
        return Money::from_cents(bets[bets.len() - 1].1);
    }
    let mut sum: i128 = 0;
    for (i, &(from, cents)) in bets.iter().enumerate() {
        let start = from.max(opened);
        let end = bets.get(i + 1).map_or(closed, |n| n.0).min(closed);
        if end > start {
            sum += i128::from(cents) * i128::from(end - start);
        }
    }
    Money::from_cents(i64::try_from(sum / i128::from(total)).expect("average within i64"))
}

/// What closing a rating gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub average_bet: Money,
    pub minutes: i64,
    pub points: i64,
    /// The `table_ratings` row.
    pub rating_id: i64,
}

/// Closes a rating now and rates it into points; or finishes a close that was interrupted.
pub async fn close_rating(store: &Store, rules: &Rules, rating: i64, actor: &Actor, now: DateTime<Utc>) -> Result<Decision<Closed>> {
    let staff = staff_of(actor)?;
    let now_ms = ledger::millis(now);
    let mut tx = store.begin().await?;
    let row = sqlx::query("SELECT member_id, game, opened_at, closed_at, closed_by, rating_id FROM pit_ratings WHERE id = $1")
        .bind(rating)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("rating {rating}")))?;
    if row.try_get::<Option<i64>, _>("rating_id")?.is_some() {
        return Err(Error::Conflict("the rating is already closed".into()));
    }
    let member_id: i64 = row.try_get("member_id")?;
    let game: String = row.try_get("game")?;
    let opened: Millis = row.try_get("opened_at")?;
    let closed: Millis = match row.try_get::<Option<Millis>, _>("closed_at")? {
        Some(at) => at,
        None => {
            let n = sqlx::query("UPDATE pit_ratings SET closed_at = $1, closed_by = $2 WHERE id = $3 AND closed_at IS NULL")
                .bind(now_ms)
                .bind(staff)
                .bind(rating)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(Error::Conflict("the rating changed meanwhile; try again".into()));
            }
            now_ms
        }
    };
    let bets: Vec<(Millis, i64)> = sqlx::query("SELECT at, average_bet_cents FROM pit_bets WHERE pit_rating_id = $1 ORDER BY at, id")
        .bind(rating)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("at")?, r.try_get("average_bet_cents")?)))
        .collect::<Result<_>>()?;
    audit::record(&mut tx, now_ms, actor, "pit.close", &format!("pit_rating:{rating}"), None::<()>, Some(closed)).await?;
    tx.commit().await?;

    let average_bet = weighted_average(&bets, opened, closed);
    // A rating of an earlier, interrupted close: find it instead of rating twice.
    let existing: Option<(i64, i64)> = sqlx::query("SELECT id, points FROM table_ratings WHERE member_id = $1 AND at = $2 AND game = $3 ORDER BY id DESC LIMIT 1")
        .bind(member_id)
        .bind(closed)
        .bind(&game)
        .fetch_optional(store.read())
        .await?
        .map(|r| Ok::<_, Error>((r.try_get("id")?, r.try_get("points")?)))
        .transpose()?;
    let (rating_id, points) = match existing {
        Some(found) => found,
        None => {
            let start = ledger::time(opened)?;
            let end = ledger::time(closed)?;
            let decided = ledger::rate_table(store, rules, member_id, &TableRating { game: game.clone(), played: Played::Between { start, end }, average_bet }, actor, end).await?;
            let earning = match decided {
                Ok(e) => e,
                Err(refused) => return Ok(Err(refused)),
            };
            let id: i64 = sqlx::query_scalar("SELECT id FROM table_ratings WHERE member_id = $1 AND at = $2 AND game = $3 ORDER BY id DESC LIMIT 1")
                .bind(member_id)
                .bind(closed)
                .bind(&game)
                .fetch_one(store.read())
                .await?;
            (id, earning.earning.points().0)
        }
    };
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE pit_ratings SET rating_id = $1 WHERE id = $2 AND rating_id IS NULL").bind(rating_id).bind(rating).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(Closed { average_bet, minutes: (closed - opened) / 60_000, points, rating_id }))
}

/// An open (or interrupted) rating, for the pit page.
#[derive(Debug, Clone)]
pub struct OpenRating {
    pub id: i64,
    pub table: String,
    pub seat: i64,
    pub game: String,
    pub member_no: String,
    pub name: String,
    pub opened_at: Millis,
    pub average_bet: Money,
    /// Closed but not rated (an interrupted close): the pit boss rates it again.
    pub interrupted: bool,
}

/// Ratings in progress, and closed ones that were not rated.
pub async fn open_ratings(store: &Store) -> Result<Vec<OpenRating>> {
    let rows = sqlx::query(
        "SELECT r.id, r.table_id, r.seat, r.game, r.opened_at, r.closed_at, m.member_no, p.first_name, p.last_name, \
         (SELECT b.average_bet_cents FROM pit_bets b WHERE b.pit_rating_id = r.id ORDER BY b.at DESC, b.id DESC LIMIT 1) AS bet \
         FROM pit_ratings r JOIN members m ON m.id = r.member_id JOIN persons p ON p.id = m.person_id \
         WHERE r.rating_id IS NULL ORDER BY r.table_id, r.seat",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OpenRating {
                id: r.try_get("id")?,
                table: r.try_get("table_id")?,
                seat: r.try_get("seat")?,
                game: r.try_get("game")?,
                member_no: r.try_get("member_no")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                opened_at: r.try_get("opened_at")?,
                average_bet: Money::from_cents(r.try_get::<Option<i64>, _>("bet")?.unwrap_or(0)),
                interrupted: r.try_get::<Option<i64>, _>("closed_at")?.is_some(),
            })
        })
        .collect()
}

/// A finished rating, for the pit page and the pit boss's flagged list.
#[derive(Debug, Clone)]
pub struct RatingRow {
    pub id: i64,
    pub member_no: String,
    pub name: String,
    pub game: String,
    pub minutes: i64,
    pub average_bet: Money,
    pub points: i64,
    /// Display name of the staff member who rated it.
    pub rated_by: String,
    pub at: Millis,
    /// The rules' flags, as their JSON text (empty: none).
    pub flags: Vec<String>,
}

/// Ratings since `since`, newest first; only flagged ones when `flagged_only`.
pub async fn ratings(store: &Store, since: Millis, flagged_only: bool) -> Result<Vec<RatingRow>> {
    let rows = sqlx::query(
        "SELECT t.id, t.game, t.seconds, t.average_bet_cents, t.points, t.flags, t.at, m.member_no, p.first_name, p.last_name, \
         COALESCE(s.display_name, '?') AS rated_by FROM table_ratings t JOIN members m ON m.id = t.member_id \
         JOIN persons p ON p.id = m.person_id LEFT JOIN staff_users s ON s.id = t.rated_by \
         WHERE t.at >= $1 AND ($2 = 0 OR t.flags <> '[]') ORDER BY t.at DESC, t.id DESC LIMIT 200",
    )
    .bind(since)
    .bind(i64::from(flagged_only))
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            let flags: String = r.try_get("flags")?;
            let list: Vec<serde_json::Value> = serde_json::from_str(&flags).unwrap_or_default();
            Ok(RatingRow {
                id: r.try_get("id")?,
                member_no: r.try_get("member_no")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                game: r.try_get("game")?,
                minutes: r.try_get::<i64, _>("seconds")? / 60,
                average_bet: Money::from_cents(r.try_get("average_bet_cents")?),
                points: r.try_get("points")?,
                rated_by: r.try_get("rated_by")?,
                at: r.try_get("at")?,
                flags: list.iter().map(|f| f.to_string()).collect(),
            })
        })
        .collect()
}

/// The games the rules rate, for the table form.
pub fn games(rules: &Rules) -> Vec<(String, &TableGame)> {
    rules.config().tables.iter().map(|(k, v)| (k.clone(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_bet_is_weighted_by_time() {
        // 10 EUR for 30 minutes, then 40 EUR for 10 minutes: (10*30 + 40*10) / 40 = 17.50.
        let min = 60_000;
        assert_eq!(weighted_average(&[(0, 1000), (30 * min, 4000)], 0, 40 * min), Money::from_cents(1750));
        assert_eq!(weighted_average(&[(0, 2500)], 0, 90 * min), Money::from_cents(2500));
        assert_eq!(weighted_average(&[(0, 1000)], 0, 0), Money::from_cents(1000));
        assert_eq!(weighted_average(&[], 0, 10), Money::ZERO);
    }
}
