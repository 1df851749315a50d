//! Domain newtypes shared by the rules, the protocol and the floor server.
//!
//! Money is EUR held as `rust_decimal::Decimal` with two places inside the program and as integer
//! cents at every storage boundary; points are whole integers. No floats near either.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A whole number of club points. Balances built from ledger entries are never negative; a
/// single ledger entry may be (a redemption, an expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Points(pub i64);

impl Points {
    pub const ZERO: Points = Points(0);
    pub fn value(self) -> i64 {
        self.0
    }
}

impl Add for Points {
    type Output = Points;
    fn add(self, rhs: Points) -> Points {
        Points(self.0 + rhs.0)
    }
}
impl AddAssign for Points {
    fn add_assign(&mut self, rhs: Points) {
        self.0 += rhs.0;
    }
}
impl Sub for Points {
    type Output = Points;
    fn sub(self, rhs: Points) -> Points {
        Points(self.0 - rhs.0)
    }
}
impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount of euros, exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(Decimal);

/// A money value that is not a whole number of cents, or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an amount in whole cents: {0}")]
pub struct MoneyError(pub String);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// From integer cents (the storage form).
    pub fn from_cents(cents: i64) -> Money {
        Money(Decimal::new(cents, 2))
    }

    /// Exact conversion from a decimal; refuses fractions of a cent instead of rounding them away.
    pub fn from_decimal(d: Decimal) -> Result<Money, MoneyError> {
        let mut scaled = d;
        scaled.rescale(2);
        if scaled != d {
            return Err(MoneyError(d.to_string()));
        }
        Ok(Money(scaled))
    }

    /// Rounds toward zero to the cent: used where a rule says "rounded down to the cent".
    pub fn from_decimal_floor(d: Decimal) -> Money {
        Money(d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero))
    }

    /// Integer cents (the storage form).
    pub fn cents(self) -> i64 {
        let mut d = self.0;
        d.rescale(2);
        i64::try_from(d.mantissa()).expect("money within i64 cents")
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}
impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = self.0;
        d.rescale(2);
        write!(f, "EUR {d}")
    }
}

/// A staff member, as the floor server's staff register knows them. Corrections and manual tier
/// decisions name the person who made them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StaffId(pub i64);

/// A points lot or a free-play grant: the id of the ledger entry that opened it, assigned by the
/// store when that entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LotId(pub i64);

/// The club's tiers, lowest first (RULES.md 1, "Tiers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    VipExclusive,
    Chairman,
}

impl Tier {
    pub const ALL: [Tier; 5] = [Tier::Bronze, Tier::Silver, Tier::Gold, Tier::VipExclusive, Tier::Chairman];

    /// The storage and wire code.
    pub fn code(self) -> &'static str {
        match self {
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::VipExclusive => "vip_exclusive",
            Tier::Chairman => "chairman",
        }
    }

    pub fn from_code(code: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The name shown to players and staff.
    pub fn display_name(self) -> &'static str {
        match self {
            Tier::Bronze => "Bronze",
            Tier::Silver => "Silver",
            Tier::Gold => "Gold",
            Tier::VipExclusive => "VIP Exclusive",
            Tier::Chairman => "Chairman",
        }
    }
}

/// What kind of gaming machine a slot-mode terminal sits beside; decides the earning rate
/// (RULES.md 1, "Earning points").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineType {
    Slot,
    ElectronicRoulette,
    VideoPoker,
}

impl MachineType {
    pub const ALL: [MachineType; 3] = [MachineType::Slot, MachineType::ElectronicRoulette, MachineType::VideoPoker];

    pub fn code(self) -> &'static str {
        match self {
            MachineType::Slot => "slot",
            MachineType::ElectronicRoulette => "electronic_roulette",
            MachineType::VideoPoker => "video_poker",
        }
    }

    pub fn from_code(code: &str) -> Option<MachineType> {
        MachineType::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// A club member's life cycle (RULES.md 1, "Membership", "End of membership").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Active,
    SelfExcluded,
    Banned,
    /// Left on the member's own signed request: points unusable from that day, data blocked.
    Left,
    /// Ended by the operator (abuse, breach of rules, death): points deleted that day.
    Terminated,
}

impl MemberState {
    pub const ALL: [MemberState; 5] =
        [MemberState::Active, MemberState::SelfExcluded, MemberState::Banned, MemberState::Left, MemberState::Terminated];

    pub fn code(self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::SelfExcluded => "self_excluded",
            MemberState::Banned => "banned",
            MemberState::Left => "left",
            MemberState::Terminated => "terminated",
        }
    }

    pub fn from_code(code: &str) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// A club card's life cycle: issued at reception, usable only once reception activates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    Issued,
    Active,
    BlockedLost,
    BlockedStolen,
    Replaced,
    Revoked,
}

impl CardState {
    pub const ALL: [CardState; 6] = [
        CardState::Issued,
        CardState::Active,
        CardState::BlockedLost,
        CardState::BlockedStolen,
        CardState::Replaced,
        CardState::Revoked,
    ];

    pub fn code(self) -> &'static str {
        match self {
            CardState::Issued => "issued",
            CardState::Active => "active",
            CardState::BlockedLost => "blocked_lost",
            CardState::BlockedStolen => "blocked_stolen",
            CardState::Replaced => "replaced",
            CardState::Revoked => "revoked",
        }
    }

    pub fn from_code(code: &str) -> Option<CardState> {
        CardState::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// Why a card or a member may not earn or redeem here and now. The code travels to terminals;
/// `player_text` is all a player may be shown (never the word "excluded" on a public screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    UnknownCard,
    CardNotActivated,
    CardBlocked,
    CardReplaced,
    CardRevoked,
    SelfExcluded,
    Banned,
    MembershipEnded,
    /// Another player's session or credits are on the machine.
    MachineBusy,
    /// The server cannot decide now (a fault); the terminal may retry.
    Unavailable,
}

impl RefusalCode {
    /// The sentence a player may see on a public screen: discreet about the reason.
    pub fn player_text(self) -> &'static str {
        match self {
            RefusalCode::UnknownCard => "Card not recognised. Please contact reception.",
            RefusalCode::CardNotActivated => "Card not yet activated. Please visit reception.",
            RefusalCode::CardBlocked | RefusalCode::CardReplaced | RefusalCode::CardRevoked => {
                "This card cannot be used. Please contact reception."
            }
            RefusalCode::SelfExcluded | RefusalCode::Banned | RefusalCode::MembershipEnded => {
                "Please contact reception."
            }
            RefusalCode::MachineBusy => "Machine in use by another player.",
            RefusalCode::Unavailable => "Club service unavailable. Please try again.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_round_trips_through_cents() {
        assert_eq!(Money::from_cents(1234).as_decimal(), dec!(12.34));
        assert_eq!(Money::from_decimal(dec!(12.3)).unwrap().cents(), 1230);
        assert_eq!(Money::from_cents(-5).cents(), -5);
    }

    #[test]
    fn money_refuses_fractions_of_a_cent() {
        assert!(Money::from_decimal(dec!(0.001)).is_err());
        assert_eq!(Money::from_decimal_floor(dec!(12.349)).cents(), 1234);
    }

    #[test]
    fn tier_codes_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::from_code(t.code()), Some(t));
        }
        for m in MachineType::ALL {
            assert_eq!(MachineType::from_code(m.code()), Some(m));
        }
        for m in MemberState::ALL {
            assert_eq!(MemberState::from_code(m.code()), Some(m));
        }
        for c in CardState::ALL {
            assert_eq!(CardState::from_code(c.code()), Some(c));
        }
    }
}
