//! Scheduled jobs: expiry of points lots and free-play grants, the annual tier review.
//!
//! Key decision: each job finds candidates with a plain read, then handles one member per
//! transaction under the member's lock and decides again from what it reads there. What a job
//! writes empties the lot or records the review, and its entries carry unique keys, so a repeat,
//! or the same job running in several processes at once, changes nothing.
//!
//! Not here: the casino's local time zone (the review day is the UTC date of `now`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use club_rules::{Rules, cashback, lots, tiers};
use tokio_util::sync::CancellationToken;

use super::{Origin, apply_tier_events, grants, load_member, millis, points_lots, time, write_free_play, write_points};
use crate::clock::SharedClock;
use crate::error::Result;
use crate::store::{self, Store};

/// How often the jobs run in a server.
pub const JOB_INTERVAL: Duration = Duration::from_secs(300);

/// What an expiry run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expired {
    pub points_entries: usize,
    pub free_play_entries: usize,
}

/// Writes the expiry entries for every points lot and free-play grant whose validity ended by
/// `now` with something left.
pub async fn expire_due(store: &Store, rules: &Rules, now: DateTime<Utc>) -> Result<Expired> {
    let members: Vec<i64> = sqlx::query_scalar(
        "SELECT member_id FROM points_lots WHERE remaining > 0 AND expires_at <= $1 UNION \
         SELECT member_id FROM free_play_grants WHERE remaining_cents > 0 AND expires_at <= $1 ORDER BY 1",
    )
    .bind(millis(now))
    .fetch_all(store.read())
    .await?;
    let mut done = Expired::default();
    for member_id in members {
        let mut tx = store.begin().await?;
        store::lock_member(&mut tx, member_id).await?;
        let points = lots::expire_points(rules, &points_lots(&mut tx, member_id).await?, now);
        for entry in &points {
            write_points(&mut tx, member_id, std::slice::from_ref(entry), &expiry_key("points", &entry.lot)).await?;
        }
        let free_play = cashback::expire(rules, &grants(&mut tx, member_id).await?, now);
        for entry in &free_play {
            write_free_play(&mut tx, member_id, std::slice::from_ref(entry), &expiry_key("free_play", &entry.lot)).await?;
        }
        tx.commit().await?;
        done.points_entries += points.len();
        done.free_play_entries += free_play.len();
    }
    Ok(done)
}

fn expiry_key(book: &str, lot: &club_rules::LotRef) -> Origin<'static> {
    let lot = match lot {
        club_rules::LotRef::Existing(id) => id.0,
        club_rules::LotRef::Opens { .. } => unreachable!("an expiry changes an existing lot"),
    };
    Origin { key: Some(format!("expire:{book}:{lot}")), ..Origin::default() }
}

/// Runs the annual review for every member whose membership anniversary has come since their
/// last review (on the casino's local date at `now`): Bronze, Silver and Gold follow their qualifying points; VIP
/// Exclusive and Chairman members are listed for a manager. Returns how many were reviewed.
pub async fn anniversary_reviews(store: &Store, rules: &Rules, now: DateTime<Utc>) -> Result<usize> {
    let calendar = rules.config().calendar;
    let today = calendar.local_date(now);
    let rows: Vec<(i64, i64, Option<String>)> =
        sqlx::query_as("SELECT id, joined_at, last_reviewed_on FROM members WHERE state NOT IN ('left', 'terminated') ORDER BY id")
            .fetch_all(store.read())
            .await?;
    let mut reviewed = 0;
    for (member_id, joined_at, last) in rows {
        let last = last.and_then(|d| d.parse::<NaiveDate>().ok());
        if tiers::review_due(calendar.local_date(time(joined_at)?), last, today).is_none() {
            continue;
        }
        let mut tx = store.begin().await?;
        store::lock_member(&mut tx, member_id).await?;
        let row = load_member(&mut tx, rules, member_id, None, now).await?;
        let Some(anniversary) = tiers::review_due(calendar.local_date(time(row.joined_at)?), row.last_reviewed_on, today) else {
            continue;
        };
        let events = tiers::anniversary_review(rules, row.member.tier, row.member.qualifying, anniversary, now);
        apply_tier_events(&mut tx, member_id, &events).await?;
        tx.commit().await?;
        reviewed += 1;
    }
    Ok(reviewed)
}

/// Runs both jobs every [`JOB_INTERVAL`] until `stop`; a failed run is logged and retried next time.
pub fn spawn_jobs(store: Store, rules: Arc<Rules>, clock: SharedClock, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(JOB_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Ok(now) = time(clock.now_ms()) else { continue };
            if let Err(e) = expire_due(&store, &rules, now).await {
                tracing::error!(error = %e, "expiry job failed; retried at the next run");
            }
            if let Err(e) = anniversary_reviews(&store, &rules, now).await {
                tracing::error!(error = %e, "anniversary review job failed; retried at the next run");
            }
        }
    })
}
