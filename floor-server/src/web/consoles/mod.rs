//! The consoles' pages: reception, pit, cashier desk, bar, management and the i-Account's staff
//! pages. Each handler reads the
//! clock once, calls the club's functions (`enrolment`, `club`, `ledger`, `pit`, `cashdesk`,
//! `terminals`) and shows their decision; forms answer with a redirect and a one-time message.

mod admin;
pub mod bar;
pub mod cashier;
pub mod iaccount;
pub mod manager;
pub mod pit;
pub mod reception;

use axum::response::Response;
use club_rules::{Money, RulesError};
use rust_decimal::Decimal;
use sqlx::Row;

use super::Route;
use super::auth::StaffUser;
use super::i18n::Tr;
use super::page;
use super::session::Flash;
use crate::app::AppState;
use crate::clock::Millis;
use crate::error::{Error, Result};

pub(super) fn routes() -> Vec<Route> {
    let mut t = reception::routes();
    t.extend(pit::routes());
    t.extend(cashier::routes());
    t.extend(bar::routes());
    t.extend(manager::routes());
    t.extend(iaccount::routes());
    t.extend(admin::routes());
    t
}

/// The bytes of the upload field `file` of a multipart form.
pub async fn uploaded(mut m: axum::extract::Multipart) -> Result<Vec<u8>> {
    while let Some(field) = m.next_field().await.map_err(|e| Error::invalid(format!("upload: {e}")))? {
        if field.name() == Some("file") {
            return Ok(field.bytes().await.map_err(|e| Error::invalid(format!("upload: {e}")))?.to_vec());
        }
    }
    Err(Error::invalid("no file was uploaded"))
}

/// An amount typed by staff: `12`, `12.5`, `12,50` (EUR); refuses fractions of a cent and
/// negative amounts.
pub fn parse_money(s: &str) -> Result<Money> {
    let d: Decimal = s.trim().replace(',', ".").parse().map_err(|_| Error::invalid(format!("not an amount: {s}")))?;
    if d.is_sign_negative() {
        return Err(Error::invalid("the amount may not be negative"));
    }
    Money::from_decimal(d).map_err(|_| Error::invalid(format!("not an amount in whole cents: {s}")))
}

/// An amount as the pages show it: `1,234.50 EUR` style is left to the locale; we show `1234.50`.
pub fn money(m: &Money) -> String {
    let mut d = m.as_decimal();
    d.rescale(2);
    d.to_string()
}

/// A time as the pages show it: the casino's local time (the rules' calendar).
pub fn when(state: &AppState, ms: Millis) -> String {
    let tz = state.rules.config().calendar.time_zone;
    crate::ledger::time(ms).map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// The start of the gaming day of `now` (the desks' "today"), by the rules' calendar.
pub fn day_start(state: &AppState, now: Millis) -> Millis {
    crate::cashdesk::gaming_day_start(&state.rules, now).unwrap_or(now - 86_400_000)
}

/// The words for a rules refusal.
pub fn refusal_text(t: &Tr, e: &RulesError) -> String {
    let key = match e {
        RulesError::Refused(code) => format!("refusal.{}", serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()),
        RulesError::InsufficientPoints { .. } => "refusal.insufficient_points".into(),
        RulesError::BelowCashbackMinimum { .. } => "refusal.below_minimum".into(),
        RulesError::NotACashbackStep { .. } => "refusal.not_a_step".into(),
        _ => String::new(),
    };
    let text = if key.is_empty() { "" } else { t.get(&key) };
    if text.is_empty() || text == key { format!("{}: {e}", t.get("error.refused")) } else { text.to_owned() }
}

/// After a form: the message for `result` and a redirect to `to`.
pub async fn done(state: &AppState, user: &StaffUser, result: Result<String>, to: &str) -> Response {
    let flash = match result {
        Ok(text) => Flash::ok(text),
        Err(e) => Flash::error(page::error_text(&user.tr(), &e)),
    };
    page::flash_back(state, user, flash, to).await
}

/// The member id of a member number (as printed on the card's papers) or a card number.
pub async fn member_by_number(state: &AppState, number: &str) -> Result<i64> {
    let n = number.trim();
    let card = crate::club::normalise_card(&floor_protocol::CardNumber::new(n)).unwrap_or_else(|_| n.to_owned());
    let row = sqlx::query(
        "SELECT m.id FROM members m WHERE m.member_no = $1 UNION SELECT c.member_id FROM cards c WHERE c.card_number = $2",
    )
    .bind(n)
    .bind(&card)
    .fetch_optional(state.store.read())
    .await?;
    match row {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(Error::NotFound(format!("member {n}"))),
    }
}

/// A member as the desks show them.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: i64,
    pub person_id: i64,
    pub member_no: String,
    pub name: String,
    pub birth_date: String,
    pub state: String,
    pub tier: String,
    pub points: i64,
    pub free_play: String,
    pub data_blocked: bool,
}

/// Loads a member for a desk page.
pub async fn member_view(state: &AppState, member_id: i64) -> Result<MemberView> {
    let r = sqlx::query(
        "SELECT m.id, m.person_id, m.member_no, m.state, m.tier, m.points_balance, m.free_play_cents, p.first_name, p.last_name, \
         p.birth_date, p.data_blocked_at FROM members m JOIN persons p ON p.id = m.person_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(state.store.read())
    .await?
    .ok_or_else(|| Error::NotFound(format!("member {member_id}")))?;
    Ok(MemberView {
        member_id: r.try_get("id")?,
        person_id: r.try_get("person_id")?,
        member_no: r.try_get("member_no")?,
        name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
        birth_date: r.try_get("birth_date")?,
        state: r.try_get("state")?,
        tier: r.try_get("tier")?,
        points: r.try_get("points_balance")?,
        free_play: money(&Money::from_cents(r.try_get("free_play_cents")?)),
        data_blocked: r.try_get::<Option<i64>, _>("data_blocked_at")?.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_are_exact_cents() {
        assert_eq!(parse_money("12").unwrap().cents(), 1200);
        assert_eq!(parse_money("12,5").unwrap().cents(), 1250);
        assert_eq!(parse_money(" 0.01 ").unwrap().cents(), 1);
        assert!(parse_money("1.005").is_err());
        assert!(parse_money("-3").is_err());
        assert!(parse_money("ten").is_err());
        assert_eq!(money(&Money::from_cents(123456)), "1234.56");
    }
}
