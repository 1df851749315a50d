//! pos-bridge: what a bar, restaurant, hotel or showcase till talks to for the players club.
//!
//! The till calls a small local HTTP/JSON API ([`Bridge::router`], documented at
//! `/openapi.json`): who is at my till, price a ticket, settle it with cash, card and points,
//! void or refund it. The bridge asks the floor server through a [`Floor`] (the bar-mode
//! terminal agent's link and outbox, or [`ws::WsFloor`] standalone), where the club's rules
//! decide prices, discounts, limits and points in one transaction per ticket.
//!
//! Not here: the till itself, card readers, the club's rules.

pub mod api;
pub mod bridge;
pub mod floor;
pub mod ws;

pub use api::PosOutlet;
pub use bridge::{ApiDoc, Bridge, BridgeConfig, serve};
pub use floor::{Floor, Offline, RecordError};
