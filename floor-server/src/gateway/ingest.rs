//! Group commit of terminal events: the one place where terminal events become rows.
//!
//! Connections hand their events to a writer task; the writer takes whatever has queued (up to a
//! batch limit), classifies each event against the terminal's committed sequence number, applies
//! the accepted ones, commits them in **one** transaction and only then answers every event of the
//! batch. A durable commit per batch instead of per event is what lets thousands of terminals
//! stream play on one SQLite file with `synchronous=FULL`.
//!
//! Correctness does not rest on this process's memory: the cached `last_seq` of a terminal is
//! confirmed by a conditional `UPDATE … WHERE last_seq = <cached>` in the same transaction, so a
//! terminal that moved to another floor-server process (PostgreSQL) makes the batch retry with
//! fresh numbers instead of storing anything twice. Rows are keyed by (terminal, seq) as well.
//!
//! Play and Purchase events earn points through `ledger` inside the same batch transaction, so an
//! event and its points (and any promotion) are committed together or not at all. Play is decided
//! for the whole batch at once (`ledger::PlayBatch`: each member loaded once, entries written
//! together), which keeps the ledger's cost per play to a fraction of a statement.
//!
//! What it does not do: decide the club's rules (that is `ledger` over `club_rules`), or talk to
//! sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use club_rules::earning::{Receipt, ReceiptLine, Tender, TenderKind};
use club_rules::pricing::Outlet;
use club_rules::Rules;
use floor_protocol::{
    CardNumber, Envelope, ErrorCode, Outcome, Play, Purchase, ServerMessage, TerminalEvent, TransferOutcome, Welcome, money,
};
use sqlx::{Any, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::clock::{Millis, SharedClock};
use crate::club;
use crate::error::{Error, Result};
use crate::ledger::{self, EventRef, PlayBatch};
use crate::store::Store;
use crate::store::multirow::MultiRowInsert;
use crate::terminals::{Terminal, TerminalKind};

/// One event on its way to the database, with the way back to its connection.
pub struct Item {
    pub terminal: Arc<Terminal>,
    pub envelope: Envelope,
    pub reply: oneshot::Sender<ServerMessage>,
}

/// Tuning for the writer.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Writer tasks; events of one terminal always go to the same writer. SQLite uses one.
    pub writers: usize,
    /// Queue length per writer before connections wait (back-pressure).
    pub queue: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { max_batch: 1024, writers: 1, queue: 16_384 }
    }
}

/// The connections' handle on the writers.
#[derive(Clone)]
pub struct Ingest {
    writers: Arc<Vec<mpsc::Sender<Item>>>,
}

impl Ingest {
    /// Starts the writer tasks. They stop when every `Ingest` clone is dropped and the queue is
    /// drained: that is how shutdown finishes the commits in flight.
    pub fn start(store: Store, clock: SharedClock, rules: Arc<Rules>, config: IngestConfig) -> (Ingest, Vec<tokio::task::JoinHandle<()>>) {
        let writers = config.writers.max(1);
        let mut senders = Vec::with_capacity(writers);
        let mut tasks = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (tx, rx) = mpsc::channel(config.queue);
            senders.push(tx);
            let writer = Writer { store: store.clone(), clock: clock.clone(), rules: rules.clone(), last_seq: HashMap::new() };
            tasks.push(tokio::spawn(writer.run(rx, config.max_batch)));
        }
        (Ingest { writers: Arc::new(senders) }, tasks)
    }

    /// Queues an event; waits while the writer's queue is full.
    pub async fn submit(&self, item: Item) -> std::result::Result<(), Item> {
        let idx = shard(&item.terminal.id, self.writers.len());
        self.writers[idx].send(item).await.map_err(|e| e.0)
    }
}

/// The writer for `key` among `n`: stable across processes and runs.
pub(crate) fn shard(key: &str, n: usize) -> usize {
    // FNV-1a: stable across processes and runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n as u64) as usize
}

struct Writer {
    store: Store,
    clock: SharedClock,
    rules: Arc<Rules>,
    /// Cached committed sequence numbers, confirmed in every transaction.
    last_seq: HashMap<String, u64>,
}

/// How an event of a batch is treated.
enum Class {
    Accept,
    Duplicate,
    Gap { expected: u64 },
}

/// The effect of one accepted event, decided inside the transaction.
struct Applied {
    kind: &'static str,
    session: Option<String>,
    outcome: Outcome,
}

static INSERT_EVENTS: MultiRowInsert = MultiRowInsert::new(
    "INSERT INTO terminal_events (terminal_id, seq, kind, session_id, occurred_at, received_at, body, reply) VALUES",
    8,
    "",
);
/// Rows per INSERT statement (8 parameters each, within both backends' limits).
const ROWS_PER_INSERT: usize = 128;
const MAX_ATTEMPTS: usize = 5;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        while rx.recv_many(&mut batch, max_batch).await > 0 {
            self.process(std::mem::take(&mut batch)).await;
            batch.reserve(max_batch);
        }
    }

    async fn process(&mut self, batch: Vec<Item>) {
        let started = Instant::now();
        let size = batch.len();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.try_commit(&batch).await {
                Ok(r) => break Ok(r),
                Err(CommitError::Conflict) if attempt < MAX_ATTEMPTS => {
                    metrics::counter!("floor_ingest_sequence_conflicts_total").increment(1);
                    self.last_seq.clear();
                }
                Err(CommitError::Conflict) => break Err(Error::Conflict("terminal sequence moved during commit".into())),
                Err(CommitError::Db(e)) => break Err(e),
            }
        };
        match result {
            Ok(answers) => {
                metrics::histogram!("floor_ingest_batch_size").record(size as f64);
                metrics::histogram!("floor_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
                for (item, answer) in batch.into_iter().zip(answers) {
                    let _ = item.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = size, "event batch not committed; terminals will resend");
                self.last_seq.clear();
                for item in batch {
                    let seq = item.envelope.seq;
                    let _ = item.reply.send(ServerMessage::Error {
                        code: ErrorCode::Unavailable,
                        message: "not committed; resend later".into(),
                        seq: Some(seq),
                        expected: None,
                    });
                }
            }
        }
    }

    async fn committed_seq(&mut self, tx: &mut Transaction<'static, Any>, terminal: &str) -> Result<u64> {
        if let Some(s) = self.last_seq.get(terminal) {
            return Ok(*s);
        }
        let s: i64 = sqlx::query_scalar("SELECT last_seq FROM terminals WHERE id = $1").bind(terminal).fetch_one(&mut **tx).await?;
        let s = u64::try_from(s).unwrap_or(0);
        self.last_seq.insert(terminal.to_owned(), s);
        Ok(s)
    }

    async fn try_commit(&mut self, batch: &[Item]) -> std::result::Result<Vec<ServerMessage>, CommitError> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;

        // 1. Classify against the committed sequence, in arrival order.
        let mut next: HashMap<&str, (u64, u64)> = HashMap::new(); // terminal -> (committed, running)
        let mut classes = Vec::with_capacity(batch.len());
        for item in batch {
            let id = item.terminal.id.as_str();
            if !next.contains_key(id) {
                let committed = self.committed_seq(&mut tx, id).await?;
                next.insert(id, (committed, committed));
            }
            let entry = next.get_mut(id).expect("inserted above");
            let seq = item.envelope.seq;
            classes.push(if seq == entry.1 + 1 {
                entry.1 = seq;
                Class::Accept
            } else if seq <= entry.1 {
                Class::Duplicate
            } else {
                Class::Gap { expected: entry.1 + 1 }
            });
        }

        // 2. Move each terminal's sequence forward first, confirming nobody else did. This takes
        //    the terminal's row lock (PostgreSQL), so a second process handling the same terminal
        //    waits here and then finds the number moved, instead of racing on the events' keys.
        //    Terminals are locked in one order everywhere, so two batches cannot deadlock.
        let mut moved: Vec<(&str, u64, u64)> =
            next.iter().filter(|(_, (c, r))| r != c).map(|(t, (c, r))| (*t, *c, *r)).collect();
        moved.sort_unstable();
        for (terminal, committed, running) in &moved {
            let n = sqlx::query("UPDATE terminals SET last_seq = $1, last_seen_at = $2 WHERE id = $3 AND last_seq = $4")
                .bind(seq_i64(*running))
                .bind(now)
                .bind(*terminal)
                .bind(seq_i64(*committed))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(CommitError::Conflict);
            }
        }

        // 3. Apply accepted events in order.
        let mut sessions = SessionCache::default();
        let mut plays = PlayBatch::default();
        let mut applied: Vec<Option<Applied>> = Vec::with_capacity(batch.len());
        for (item, class) in batch.iter().zip(&classes) {
            applied.push(match class {
                Class::Accept => {
                    Some(apply(&mut tx, &self.rules, &mut sessions, &mut plays, &item.terminal, &item.envelope, now).await?)
                }
                _ => None,
            });
        }
        plays.flush(&mut tx).await?;
        sessions.flush(&mut tx).await?;

        // 4. Store the accepted events.
        let rows: Vec<(&Item, &Applied)> =
            batch.iter().zip(&applied).filter_map(|(i, a)| a.as_ref().map(|a| (i, a))).collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::query(INSERT_EVENTS.sql(self.store.backend(), chunk.len()));
            for (item, a) in chunk {
                q = q
                    .bind(item.terminal.id.as_str())
                    .bind(seq_i64(item.envelope.seq))
                    .bind(a.kind)
                    .bind(a.session.as_deref())
                    .bind(item.envelope.at)
                    .bind(now)
                    .bind(serde_json::to_string(&item.envelope.event).expect("event serialises"))
                    .bind(serde_json::to_string(&a.outcome).expect("outcome serialises"));
            }
            q.execute(&mut *tx).await?;
        }

        tx.commit().await?;
        for (terminal, (_, running)) in next {
            self.last_seq.insert(terminal.to_owned(), running);
        }
        metrics::counter!("floor_ingest_events_committed_total").increment(rows.len() as u64);

        // 5. Answers, in the batch's order. Repeats get their first answer back.
        let mut answers = Vec::with_capacity(batch.len());
        for ((item, class), a) in batch.iter().zip(classes).zip(applied) {
            let seq = item.envelope.seq;
            answers.push(match (class, a) {
                (Class::Accept, Some(a)) => ServerMessage::Ack { seq, outcome: a.outcome },
                (Class::Duplicate, _) => {
                    metrics::counter!("floor_ingest_events_duplicate_total").increment(1);
                    self.first_answer(&item.terminal.id, seq).await?
                }
                (Class::Gap { expected }, _) => {
                    metrics::counter!("floor_ingest_sequence_gaps_total").increment(1);
                    ServerMessage::Error {
                        code: ErrorCode::SequenceGap,
                        message: format!("expected sequence number {expected}"),
                        seq: Some(seq),
                        expected: Some(expected),
                    }
                }
                (Class::Accept, None) => unreachable!("accepted events are applied"),
            });
        }
        Ok(answers)
    }

    async fn first_answer(&self, terminal: &str, seq: u64) -> Result<ServerMessage> {
        let reply: Option<String> = sqlx::query_scalar("SELECT reply FROM terminal_events WHERE terminal_id = $1 AND seq = $2")
            .bind(terminal)
            .bind(seq_i64(seq))
            .fetch_optional(self.store.read())
            .await?;
        Ok(match reply.and_then(|r| serde_json::from_str::<Outcome>(&r).ok()) {
            Some(outcome) => ServerMessage::Ack { seq, outcome },
            None => ServerMessage::Error {
                code: ErrorCode::Invalid,
                message: "sequence number already used but no event is stored for it".into(),
                seq: Some(seq),
                expected: None,
            },
        })
    }
}

enum CommitError {
    Conflict,
    Db(Error),
}

impl From<Error> for CommitError {
    fn from(e: Error) -> Self {
        match e {
            Error::Db(e) => CommitError::from(e),
            e => CommitError::Db(e),
        }
    }
}
impl From<sqlx::Error> for CommitError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) { CommitError::Conflict } else { CommitError::Db(Error::Db(e)) }
    }
}

/// Errors that mean "another transaction got there first; try again": a PostgreSQL deadlock or
/// serialisation failure, a key another process just committed, SQLite busy.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation() || matches!(d.code().as_deref(), Some("40P01" | "40001" | "5" | "517")),
        _ => false,
    }
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// What a batch knows about the sessions it touches, and the play totals to add to them.
#[derive(Default)]
struct SessionCache {
    known: HashMap<String, Option<SessionInfo>>,
    totals: HashMap<String, (i64, i64, i64)>,
}

#[derive(Clone)]
struct SessionInfo {
    terminal: String,
    member: Option<i64>,
    card: Option<i64>,
    open: bool,
    refused: bool,
}

impl SessionCache {
    async fn get(&mut self, tx: &mut Transaction<'static, Any>, id: &str) -> Result<Option<SessionInfo>> {
        if let Some(s) = self.known.get(id) {
            return Ok(s.clone());
        }
        let row = sqlx::query("SELECT terminal_id, member_id, card_id, closed_at, refusal FROM card_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        let info = match row {
            Some(r) => Some(SessionInfo {
                terminal: r.try_get("terminal_id")?,
                member: r.try_get("member_id")?,
                card: r.try_get("card_id")?,
                open: r.try_get::<Option<i64>, _>("closed_at")?.is_none(),
                refused: r.try_get::<Option<String>, _>("refusal")?.is_some(),
            }),
            None => None,
        };
        self.known.insert(id.to_owned(), info.clone());
        Ok(info)
    }

    /// Adds the batch's play to its sessions, in one order everywhere (no lock-order deadlocks).
    async fn flush(&mut self, tx: &mut Transaction<'static, Any>) -> Result<()> {
        let mut totals: Vec<_> = self.totals.drain().collect();
        totals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (id, (games, wagered, won)) in totals {
            sqlx::query(
                "UPDATE card_sessions SET games = games + $1, wagered_cents = wagered_cents + $2, won_cents = won_cents + $3 WHERE id = $4",
            )
            .bind(games)
            .bind(wagered)
            .bind(won)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

fn rejected(kind: &'static str, session: Option<String>, reason: impl Into<String>) -> Applied {
    metrics::counter!("floor_ingest_events_rejected_total").increment(1);
    Applied { kind, session, outcome: Outcome::Rejected { reason: reason.into() } }
}

async fn apply(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    sessions: &mut SessionCache,
    plays: &mut PlayBatch,
    terminal: &Terminal,
    env: &Envelope,
    now: Millis,
) -> Result<Applied> {
    if let TerminalEvent::Play(play) = &env.event {
        return play_event(tx, rules, sessions, plays, terminal, play, env).await;
    }
    // Everything else reads the ledgers from the database: write the batch's play first, and
    // afterwards forget the members an operation may have changed (card-in and card-out change
    // no member).
    plays.flush(tx).await?;
    let applied = apply_other(tx, rules, sessions, terminal, env, now).await?;
    if !matches!(env.event, TerminalEvent::CardIn { .. } | TerminalEvent::CardOut { .. }) {
        plays.forget_all();
    }
    Ok(applied)
}

async fn apply_other(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    sessions: &mut SessionCache,
    terminal: &Terminal,
    env: &Envelope,
    now: Millis,
) -> Result<Applied> {
    match &env.event {
        TerminalEvent::CardIn { session, card, offline, .. } => card_in(tx, sessions, terminal, session, card, *offline, env.at, now).await,
        TerminalEvent::CardOut { session, reason, .. } => {
            let Some(info) = sessions.get(tx, session).await? else {
                return Ok(rejected("card_out", Some(session.clone()), "unknown session"));
            };
            if info.terminal != terminal.id {
                return Ok(rejected("card_out", Some(session.clone()), "session belongs to another terminal"));
            }
            sqlx::query("UPDATE card_sessions SET closed_at = $1, close_reason = $2 WHERE id = $3 AND closed_at IS NULL")
                .bind(env.at)
                .bind(serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)))
                .bind(session)
                .execute(&mut **tx)
                .await?;
            if let Some(Some(s)) = sessions.known.get_mut(session) {
                s.open = false;
            }
            Ok(Applied { kind: "card_out", session: Some(session.clone()), outcome: Outcome::Recorded })
        }
        TerminalEvent::Play(_) => unreachable!("play is applied by the batch"),
        TerminalEvent::Purchase(p) => purchase(tx, rules, terminal, p, env, now).await,
        TerminalEvent::FreePlayResult { transfer, outcome } => {
            const KIND: &str = "free_play_result";
            if let TransferOutcome::Failed { .. } = outcome {
                let at = ledger::time(env.at)?;
                if let Err(e) = crate::machine_cashback::transfer_failed(tx, rules, &terminal.id, transfer, at).await? {
                    return Ok(rejected(KIND, None, e.to_string()));
                }
            }
            Ok(Applied { kind: KIND, session: None, outcome: Outcome::Recorded })
        }
        TerminalEvent::TablePresence { card, seat } => {
            if terminal.kind != TerminalKind::Table {
                return Ok(rejected("table_presence", None, "table presence comes from table terminals"));
            }
            let outcome = crate::tables::presented(tx, &terminal.id, seq_i64(env.seq), card, *seat, env.at, now).await?;
            Ok(Applied { kind: "table_presence", session: None, outcome })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn card_in(
    tx: &mut Transaction<'static, Any>,
    sessions: &mut SessionCache,
    terminal: &Terminal,
    session: &str,
    card: &CardNumber,
    offline: bool,
    at: Millis,
    now: Millis,
) -> Result<Applied> {
    const KIND: &str = "card_in";
    if session.is_empty() || session.len() > 64 {
        return Ok(rejected(KIND, None, "session id must be 1-64 characters"));
    }
    if sessions.get(tx, session).await?.is_some() {
        return Ok(rejected(KIND, Some(session.to_owned()), "session id already used"));
    }
    let number = match club::normalise_card(card) {
        Ok(n) => n,
        Err(e) => return Ok(rejected(KIND, Some(session.to_owned()), e.to_string())),
    };
    let holder = club::card_holder(tx, &number, now).await?;
    let decision = match &holder {
        None => Err(club_rules::RefusalCode::UnknownCard),
        Some(h) => club::card_in_decision(h),
    };
    let refusal = decision.err();
    sqlx::query(
        "INSERT INTO card_sessions (id, terminal_id, card_id, member_id, opened_at, offline, refusal) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session)
    .bind(&terminal.id)
    .bind(holder.as_ref().map(|h| h.card_id))
    .bind(holder.as_ref().map(|h| h.member_id))
    .bind(at)
    .bind(crate::store::flag(offline))
    .bind(refusal.map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()))
    .execute(&mut **tx)
    .await?;
    sessions.known.insert(
        session.to_owned(),
        Some(SessionInfo {
            terminal: terminal.id.clone(),
            member: holder.as_ref().map(|h| h.member_id),
            card: holder.as_ref().map(|h| h.card_id),
            open: refusal.is_none(),
            refused: refusal.is_some(),
        }),
    );
    let outcome = match (refusal, holder) {
        (Some(code), _) => {
            metrics::counter!("floor_card_in_refused_total").increment(1);
            Outcome::refused(code)
        }
        (None, Some(h)) => {
            let (points, free_play) = ledger::available(tx, h.member_id, now).await?;
            Outcome::Welcome(Welcome {
                session: session.to_owned(),
                name: h.first_name,
                tier: h.tier,
                points: points.0,
                free_play: free_play.as_decimal(),
            })
        }
        (None, None) => unreachable!("an unknown card is refused"),
    };
    Ok(Applied { kind: KIND, session: Some(session.to_owned()), outcome })
}

async fn play_event(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    sessions: &mut SessionCache,
    plays: &mut PlayBatch,
    terminal: &Terminal,
    play: &Play,
    env: &Envelope,
) -> Result<Applied> {
    const KIND: &str = "play";
    let session = Some(play.session.clone());
    let (wagered, won) = match (money(play.wagered), money(play.won)) {
        (Ok(w), Ok(n)) => (w, n),
        (Err(e), _) | (_, Err(e)) => return Ok(rejected(KIND, session, e)),
    };
    let Some(info) = sessions.get(tx, &play.session).await? else {
        return Ok(rejected(KIND, session, "unknown session"));
    };
    if info.terminal != terminal.id {
        return Ok(rejected(KIND, session, "session belongs to another terminal"));
    }
    if info.refused {
        // The play happened and is on record, but a refused card earns nothing.
        return Ok(Applied { kind: KIND, session, outcome: Outcome::Recorded });
    }
    if !info.open {
        return Ok(rejected(KIND, session, "session is closed"));
    }
    if let Some(member) = info.member {
        // The terminal's machine type decides the rate; the game reported is only a fallback.
        let machine = terminal.machine_type.unwrap_or(play.game);
        let event = EventRef { terminal: terminal.id.clone(), seq: seq_i64(env.seq) };
        let at = ledger::time(env.at)?;
        if let Err(e) = plays.apply_play(tx, rules, member, info.card, machine, wagered, at, Some(&event)).await? {
            return Ok(rejected(KIND, session, e.to_string()));
        }
    }
    let t = sessions.totals.entry(play.session.clone()).or_default();
    t.0 += i64::from(play.games);
    t.1 += wagered.cents();
    t.2 += won.cents();
    Ok(Applied { kind: KIND, session, outcome: Outcome::Recorded })
}

/// A bar receipt: the card names the member; cash tenders earn (see `club_rules::earning`).
async fn purchase(
    tx: &mut Transaction<'static, Any>,
    rules: &Rules,
    terminal: &Terminal,
    p: &Purchase,
    env: &Envelope,
    now: Millis,
) -> Result<Applied> {
    const KIND: &str = "purchase";
    if p.lines.is_empty() {
        return Ok(rejected(KIND, None, "a receipt needs lines"));
    }
    if terminal.kind != TerminalKind::Bar {
        return Ok(rejected(KIND, None, "receipts come from bar terminals"));
    }
    if p.receipt.is_empty() || p.receipt.len() > 64 {
        return Ok(rejected(KIND, None, "receipt number must be 1-64 characters"));
    }
    let receipt = match receipt(p) {
        Ok(r) => r,
        Err(e) => return Ok(rejected(KIND, None, e)),
    };
    let number = match club::normalise_card(&p.card) {
        Ok(n) => n,
        Err(e) => return Ok(rejected(KIND, None, e.to_string())),
    };
    let Some(holder) = club::card_holder(tx, &number, now).await? else {
        return Ok(rejected(KIND, None, "unknown card"));
    };
    let event = EventRef { terminal: terminal.id.clone(), seq: seq_i64(env.seq) };
    let key = format!("receipt:{}:{}", terminal.id, p.receipt);
    let at = ledger::time(env.at)?;
    match ledger::apply_receipt(tx, rules, holder.member_id, Some(holder.card_id), &receipt, at, Some(&event), &key).await? {
        None => Ok(rejected(KIND, None, "receipt already recorded")),
        Some(Err(e)) => Ok(rejected(KIND, None, e.to_string())),
        Some(Ok(_)) => Ok(Applied { kind: KIND, session: None, outcome: Outcome::Recorded }),
    }
}

/// The rules' view of a POS receipt: line amounts are quantity x unit price; a points tender
/// earns nothing (it is not money).
fn receipt(p: &Purchase) -> std::result::Result<Receipt, String> {
    let lines = p
        .lines
        .iter()
        .map(|l| {
            let amount = money(l.unit_price * rust_decimal::Decimal::from(l.quantity))?;
            Ok(ReceiptLine { category: l.category.clone(), amount })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let tenders = p
        .tenders
        .iter()
        .map(|t| {
            let kind = match t.kind {
                floor_protocol::TenderKind::Cash => TenderKind::Cash,
                floor_protocol::TenderKind::Card => TenderKind::Card,
                floor_protocol::TenderKind::Points => TenderKind::Other,
            };
            Ok(Tender { kind, amount: money(t.amount)? })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Receipt { outlet: Outlet::Bar, lines, tenders })
}
