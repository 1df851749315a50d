//! The inactivity job (RULES.md 2, Art. 11 and 14): an account without a payment transaction for
//! more than a year has its balance paid out to its IBAN, or written off when it is EUR 1.00 or
//! less. Bonus money is not the player's to withdraw and is voided.
//!
//! Key decision: candidates come from a plain read; each account is decided again under its lock
//! from what it reads there, and the payout moves its balance to zero, so a second run, or a run
//! in another process at once, finds nothing to do.

use std::time::Duration;

use club_rules::Money;
use club_rules::online::{self, Inactivity};
use tokio_util::sync::CancellationToken;

use super::{Delta, Entry, EntryKind, lock, post};
use crate::clock::{Millis, SharedClock};
use crate::error::Result;
use crate::ledger::time;
use crate::store::Store;

/// How often the job runs in a server.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InactivityRun {
    pub paid_out: usize,
    pub written_off: usize,
}

/// Pays out or writes off every account inactive for more than a year at `now`.
pub async fn inactivity(store: &Store, now: Millis) -> Result<InactivityRun> {
    let year_ago = now - chrono::Duration::days(365).num_milliseconds();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM iaccounts WHERE last_activity_at < $1 AND (bonus_cents + deposit_cents + winnings_cents) > 0 ORDER BY id",
    )
    .bind(year_ago)
    .fetch_all(store.read())
    .await?;
    let mut run = InactivityRun::default();
    for id in ids {
        let mut tx = store.begin().await?;
        let a = lock(&mut tx, id).await?;
        let b = a.balances;
        let decision = online::inactivity(time(a.last_activity_at)?, b.withdrawable(), time(now)?);
        let stale = now - a.last_activity_at > chrono::Duration::days(365).num_milliseconds();
        if stale && b.bonus > Money::ZERO {
            post(
                &mut tx,
                id,
                &Entry { kind: EntryKind::BonusVoid, delta: Delta { bonus: -b.bonus.cents(), ..Delta::default() }, reference: None, round_id: None, actor: "system:inactivity" },
                false,
                now,
            )
            .await?;
        }
        let kind = match decision {
            Inactivity::Nothing => None,
            Inactivity::PayOut(_) => Some(EntryKind::InactivityPayout),
            Inactivity::WriteOff(_) => Some(EntryKind::WriteOff),
        };
        if let Some(kind) = kind {
            let ledger_id = post(
                &mut tx,
                id,
                &Entry {
                    kind,
                    delta: Delta { bonus: 0, deposit: -b.deposited.cents(), winnings: -b.winnings.cents() },
                    reference: None,
                    round_id: None,
                    actor: "system:inactivity",
                },
                false,
                now,
            )
            .await?;
            if kind == EntryKind::InactivityPayout {
                // The transfer to the player's own IBAN, for the payments run.
                sqlx::query(
                    "INSERT INTO withdrawals (account_id, method, amount_cents, iban, state, deposit_cents, winnings_cents, created_at, decided_by) \
                     SELECT id, 'bank', $1, iban, 'pending', $2, $3, $4, 'system:inactivity' FROM iaccounts WHERE id = $5",
                )
                .bind(b.withdrawable().cents())
                .bind(b.deposited.cents())
                .bind(b.winnings.cents())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                run.paid_out += 1;
            } else {
                run.written_off += 1;
            }
            tracing::info!(account_id = id, ledger_id, ?kind, "inactive account settled");
        }
        tx.commit().await?;
    }
    Ok(run)
}

/// Runs the job every [`INTERVAL`] until `stop`.
pub fn spawn(store: Store, clock: SharedClock, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = inactivity(&store, clock.now_ms()).await {
                tracing::warn!(error = %e, "inactivity job failed; retrying at the next run");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
    })
}
