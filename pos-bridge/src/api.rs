//! The POS's side of the bridge: the JSON shapes of the local API and its errors.
//!
//! Key decision: these types are the bridge's own, documented in the OpenAPI document, and only
//! translated to the floor protocol inside the bridge; the till never sees the wire protocol.
//! Amounts of money are decimal strings in EUR (`"12.50"`), points are integers. Every error is
//! a JSON body `{"error": code, "message": text}` with a status the till can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the ticket is rung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PosOutlet {
    Bar,
    Restaurant,
    Hotel,
    /// The showcase ("vitrina"): articles for points, at most one per member per day.
    Showcase,
}

/// How a line is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PosPayWith {
    #[default]
    Money,
    Points,
}

/// A ticket line as the till rang it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PosLine {
    /// The article's SKU in the club catalogue.
    pub sku: String,
    pub name: String,
    /// The till's category (`coffee`, `draft_beer`, `tobacco`, `food`, ...).
    pub category: String,
    /// At least 1.
    pub quantity: i64,
    /// Money price per unit before any member discount, EUR with at most two decimals.
    #[schema(value_type = String, example = "4.50")]
    pub unit_price: Decimal,
    /// The article already carries a discount: no tier discount on it.
    #[serde(default)]
    pub already_discounted: bool,
    /// Money (default) or points.
    #[serde(default)]
    pub pay_with: PosPayWith,
}

/// A ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PosTicket {
    /// The till's ticket number, unique at this till: 1-64 letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Defaults to the bridge's configured outlet.
    #[serde(default)]
    pub outlet: Option<PosOutlet>,
    pub lines: Vec<PosLine>,
}

/// How (part of) a ticket is paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PosTender {
    /// Cash, net of change given. Earns points (not on tobacco).
    Cash {
        #[schema(value_type = String, example = "7.00")]
        amount: Decimal,
    },
    /// A payment card. Earns nothing.
    Card {
        #[schema(value_type = String, example = "7.00")]
        amount: Decimal,
    },
    /// Club points: exactly the points due for the lines paid with points.
    Points { points: i64 },
}

/// Settle a ticket with its tenders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettleRequest {
    pub ticket: PosTicket,
    pub tenders: Vec<PosTender>,
}

/// The member whose card was read at this till.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemberAtTill {
    /// First name, to greet.
    pub name: String,
    /// `bronze`, `silver`, `gold`, `vip_exclusive` or `chairman`.
    pub tier: String,
    /// Points available now.
    pub points: i64,
}

/// An article of the club catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogueItem {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Points per unit before the tier discount; absent: not for points.
    pub points_price: Option<i64>,
    pub showcase: bool,
    /// Free for members at the bar.
    pub member_free: bool,
    pub already_discounted: bool,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: i64,
    pub pay_with: PosPayWith,
    /// The tier discount applied, in percent.
    pub discount_percent: u32,
    /// A member's free drink: costs nothing.
    pub free_drink: bool,
    /// Money due for the line, EUR.
    #[schema(value_type = String, example = "6.30")]
    pub money: Decimal,
    /// Points due for the line.
    pub points: i64,
}

/// A ticket priced for the member at the till.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PricedTicket {
    pub ticket: String,
    pub tier: String,
    pub lines: Vec<PricedLine>,
    /// What the money tenders must add up to.
    #[schema(value_type = String, example = "6.30")]
    pub money_due: Decimal,
    /// What the points tender must be.
    pub points_due: i64,
    /// The member's available points (the daily limit).
    pub points_available: i64,
}

/// A settled ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    pub ticket: String,
    #[schema(value_type = String, example = "6.30")]
    pub money_due: Decimal,
    pub points_spent: i64,
    /// Points the cash earned; absent when recorded offline (decided when the server gets it).
    pub points_earned: Option<i64>,
    /// The member's balance after; absent when recorded offline.
    pub points_balance: Option<i64>,
    /// Recorded while the club server was unreachable: the earning waits in the terminal's
    /// outbox and is decided by the server when it arrives.
    pub offline: bool,
}

/// A voided or refunded ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reversed {
    pub ticket: String,
    /// `void` or `refund`.
    pub reversal: String,
    /// Points given back into the lots they were spent from.
    pub points_returned: i64,
    /// Points the ticket had earned, taken back.
    pub points_taken_back: i64,
    pub points_balance: i64,
}

/// Every error's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// A stable code the till can act on: `unauthorized`, `bad_request`, `invalid`,
    /// `unknown_sku`, `no_member`, `refused`, `declined`, `already_settled`, `already_reversed`,
    /// `conflict`, `not_found`, `offline`, `points_offline`.
    pub error: String,
    /// Text that may be shown to the cashier.
    pub message: String,
    /// For `already_settled`: the first settlement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Box<Settlement>>,
}

/// An error of the local API.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure { status, body: ApiError { error: code.to_owned(), message: message.into(), settlement: None } }
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn offline(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::SERVICE_UNAVAILABLE, "offline", message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
