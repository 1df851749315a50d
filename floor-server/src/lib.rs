//! The floor server: club rules and ledgers, storage on SQLite or PostgreSQL, the terminal
//! gateway, and the web and JSON APIs. `main.rs` is a thin shell over [`cli`].

pub mod app;
pub mod audit;
pub mod broadcast;
pub mod cashdesk;
pub mod catalogue;
pub mod cli;
pub mod club;
pub mod clock;
pub mod config;
pub mod demo;
pub mod enrolment;
pub mod error;
pub mod gateway;
pub mod iaccount;
pub mod ledger;
pub mod pit;
pub mod reception;
pub mod staff;
pub mod store;
pub mod telemetry;
pub mod terminals;
pub mod testing;
pub mod web;

pub use error::{Error, Result};
