//! The online i-Account's rules (RULES.md 2): the stake split over the three balances, the
//! responsible-gaming limits and their windows, self-exclusion and closure periods, bonus
//! wagering, withdrawals and inactivity.
//!
//! Key decision: limits are rolling windows (a day is the last 24 hours, a week the last 7 days,
//! a month the last 30 days), so a limit means the same whatever the time zone and cannot be
//! dodged by playing either side of midnight. A limit is kept as history; the one in force is the
//! latest already effective row, so lowering takes effect at once, raising (or removing) after 24
//! hours, and a lowering made while a raise waits cancels the raise.
//!
//! Not here: storage, the exclusion register lookup (the gate is [`crate::gate`]), time reading.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::types::Money;

/// The three kinds of funds an account holds (RULES.md 2, Art. 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balances {
    pub bonus: Money,
    pub deposited: Money,
    pub winnings: Money,
}

impl Balances {
    /// Everything the player can stake.
    pub fn total(&self) -> Money {
        self.bonus + self.deposited + self.winnings
    }

    /// What the player may withdraw: deposits and winnings, never bonus.
    pub fn withdrawable(&self) -> Money {
        self.deposited + self.winnings
    }
}

/// How a stake is taken from the three balances (all non-negative, summing to the stake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Split {
    pub bonus: Money,
    pub deposited: Money,
    pub winnings: Money,
}

impl Split {
    pub fn total(&self) -> Money {
        self.bonus + self.deposited + self.winnings
    }
}

/// Why the wallet refuses to move money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum OnlineRefusal {
    #[error("amount must be more than zero")]
    NotPositive,
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("{kind:?} limit per {period:?} reached")]
    LimitReached { kind: LimitKind, period: Period },
    #[error("below the minimum")]
    BelowMinimum,
}

fn min(a: Money, b: Money) -> Money {
    if a < b { a } else { b }
}

/// Takes a stake bonus first, then deposits, then winnings (RULES.md 2, Art. 10).
pub fn split_stake(b: &Balances, stake: Money) -> Result<Split, OnlineRefusal> {
    if stake <= Money::ZERO {
        return Err(OnlineRefusal::NotPositive);
    }
    if stake > b.total() {
        return Err(OnlineRefusal::InsufficientFunds);
    }
    let bonus = min(stake, b.bonus);
    let deposited = min(stake - bonus, b.deposited);
    let winnings = stake - bonus - deposited;
    Ok(Split { bonus, deposited, winnings })
}

/// What a withdrawal takes: deposits first, then winnings (our choice: what was paid in goes
/// back out first, so winnings stay for play). Only withdrawable funds; a bank transfer needs at
/// least `minimum`.
pub fn split_withdrawal(b: &Balances, amount: Money, minimum: Money) -> Result<Split, OnlineRefusal> {
    if amount <= Money::ZERO {
        return Err(OnlineRefusal::NotPositive);
    }
    if amount < minimum {
        return Err(OnlineRefusal::BelowMinimum);
    }
    if amount > b.withdrawable() {
        return Err(OnlineRefusal::InsufficientFunds);
    }
    let deposited = min(amount, b.deposited);
    Ok(Split { bonus: Money::ZERO, deposited, winnings: amount - deposited })
}

/// The minimum withdrawal to a bank account (RULES.md 2, Art. 11).
pub fn minimum_bank_withdrawal() -> Money {
    Money::from_cents(1000)
}

/// What a limit caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Deposit,
    Stake,
    Loss,
}

impl LimitKind {
    pub const ALL: [LimitKind; 3] = [LimitKind::Deposit, LimitKind::Stake, LimitKind::Loss];
    pub fn code(self) -> &'static str {
        match self {
            LimitKind::Deposit => "deposit",
            LimitKind::Stake => "stake",
            LimitKind::Loss => "loss",
        }
    }
    pub fn from_code(s: &str) -> Option<LimitKind> {
        LimitKind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// A limit's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];
    pub fn code(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
    pub fn from_code(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|k| k.code() == s)
    }
    /// The rolling window's length.
    pub fn window(self) -> Duration {
        match self {
            Period::Day => Duration::hours(24),
            Period::Week => Duration::days(7),
            Period::Month => Duration::days(30),
        }
    }
}

/// One row of an account's limit history. `amount` `None` removes the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRow {
    /// Rows are ordered by `seq` (the store's id): the later row wins once effective.
    pub seq: i64,
    pub kind: LimitKind,
    pub period: Period,
    pub amount: Option<Money>,
    pub effective_at: DateTime<Utc>,
}

/// A limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub kind: LimitKind,
    pub period: Period,
    pub amount: Money,
}

/// The limits in force at `now`.
pub fn limits_in_force(rows: &[LimitRow], now: DateTime<Utc>) -> Vec<Limit> {
    let mut out = Vec::new();
    for kind in LimitKind::ALL {
        for period in Period::ALL {
            let latest = rows
                .iter()
                .filter(|r| r.kind == kind && r.period == period && r.effective_at <= now)
                .max_by_key(|r| r.seq);
            if let Some(LimitRow { amount: Some(amount), .. }) = latest {
                out.push(Limit { kind, period, amount: *amount });
            }
        }
    }
    out
}

/// When a newly set limit takes effect: at once if it is stricter than the one in force, 24 hours
/// later if it raises or removes one (RULES.md 2, Art. 13).
pub fn limit_effective_at(in_force: Option<Money>, new: Option<Money>, now: DateTime<Utc>) -> DateTime<Utc> {
    let stricter = match (in_force, new) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(old), Some(new)) => new <= old,
    };
    if stricter { now } else { now + Duration::hours(24) }
}

/// What an account staked, won and deposited in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Stakes less rolled-back stakes.
    pub staked: Money,
    pub won: Money,
    pub deposited: Money,
}

impl Usage {
    /// Stakes less wins, never below zero.
    pub fn loss(&self) -> Money {
        let l = self.staked - self.won;
        if l.is_negative() { Money::ZERO } else { l }
    }
}

/// Whether a stake fits the stake and loss limits, given each period's usage (`usage(period)`).
/// The whole stake counts as a possible loss: a bet that could take the loss past its limit is
/// refused.
pub fn check_stake(limits: &[Limit], usage: impl Fn(Period) -> Usage, stake: Money) -> Result<(), OnlineRefusal> {
    for l in limits {
        let u = usage(l.period);
        let after = match l.kind {
            LimitKind::Stake => u.staked + stake,
            LimitKind::Loss => u.loss() + stake,
            LimitKind::Deposit => continue,
        };
        if after > l.amount {
            return Err(OnlineRefusal::LimitReached { kind: l.kind, period: l.period });
        }
    }
    Ok(())
}

/// Whether a deposit fits the deposit limits.
pub fn check_deposit(limits: &[Limit], usage: impl Fn(Period) -> Usage, amount: Money) -> Result<(), OnlineRefusal> {
    if amount <= Money::ZERO {
        return Err(OnlineRefusal::NotPositive);
    }
    for l in limits.iter().filter(|l| l.kind == LimitKind::Deposit) {
        if usage(l.period).deposited + amount > l.amount {
            return Err(OnlineRefusal::LimitReached { kind: l.kind, period: l.period });
        }
    }
    Ok(())
}

/// A self-exclusion the player asks for in their profile (RULES.md 2, Art. 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelfExclusion {
    /// 1 to 365 days: in force from now until `until`.
    Immediate { until: DateTime<Utc> },
    /// Longer: recorded as a request the player must confirm by `confirm_by`.
    NeedsConfirmation { confirm_by: DateTime<Utc> },
}

/// Decides how a self-exclusion of `days` days is handled. Under one day is refused.
pub fn self_exclusion(days: i64, now: DateTime<Utc>) -> Option<SelfExclusion> {
    match days {
        1..=365 => Some(SelfExclusion::Immediate { until: now + Duration::days(days) }),
        366..=36_500 => Some(SelfExclusion::NeedsConfirmation { confirm_by: now + Duration::days(3) }),
        _ => None,
    }
}

/// The time a closing request must be confirmed within (three weeks, Art. 16).
pub fn close_confirm_by(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::weeks(3)
}

/// A bonus after a regular bet: the stake counts toward the wagering requirement, and when the
/// requirement is met the bonus balance left becomes winnings (withdrawable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wagering {
    pub wagering_left: Money,
    /// Bonus to move to winnings now (zero unless the requirement was met by this bet).
    pub release: Money,
}

/// Applies a bet to the wagering requirement. Only regular bets count (Art. 17).
pub fn wager(bonus_after_bet: Money, wagering_left: Money, stake: Money, regular: bool) -> Wagering {
    if !regular || wagering_left == Money::ZERO {
        return Wagering { wagering_left, release: Money::ZERO };
    }
    if stake >= wagering_left {
        Wagering { wagering_left: Money::ZERO, release: bonus_after_bet }
    } else {
        Wagering { wagering_left: wagering_left - stake, release: Money::ZERO }
    }
}

/// The bonus a withdrawal voids: all of it while the requirement is not met (Art. 17).
pub fn bonus_voided_by_withdrawal(bonus: Money, wagering_left: Money) -> Money {
    if wagering_left > Money::ZERO { bonus } else { Money::ZERO }
}

/// What the inactivity job does with an account (Art. 11, 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inactivity {
    /// Active within the year, or nothing to do.
    Nothing,
    /// Pay the withdrawable balance to the player's bank account.
    PayOut(Money),
    /// EUR 1.00 or less: written off.
    WriteOff(Money),
}

/// Decides for an account whose last payment transaction was at `last_activity`.
pub fn inactivity(last_activity: DateTime<Utc>, balance: Money, now: DateTime<Utc>) -> Inactivity {
    if now - last_activity <= Duration::days(365) || balance <= Money::ZERO {
        Inactivity::Nothing
    } else if balance <= Money::from_cents(100) {
        Inactivity::WriteOff(balance)
    } else {
        Inactivity::PayOut(balance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn eur(cents: i64) -> Money {
        Money::from_cents(cents)
    }
    fn bal(b: i64, d: i64, w: i64) -> Balances {
        Balances { bonus: eur(b), deposited: eur(d), winnings: eur(w) }
    }
    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    #[track_caller]
    fn check_split(b: Balances, stake: i64, expect: (i64, i64, i64)) {
        let s = split_stake(&b, eur(stake)).unwrap();
        assert_eq!((s.bonus.cents(), s.deposited.cents(), s.winnings.cents()), expect);
    }

    #[test]
    fn stakes_come_from_bonus_then_deposits_then_winnings() {
        check_split(bal(500, 500, 500), 300, (300, 0, 0));
        check_split(bal(500, 500, 500), 700, (500, 200, 0));
        check_split(bal(500, 500, 500), 1500, (500, 500, 500));
        check_split(bal(0, 0, 500), 100, (0, 0, 100));
    }

    #[test]
    fn a_stake_over_the_balance_is_refused() {
        assert_eq!(split_stake(&bal(1, 1, 1), eur(4)), Err(OnlineRefusal::InsufficientFunds));
        assert_eq!(split_stake(&bal(1, 1, 1), eur(0)), Err(OnlineRefusal::NotPositive));
    }

    #[test]
    fn only_deposits_and_winnings_are_withdrawn_and_bank_minimum_is_10_eur() {
        let s = split_withdrawal(&bal(5000, 700, 800), eur(1000), minimum_bank_withdrawal()).unwrap();
        assert_eq!((s.bonus.cents(), s.deposited.cents(), s.winnings.cents()), (0, 700, 300));
        assert_eq!(split_withdrawal(&bal(5000, 700, 200), eur(1000), eur(0)), Err(OnlineRefusal::InsufficientFunds));
        assert_eq!(split_withdrawal(&bal(0, 5000, 0), eur(999), minimum_bank_withdrawal()), Err(OnlineRefusal::BelowMinimum));
    }

    fn row(seq: i64, kind: LimitKind, amount: Option<i64>, eff: DateTime<Utc>) -> LimitRow {
        LimitRow { seq, kind, period: Period::Day, amount: amount.map(eur), effective_at: eff }
    }

    #[test]
    fn lowering_a_limit_applies_at_once_raising_after_24_hours() {
        assert_eq!(limit_effective_at(Some(eur(100)), Some(eur(50)), t(0)), t(0));
        assert_eq!(limit_effective_at(Some(eur(100)), Some(eur(200)), t(0)), t(24));
        assert_eq!(limit_effective_at(Some(eur(100)), None, t(0)), t(24));
        assert_eq!(limit_effective_at(None, Some(eur(100)), t(0)), t(0));
    }

    #[test]
    fn a_lowering_made_while_a_raise_waits_cancels_the_raise() {
        let rows = [
            row(1, LimitKind::Loss, Some(100), t(0)),
            row(2, LimitKind::Loss, Some(200), t(25)),
            row(3, LimitKind::Loss, Some(50), t(2)),
        ];
        assert_eq!(limits_in_force(&rows, t(1))[0].amount, eur(100));
        assert_eq!(limits_in_force(&rows, t(3))[0].amount, eur(50));
        assert_eq!(limits_in_force(&rows, t(30))[0].amount, eur(50));
    }

    #[test]
    fn a_removed_limit_is_no_limit() {
        let rows = [row(1, LimitKind::Stake, Some(100), t(0)), row(2, LimitKind::Stake, None, t(24))];
        assert_eq!(limits_in_force(&rows, t(23)).len(), 1);
        assert!(limits_in_force(&rows, t(24)).is_empty());
    }

    #[test]
    fn loss_limit_counts_stakes_less_wins_and_the_whole_new_stake() {
        let limits = [Limit { kind: LimitKind::Loss, period: Period::Day, amount: eur(1000) }];
        let usage = |_| Usage { staked: eur(1500), won: eur(600), deposited: eur(0) };
        assert_eq!(check_stake(&limits, usage, eur(100)), Ok(()));
        assert_eq!(
            check_stake(&limits, usage, eur(101)),
            Err(OnlineRefusal::LimitReached { kind: LimitKind::Loss, period: Period::Day })
        );
    }

    #[test]
    fn stake_limit_counts_every_stake_in_the_window() {
        let limits = [Limit { kind: LimitKind::Stake, period: Period::Week, amount: eur(1000) }];
        let usage = |p: Period| Usage { staked: if p == Period::Week { eur(950) } else { eur(0) }, ..Usage::default() };
        assert!(check_stake(&limits, usage, eur(50)).is_ok());
        assert!(check_stake(&limits, usage, eur(51)).is_err());
    }

    #[test]
    fn deposit_limit_counts_deposits_in_the_window() {
        let limits = [Limit { kind: LimitKind::Deposit, period: Period::Month, amount: eur(10_000) }];
        let usage = |_| Usage { deposited: eur(9_000), ..Usage::default() };
        assert!(check_deposit(&limits, usage, eur(1_000)).is_ok());
        assert!(check_deposit(&limits, usage, eur(1_001)).is_err());
    }

    #[test]
    fn self_exclusion_of_1_to_365_days_is_immediate_longer_needs_confirmation_within_3_days() {
        assert_eq!(self_exclusion(1, t(0)), Some(SelfExclusion::Immediate { until: t(24) }));
        assert_eq!(self_exclusion(365, t(0)), Some(SelfExclusion::Immediate { until: t(24 * 365) }));
        assert_eq!(self_exclusion(366, t(0)), Some(SelfExclusion::NeedsConfirmation { confirm_by: t(72) }));
        assert_eq!(self_exclusion(0, t(0)), None);
    }

    #[test]
    fn closing_is_confirmed_within_three_weeks() {
        assert_eq!(close_confirm_by(t(0)), t(24 * 21));
    }

    #[test]
    fn only_regular_bets_count_toward_wagering_and_meeting_it_releases_the_bonus() {
        assert_eq!(wager(eur(500), eur(1000), eur(300), false), Wagering { wagering_left: eur(1000), release: eur(0) });
        assert_eq!(wager(eur(500), eur(1000), eur(300), true), Wagering { wagering_left: eur(700), release: eur(0) });
        assert_eq!(wager(eur(500), eur(300), eur(300), true), Wagering { wagering_left: eur(0), release: eur(500) });
    }

    #[test]
    fn withdrawing_before_wagering_is_met_voids_the_bonus() {
        assert_eq!(bonus_voided_by_withdrawal(eur(500), eur(1)), eur(500));
        assert_eq!(bonus_voided_by_withdrawal(eur(500), eur(0)), eur(0));
    }

    #[test]
    fn inactive_over_a_year_pays_out_and_one_euro_or_less_is_written_off() {
        let year = 24 * 365;
        assert_eq!(inactivity(t(0), eur(5000), t(year)), Inactivity::Nothing);
        assert_eq!(inactivity(t(0), eur(5000), t(year + 1)), Inactivity::PayOut(eur(5000)));
        assert_eq!(inactivity(t(0), eur(100), t(year + 1)), Inactivity::WriteOff(eur(100)));
        assert_eq!(inactivity(t(0), eur(0), t(year + 1)), Inactivity::Nothing);
    }
}
