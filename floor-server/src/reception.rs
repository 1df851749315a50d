//! Reception's actions on an existing member beyond card states (`club`): replacing a card,
//! leaving the club on a signed request, and the member's privacy rights (an export of their
//! data, an objection to processing, blocking their data).
//!
//! Key decision: a replacement issues the new card and retires the old one in one transaction,
//! and balances live on the member, not the card, so the new card carries the whole balance with
//! nothing to move and nothing that could be lost or doubled.
//!
//! Not here: enrolment (`enrolment`), the ledgers' end of membership (`ledger::end_membership`).

use club_rules::CardState;
use floor_protocol::{CardNumber, ServerMessage};
use serde_json::{Value, json};
use sqlx::{Any, Column, Row, Transaction};

use crate::audit::{self, Actor};
use crate::broadcast;
use crate::club;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Replaces card `old_card` with a new card numbered `new_number` (issued; reception activates it
/// on handing it over). The old card stops working on every terminal at once.
pub async fn replace_card(store: &Store, old_card: i64, new_number: &CardNumber, actor: &Actor, now: Millis) -> Result<i64> {
    let mut tx = store.begin().await?;
    let row = sqlx::query("SELECT member_id, state, card_number FROM cards WHERE id = $1")
        .bind(old_card)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("card {old_card}")))?;
    let member_id: i64 = row.try_get("member_id")?;
    let state: String = row.try_get("state")?;
    let from = CardState::from_code(&state).ok_or_else(|| Error::invalid("card state"))?;
    if !matches!(from, CardState::Issued | CardState::Active | CardState::BlockedLost | CardState::BlockedStolen) {
        return Err(Error::Conflict(format!("a {state} card cannot be replaced")));
    }
    store::lock_member(&mut tx, member_id).await?;
    let new_id = club::issue_card(&mut tx, member_id, new_number, now).await?;
    let changed = sqlx::query("UPDATE cards SET state = 'replaced', replaced_by = $1, state_changed_at = $2 WHERE id = $3 AND state = $4")
        .bind(new_id)
        .bind(now)
        .bind(old_card)
        .bind(&state)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed != 1 {
        return Err(Error::Conflict("the card changed meanwhile; try again".into()));
    }
    if from == CardState::Active {
        let number: String = row.try_get("card_number")?;
        broadcast::queue(&mut tx, now, &ServerMessage::BlockCard { card: CardNumber::new(number) }).await?;
    }
    audit::record(&mut tx, now, actor, "card.replace", &format!("card:{old_card}"), Some(from.code()), Some(json!({ "replaced_by": new_id }))).await?;
    tx.commit().await?;
    Ok(new_id)
}

/// Blocks a person's data (kept, no longer used): on leaving or on request. Their active cards are
/// blocked on every terminal.
pub async fn block_data(store: &Store, person_id: i64, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let before: Option<Option<i64>> =
        sqlx::query_scalar("SELECT data_blocked_at FROM persons WHERE id = $1").bind(person_id).fetch_optional(&mut *tx).await?;
    let Some(before) = before else { return Err(Error::NotFound(format!("person {person_id}"))) };
    if before.is_some() {
        return Err(Error::Conflict("the data is already blocked".into()));
    }
    sqlx::query("UPDATE persons SET data_blocked_at = $1, marketing_opt_out = 1 WHERE id = $2").bind(now).bind(person_id).execute(&mut *tx).await?;
    block_cards(&mut tx, person_id, now).await?;
    audit::record(&mut tx, now, actor, "privacy.block", &format!("person:{person_id}"), None::<()>, Some(now)).await?;
    tx.commit().await?;
    Ok(())
}

/// Queues a block for each of the person's active cards to every terminal (in the caller's
/// transaction).
pub(crate) async fn block_cards(tx: &mut Transaction<'static, Any>, person_id: i64, now: Millis) -> Result<()> {
    let cards: Vec<String> = sqlx::query_scalar(
        "SELECT c.card_number FROM cards c JOIN members m ON m.id = c.member_id WHERE m.person_id = $1 AND c.state = 'active'",
    )
    .bind(person_id)
    .fetch_all(&mut **tx)
    .await?;
    for card in cards {
        broadcast::queue(tx, now, &ServerMessage::BlockCard { card: CardNumber::new(card) }).await?;
    }
    Ok(())
}

/// Records the person's objection to processing: no marketing, and the objection on record.
pub async fn record_objection(store: &Store, person_id: i64, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE persons SET processing_objection = 1, marketing_opt_out = 1 WHERE id = $1")
        .bind(person_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::NotFound(format!("person {person_id}")));
    }
    audit::record(&mut tx, now, actor, "privacy.objection", &format!("person:{person_id}"), None::<()>, Some(now)).await?;
    tx.commit().await?;
    Ok(())
}

async fn rows_as_json(tx: &mut Transaction<'static, Any>, sql: &'static str, id: i64) -> Result<Value> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut **tx).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut obj = serde_json::Map::new();
        for (i, col) in r.columns().iter().enumerate() {
            let v = if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                v.map_or(Value::Null, Value::from)
            } else if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                v.map_or(Value::Null, Value::from)
            } else {
                Value::Null
            };
            obj.insert(col.name().to_owned(), v);
        }
        out.push(Value::Object(obj));
    }
    Ok(Value::Array(out))
}

/// Everything the club holds about a person (the right of access and portability), as JSON. The
/// export itself is audited.
pub async fn export_person(store: &Store, person_id: i64, actor: &Actor, now: Millis) -> Result<Value> {
    let mut tx = store.begin().await?;
    let person = rows_as_json(&mut tx, "SELECT * FROM persons WHERE id = $1", person_id).await?;
    if person.as_array().is_none_or(Vec::is_empty) {
        return Err(Error::NotFound(format!("person {person_id}")));
    }
    let member = rows_as_json(&mut tx, "SELECT id, member_no, state, tier, joined_at, state_changed_at, ended_reason, points_balance, free_play_cents FROM members WHERE person_id = $1", person_id).await?;
    let cards = rows_as_json(
        &mut tx,
        "SELECT c.id, c.state, c.issued_at, c.activated_at, c.state_changed_at FROM cards c JOIN members m ON m.id = c.member_id WHERE m.person_id = $1",
        person_id,
    )
    .await?;
    let points = rows_as_json(
        &mut tx,
        "SELECT l.kind, l.points, l.category, l.reason, l.created_at FROM points_ledger l JOIN members m ON m.id = l.member_id WHERE m.person_id = $1 ORDER BY l.id",
        person_id,
    )
    .await?;
    let free_play = rows_as_json(
        &mut tx,
        "SELECT l.kind, l.amount_cents, l.reason, l.created_at FROM free_play_ledger l JOIN members m ON m.id = l.member_id WHERE m.person_id = $1 ORDER BY l.id",
        person_id,
    )
    .await?;
    let tiers = rows_as_json(
        &mut tx,
        "SELECT t.kind, t.from_tier, t.to_tier, t.at FROM tier_events t JOIN members m ON m.id = t.member_id WHERE m.person_id = $1 ORDER BY t.id",
        person_id,
    )
    .await?;
    let ratings = rows_as_json(
        &mut tx,
        "SELECT t.game, t.seconds, t.average_bet_cents, t.points, t.at FROM table_ratings t JOIN members m ON m.id = t.member_id WHERE m.person_id = $1 ORDER BY t.id",
        person_id,
    )
    .await?;
    let sessions = rows_as_json(
        &mut tx,
        "SELECT s.terminal_id, s.opened_at, s.closed_at, s.games, s.wagered_cents, s.won_cents FROM card_sessions s JOIN members m ON m.id = s.member_id WHERE m.person_id = $1 ORDER BY s.opened_at",
        person_id,
    )
    .await?;
    let exclusions = rows_as_json(&mut tx, "SELECT kind, starts_at, ends_at FROM exclusions WHERE person_id = $1 ORDER BY id", person_id).await?;
    audit::record(&mut tx, now, actor, "privacy.export", &format!("person:{person_id}"), None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(json!({
        "exported_at": now,
        "person": person[0],
        "membership": member,
        "cards": cards,
        "points_ledger": points,
        "free_play_ledger": free_play,
        "tier_events": tiers,
        "table_ratings": ratings,
        "card_sessions": sessions,
        "exclusions": exclusions,
    }))
}
