//! The rules configuration: every parameter of RULES.md section 1, read from TOML, with RULES.md's
//! values as the defaults (`rules.toml` beside this crate lists them all).
//!
//! Key decisions: amounts, rates and percentages with a fraction are written as strings
//! (`slot = "4.00"`) and read as exact decimals; a TOML float is refused, so no binary fraction
//! ever becomes money. Unknown keys are refused, so a typo is an error rather than a silently
//! ignored rule. [`Rules`] is the validated configuration together with its [`RuleVersion`]: the
//! operator's label plus a hash of the content, which every decision carries, so changing the
//! configuration never rewrites history.
//!
//! Not here: reading the file or reloading it (the server's), and the rules themselves.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

use crate::earning::amount_in_range;
use crate::error::{Result, RulesError};
use crate::ledger::RuleVersion;
use crate::types::{MachineType, Money, Points, Tier};

/// Every parameter of the club rules. Build one with [`RulesConfig::from_toml_str`] or
/// `RulesConfig::default()` (RULES.md), then [`Rules::new`] to use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// The operator's name for this set of rules, recorded with every decision it makes.
    pub version: String,
    /// Earning rates at machines and bars.
    pub earning: EarningConfig,
    /// Validity of points lots.
    pub points: PointsConfig,
    /// Tier thresholds and the qualifying window.
    pub tiers: TierConfig,
    /// Cashback rates, minimum and step.
    pub cashback: CashbackConfig,
    /// The free-play ledger's expiry.
    pub free_play: FreePlayConfig,
    /// Tier discount in whole percent, on points and on money payments by members.
    pub discounts: PerTier<u32>,
    /// Showcase limit and members' free drinks.
    pub redemption: RedemptionConfig,
    /// When a correction needs a second person.
    pub corrections: CorrectionConfig,
    /// Live table games by the code croupiers record (`blackjack`, `poker`, ...). Listing any game
    /// in the file replaces the whole default list.
    pub tables: BTreeMap<String, TableGame>,
    /// The casino's time zone and gaming day: what "a day" means in the rules.
    pub calendar: CalendarConfig,
}

/// The casino's calendar. Membership anniversaries fall on the casino's local date; limits "per
/// day" (the showcase article, cash at the desk) count per gaming day, which starts at a local
/// hour (our choice: 06:00, after the floor closes, so a night's play is one day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// The casino's IANA time zone (the club's terms are Slovenian: `Europe/Ljubljana`).
    pub time_zone: chrono_tz::Tz,
    /// The local hour (0-23) at which a gaming day starts.
    pub gaming_day_starts_at_hour: u32,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig { time_zone: chrono_tz::Europe::Ljubljana, gaming_day_starts_at_hour: 6 }
    }
}

impl CalendarConfig {
    /// The casino's local calendar date at `now`.
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }

    /// The gaming day `now` belongs to: the local date, moved back by the hours before the day's
    /// start (at 03:00 local with a 06:00 start, it is still yesterday's gaming day).
    pub fn gaming_day(&self, now: DateTime<Utc>) -> NaiveDate {
        let local = now.with_timezone(&self.time_zone).naive_local();
        (local - TimeDelta::hours(i64::from(self.gaming_day_starts_at_hour))).date()
    }
}

/// Earning rates (RULES.md 1, "Earning points").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarningConfig {
    /// EUR wagered on a slot machine for one point.
    #[serde(with = "text")]
    pub slot: Money,
    /// EUR wagered on an electronic roulette for one point.
    #[serde(with = "text")]
    pub electronic_roulette: Money,
    /// EUR wagered on a video poker machine for one point.
    #[serde(with = "text")]
    pub video_poker: Money,
    /// EUR paid in cash at a bar or restaurant for one point, per receipt.
    #[serde(with = "text")]
    pub bar_cash: Money,
    /// Receipt line categories that earn nothing (tobacco).
    pub non_earning_categories: BTreeSet<String>,
}

impl EarningConfig {
    /// EUR wagered for one point on this kind of machine.
    pub fn eur_per_point(&self, machine: MachineType) -> Money {
        match machine {
            MachineType::Slot => self.slot,
            MachineType::ElectronicRoulette => self.electronic_roulette,
            MachineType::VideoPoker => self.video_poker,
        }
    }
}

/// Points lots (RULES.md 1, "Redeeming points": valid one year).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointsConfig {
    /// A lot can be spent for this many calendar months after it was earned.
    pub validity_months: u32,
}

/// Tier thresholds (RULES.md 1, "Tiers"). Bronze is where everyone starts; Chairman has no
/// threshold (invitation only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierConfig {
    /// Qualifying points are those earned in this many months before now (rolling).
    pub qualifying_window_months: u32,
    /// Automatic promotion to Silver at this many qualifying points.
    pub silver: Points,
    /// Automatic promotion to Gold.
    pub gold: Points,
    /// Eligibility for VIP Exclusive; a manager promotes.
    pub vip_exclusive: Points,
}

/// Cashback: points into free play (RULES.md 1, "Redeeming points").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CashbackConfig {
    /// The least number of points one cashback redeems.
    pub minimum_points: Points,
    /// Cashback is redeemed in multiples of this many points.
    pub step_points: Points,
    /// Free play in EUR per 1,000 points, by tier; amounts are rounded down to the cent.
    pub eur_per_1000_points: PerTier<Money>,
}

/// The free-play ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreePlayConfig {
    /// Free play not sent to a machine expires this many days after it was issued.
    pub expiry_days: u32,
}

/// Redemption at bars, restaurants, hotel and showcase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedemptionConfig {
    /// Showcase articles a member may take per day.
    pub showcase_articles_per_day: u32,
    /// Bar article categories that members get free.
    pub free_drink_categories: BTreeSet<String>,
    /// Single bar articles (by SKU) that members get free, beyond the categories.
    pub free_drink_skus: BTreeSet<String>,
}

/// Manual corrections (RULES.md 1, "Earning points": corrections are audited entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrectionConfig {
    /// A correction of more than this many points (either sign) needs a second person's approval.
    pub approval_above_points: Points,
}

/// How a live table game is rated (RULES.md 1, "Table rating").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rated_by", rename_all = "snake_case", deny_unknown_fields)]
pub enum TableGame {
    /// theoretical win = average bet x hours x decisions per hour x house edge;
    /// points = theoretical win x points per EUR of theoretical win.
    TheoreticalWin {
        /// Hands, spins or rolls an hour at a typical table.
        decisions_per_hour: u32,
        /// The house's edge on an average bet, in percent.
        #[serde(with = "text")]
        house_edge_percent: Decimal,
        /// Points per EUR of theoretical win.
        #[serde(with = "text")]
        points_per_eur: Decimal,
        /// Ratings with an average bet below this are flagged for the pit boss.
        #[serde(with = "text")]
        min_average_bet: Money,
        /// Ratings with an average bet above this are flagged for the pit boss.
        #[serde(with = "text")]
        max_average_bet: Money,
        /// Ratings longer than this are flagged for the pit boss.
        max_minutes: u32,
    },
    /// Rated by time alone (poker: the house takes a rake, not the player's losses).
    Time {
        /// Points per hour at the table.
        #[serde(with = "text")]
        points_per_hour: Decimal,
        /// Ratings longer than this are flagged for the pit boss.
        max_minutes: u32,
    },
}

impl TableGame {
    /// The longest rating not flagged for the pit boss.
    pub fn max_minutes(&self) -> u32 {
        match self {
            TableGame::TheoreticalWin { max_minutes, .. } | TableGame::Time { max_minutes, .. } => *max_minutes,
        }
    }
}

/// One value per tier, every tier present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound = "T: text::ConfigValue")]
pub struct PerTier<T> {
    #[serde(with = "text")]
    pub bronze: T,
    #[serde(with = "text")]
    pub silver: T,
    #[serde(with = "text")]
    pub gold: T,
    #[serde(with = "text")]
    pub vip_exclusive: T,
    #[serde(with = "text")]
    pub chairman: T,
}

impl<T: Copy> PerTier<T> {
    /// The value for `tier`.
    pub fn get(&self, tier: Tier) -> T {
        match tier {
            Tier::Bronze => self.bronze,
            Tier::Silver => self.silver,
            Tier::Gold => self.gold,
            Tier::VipExclusive => self.vip_exclusive,
            Tier::Chairman => self.chairman,
        }
    }
}

fn eur(cents: i64) -> Money {
    Money::from_cents(cents)
}

fn theoretical(decisions_per_hour: u32, house_edge_percent: Decimal) -> TableGame {
    TableGame::TheoreticalWin {
        decisions_per_hour,
        house_edge_percent,
        points_per_eur: dec!(3),
        min_average_bet: eur(1_00),
        max_average_bet: eur(500_000),
        max_minutes: 12 * 60,
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            version: "rules-md".to_owned(),
            earning: EarningConfig::default(),
            points: PointsConfig::default(),
            tiers: TierConfig::default(),
            cashback: CashbackConfig::default(),
            free_play: FreePlayConfig::default(),
            discounts: PerTier { bronze: 0, silver: 20, gold: 30, vip_exclusive: 50, chairman: 70 },
            redemption: RedemptionConfig::default(),
            corrections: CorrectionConfig::default(),
            tables: BTreeMap::from([
                ("blackjack".to_owned(), theoretical(63, dec!(1.30))),
                ("european_roulette".to_owned(), theoretical(36, dec!(2.70))),
                ("mini_baccarat".to_owned(), theoretical(58, dec!(1.26))),
                ("craps".to_owned(), theoretical(50, dec!(1.50))),
                ("poker".to_owned(), TableGame::Time { points_per_hour: dec!(12), max_minutes: 12 * 60 }),
            ]),
            calendar: CalendarConfig::default(),
        }
    }
}

impl Default for EarningConfig {
    fn default() -> Self {
        EarningConfig {
            slot: eur(4_00),
            electronic_roulette: eur(8_00),
            video_poker: eur(8_00),
            bar_cash: eur(4_00),
            non_earning_categories: BTreeSet::from(["tobacco".to_owned()]),
        }
    }
}

impl Default for PointsConfig {
    fn default() -> Self {
        PointsConfig { validity_months: 12 }
    }
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            qualifying_window_months: 12,
            silver: Points(10_000),
            gold: Points(36_000),
            vip_exclusive: Points(100_000),
        }
    }
}

impl Default for CashbackConfig {
    fn default() -> Self {
        CashbackConfig {
            minimum_points: Points(1_000),
            step_points: Points(100),
            eur_per_1000_points: PerTier {
                bronze: eur(10_00),
                silver: eur(12_00),
                gold: eur(14_00),
                vip_exclusive: eur(16_00),
                chairman: eur(18_00),
            },
        }
    }
}

impl Default for FreePlayConfig {
    fn default() -> Self {
        FreePlayConfig { expiry_days: 30 }
    }
}

impl Default for RedemptionConfig {
    fn default() -> Self {
        RedemptionConfig {
            showcase_articles_per_day: 1,
            free_drink_categories: ["coffee", "water", "dispenser_juice", "draft_beer", "open_wine"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            free_drink_skus: BTreeSet::new(),
        }
    }
}

impl Default for CorrectionConfig {
    fn default() -> Self {
        CorrectionConfig { approval_above_points: Points(1_000) }
    }
}

impl RulesConfig {
    /// Parses and validates a rules file; keys left out take RULES.md's values.
    pub fn from_toml_str(text: &str) -> Result<RulesConfig> {
        let config = RulesConfig::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    fn parse(text: &str) -> Result<RulesConfig> {
        toml::from_str(text).map_err(|e| RulesError::ConfigSyntax(e.to_string()))
    }

    /// Checks every value against what the rules can work with; the first problem is the error.
    pub fn validate(&self) -> Result<()> {
        check(!self.version.trim().is_empty(), "version", "must not be empty")?;
        let e = &self.earning;
        for (field, rate) in [
            ("earning.slot", e.slot),
            ("earning.electronic_roulette", e.electronic_roulette),
            ("earning.video_poker", e.video_poker),
            ("earning.bar_cash", e.bar_cash),
        ] {
            check(rate > Money::ZERO, field, "must be more than EUR 0.00")?;
            check_amount(rate, field)?;
        }
        check_names(&e.non_earning_categories, "earning.non_earning_categories")?;
        check_months(self.points.validity_months, "points.validity_months")?;

        let t = &self.tiers;
        check_months(t.qualifying_window_months, "tiers.qualifying_window_months")?;
        check(t.silver > Points::ZERO, "tiers.silver", "must be more than 0")?;
        check(t.gold > t.silver, "tiers.gold", "must be more than tiers.silver")?;
        check(t.vip_exclusive > t.gold, "tiers.vip_exclusive", "must be more than tiers.gold")?;

        let c = &self.cashback;
        check(c.step_points > Points::ZERO, "cashback.step_points", "must be more than 0")?;
        check(c.minimum_points > Points::ZERO, "cashback.minimum_points", "must be more than 0")?;
        check(
            c.minimum_points.0 % c.step_points.0 == 0,
            "cashback.minimum_points",
            "must be a whole number of cashback.step_points",
        )?;
        for tier in Tier::ALL {
            let field = format!("cashback.eur_per_1000_points.{}", tier.code());
            check_amount(c.eur_per_1000_points.get(tier), &field)?;
            check(self.discounts.get(tier) <= 100, &format!("discounts.{}", tier.code()), "must be 0 to 100")?;
        }
        check(self.free_play.expiry_days > 0, "free_play.expiry_days", "must be at least 1")?;
        check_names(&self.redemption.free_drink_categories, "redemption.free_drink_categories")?;
        check_names(&self.redemption.free_drink_skus, "redemption.free_drink_skus")?;
        check(
            self.corrections.approval_above_points >= Points::ZERO,
            "corrections.approval_above_points",
            "must not be negative",
        )?;
        for (name, game) in &self.tables {
            validate_game(name, game)?;
        }
        check(self.calendar.gaming_day_starts_at_hour < 24, "calendar.gaming_day_starts_at_hour", "must be 0 to 23")?;
        Ok(())
    }
}

fn validate_game(name: &str, game: &TableGame) -> Result<()> {
    let field = |key: &str| format!("tables.{name}.{key}");
    check(!name.trim().is_empty(), "tables", "game codes must not be empty")?;
    check(game.max_minutes() > 0, &field("max_minutes"), "must be at least 1")?;
    match game {
        TableGame::TheoreticalWin {
            decisions_per_hour,
            house_edge_percent,
            points_per_eur,
            min_average_bet,
            max_average_bet,
            ..
        } => {
            check(*decisions_per_hour > 0, &field("decisions_per_hour"), "must be at least 1")?;
            check(
                *house_edge_percent > Decimal::ZERO && *house_edge_percent < dec!(100),
                &field("house_edge_percent"),
                "must be between 0 and 100",
            )?;
            check(!points_per_eur.is_sign_negative(), &field("points_per_eur"), "must not be negative")?;
            check_amount(*min_average_bet, &field("min_average_bet"))?;
            check_amount(*max_average_bet, &field("max_average_bet"))?;
            check(max_average_bet >= min_average_bet, &field("max_average_bet"), "must not be below min_average_bet")
        }
        TableGame::Time { points_per_hour, .. } => {
            check(!points_per_hour.is_sign_negative(), &field("points_per_hour"), "must not be negative")
        }
    }
}

fn check(ok: bool, field: &str, problem: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(RulesError::ConfigValue { field: field.to_owned(), problem: problem.to_owned() }) }
}

fn check_amount(amount: Money, field: &str) -> Result<()> {
    check(amount_in_range("", amount).is_ok(), field, "must be from EUR 0.00 to EUR 1,000,000,000,000.00")
}

fn check_months(months: u32, field: &str) -> Result<()> {
    check((1..=120).contains(&months), field, "must be 1 to 120 months")
}

fn check_names(names: &BTreeSet<String>, field: &str) -> Result<()> {
    check(names.iter().all(|n| !n.trim().is_empty()), field, "must not contain an empty name")
}

/// A validated configuration and the version every decision made under it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    config: RulesConfig,
    version: RuleVersion,
}

impl Rules {
    /// Validates `config` and computes its version: `<label>+<content hash>`, the hash a 64-bit
    /// FNV-1a of the canonical TOML of everything but the label (16 hex digits), so a content
    /// change under an unchanged label is still told apart. FNV-1a is fixed by its definition, so
    /// the same content gives the same version on every build and machine.
    pub fn new(config: RulesConfig) -> Result<Rules> {
        config.validate()?;
        let content = RulesConfig { version: String::new(), ..config.clone() };
        let canonical = toml::to_string(&content).map_err(|e| RulesError::ConfigSyntax(e.to_string()))?;
        let version = RuleVersion::new(format!("{}+{:016x}", config.version.trim(), fnv1a64(canonical.as_bytes())));
        Ok(Rules { config, version })
    }

    /// Parses, validates and versions a rules file.
    pub fn from_toml_str(text: &str) -> Result<Rules> {
        Rules::new(RulesConfig::parse(text)?)
    }

    /// The parameters.
    pub fn config(&self) -> &RulesConfig {
        &self.config
    }

    /// The version recorded with every decision made under these rules.
    pub fn version(&self) -> &RuleVersion {
        &self.version
    }
}

impl Default for Rules {
    /// RULES.md's rules.
    fn default() -> Self {
        Rules::new(RulesConfig::default()).expect("the default configuration is valid")
    }
}

/// The 64-bit FNV-1a hash (offset basis and prime from the FNV specification).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Exact TOML forms: decimals and money as strings, counts as plain integers.
mod text {
    use std::fmt;

    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::types::Money;

    /// A value the configuration writes in one exact form.
    pub trait ConfigValue: Sized {
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    }

    impl ConfigValue for u32 {
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u32(*self)
        }
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::Deserialize::deserialize(d)
        }
    }

    impl ConfigValue for Decimal {
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&self.to_string())
        }
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(DecimalText)
        }
    }

    impl ConfigValue for Money {
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.as_decimal().write(s)
        }
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let amount = Decimal::read(d)?;
            Money::from_decimal(amount).map_err(de::Error::custom)
        }
    }

    struct DecimalText;

    impl Visitor<'_> for DecimalText {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number written as a string, such as \"4.00\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            Decimal::from_str_exact(v.trim()).map_err(|e| E::custom(format!("`{v}` is not a decimal number: {e}")))
        }
    }

    pub fn serialize<T: ConfigValue, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        value.write(s)
    }

    pub fn deserialize<'de, T: ConfigValue, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::read(d)
    }
}
