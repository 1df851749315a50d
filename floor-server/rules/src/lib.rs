//! The Players Club rules as pure functions: no IO, no clock, no database. The floor server reads
//! a small state (the member's standing, tier, qualifying points, open lots, carry-overs), asks
//! these functions for decisions and writes the resulting ledger entries in the same transaction
//! as the event that caused them.
//!
//! Key decision: every function takes the rules, the state, the event and `now` and returns
//! decisions that carry the version of the rules that made them, so a configuration change never
//! rewrites history and replaying an event gives the same decision. Ids and time are inputs.
//!
//! Not here: storage, de-duplication of events by id, the calendar day of the casino, IO of any
//! kind. Each module covers one part of RULES.md section 1:
//! - [`config`]: every parameter, from TOML, defaults from RULES.md; [`Rules`] with its version.
//! - [`gate`]: the exclusion gate (self-exclusion, bans, membership and card state).
//! - [`earning`]: machine play with carry-over, bar and restaurant receipts.
//! - [`table`]: live table ratings.
//! - [`lots`]: points lots, spending oldest first, expiry.
//! - [`tiers`]: qualifying points, promotion, VIP eligibility, Chairman, the annual review.
//! - [`cashback`]: points into free play and the free-play ledger.
//! - [`pricing`]: tier discounts, free drinks, point prices, the showcase limit, settlement.
//! - [`membership`]: the end of a membership.
//! - [`corrections`]: manual corrections with a second person's approval.
//! - [`online`]: the i-Account (RULES.md 2): stake split, limits, self-exclusion, bonuses, inactivity.

pub mod cashback;
pub mod config;
pub mod corrections;
pub mod earning;
pub mod error;
pub mod gate;
pub mod ledger;
pub mod lots;
pub mod membership;
pub mod online;
pub mod pricing;
pub mod table;
pub mod tiers;
pub mod types;

pub use config::{Rules, RulesConfig};
pub use error::RulesError;
pub use gate::{Member, Standing};
pub use ledger::{Entry, FreePlayEntry, LotRef, PointsEntry, RuleVersion};
pub use types::{CardState, LotId, MachineType, MemberState, Money, MoneyError, Points, RefusalCode, StaffId, Tier};
