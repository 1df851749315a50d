//! The append-only audit log: who did what, when, to what, with the state before and after.
//! Written in the same transaction as the action it records, so neither exists without the other.

use serde::Serialize;
use sqlx::{Any, Transaction};

use crate::clock::Millis;
use crate::error::Result;

/// Who acted: a staff member, a terminal, or the system itself (a scheduled job, the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Staff { id: i64, username: String },
    Terminal(String),
    System(&'static str),
}

impl Actor {
    pub fn code(&self) -> String {
        match self {
            Actor::Staff { id, username } => format!("staff:{id}:{username}"),
            Actor::Terminal(t) => format!("terminal:{t}"),
            Actor::System(what) => format!("system:{what}"),
        }
    }
}

/// Appends one entry. `before` and `after` are serialised to JSON; pass `None::<()>` for none.
pub async fn record<B: Serialize, A: Serialize>(
    tx: &mut Transaction<'static, Any>,
    at: Millis,
    actor: &Actor,
    action: &str,
    subject: &str,
    before: Option<B>,
    after: Option<A>,
) -> Result<()> {
    let before = before.map(|b| serde_json::to_string(&b).expect("audit value serialises"));
    let after = after.map(|a| serde_json::to_string(&a).expect("audit value serialises"));
    sqlx::query("INSERT INTO audit_log (at, actor, action, subject, before, after) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(at)
        .bind(actor.code())
        .bind(action)
        .bind(subject)
        .bind(before)
        .bind(after)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
