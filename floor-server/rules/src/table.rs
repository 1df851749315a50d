//! Live table ratings: game, time played and average bet into points (RULES.md 1, "Table
//! rating").
//!
//! Key decisions: theoretical win = average bet x hours x decisions per hour x house edge, and
//! points = theoretical win x points per EUR of it (poker: points per hour). A rating is valued in
//! exact decimals and kept to a ten-thousandth of a point; the fraction that has not made a whole
//! point carries over in the member's one `table` category, whatever the game, so short sessions at
//! several tables add up. Ratings far outside a game's norms (average bet or duration beyond the
//! configured bounds) still earn, and carry flags for the pit boss to check.
//!
//! Not here: who may enter a rating (the pit console's roles) and corrections to a rating (a
//! manual correction entry).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::config::{Rules, TableGame};
use crate::earning::{Earning, NoPointsReason, amount_in_range, award, refused};
use crate::error::{Result, RulesError};
use crate::gate::Member;
use crate::ledger::EarnSource;
use crate::types::{Money, Points};

/// Decimal places a rating is valued to.
const POINT_PLACES: u32 = 4;

/// What the croupier or inspector recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRating {
    /// The game code, a key of the configuration's `tables`.
    pub game: String,
    /// How long the member played.
    pub played: Played,
    /// The average bet the croupier or inspector recorded.
    pub average_bet: Money,
}

/// Time at the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Played {
    /// A number of minutes.
    Minutes(u32),
    /// From a start to an end time (counted to the second).
    Between { start: DateTime<Utc>, end: DateTime<Utc> },
}

impl Played {
    fn seconds(self) -> Result<i64> {
        match self {
            Played::Minutes(minutes) => Ok(i64::from(minutes) * 60),
            Played::Between { start, end } if end >= start => Ok((end - start).num_seconds()),
            Played::Between { .. } => Err(RulesError::EndsBeforeStart),
        }
    }
}

/// The fraction of a point a member's table ratings have not yet turned into a whole point:
/// at least 0, less than 1, at most four decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct PointFraction(Decimal);

impl PointFraction {
    /// No fraction carried.
    pub const ZERO: PointFraction = PointFraction(Decimal::ZERO);

    /// Checks the range and the places (the storage form is this decimal as text).
    pub fn new(value: Decimal) -> Result<PointFraction> {
        if value.is_sign_negative() || value >= Decimal::ONE || value.trunc_with_scale(POINT_PLACES) != value {
            return Err(RulesError::OutOfRange("table carry-over"));
        }
        Ok(PointFraction(value))
    }

    /// The fraction as a decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for PointFraction {
    type Error = RulesError;
    fn try_from(value: Decimal) -> Result<PointFraction> {
        PointFraction::new(value)
    }
}

impl From<PointFraction> for Decimal {
    fn from(value: PointFraction) -> Decimal {
        value.0
    }
}

/// Something about a rating for the pit boss to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingFlag {
    AverageBetBelowNorm { min: Money },
    AverageBetAboveNorm { max: Money },
    LongerThanNorm { max_minutes: u32 },
}

/// The decision on a rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEarning {
    /// Points given, or why none.
    pub earning: Earning,
    /// The rating's theoretical win, rounded down to the cent (none for games rated by time).
    pub theoretical_win: Option<Money>,
    /// What the pit boss should look at.
    pub flags: Vec<RatingFlag>,
    /// The member's new table carry-over.
    pub carry: PointFraction,
}

fn checked(value: Option<Decimal>) -> Result<Decimal> {
    value.ok_or(RulesError::OutOfRange("table rating"))
}

/// Rates a table session into points.
pub fn rate(
    rules: &Rules,
    member: &Member,
    rating: &TableRating,
    carry: PointFraction,
    now: DateTime<Utc>,
) -> Result<TableEarning> {
    let game =
        rules.config().tables.get(&rating.game).ok_or_else(|| RulesError::UnknownTableGame(rating.game.clone()))?;
    amount_in_range("average bet", rating.average_bet)?;
    let seconds = Decimal::from(rating.played.seconds()?);
    let mut flags = Vec::new();
    if seconds > Decimal::from(game.max_minutes()) * Decimal::from(60) {
        flags.push(RatingFlag::LongerThanNorm { max_minutes: game.max_minutes() });
    }
    let (theoretical_win, raw) = match game {
        TableGame::TheoreticalWin {
            decisions_per_hour,
            house_edge_percent,
            points_per_eur,
            min_average_bet,
            max_average_bet,
            ..
        } => {
            if rating.average_bet < *min_average_bet {
                flags.push(RatingFlag::AverageBetBelowNorm { min: *min_average_bet });
            }
            if rating.average_bet > *max_average_bet {
                flags.push(RatingFlag::AverageBetAboveNorm { max: *max_average_bet });
            }
            // bet x seconds x decisions/hour x edge% / (3600 s/h x 100 %), divided last so that
            // every step before it is exact.
            let wagered_edge = checked(
                rating
                    .average_bet
                    .as_decimal()
                    .checked_mul(seconds)
                    .and_then(|v| v.checked_mul(Decimal::from(*decisions_per_hour)))
                    .and_then(|v| v.checked_mul(*house_edge_percent)),
            )?;
            let theo = checked(wagered_edge.checked_div(Decimal::from(360_000)))?;
            let raw =
                checked(wagered_edge.checked_mul(*points_per_eur).and_then(|v| v.checked_div(Decimal::from(360_000))))?;
            (Some(Money::from_decimal_floor(theo)), raw)
        }
        TableGame::Time { points_per_hour, .. } => {
            (None, checked(points_per_hour.checked_mul(seconds).and_then(|v| v.checked_div(Decimal::from(3_600))))?)
        }
    };
    if let Some(earning) = refused(rules, member, now) {
        return Ok(TableEarning { earning, theoretical_win, flags, carry });
    }
    let total = checked(carry.0.checked_add(raw.trunc_with_scale(POINT_PLACES)))?;
    let whole = total.trunc();
    let points = Points(whole.to_i64().ok_or(RulesError::OutOfRange("table rating"))?);
    let source = EarnSource::Table(rating.game.clone());
    let earning = award(rules, member, points, source, NoPointsReason::CarriedOver, now)?;
    Ok(TableEarning { earning, theoretical_win, flags, carry: PointFraction::new(total - whole)? })
}
