//! Players at tables: a card presented at a table terminal announces the player to the pit.
//!
//! The gateway stores each `TablePresence` event as a row of `table_presence` (append-only), with
//! the card's member and the refusal if the club's gate refused the card; [`players_at`] is what
//! the pit console reads. Key decision: a player counts as at a table from their latest
//! presentation there until they present a card at another table or [`PRESENCE_HOURS`] pass;
//! there is no "left the table" event at a table terminal.
//! What it does not do: rate play (the pit console records game, time and average bet).

use club_rules::Tier;
use floor_protocol::{CardNumber, Outcome};
use sqlx::{Any, Row, Transaction};

use crate::club;
use crate::clock::Millis;
use crate::error::Result;
use crate::store::Store;

/// How long a presentation keeps a player listed at a table.
pub const PRESENCE_HOURS: i64 = 6;

/// A player the pit sees at a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlayerAtTable {
    pub member_id: i64,
    pub first_name: String,
    pub tier: Tier,
    pub seat: Option<u32>,
    pub since: Millis,
}

/// Records a card presented at table terminal `terminal` (event `seq`) and answers it.
pub async fn presented(
    tx: &mut Transaction<'static, Any>,
    terminal: &str,
    seq: i64,
    card: &CardNumber,
    seat: Option<u32>,
    at: Millis,
    now: Millis,
) -> Result<Outcome> {
    let number = match club::normalise_card(card) {
        Ok(n) => n,
        Err(e) => return Ok(Outcome::Rejected { reason: e.to_string() }),
    };
    let holder = club::card_holder(tx, &number, now).await?;
    let refusal = match &holder {
        None => Some(club_rules::RefusalCode::UnknownCard),
        Some(h) => club::card_in_decision(h).err(),
    };
    sqlx::query(
        "INSERT INTO table_presence (terminal_id, seq, card_id, member_id, seat, refusal, presented_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(terminal)
    .bind(seq)
    .bind(holder.as_ref().map(|h| h.card_id))
    .bind(holder.as_ref().map(|h| h.member_id))
    .bind(seat.map(i64::from))
    .bind(refusal.map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(match refusal {
        Some(code) => Outcome::refused(code),
        None => Outcome::Recorded,
    })
}

/// The players at table terminal `table` at `now`, latest presentation first.
pub async fn players_at(store: &Store, table: &str, now: Millis) -> Result<Vec<PlayerAtTable>> {
    let since = now - PRESENCE_HOURS * 3_600_000;
    let rows = sqlx::query(
        "SELECT t.member_id, t.seat, t.presented_at, p.first_name, m.tier FROM table_presence t \
         JOIN members m ON m.id = t.member_id JOIN persons p ON p.id = m.person_id \
         WHERE t.terminal_id = $1 AND t.refusal IS NULL AND t.presented_at > $2 AND t.presented_at <= $3 \
         AND NOT EXISTS (SELECT 1 FROM table_presence later WHERE later.member_id = t.member_id \
             AND later.presented_at <= $3 AND (later.presented_at > t.presented_at OR (later.presented_at = t.presented_at AND later.id > t.id))) \
         ORDER BY t.presented_at DESC",
    )
    .bind(table)
    .bind(since)
    .bind(now)
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            let tier: String = r.try_get("tier")?;
            Ok(PlayerAtTable {
                member_id: r.try_get("member_id")?,
                first_name: r.try_get("first_name")?,
                tier: Tier::from_code(&tier).ok_or_else(|| crate::Error::invalid("tier"))?,
                seat: r.try_get::<Option<i64>, _>("seat")?.and_then(|s| u32::try_from(s).ok()),
                since: r.try_get("presented_at")?,
            })
        })
        .collect()
}
