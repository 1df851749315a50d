//! The Players Club rules as pure functions: no IO, no clock, no database. The floor server reads
//! state, asks these functions for decisions and writes the resulting ledger entries in the same
//! transaction as the event that caused them.

pub mod types;

pub use types::{CardState, MachineType, MemberState, Money, MoneyError, Points, RefusalCode, Tier};
