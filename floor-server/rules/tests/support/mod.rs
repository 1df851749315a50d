//! Shared fixtures for the rule tables and the property tests: readable times, money and
//! members.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use club_rules::gate::{Exclusion, ExclusionKind};
use club_rules::lots::Lot;
use club_rules::{LotId, Member, Money, Points, Rules, Standing, Tier};
use rust_decimal::Decimal;

/// `"2025-03-01 10:00"` as a UTC time.
pub fn at(text: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .unwrap_or_else(|e| panic!("bad test time {text}: {e}"));
    naive.and_utc()
}

/// `"2025-03-01"` as a date.
pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad test date {text}: {e}"))
}

/// `"4.00"` as money.
pub fn eur(text: &str) -> Money {
    Money::from_decimal(text.parse::<Decimal>().expect("a decimal")).expect("whole cents")
}

/// RULES.md's rules.
pub fn rules() -> Rules {
    Rules::default()
}

/// RULES.md's rules with one part of the TOML changed.
pub fn rules_with(toml: &str) -> Rules {
    Rules::from_toml_str(toml).unwrap_or_else(|e| panic!("test configuration refused: {e}"))
}

/// An active member in good standing.
pub fn member(tier: Tier, qualifying: i64) -> Member {
    Member { standing: Standing::clear(), tier, qualifying: Points(qualifying) }
}

/// A Bronze member with nothing yet.
pub fn bronze() -> Member {
    member(Tier::Bronze, 0)
}

/// A member with an exclusion of `kind` from `from` until `until`.
pub fn excluded(kind: ExclusionKind, from: &str, until: Option<&str>) -> Member {
    let mut m = bronze();
    m.standing.exclusions.push(Exclusion { kind, from: at(from), until: until.map(at) });
    m
}

/// A points lot earned at `opened`, valid 12 months.
pub fn lot(id: i64, opened: &str, remaining: i64) -> Lot<Points> {
    let opened_at = at(opened);
    Lot {
        id: LotId(id),
        opened_at,
        expires_at: club_rules::lots::points_expiry(&rules(), opened_at).expect("in range"),
        remaining: Points(remaining),
    }
}

/// An entry in the national register of self-excluded persons, in force since 2024.
pub fn register_entry() -> Exclusion {
    Exclusion { kind: ExclusionKind::Register, from: at("2024-01-01 00:00"), until: None }
}
