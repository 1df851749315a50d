//! The crate's one error type: why a configuration or a request was refused.
//!
//! Key decision: a refusal is a value the caller matches on (never a string to parse), and a
//! refused request writes nothing, so bad input loses nothing. An earning that the exclusion gate
//! refuses is not an error: the event is still recorded, with its reason (see `earning`).

use crate::membership::JoinRefusal;
use crate::types::{Money, Points, RefusalCode, StaffId};

/// Why the rules refused a configuration or a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The configuration file is not TOML of the expected shape (unknown key, wrong type, ...).
    #[error("rules configuration does not parse: {0}")]
    ConfigSyntax(String),
    /// The configuration parses but a value breaks a rule (named by its TOML path).
    #[error("rules configuration: `{field}` {problem}")]
    ConfigValue { field: String, problem: String },
    /// A person may not join the club.
    #[error("may not join: {0:?}")]
    CannotJoin(JoinRefusal),
    /// The exclusion gate refused the member (self-exclusion, ban, ended membership, card state).
    #[error("refused: {0:?}")]
    Refused(RefusalCode),
    /// An amount that must be positive (a redemption, a quantity, a transfer) was not.
    #[error("{what} must be positive, got {value}")]
    NotPositive { what: &'static str, value: String },
    /// An amount that must not be negative (a wager, a carry-over, a price, a tender) was.
    #[error("{what} must not be negative, got {value}")]
    Negative { what: &'static str, value: String },
    /// A computation left the range the rules can represent (an absurd rating or price).
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    /// A redemption or a negative correction asked for more points than are available now.
    #[error("not enough points: {wanted} wanted, {available} available")]
    InsufficientPoints { wanted: Points, available: Points },
    /// A free-play transfer asked for more than the member's unexpired free play.
    #[error("not enough free play: {wanted} wanted, {available} available")]
    InsufficientFreePlay { wanted: Money, available: Money },
    /// Cashback below the configured minimum.
    #[error("cashback needs at least {minimum} points, got {points}")]
    BelowCashbackMinimum { points: Points, minimum: Points },
    /// Cashback not a whole number of steps.
    #[error("cashback is redeemed in steps of {step} points, got {points}")]
    NotACashbackStep { points: Points, step: Points },
    /// A table rating names a game the configuration does not rate.
    #[error("no rating rule for table game `{0}`")]
    UnknownTableGame(String),
    /// A table rating's end time is before its start time.
    #[error("table rating ends before it starts")]
    EndsBeforeStart,
    /// A ticket line names an article that is not in the catalogue given.
    #[error("article `{0}` is not in the catalogue")]
    UnknownArticle(String),
    /// A ticket line pays with points for an article that has no point price.
    #[error("article `{0}` cannot be paid with points")]
    NotForPoints(String),
    /// The showcase limit per member per day would be exceeded.
    #[error("showcase limit: {limit} article(s) per day, {already} already taken today, {asked} asked")]
    ShowcaseLimit { limit: u32, already: u32, asked: u32 },
    /// The tenders of a receipt or a settlement do not add up to what is due.
    #[error("tenders add up to {tendered}, but {due} is due")]
    TendersDoNotAddUp { due: Money, tendered: Money },
    /// A manual correction without a reason.
    #[error("a correction needs a reason")]
    MissingReason,
    /// A correction of zero points.
    #[error("a correction of zero points changes nothing")]
    EmptyCorrection,
    /// The person approving a correction is the person who asked for it.
    #[error("a correction must be approved by a second person, not by {0:?} who asked for it")]
    SameApprover(StaffId),
    /// A correction at or below the approval threshold needs no approval.
    #[error("a correction of {points} points needs no approval (threshold {threshold})")]
    NoApprovalNeeded { points: Points, threshold: Points },
    /// A manager tried to promote to VIP Exclusive a member who has not reached the threshold.
    #[error("VIP Exclusive needs {threshold} qualifying points, the member has {qualifying}")]
    NotEligibleForVip { qualifying: Points, threshold: Points },
    /// Only sent free-play entries can be returned after a failed transfer.
    #[error("only entries that sent free play to a machine can be returned")]
    NotASentTransfer,
    /// A date or time computation left chrono's range.
    #[error("date out of range")]
    DateOutOfRange,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, RulesError>;
