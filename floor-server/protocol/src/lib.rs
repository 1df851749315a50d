//! The wire contract between terminals (slot, bar, table) and the floor server.
//!
//! Serde types only, carried as JSON text frames over one WebSocket per terminal. The terminal
//! authenticates on the upgrade request (HTTP Basic with its terminal id and secret), then sends
//! [`TerminalMessage::Hello`]; the server answers [`ServerMessage::HelloAck`] with the last sequence
//! number it has committed for that terminal, so a terminal that reconnects resumes its outbox
//! from there.
//!
//! **Sequencing.** Every terminal event travels in an [`Envelope`] with the terminal's own sequence
//! number, starting at 1 and increasing by exactly 1. The server commits an event and only then
//! acknowledges it ([`ServerMessage::Ack`]). The rules, per terminal:
//! - `seq == last + 1`: applied, committed, acknowledged;
//! - `seq <= last`: a repeat; acknowledged again with the first answer, applied nothing;
//! - `seq > last + 1` (a gap, or a number "from the future"): refused with
//!   [`ErrorCode::SequenceGap`] and the `expected` number; nothing stored. The terminal resends
//!   from `expected`.
//!
//! Money travels as decimal strings in EUR ("12.50"), never as floats. What this crate does not
//! do: IO, validation beyond shape (the server validates), or any rule of the club.

use club_rules::{Money, RefusalCode, Tier};
pub use club_rules::pricing::{Outlet, PayWith};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use club_rules::MachineType;

/// The protocol version this crate speaks. A server refuses a Hello with another major version.
pub const PROTOCOL_VERSION: u32 = 1;

/// The path of the terminal gateway's WebSocket on the floor server.
pub const GATEWAY_PATH: &str = "/terminal/ws";

/// Text frames above this size are refused with [`ErrorCode::TooLarge`] (the connection stays up).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A club card's identifier as read by a reader (UID hex, track-2 PAN, EM4100 id). Its `Debug` and
/// `Display` show only the last four characters, so it can sit in logged structs safely.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn new(s: impl Into<String>) -> CardNumber {
        CardNumber(s.into())
    }
    /// The full number, for lookups. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The canonical form every reader's output is compared in: upper case, without spaces or
    /// dashes; 1 to 40 letters and digits. Terminals compare their block list in this form too.
    pub fn normalised(&self) -> Result<CardNumber, String> {
        let n: String = self.0.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_ascii_uppercase();
        if n.is_empty() || n.len() > 40 || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("a card number is 1-40 letters and digits".into());
        }
        Ok(CardNumber(n))
    }

    /// The redacted form used in logs and on screens: `…1234`.
    pub fn redacted(&self) -> String {
        let n = self.0.chars().count();
        let tail: String = self.0.chars().skip(n.saturating_sub(4)).collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.redacted())
    }
}
impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Milliseconds since the Unix epoch, UTC: the one time format on the wire and in storage.
pub type UnixMillis = i64;

/// What a terminal sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalMessage {
    /// First message on every connection.
    Hello { protocol: u32, software: String },
    /// A sequenced event from the terminal's outbox.
    Event(Envelope),
    /// Keeps the link alive and tells the server the terminal is there; answered by `Pong`.
    Heartbeat { at: UnixMillis },
    /// A question a person at the terminal is waiting for (a balance, a redemption, a price).
    /// Answered by `Reply` with the same `id` (chosen by the terminal, unique per connection).
    /// Requests are not sequenced and never wait in an outbox: while the link is down the
    /// terminal says the request cannot be done now. A request that changes anything names its
    /// own idempotency key, so asking twice after a lost answer does it once.
    Request { id: u64, request: Request },
}

/// What a terminal can ask. Every request is answered after Hello only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// The balances of the member whose card this is, if the club's gate lets the card be used.
    Balance { card: CardNumber },
    /// The outlet catalogue: every active article with its point price and flags.
    Catalogue,
    /// Prices a ticket for the member whose card this is (tier discount, free drinks, point
    /// prices). Changes nothing.
    OutletPrice { card: CardNumber, ticket: OutletTicket },
    /// Settles a ticket: the money tenders must pay the money due, `points` must be the points
    /// due (spent oldest first), and cash earns points. Idempotent by the terminal and `ticket.id`:
    /// a repeat changes nothing and answers the first settlement with `repeated: true`.
    OutletSettle { card: CardNumber, ticket: OutletTicket, tenders: Vec<Tender>, points: i64 },
    /// Voids or refunds a settled ticket of this terminal: reverses exactly what it spent and
    /// earned. A second reversal changes nothing (`repeated: true`).
    OutletReverse { ticket: String, reversal: Reversal },
}

/// A sale ticket at an outlet, as the POS rang it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutletTicket {
    /// The POS's ticket number, unique per terminal (1-64 letters, digits, `-`, `_`, `.`).
    pub id: String,
    pub outlet: Outlet,
    pub lines: Vec<OutletLine>,
}

/// A line of an outlet ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutletLine {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub quantity: u32,
    /// The POS's money price per unit (EUR), before any member discount.
    pub unit_price: Decimal,
    #[serde(default)]
    pub already_discounted: bool,
    /// Money (the default) or points.
    #[serde(default = "pay_with_money")]
    pub pay_with: PayWith,
}

fn pay_with_money() -> PayWith {
    PayWith::Money
}

/// How a settled ticket is taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reversal {
    /// Cancelled at the till.
    Void,
    /// Given back after the sale.
    Refund,
}

/// An article of the outlet catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueArticle {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Point price per unit; `None`: not for points.
    pub points_price: Option<i64>,
    /// A showcase ("vitrina") article: at most the configured number per member per day.
    pub showcase: bool,
    /// Free for members at the bar.
    pub member_free: bool,
    pub already_discounted: bool,
}

/// A priced line of an outlet ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedOutletLine {
    pub sku: String,
    pub quantity: u32,
    pub pay_with: PayWith,
    /// The tier discount applied, in percent.
    pub discount_percent: u32,
    pub free_drink: bool,
    /// Money due for the line (EUR).
    pub money: Decimal,
    /// Points due for the line.
    pub points: i64,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// A member's name (first name), tier and what they can spend.
    Balance { name: String, tier: Tier, points: i64, free_play: Decimal },
    /// The card may not be used; `text` is all the player may see.
    Refused { code: RefusalCode, text: String },
    /// The request could not be done; `message` may be shown to the person at the terminal.
    Failed { code: ErrorCode, message: String },
    /// The active outlet catalogue.
    Catalogue { articles: Vec<CatalogueArticle> },
    /// A ticket priced for a member: what the tenders must pay and the points it needs.
    OutletPriced {
        tier: Tier,
        lines: Vec<PricedOutletLine>,
        money_due: Decimal,
        points_due: i64,
        /// The member's available points now (the daily limit).
        points_available: i64,
    },
    /// A settled ticket.
    OutletSettled {
        ticket: String,
        lines: Vec<PricedOutletLine>,
        money_due: Decimal,
        points_spent: i64,
        points_earned: i64,
        /// The member's points balance after the settlement.
        points_balance: i64,
        /// The ticket was already settled: this is the first settlement's answer.
        repeated: bool,
    },
    /// A voided or refunded ticket.
    OutletReversed {
        ticket: String,
        reversal: Reversal,
        /// Points put back into the lots they were spent from.
        points_returned: i64,
        /// Points the ticket had earned, taken back.
        points_taken_back: i64,
        points_balance: i64,
        /// The ticket was already reversed: nothing changed now.
        repeated: bool,
    },
}

impl Reply {
    pub fn refused(code: RefusalCode) -> Reply {
        Reply::Refused { code, text: code.player_text().to_owned() }
    }

    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Failed { code, message: message.into() }
    }
}

/// A terminal event with its place in the terminal's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub seq: u64,
    /// When it happened at the terminal (the terminal's clock).
    pub at: UnixMillis,
    pub event: TerminalEvent,
}

/// Everything a terminal records. Each is stored once per (terminal, seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TerminalEvent {
    /// A card was presented. `session` is chosen by the terminal (a UUID) so that a session opened
    /// while the server was unreachable keeps its identity. `offline` is true when the terminal
    /// already let the player play without the server's answer.
    CardIn { session: String, card: CardNumber, offline: bool, meters: Option<MeterSnapshot> },
    /// The card was taken out or the session was closed (abandoned, replaced by another card).
    CardOut { session: String, reason: CardOutReason, meters: Option<MeterSnapshot> },
    /// Play on the machine during a session: one game, or a meter delta covering several.
    Play(Play),
    /// A bar or restaurant receipt settled at a POS with a member's card.
    Purchase(Purchase),
    /// The outcome of a free-play transfer the server asked for.
    FreePlayResult { transfer: String, outcome: TransferOutcome },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardOutReason {
    Removed,
    Abandoned,
    ReplacedByAnotherCard,
    TerminalShutdown,
}

/// Play within a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Play {
    pub session: String,
    /// The kind of game played, which decides the earning rate.
    pub game: MachineType,
    /// Total wagered (coin-in) in EUR.
    pub wagered: Decimal,
    /// Total won in EUR.
    pub won: Decimal,
    /// Number of games this event covers (1 for a single game).
    pub games: u32,
    pub meters: Option<MeterSnapshot>,
}

/// A machine's meters at a moment, in the machine's accounting units converted to EUR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MeterSnapshot {
    pub coin_in: Decimal,
    pub coin_out: Decimal,
    pub games_played: u64,
    #[serde(default)]
    pub restricted_played: Decimal,
}

/// A receipt from a bar or restaurant POS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub receipt: String,
    pub card: CardNumber,
    pub lines: Vec<ReceiptLine>,
    pub tenders: Vec<Tender>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptLine {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    #[serde(default)]
    pub already_discounted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tender {
    pub kind: TenderKind,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenderKind {
    Cash,
    Card,
    Points,
}

/// The result of moving free play onto a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransferOutcome {
    Completed { amount: Decimal },
    Failed { reason: String },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to Hello. `last_seq` is the last event committed for this terminal; `blocked_cards`
    /// is the current block list the terminal keeps for offline card-ins.
    HelloAck {
        protocol: u32,
        terminal: String,
        last_seq: u64,
        server_time: UnixMillis,
        blocked_cards: Vec<CardNumber>,
    },
    /// The event `seq` is committed (or was already). `outcome` is the first answer given to it.
    Ack { seq: u64, outcome: Outcome },
    /// A request could not be taken. The connection stays usable unless the code says otherwise.
    Error { code: ErrorCode, message: String, seq: Option<u64>, expected: Option<u64> },
    Pong { server_time: UnixMillis },
    /// The answer to the terminal's `Request` with this `id`.
    Reply { id: u64, reply: Reply },
    /// Show a message on the terminal's display for a while.
    Display { lines: Vec<String>, seconds: u32 },
    /// Move this much free play onto the machine as restricted credit for the session.
    FreePlay { transfer: String, session: String, amount: Decimal },
    /// Refuse this card from now on, even offline.
    BlockCard { card: CardNumber },
    /// The card may be used again.
    UnblockCard { card: CardNumber },
}

/// The server's answer to one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Recorded,
    /// The card is good: the session is open.
    Welcome(Welcome),
    /// The card may not be used; `text` is all the player may see.
    Refused { code: RefusalCode, text: String },
    /// The event was well-formed but its content was not acceptable (a negative amount, an
    /// unknown session). It is kept on record, consumes its sequence number and changes nothing
    /// else, so the terminal's outbox moves on.
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub session: String,
    /// The name to greet the player with (first name).
    pub name: String,
    pub tier: Tier,
    pub points: i64,
    pub free_play: Decimal,
}

impl Outcome {
    pub fn refused(code: RefusalCode) -> Outcome {
        Outcome::Refused { code, text: code.player_text().to_owned() }
    }
}

/// Error codes a terminal can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not the shape of any message.
    Malformed,
    /// A well-formed JSON message of a type this server does not know.
    UnknownMessage,
    /// Larger than [`MAX_FRAME_BYTES`].
    TooLarge,
    /// An event or request before Hello.
    HelloRequired,
    /// The terminal speaks another protocol version; the server closes the connection.
    UnsupportedProtocol,
    /// `seq` is beyond the next expected number; resend from `expected`.
    SequenceGap,
    /// The event is well-formed but its content is invalid (negative amounts, unknown session…).
    Invalid,
    /// The server could not commit now; resend later. Nothing was stored.
    Unavailable,
    /// A request for something the server does not know (an unknown card, member or article).
    NotFound,
    /// The club's rules decline it (too few points, the showcase limit, not for points).
    Declined,
    /// It contradicts what is on record (a ticket number already used for another sale).
    Conflict,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error { code, message: message.into(), seq: None, expected: None }
    }
}

/// Converts a wire amount to exact money, refusing fractions of a cent and negative values.
pub fn money(amount: Decimal) -> Result<Money, String> {
    let m = Money::from_decimal(amount).map_err(|e| e.to_string())?;
    if m.is_negative() {
        return Err(format!("negative amount: {amount}"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn play_event_has_a_stable_json_shape() {
        let msg = TerminalMessage::Event(Envelope {
            seq: 7,
            at: 1_700_000_000_000,
            event: TerminalEvent::Play(Play {
                session: "s1".into(),
                game: MachineType::Slot,
                wagered: dec!(2.00),
                won: dec!(0.50),
                games: 1,
                meters: None,
            }),
        });
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"type":"event","seq":7,"at":1700000000000,"event":{"kind":"play","session":"s1","game":"slot","wagered":"2.00","won":"0.50","games":1,"meters":null}}"#
        );
        assert_eq!(serde_json::from_str::<TerminalMessage>(&json).unwrap(), msg);
    }

    #[test]
    fn card_numbers_are_redacted_in_debug_and_display() {
        let c = CardNumber::new("04A1B2C3D4E5F6");
        assert_eq!(format!("{c:?}"), "CardNumber(…E5F6)");
        assert_eq!(c.to_string(), "…E5F6");
        assert_eq!(c.expose(), "04A1B2C3D4E5F6");
    }

    #[test]
    fn card_numbers_normalise_to_one_form() {
        assert_eq!(CardNumber::new(" 04a1-b2 c3 ").normalised().unwrap(), CardNumber::new("04A1B2C3"));
        assert!(CardNumber::new("--").normalised().is_err());
        assert!(CardNumber::new("04A1;").normalised().is_err());
    }

    #[test]
    fn refusal_carries_only_the_player_text() {
        let o = Outcome::refused(RefusalCode::SelfExcluded);
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(json, r#"{"result":"refused","code":"self_excluded","text":"Please contact reception."}"#);
    }

    #[test]
    fn money_refuses_negative_and_sub_cent_amounts() {
        assert!(money(dec!(-1)).is_err());
        assert!(money(dec!(0.005)).is_err());
        assert_eq!(money(dec!(4)).unwrap().cents(), 400);
    }
}
