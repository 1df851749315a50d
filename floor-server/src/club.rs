//! Persons, club members and their cards: the identities every other part refers to.
//!
//! One person row serves both the club and the online account. A member's cards go through
//! issued → active → (blocked lost/stolen | replaced | revoked); only an active card earns or
//! redeems. Blocking a card also queues a `BlockCard` for every terminal, in the same transaction.
//! Enrolment refusals (age, register, bans, employees) belong to the reception console; this
//! module stores what it is told and answers the card-in question.

use chrono::{DateTime, Utc};
use club_rules::gate::{Exclusion, ExclusionKind, Standing};
use club_rules::{CardState, MemberState, RefusalCode, Tier};
use floor_protocol::{CardNumber, ServerMessage};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::broadcast;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// The personal data a person is enrolled with. `Debug` shows only the name.
#[derive(Clone, Serialize, Deserialize, Default)]
pub struct NewPerson {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub personal_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub nationality: Option<String>,
    #[serde(default)]
    pub is_employee: bool,
}

impl std::fmt::Debug for NewPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPerson").field("first_name", &self.first_name).field("last_name", &self.last_name).finish_non_exhaustive()
    }
}

pub async fn create_person(tx: &mut Transaction<'static, Any>, p: &NewPerson, now: Millis) -> Result<i64> {
    if p.first_name.trim().is_empty() || p.last_name.trim().is_empty() {
        return Err(Error::invalid("first and last name are required"));
    }
    chrono::NaiveDate::parse_from_str(&p.birth_date, "%Y-%m-%d")
        .map_err(|_| Error::invalid("birth date must be YYYY-MM-DD"))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO persons (first_name, last_name, birth_date, personal_id, email, phone, address, city, postal_code, \
         country, nationality, is_employee, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(p.first_name.trim())
    .bind(p.last_name.trim())
    .bind(&p.birth_date)
    .bind(&p.personal_id)
    .bind(&p.email)
    .bind(&p.phone)
    .bind(&p.address)
    .bind(&p.city)
    .bind(&p.postal_code)
    .bind(&p.country)
    .bind(&p.nationality)
    .bind(crate::store::flag(p.is_employee))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Makes a person a club member (Bronze, active) and returns the member id.
pub async fn create_member(tx: &mut Transaction<'static, Any>, person_id: i64, now: Millis) -> Result<i64> {
    let placeholder = uuid::Uuid::new_v4().to_string();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO members (person_id, member_no, joined_at, state_changed_at) VALUES ($1, $2, $3, $3) RETURNING id",
    )
    .bind(person_id)
    .bind(&placeholder)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE members SET member_no = $1 WHERE id = $2")
        .bind(member_number(id))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// The number printed on membership documents: the id with a Luhn check digit.
pub fn member_number(id: i64) -> String {
    let digits = format!("{id:07}");
    let sum: u32 = digits
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).expect("digit");
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// Issues a card (state `issued`) to a member. Reception activates it after handing it over.
pub async fn issue_card(tx: &mut Transaction<'static, Any>, member_id: i64, card: &CardNumber, now: Millis) -> Result<i64> {
    let number = normalise_card(card)?;
    let result = sqlx::query_scalar(
        "INSERT INTO cards (card_number, member_id, state, issued_at, state_changed_at) VALUES ($1, $2, 'issued', $3, $3) RETURNING id",
    )
    .bind(&number)
    .bind(member_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(Error::from);
    match result {
        Err(e) if e.is_unique_violation() => Err(Error::Conflict("this card number is already issued".into())),
        other => other,
    }
}

/// Card numbers are stored in their canonical form ([`CardNumber::normalised`]).
pub fn normalise_card(card: &CardNumber) -> Result<String> {
    card.normalised().map(|c| c.expose().to_owned()).map_err(Error::Invalid)
}

async fn card_state(tx: &mut Transaction<'static, Any>, card_id: i64) -> Result<(CardState, i64)> {
    let row = sqlx::query("SELECT state, member_id FROM cards WHERE id = $1")
        .bind(card_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("card {card_id}")))?;
    let state: String = row.try_get("state")?;
    Ok((CardState::from_code(&state).ok_or_else(|| Error::invalid("card state"))?, row.try_get("member_id")?))
}

/// Moves a card to a new state if the transition is allowed; audits it; pushes a block to every
/// terminal when the card stops being usable.
pub async fn set_card_state(store: &Store, card_id: i64, to: CardState, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let (from, _member) = card_state(&mut tx, card_id).await?;
    let allowed = matches!(
        (from, to),
        (CardState::Issued, CardState::Active)
            | (CardState::Issued | CardState::Active, CardState::BlockedLost | CardState::BlockedStolen)
            | (CardState::Issued | CardState::Active | CardState::BlockedLost | CardState::BlockedStolen, CardState::Replaced | CardState::Revoked)
    );
    if !allowed {
        return Err(Error::Conflict(format!("a card cannot go from {} to {}", from.code(), to.code())));
    }
    let activated = if to == CardState::Active { Some(now) } else { None };
    // Conditional on the state just read: another process changing the card in between makes
    // this a conflict instead of a silent double transition.
    let changed = sqlx::query(
        "UPDATE cards SET state = $1, state_changed_at = $2, activated_at = COALESCE($3, activated_at) WHERE id = $4 AND state = $5",
    )
    .bind(to.code())
    .bind(now)
    .bind(activated)
    .bind(card_id)
    .bind(from.code())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(Error::Conflict("the card changed meanwhile; try again".into()));
    }
    if from == CardState::Active && to != CardState::Active {
        let number: String = sqlx::query_scalar("SELECT card_number FROM cards WHERE id = $1").bind(card_id).fetch_one(&mut *tx).await?;
        broadcast::queue(&mut tx, now, &ServerMessage::BlockCard { card: CardNumber::new(number) }).await?;
    }
    audit::record(&mut tx, now, actor, "card.state", &format!("card:{card_id}"), Some(from.code()), Some(to.code())).await?;
    tx.commit().await?;
    Ok(())
}

/// What the card-in check needs to know about a card and its holder.
#[derive(Debug, Clone)]
pub struct CardHolder {
    pub card_id: i64,
    pub card_state: CardState,
    pub member_id: i64,
    pub member_state: MemberState,
    pub tier: Tier,
    pub points: i64,
    pub person_id: i64,
    pub first_name: String,
    /// The kinds of exclusion in force at `checked_at`.
    pub exclusions: Vec<ExclusionKind>,
    /// When the card and its holder were looked up.
    pub checked_at: DateTime<Utc>,
}

/// Looks up a card and its holder, with any exclusion in force at `now`.
pub async fn card_holder(tx: &mut Transaction<'static, Any>, card: &str, now: Millis) -> Result<Option<CardHolder>> {
    let row = sqlx::query(
        "SELECT c.id AS card_id, c.state AS card_state, m.id AS member_id, m.state AS member_state, m.tier, \
         m.points_balance, p.id AS person_id, p.first_name, p.last_name, p.birth_date, p.personal_id \
         FROM cards c JOIN members m ON m.id = c.member_id JOIN persons p ON p.id = m.person_id WHERE c.card_number = $1",
    )
    .bind(card)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let person_id: i64 = row.try_get("person_id")?;
    let personal_id: Option<String> = row.try_get("personal_id")?;
    let last_name: String = row.try_get("last_name")?;
    let first_name: String = row.try_get("first_name")?;
    let birth_date: String = row.try_get("birth_date")?;
    let exclusions = active_exclusions(tx, person_id, personal_id.as_deref(), &first_name, &last_name, &birth_date, now).await?;
    let checked_at = DateTime::<Utc>::from_timestamp_millis(now).ok_or_else(|| Error::invalid("time out of range"))?;
    Ok(Some(CardHolder {
        card_id: row.try_get("card_id")?,
        card_state: CardState::from_code(&row.try_get::<String, _>("card_state")?).ok_or_else(|| Error::invalid("card state"))?,
        member_id: row.try_get("member_id")?,
        member_state: MemberState::from_code(&row.try_get::<String, _>("member_state")?).ok_or_else(|| Error::invalid("member state"))?,
        tier: Tier::from_code(&row.try_get::<String, _>("tier")?).ok_or_else(|| Error::invalid("tier"))?,
        points: row.try_get("points_balance")?,
        person_id,
        first_name,
        exclusions,
        checked_at,
    }))
}

/// The kinds of exclusion in force for a person at `now`: by person, by personal id, or by name
/// and birth date (register rows may name someone the club has not linked yet).
pub async fn active_exclusions(
    tx: &mut Transaction<'static, Any>,
    person_id: i64,
    personal_id: Option<&str>,
    first_name: &str,
    last_name: &str,
    birth_date: &str,
    now: Millis,
) -> Result<Vec<ExclusionKind>> {
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT kind FROM exclusions WHERE starts_at <= $1 AND (ends_at IS NULL OR ends_at > $1) AND \
         (person_id = $2 OR (personal_id IS NOT NULL AND personal_id = $3) OR \
          (LOWER(first_name) = LOWER($4) AND LOWER(last_name) = LOWER($5) AND birth_date = $6))",
    )
    .bind(now)
    .bind(person_id)
    .bind(personal_id)
    .bind(first_name)
    .bind(last_name)
    .bind(birth_date)
    .fetch_all(&mut **tx)
    .await?;
    kinds.iter().map(|k| ExclusionKind::from_code(k).ok_or_else(|| Error::invalid(format!("exclusion kind {k}")))).collect()
}

/// The card-in decision for a known card, by the club's one exclusion gate
/// ([`club_rules::Standing::check`]): the same answer the ledger gets when it decides earning.
pub fn card_in_decision(h: &CardHolder) -> std::result::Result<(), RefusalCode> {
    let exclusions = h.exclusions.iter().map(|&kind| Exclusion { kind, from: h.checked_at, until: None }).collect();
    Standing { member: h.member_state, card: Some(h.card_state), exclusions }.check(h.checked_at)
}

/// An exclusion or ban to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewExclusion {
    pub kind: String,
    pub person_id: Option<i64>,
    pub personal_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<String>,
    pub starts_at: Millis,
    pub ends_at: Option<Millis>,
    pub reason: Option<String>,
}

impl NewExclusion {
    /// An exclusion of one known person, by the person's id (no register data to match).
    pub fn of_person(kind: ExclusionKind, person_id: i64, starts_at: Millis, ends_at: Option<Millis>, reason: Option<String>) -> NewExclusion {
        NewExclusion {
            kind: kind.code().to_owned(),
            person_id: Some(person_id),
            personal_id: None,
            first_name: None,
            last_name: None,
            birth_date: None,
            starts_at,
            ends_at,
            reason,
        }
    }
}

/// Records an exclusion and pushes a block for the person's active cards to every terminal.
pub async fn add_exclusion(store: &Store, e: &NewExclusion, actor: &Actor, now: Millis) -> Result<i64> {
    if ExclusionKind::from_code(&e.kind).is_none() {
        return Err(Error::invalid("exclusion kind is register, own_request or ban"));
    }
    let mut tx = store.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO exclusions (kind, person_id, personal_id, first_name, last_name, birth_date, starts_at, ends_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&e.kind)
    .bind(e.person_id)
    .bind(&e.personal_id)
    .bind(&e.first_name)
    .bind(&e.last_name)
    .bind(&e.birth_date)
    .bind(e.starts_at)
    .bind(e.ends_at)
    .bind(&e.reason)
    .bind(actor.code())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(person) = e.person_id {
        let cards: Vec<String> = sqlx::query_scalar(
            "SELECT c.card_number FROM cards c JOIN members m ON m.id = c.member_id WHERE m.person_id = $1 AND c.state = 'active'",
        )
        .bind(person)
        .fetch_all(&mut *tx)
        .await?;
        for card in cards {
            broadcast::queue(&mut tx, now, &ServerMessage::BlockCard { card: CardNumber::new(card) }).await?;
        }
    }
    audit::record(&mut tx, now, actor, "exclusion.add", &format!("exclusion:{id}"), None::<()>, Some(e)).await?;
    tx.commit().await?;
    Ok(id)
}

/// The card numbers terminals must refuse even offline: cards that are not active, and active
/// cards of members who may not play now.
pub async fn block_list(store: &Store, now: Millis) -> Result<Vec<CardNumber>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT c.card_number FROM cards c JOIN members m ON m.id = c.member_id JOIN persons p ON p.id = m.person_id \
         WHERE c.state IN ('blocked_lost', 'blocked_stolen', 'revoked', 'replaced') OR m.state <> 'active' OR EXISTS ( \
           SELECT 1 FROM exclusions e WHERE e.starts_at <= $1 AND (e.ends_at IS NULL OR e.ends_at > $1) AND \
           (e.person_id = p.id OR (e.personal_id IS NOT NULL AND e.personal_id = p.personal_id) OR \
            (LOWER(e.first_name) = LOWER(p.first_name) AND LOWER(e.last_name) = LOWER(p.last_name) AND e.birth_date = p.birth_date))) \
         ORDER BY c.card_number",
    )
    .bind(now)
    .fetch_all(store.read())
    .await?;
    Ok(rows.into_iter().map(CardNumber::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_numbers_carry_a_luhn_check_digit() {
        assert_eq!(member_number(1), "00000018");
        assert_eq!(member_number(7992739), "79927398");
    }
}
