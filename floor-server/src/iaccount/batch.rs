//! Game servers' bets, wins, rollbacks and round ends, applied many to one transaction: the one
//! place where these requests become rows, and the group commit that answers them.
//!
//! Key decision: the wallet API hands each request to a writer task ([`WalletWriter`]); the
//! writer takes whatever has queued (up to a batch limit), applies it with [`apply`] in **one**
//! transaction and answers every request only after the commit, like the terminal ingest. One
//! durable commit per batch instead of per request, and a fixed number of statements per batch
//! instead of about eleven per request, is what lets the wallet keep up with game servers.
//!
//! [`apply`] reads everything the batch needs in one statement (the sessions, the game servers,
//! the accounts under their row locks in id order, the players' standing and limits, earlier
//! requests with these transaction ids, rollbacks naming them and the bets being rolled back),
//! decides every request in memory in arrival order, exactly as one request at a time would, and
//! writes the ledger entries, the requests and the balance changes in one statement on PostgreSQL
//! (three on SQLite): four round trips with `BEGIN` and `COMMIT` (one more for each bet of a
//! player with limits, which sums what the player used, and for the case below). A statement
//! reads as of its start but locks as it goes, so a batch whose accounts moved while it waited
//! for them reads again under the locks. A refusal writes nothing, so a refused request needs no
//! savepoint. A fault (a database error, a constraint) rolls the whole batch back; the writer
//! then applies each request on its own, so one bad request never takes the others with it. The
//! balance update adds the entries' own sums (never a number computed elsewhere) under the CHECK
//! constraints, so the ledger sums to the balances whatever happens.
//!
//! Requests of one session token always go to the same writer; PostgreSQL runs several writers,
//! and their batches lock accounts in one statement in id order, so they cannot deadlock. A single
//! request ([`one`], used by in-process callers and the retry) is a batch of one: there is one code
//! path.
//!
//! Not here: HTTP and signatures (`api`), sessions and game servers (`wallet`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use club_rules::Money;
use club_rules::gate::ExclusionKind;
use club_rules::online::{self, LimitRow, Period, Usage};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::wallet::{BalanceView, Kind, TxnReply, TxnRequest, token_hash};
use super::{Account, Delta, EntryKind, Refusal, WalletError, WalletResult, account_from_row, period_index, refusal_from, standing};
use crate::clock::Millis;
use crate::config::WalletSettings;
use crate::error::{Error, Result};
use crate::ledger::time;
use crate::store::{Backend, Store};

/// One request from a game server.
#[derive(Debug, Clone)]
pub struct Op {
    pub game_server: String,
    pub kind: Kind,
    pub req: TxnRequest,
    pub now: Millis,
}

impl Op {
    /// A rollback and a round end move no amount of their own: they are stored and compared with
    /// a zero amount whatever the request says.
    pub fn new(game_server: &str, kind: Kind, req: &TxnRequest, now: Millis) -> Op {
        let req = match kind {
            Kind::Rollback | Kind::EndRound => TxnRequest { amount: Money::ZERO, ..req.clone() },
            Kind::Bet | Kind::Win => req.clone(),
        };
        Op { game_server: game_server.to_owned(), kind, req, now }
    }
}

/// Applies one request in its own transaction.
pub async fn one(store: &Store, op: Op) -> WalletResult<TxnReply> {
    let mut tx = store.begin().await?;
    let mut out = apply(&mut tx, std::slice::from_ref(&op)).await?;
    tx.commit().await?;
    out.pop().expect("one answer per request")
}

/// Applies `ops` in arrival order inside the transaction open on `tx`: one answer per request, a
/// refusal where a request is refused. An `Err` is a fault: roll the transaction back (nothing of
/// the batch may be committed). Any connection will do; a writer's PostgreSQL connection keeps one
/// plan per statement ([`WRITER_SETTINGS`]).
pub async fn apply(tx: &mut AnyConnection, ops: &[Op]) -> Result<Vec<WalletResult<TxnReply>>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let sql = Statements::of(Backend::of(tx));
    let mut b = Batch::default();
    let mut out: Vec<Option<WalletResult<Decided>>> = (0..ops.len()).map(|_| None).collect();

    // A rollback must name its bet.
    for (i, op) in ops.iter().enumerate() {
        if op.kind == Kind::Rollback && op.req.rollback_transaction_id.is_none() {
            out[i] = Some(Err(Refusal::NotABet.into()));
        }
    }

    // 1. Sessions of game servers that are enabled now (a disabled one's requests are refused,
    // even wins), with their accounts locked in id order (PostgreSQL; SQLite's writer holds the
    // database), each account's limits, and its person's standing for the exclusion gate: club
    // memberships (a person may have more than one: one row each) and the exclusions that could
    // match the person at some time of the batch's bets. With each session, the game server's
    // earlier requests with the transaction ids its requests carry or roll back (with what a
    // stored bet took from each balance), and the rollbacks naming its bets or the bets its
    // rollbacks name. Only when a session is not found is it asked which of the two is missing.
    let hashes: Vec<String> = ops.iter().map(|o| token_hash(&o.req.token)).collect();
    let bet_times = ops.iter().filter(|o| o.kind == Kind::Bet).map(|o| o.now);
    let (first, last) = (bet_times.clone().min().unwrap_or(0), bet_times.max().unwrap_or(0));
    let mut keys: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    let mut key_of: HashMap<&str, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let k = *key_of.entry(hashes[i].as_str()).or_insert_with(|| {
            keys.push((hashes[i].as_str(), Vec::new(), Vec::new()));
            keys.len() - 1
        });
        if out[i].is_some() {
            continue;
        }
        let (_, ids, named) = &mut keys[k];
        ids.push(&op.req.transaction_id);
        match (op.kind, op.req.rollback_transaction_id.as_deref()) {
            (Kind::Rollback, Some(target)) => {
                ids.push(target);
                named.push(target);
            }
            (Kind::Bet, _) => named.push(&op.req.transaction_id),
            _ => {}
        }
    }
    let keys: Vec<_> = keys.into_iter().map(|(hash, ids, named)| (hash, distinct(ids.into_iter()), distinct(named.into_iter()))).collect();
    let read = || sqlx::query(AssertSqlSafe(sql.sessions.as_str())).bind(last).bind(first).bind(json(&keys));
    let mut rows = read().fetch_all(&mut *tx).await?;
    // The statement read everything as of its start (READ COMMITTED), but took each account's
    // lock, with its newest row, when it got there: if a transaction that changed an account
    // committed in between (everything that changes an account or stores a request for it bumps
    // its `lock_version`), what was read with the account may be older than the account. Read
    // again: the locks are held now, so nothing can change any more and nothing waits.
    let mut moved = false;
    for r in &rows {
        moved |= r.try_get::<i64, _>("lock_version")? != r.try_get::<i64, _>("seen_version")?;
    }
    if moved {
        metrics::counter!("floor_wallet_batch_rereads_total").increment(1);
        rows = read().fetch_all(&mut *tx).await?;
    }
    let mut sessions: HashMap<String, (String, i64, Millis)> = HashMap::new();
    for r in rows {
        let account = account_from_row(&r)?;
        let game_server: String = r.try_get("game_server")?;
        b.add_requests(&game_server, r.try_get("requests")?, r.try_get("rollbacks")?)?;
        sessions.insert(r.try_get("token_hash")?, (game_server, account.id, r.try_get("expires_at")?));
        let p = match b.persons.entry(account.person_id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let mut p = Person {
                    personal_id: r.try_get("personal_id")?,
                    first_lower: r.try_get("first_lower")?,
                    last_lower: r.try_get("last_lower")?,
                    birth_date: r.try_get("birth_date")?,
                    ..Person::default()
                };
                p.exclusions = matching_exclusions(&p, account.person_id, r.try_get("exclusions")?)?;
                v.insert(p)
            }
        };
        let member: Option<String> = r.try_get("member_state")?;
        if !p.member_states.contains(&member) {
            p.member_states.push(member);
        }
        if let Entry::Vacant(v) = b.limits.entry(account.id) {
            v.insert(limit_rows(r.try_get("limits")?)?);
        }
        b.accounts.entry(account.id).or_insert(Acct { account, delta: Delta::default(), activity: None, dirty: false });
    }
    let mut session_of: Vec<Option<(i64, Millis)>> = vec![None; ops.len()];
    for (i, op) in ops.iter().enumerate() {
        if out[i].is_none()
            && let Some((gs, account, expires)) = sessions.get(&hashes[i])
            && *gs == op.game_server
        {
            session_of[i] = Some((*account, *expires));
        }
    }
    let unmatched: Vec<&str> = distinct(ops.iter().enumerate().filter(|(i, _)| out[*i].is_none() && session_of[*i].is_none()).map(|(_, o)| o.game_server.as_str()));
    if !unmatched.is_empty() {
        let enabled: HashSet<String> = fetch(tx, &sql.game_servers, &[json(&unmatched)]).await?.iter().map(|r| r.try_get(0)).collect::<std::result::Result<_, _>>()?;
        for (i, op) in ops.iter().enumerate() {
            if out[i].is_none() && session_of[i].is_none() {
                let refusal = if enabled.contains(&op.game_server) { Refusal::InvalidToken } else { Refusal::UnknownGameServer };
                out[i] = Some(Err(refusal.into()));
            }
        }
    }
    if session_of.iter().all(Option::is_none) {
        return Ok(finish(out, &[]));
    }

    // 2. Decide, in arrival order.
    for (i, op) in ops.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let (account_id, expires_at) = session_of[i].expect("a request without an answer has a session");
        out[i] = Some(match b.accounts.contains_key(&account_id) {
            true => b.decide(tx, i, op, account_id, expires_at).await?,
            false => Err(Error::NotFound(format!("i-account {account_id}")).into()),
        });
    }

    // 3. Write the entries, the requests and the balances; the entries' ids go into the answers.
    let ledger_ids = b.write(tx, sql, ops, &out).await?;
    Ok(finish(out, &ledger_ids))
}

/// An answer decided in the batch; its ledger id is known once the entries are written.
#[derive(Debug, Clone)]
struct Decided {
    reply: TxnReply,
    /// The index of its entry among the batch's new ones.
    entry: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LedgerRef {
    /// An entry already in the database.
    Stored(i64),
    /// The n-th entry this batch writes.
    New(usize),
}

/// A stored request's answer: as stored (JSON), or decided in this batch.
#[derive(Debug, Clone)]
enum Answer {
    Stored(String),
    New(Box<Decided>),
}

/// A request with this game server's transaction id, earlier or in this batch.
#[derive(Debug, Clone)]
struct Known {
    kind: Kind,
    account_id: i64,
    amount_cents: i64,
    ledger: Option<LedgerRef>,
    reply: Answer,
}

/// An account as the batch changes it.
#[derive(Debug)]
struct Acct {
    /// As read under the lock, then as changed by the batch.
    account: Account,
    /// What the batch's entries add to each balance.
    delta: Delta,
    /// The time of the batch's last payment transaction (the inactivity rule).
    activity: Option<Millis>,
    dirty: bool,
}

/// A person's standing for the exclusion gate.
#[derive(Debug, Default)]
struct Person {
    personal_id: Option<String>,
    first_lower: String,
    last_lower: String,
    birth_date: String,
    member_states: Vec<Option<String>>,
    /// Exclusions that match the person: kind, start, end.
    exclusions: Vec<(ExclusionKind, Millis, Option<Millis>)>,
}

/// A ledger entry this batch writes.
#[derive(Debug)]
struct NewEntry {
    account_id: i64,
    kind: EntryKind,
    delta: Delta,
    reference: String,
    round_id: Option<String>,
    actor: String,
    created_at: Millis,
}

#[derive(Default)]
struct Batch {
    accounts: HashMap<i64, Acct>,
    persons: HashMap<i64, Person>,
    limits: HashMap<i64, Vec<LimitRow>>,
    known: HashMap<(String, String), Known>,
    /// (game server, bet's transaction id) of every rollback, earlier or in this batch.
    rolled_back: HashSet<(String, String)>,
    stored_entries: HashMap<i64, Delta>,
    entries: Vec<NewEntry>,
    /// The requests to store: index into the batch's ops, account.
    stored: Vec<(usize, i64)>,
}

impl Batch {
    /// A session's earlier requests and the rollbacks naming its bets or the bets its rollbacks
    /// name, as the sessions statement found them (JSON arrays, [`Statements`]).
    fn add_requests(&mut self, game_server: &str, requests: Option<String>, rollbacks: Option<String>) -> Result<()> {
        type Found = (String, String, i64, i64, Option<i64>, String, Option<i64>, Option<i64>, Option<i64>);
        for (txn_id, kind, account_id, amount_cents, ledger_id, reply, bonus, deposit, winnings) in parse_list::<Found>(requests, "earlier requests")? {
            if let (Some(id), Some(bonus), Some(deposit), Some(winnings)) = (ledger_id, bonus, deposit, winnings) {
                // what a stored bet took from each balance, for its rollback
                self.stored_entries.insert(id, Delta { bonus, deposit, winnings });
            }
            let kind = Kind::from_code(&kind).ok_or_else(|| Error::invalid(format!("stored request kind {kind}")))?;
            let known = Known { kind, account_id, amount_cents, ledger: ledger_id.map(LedgerRef::Stored), reply: Answer::Stored(reply) };
            self.known.insert((game_server.to_owned(), txn_id), known);
        }
        for (bet,) in parse_list::<(String,)>(rollbacks, "rollbacks")? {
            self.rolled_back.insert((game_server.to_owned(), bet));
        }
        Ok(())
    }

    /// The answer to one request, changing the batch's accounts and entries when it succeeds.
    async fn decide(&mut self, tx: &mut AnyConnection, i: usize, op: &Op, account_id: i64, expires_at: Millis) -> Result<WalletResult<Decided>> {
        let key = (op.game_server.clone(), op.req.transaction_id.clone());
        if let Some(k) = self.known.get(&key) {
            return Ok(repeat(k, op, account_id));
        }
        let r = match op.kind {
            Kind::Bet => self.bet(tx, op, account_id, expires_at).await?,
            Kind::Win => self.win(op, account_id),
            Kind::Rollback => self.rollback(op, account_id),
            Kind::EndRound => Ok(self.reply(op, account_id, None)),
        };
        let Ok(decided) = r else { return Ok(r) };
        self.stored.push((i, account_id));
        // A stored request changes its account's row (at least its version), whatever it moved.
        if let Some(a) = self.accounts.get_mut(&account_id) {
            a.dirty = true;
        }
        self.known.insert(
            key,
            Known {
                kind: op.kind,
                account_id,
                amount_cents: op.req.amount.cents(),
                ledger: decided.entry.map(LedgerRef::New),
                reply: Answer::New(Box::new(decided.clone())),
            },
        );
        Ok(Ok(decided))
    }

    async fn bet(&mut self, tx: &mut AnyConnection, op: &Op, account_id: i64, expires_at: Millis) -> Result<WalletResult<Decided>> {
        let stake = match super::positive(op.req.amount) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if self.rolled_back.contains(&(op.game_server.clone(), op.req.transaction_id.clone())) {
            return Ok(Err(Refusal::RolledBack.into()));
        }
        if op.now >= expires_at {
            return Ok(Err(Refusal::TokenExpired.into()));
        }
        let account = &self.accounts[&account_id].account;
        let balances = account.balances;
        let person = self.persons.get(&account.person_id);
        let kinds = person.map(|p| p.exclusions.iter().filter(|(_, from, until)| *from <= op.now && until.is_none_or(|u| u > op.now)).map(|e| e.0).collect()).unwrap_or_default();
        let members = person.map(|p| p.member_states.as_slice()).unwrap_or_default();
        if let Err(e) = standing(account.state, members, kinds) {
            return Ok(Err(e));
        }
        let now_t = time(op.now)?;
        let limits = online::limits_in_force(self.limits.get(&account_id).map(Vec::as_slice).unwrap_or_default(), now_t);
        if !limits.is_empty() {
            let used = self.usage(tx, account_id, now_t).await?;
            if let Err(r) = online::check_stake(&limits, |p| used[period_index(p)], stake) {
                return Ok(Err(refusal_from(balances.total())(r)));
            }
        }
        let split = match online::split_stake(&balances, stake) {
            Ok(s) => s,
            Err(r) => return Ok(Err(refusal_from(balances.total())(r))),
        };
        let entry = self.post(
            account_id,
            EntryKind::Bet,
            Delta { bonus: -split.bonus.cents(), deposit: -split.deposited.cents(), winnings: -split.winnings.cents() },
            op,
            true,
        );
        let a = self.accounts.get_mut(&account_id).expect("locked account");
        let w = online::wager(a.account.balances.bonus, a.account.wagering_left, stake, op.req.regular);
        if w.wagering_left != a.account.wagering_left {
            a.account.wagering_left = w.wagering_left;
            a.dirty = true;
        }
        if w.release > Money::ZERO {
            self.entries.push(NewEntry {
                account_id,
                kind: EntryKind::BonusRelease,
                delta: Delta { bonus: -w.release.cents(), deposit: 0, winnings: w.release.cents() },
                reference: op.req.transaction_id.clone(),
                round_id: None,
                actor: "system:wagering".into(),
                created_at: op.now,
            });
            self.apply_delta(account_id, Delta { bonus: -w.release.cents(), deposit: 0, winnings: w.release.cents() }, None);
        }
        Ok(Ok(self.reply(op, account_id, Some(entry))))
    }

    /// A win, credited as winnings: accepted after the token expired and whatever the gate says
    /// (it pays a stake already taken).
    fn win(&mut self, op: &Op, account_id: i64) -> WalletResult<Decided> {
        if op.req.amount.is_negative() {
            return Err(Refusal::InvalidAmount.into());
        }
        let entry = (op.req.amount > Money::ZERO).then(|| self.post(account_id, EntryKind::Win, Delta { bonus: 0, deposit: 0, winnings: op.req.amount.cents() }, op, true));
        Ok(self.reply(op, account_id, entry))
    }

    /// Undoes a bet: gives back exactly what it took from each balance, once. A rollback of an
    /// unknown bet is kept as a tombstone that refuses the bet if it arrives later.
    fn rollback(&mut self, op: &Op, account_id: i64) -> WalletResult<Decided> {
        let target = op.req.rollback_transaction_id.clone().expect("checked before");
        let key = (op.game_server.clone(), target);
        let mut entry = None;
        if let Some(bet) = self.known.get(&key) {
            if bet.kind != Kind::Bet || bet.account_id != account_id {
                return Err(Refusal::NotABet.into());
            }
            if !self.rolled_back.contains(&key) {
                let taken = match bet.ledger {
                    Some(LedgerRef::Stored(id)) => *self.stored_entries.get(&id).ok_or_else(|| Error::NotFound(format!("ledger entry {id}")))?,
                    Some(LedgerRef::New(n)) => self.entries[n].delta,
                    None => return Err(Error::invalid("a stored bet without its ledger entry").into()),
                };
                let back = Delta { bonus: -taken.bonus, deposit: -taken.deposit, winnings: -taken.winnings };
                entry = Some(self.post(account_id, EntryKind::Rollback, back, op, true));
            }
        }
        self.rolled_back.insert(key);
        Ok(self.reply(op, account_id, entry))
    }

    /// Adds an entry to write and applies it to the account; its reference is the request's id.
    fn post(&mut self, account_id: i64, kind: EntryKind, delta: Delta, op: &Op, activity: bool) -> usize {
        self.entries.push(NewEntry {
            account_id,
            kind,
            delta,
            reference: op.req.transaction_id.clone(),
            round_id: Some(op.req.round_id.clone()),
            actor: format!("game_server:{}", op.game_server),
            created_at: op.now,
        });
        self.apply_delta(account_id, delta, activity.then_some(op.now));
        self.entries.len() - 1
    }

    fn apply_delta(&mut self, account_id: i64, d: Delta, activity: Option<Millis>) {
        let a = self.accounts.get_mut(&account_id).expect("locked account");
        let b = &mut a.account.balances;
        b.bonus += Money::from_cents(d.bonus);
        b.deposited += Money::from_cents(d.deposit);
        b.winnings += Money::from_cents(d.winnings);
        a.delta.bonus += d.bonus;
        a.delta.deposit += d.deposit;
        a.delta.winnings += d.winnings;
        a.activity = activity.or(a.activity);
        a.dirty = true;
    }

    fn reply(&mut self, op: &Op, account_id: i64, entry: Option<usize>) -> Decided {
        let balance: BalanceView = self.accounts[&account_id].account.balances.into();
        Decided { reply: TxnReply { transaction_id: op.req.transaction_id.clone(), ledger_id: None, balance }, entry }
    }

    /// What the account staked, won and deposited in each window ending at `now`: the database's
    /// figures plus this batch's entries.
    async fn usage(&self, tx: &mut AnyConnection, account_id: i64, now: chrono::DateTime<chrono::Utc>) -> Result<[Usage; 3]> {
        let mut used = super::usage(tx, account_id, now).await?;
        for p in Period::ALL {
            let since = (now - p.window()).timestamp_millis();
            let u = &mut used[period_index(p)];
            for e in self.entries.iter().filter(|e| e.account_id == account_id && e.created_at > since) {
                match e.kind {
                    EntryKind::Bet | EntryKind::Rollback => u.staked += Money::from_cents(-(e.delta.bonus + e.delta.deposit + e.delta.winnings)),
                    EntryKind::Win => u.won += Money::from_cents(e.delta.winnings),
                    _ => {}
                }
            }
        }
        Ok(used)
    }

    /// Writes the batch: its entries; every request answered in this batch (not refusals) with
    /// its answer, which gets the id of its entry as it is stored; and each changed account's
    /// balances, the entries' sums added (the CHECK constraints refuse a negative one), with its
    /// wagering left and last payment time. Answers the entries' ids in order. One statement on
    /// PostgreSQL. An account changes only with a stored request: a change without one is refused.
    async fn write(&self, tx: &mut AnyConnection, sql: &Statements, ops: &[Op], out: &[Option<WalletResult<Decided>>]) -> Result<Vec<i64>> {
        let mut requests = Vec::with_capacity(self.stored.len());
        for &(i, account_id) in &self.stored {
            let (op, Some(Ok(decided))) = (&ops[i], &out[i]) else {
                return Err(Error::invalid("a request to store without its answer"));
            };
            requests.push((&op.game_server, &op.req.transaction_id, op.kind.code(), account_id, &op.req.round_id, op.req.amount.cents(), &op.req.rollback_transaction_id, decided.entry, &decided.reply, op.now));
        }
        let changes: BTreeMap<i64, _> = self
            .accounts
            .values()
            .filter(|a| a.dirty)
            .map(|a| (a.account.id, (a.delta.bonus, a.delta.deposit, a.delta.winnings, a.account.wagering_left.cents(), a.activity.unwrap_or(a.account.last_activity_at))))
            .collect();
        if requests.is_empty() {
            return match changes.is_empty() && self.entries.is_empty() {
                true => Ok(Vec::new()),
                false => Err(Error::Conflict("balances changed without a stored request".into())),
            };
        }
        let (ids, updated) = match &sql.write {
            Write::One(text) => {
                let row = query(text, &[json(&entry_rows(&self.entries)), json(&requests), json(&changes)]).fetch_one(&mut *tx).await?;
                (parse_list(row.try_get("ids")?, "ledger ids")?, row.try_get::<i64, _>("updated")?)
            }
            Write::Each { entries, requests: insert_requests, balances } => {
                let ids = self.write_entries(tx, entries).await?;
                execute(tx, insert_requests, &[json(&requests), json(&ids)]).await?;
                let updated = match changes.is_empty() {
                    true => 0,
                    false => execute(tx, balances, &[json(&changes)]).await?,
                };
                (ids, i64::try_from(updated).unwrap_or(i64::MAX))
            }
        };
        if ids.len() != self.entries.len() {
            return Err(Error::Conflict("the ledger did not take every entry".into()));
        }
        if updated != changes.len() as i64 {
            return Err(Error::Conflict("an account changed under the batch".into()));
        }
        Ok(ids)
    }

    /// Writes the batch's entries with a statement that answers each row's id with its account,
    /// kind and reference (SQLite's RETURNING keeps no order); answers their ids in order.
    async fn write_entries(&self, tx: &mut AnyConnection, text: &str) -> Result<Vec<i64>> {
        let mut ids = vec![0i64; self.entries.len()];
        // Ids come back matched on (account, kind, reference), which must be unique per statement
        // (it is, but for a repeated transaction id in one batch: then a second statement).
        let mut start = 0;
        while start < self.entries.len() {
            let mut seen = HashSet::new();
            let mut end = start;
            while end < self.entries.len() && seen.insert(entry_key(&self.entries[end])) {
                end += 1;
            }
            let returned = fetch(tx, text, &[json(&entry_rows(&self.entries[start..end]))]).await?;
            if returned.len() != end - start {
                return Err(Error::Conflict("the ledger did not take every entry".into()));
            }
            let by_key: HashMap<(i64, &str, &str), usize> = (start..end).map(|n| (entry_key(&self.entries[n]), n)).collect();
            for r in returned {
                let (account, kind, reference): (i64, String, String) = (r.try_get("account_id")?, r.try_get("kind")?, r.try_get("reference")?);
                let n = by_key.get(&(account, kind.as_str(), reference.as_str())).ok_or_else(|| Error::Conflict("an unmatched ledger entry".into()))?;
                ids[*n] = r.try_get("id")?;
            }
            start = end;
        }
        Ok(ids)
    }
}

/// Of the exclusions found for a person (a JSON array of [kind, person id, personal ID number,
/// first name, last name (both in lower case), birth date, start, end]), those that match it as
/// `club::active_exclusions` matches: the person, the personal ID number, or the name with the
/// birth date. Each as kind, start, end; the time is decided per request.
fn matching_exclusions(p: &Person, person_id: i64, found: Option<String>) -> Result<Vec<(ExclusionKind, Millis, Option<Millis>)>> {
    type Found = (String, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>, Millis, Option<Millis>);
    let found: Vec<Found> = parse_list(found, "exclusions")?;
    let mut matching = Vec::new();
    for (kind, by_person, personal_id, first, last, birth, starts_at, ends_at) in found {
        let by_id = by_person == Some(person_id);
        let by_number = personal_id.is_some() && personal_id == p.personal_id;
        let by_name = first.as_deref() == Some(&p.first_lower) && last.as_deref() == Some(&p.last_lower) && birth.as_deref() == Some(&p.birth_date);
        if by_id || by_number || by_name {
            let kind = ExclusionKind::from_code(&kind).ok_or_else(|| Error::invalid(format!("exclusion kind {kind}")))?;
            matching.push((kind, starts_at, ends_at));
        }
    }
    Ok(matching)
}

/// An account's limits, from a JSON array of [id, kind, period, amount, effective at].
fn limit_rows(found: Option<String>) -> Result<Vec<LimitRow>> {
    let rows: Vec<(i64, String, String, Option<i64>, Millis)> = parse_list(found, "limits")?;
    let mut limits: Vec<LimitRow> = rows.into_iter().map(|(id, kind, period, amount, effective_at)| super::limit_row_of(id, &kind, &period, amount, effective_at)).collect::<Result<_>>()?;
    limits.sort_by_key(|l| l.seq);
    Ok(limits)
}

/// A JSON array a statement aggregated (NULL when nothing was found).
fn parse_list<T: serde::de::DeserializeOwned>(found: Option<String>, what: &str) -> Result<Vec<T>> {
    match found {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| Error::invalid(format!("the batch's {what}: {e}"))),
    }
}

/// The answer to a request whose transaction id was seen before: the first answer again if it is
/// the same request, otherwise a mismatch.
fn repeat(k: &Known, op: &Op, account_id: i64) -> WalletResult<Decided> {
    if k.kind != op.kind || k.account_id != account_id || k.amount_cents != op.req.amount.cents() {
        return Err(Refusal::TransactionMismatch.into());
    }
    match &k.reply {
        Answer::Stored(json) => {
            let reply: TxnReply = serde_json::from_str(json).map_err(|e| Error::Config(format!("stored reply: {e}")))?;
            Ok(Decided { reply, entry: None })
        }
        Answer::New(d) => Ok((**d).clone()),
    }
}

/// Entries as rows for a JSON array parameter.
fn entry_rows(entries: &[NewEntry]) -> Vec<impl serde::Serialize + '_> {
    entries.iter().map(|e| (e.account_id, e.kind.code(), e.delta.bonus, e.delta.deposit, e.delta.winnings, &e.reference, &e.round_id, &e.actor, e.created_at)).collect()
}

fn entry_key(e: &NewEntry) -> (i64, &str, &str) {
    (e.account_id, e.kind.code(), e.reference.as_str())
}

/// The final answers, with the ids of the entries written. A stored answer keeps its own ids.
fn finish(out: Vec<Option<WalletResult<Decided>>>, ledger_ids: &[i64]) -> Vec<WalletResult<TxnReply>> {
    out.into_iter()
        .map(|r| {
            let d = r.expect("every request answered")?;
            let mut reply = d.reply;
            if let Some(n) = d.entry {
                reply.ledger_id = Some(ledger_ids[n]);
            }
            Ok(reply)
        })
        .collect()
}

/// The text of every statement a batch runs, for one database, built once from constant text and
/// numbered placeholders only.
///
/// A batch's keys and rows travel as **one** JSON array parameter per list, so every statement
/// has one text whatever the batch's size: each connection prepares it once, inserts are never
/// split, nothing is padded, and no statement has more than a handful of parameters. Both
/// databases read the array with their own JSON table function and the same `->>` operator.
///
/// Every lookup is a **pinned** index search per key ([`Sql::lookup`]): the keys are the outer
/// loop and the table is searched through its index once for each, whatever the table's size
/// and statistics. SQLite takes `CROSS JOIN` as the join order; PostgreSQL gets a `LATERAL`
/// subquery that it cannot flatten (`OFFSET 0`) and so cannot turn around. That is what lets a
/// PostgreSQL writer plan each statement once and keep the plan ([`WRITER_SETTINGS`]): there is
/// no other plan for the table's growth to make better.
///
/// A batch reads in one statement (`sessions`; `game_servers` only when a session is missing)
/// and writes in one on PostgreSQL, three on SQLite: with `BEGIN` and `COMMIT`, four round trips
/// to PostgreSQL (more only for a missing session, a re-read, or a bet of a player with limits).
pub struct Statements {
    sessions: String,
    game_servers: String,
    write: Write,
}

/// How a batch's entries, requests and balances are written.
enum Write {
    /// PostgreSQL: one statement. The entries' ids are drawn from the ledger's sequence first, in
    /// order, so the requests can name them in the same statement ($1 entries, $2 requests, $3
    /// balance changes; it answers the ids as a JSON array and the accounts it updated).
    One(String),
    /// SQLite (no writes in `WITH`): the entries, answering their ids; the requests, given the ids
    /// ($2); the balances.
    Each { entries: String, requests: String, balances: String },
}

impl Statements {
    pub fn of(backend: Backend) -> &'static Statements {
        static SQLITE: OnceLock<Statements> = OnceLock::new();
        static POSTGRES: OnceLock<Statements> = OnceLock::new();
        let cell = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        cell.get_or_init(|| Statements::build(backend))
    }

    /// Every statement with a name, for checking their plans.
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![("sessions", self.sessions.as_str()), ("game_servers", &self.game_servers)];
        match &self.write {
            Write::One(text) => all.push(("write", text)),
            Write::Each { entries, requests, balances } => all.extend([("insert_entries", entries.as_str()), ("insert_requests", requests), ("update_balances", balances)]),
        }
        all
    }

    fn build(backend: Backend) -> Statements {
        Statements { sessions: sessions(backend), game_servers: game_servers(backend), write: write(backend) }
    }
}

/// Sessions of enabled game servers, sorted by account, then their accounts, each locked as it is
/// found (PostgreSQL; SQLite's writer holds the whole database): batches lock accounts in id
/// order, so they cannot deadlock. With each account, its limits, and the exclusions in force at
/// some time between $2 and $1 that could match its person (one index search per way of matching:
/// person, birth date, personal ID number; UNION drops an exclusion found two ways). With each
/// session, the game server's earlier requests with the transaction ids listed for the session
/// (with the ledger entry of a stored bet) and the rollbacks naming the ids listed for that. Each
/// list comes as one JSON array. $3 is a JSON array of [token hash, [transaction ids], [ids
/// named by rollbacks]].
fn sessions(backend: Backend) -> String {
    let mut q = Sql::new(backend, "");
    let (starts_by, ends_after) = (q.param_text(), q.param_text());
    let in_force = format!("e.starts_at <= {starts_by} AND (e.ends_at IS NULL OR e.ends_at > {ends_after})");
    let exclusions = ["e.person_id = p.id", "e.birth_date = p.birth_date", "e.personal_id = p.personal_id"]
        .map(|on| {
            format!(
                "SELECT e.id, e.kind, e.person_id, e.personal_id, LOWER(e.first_name) AS first_lower, LOWER(e.last_name) AS last_lower, \
                 e.birth_date, e.starts_at, e.ends_at FROM exclusions e WHERE {on} AND {in_force}"
            )
        })
        .join(" UNION ");
    let exclusions = q.json_list("x.kind, x.person_id, x.personal_id, x.first_lower, x.last_lower, x.birth_date, x.starts_at, x.ends_at", &format!("({exclusions}) AS x"));
    let limits = q.json_list("l.id, l.kind, l.period, l.amount_cents, l.effective_at", "iaccount_limits l WHERE l.account_id = a.id");
    let mut r = Sql::new(backend, "");
    r.json_scalars_of("k.asked", 1, "i")
        .lookup("wallet_requests", "r", "r.game_server = k.game_server AND r.txn_id = i.value")
        .left_lookup("wallet_ledger", "l", "l.id = r.ledger_id AND r.kind = 'bet'");
    let requests = q.json_list("r.txn_id, r.kind, r.account_id, r.amount_cents, r.ledger_id, r.reply, l.bonus_cents, l.deposit_cents, l.winnings_cents", &r.text);
    let mut n = Sql::new(backend, "");
    n.json_scalars_of("k.asked", 2, "n").lookup("wallet_requests", "r", "r.game_server = k.game_server AND r.ref_txn_id = n.value AND r.kind = 'rollback'");
    let rollbacks = q.json_list("r.ref_txn_id", &n.text);
    let _ = write!(
        q.text,
        "SELECT k.token_hash, k.game_server, k.expires_at, a.id, a.person_id, a.state, a.bonus_cents, a.deposit_cents, a.winnings_cents, \
         a.wagering_left_cents, a.last_activity_at, p.personal_id, LOWER(p.first_name) AS first_lower, LOWER(p.last_name) AS last_lower, \
         p.birth_date, m.state AS member_state, a.lock_version, (SELECT v.lock_version FROM iaccounts v WHERE v.id = a.id) AS seen_version, {limits} AS limits, {exclusions} AS exclusions, {requests} AS requests, {rollbacks} AS rollbacks \
         FROM (SELECT t.value AS asked, s.token_hash, s.game_server, s.expires_at, s.account_id FROM "
    );
    q.json_rows("t")
        .lookup("wallet_sessions", "s", "s.token_hash = t.value ->> 0")
        .lookup("game_servers", "g", "g.id = s.game_server AND g.revoked_at IS NULL")
        .push(" ORDER BY s.account_id")
        .push(if backend == Backend::Postgres { " OFFSET 0) AS k" } else { ") AS k" })
        .locked_lookup("iaccounts", "a", "a.id = k.account_id")
        .lookup("persons", "p", "p.id = a.person_id")
        .left_lookup("members", "m", "m.person_id = p.id");
    q.text
}

/// Which of the game servers ($1) are enabled.
fn game_servers(backend: Backend) -> String {
    let mut q = Sql::new(backend, "SELECT g.id FROM ");
    q.json_scalars("t").lookup("game_servers", "g", "g.id = t.value AND g.revoked_at IS NULL");
    q.text
}

/// The writes ([`Write`]).
fn write(backend: Backend) -> Write {
    const ENTRY_COLUMNS: &str = "account_id, kind, bonus_cents, deposit_cents, winnings_cents, reference, round_id, actor, created_at";
    let entry_values = |e: &str| {
        format!(
            "CAST({e} ->> 0 AS BIGINT), {e} ->> 1, CAST({e} ->> 2 AS BIGINT), CAST({e} ->> 3 AS BIGINT), CAST({e} ->> 4 AS BIGINT), \
             {e} ->> 5, {e} ->> 6, {e} ->> 7, CAST({e} ->> 8 AS BIGINT)"
        )
    };
    // A request row: [game server, txn id, kind, account, round, amount, rolled back txn id, the
    // index of its new entry, answer (a JSON object), time]. `ledger` is the entry's id; the
    // answer gets it too, by `with_id`.
    let insert_requests = |ledger: &str, with_id: &dyn Fn(&str) -> String, from: &str| {
        format!(
            "INSERT INTO wallet_requests (game_server, txn_id, kind, account_id, round_id, amount_cents, ref_txn_id, ledger_id, status, reply, created_at) \
             SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, CAST(r.value ->> 3 AS BIGINT), r.value ->> 4, CAST(r.value ->> 5 AS BIGINT), \
             r.value ->> 6, {ledger}, 200, CASE WHEN r.value ->> 7 IS NULL THEN r.value ->> 8 ELSE {} END, CAST(r.value ->> 9 AS BIGINT) FROM {from}",
            with_id(ledger)
        )
    };
    // The changes as one JSON object: account id -> [bonus, deposit, winnings, wagering left, last
    // activity]; `field(i)` reads the i-th of an account's.
    let balances = |field: &dyn Fn(usize) -> String| {
        let values = format!("a.bonus_cents + {}, a.deposit_cents + {}, a.winnings_cents + {}, {}, {}, a.lock_version + 1", field(0), field(1), field(2), field(3), field(4));
        ("bonus_cents, deposit_cents, winnings_cents, wagering_left_cents, last_activity_at, lock_version", values)
    };
    match backend {
        Backend::Postgres => {
            let ledger = "i.ids[CAST(r.value ->> 7 AS INT) + 1]";
            let requests = insert_requests(ledger, &|id| format!("CAST(jsonb_set(r.value -> 8, '{{ledger_id}}', to_jsonb({id})) AS TEXT)"), "ids i, jsonb_array_elements($2::jsonb) AS r(value)");
            // PostgreSQL cannot be told the join order of an UPDATE, so it has no join: the
            // accounts are searched by the object's keys in one index scan, and each finds its own
            // changes by its id. Each parameter is parsed once (`changes`, and the function scans):
            // a cast of a parameter in a generic plan is evaluated again for every row.
            let (columns, values) = balances(&|i| format!("CAST(x.v ->> {i} AS BIGINT)"));
            Write::One(format!(
                "WITH drawn AS MATERIALIZED (SELECT e.n, e.value, nextval('wallet_ledger_id_seq') AS id FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(value, n)), \
                 ids AS MATERIALIZED (SELECT array_agg(d.id ORDER BY d.n) AS ids FROM drawn d), \
                 entries AS (INSERT INTO wallet_ledger (id, {ENTRY_COLUMNS}) SELECT d.id, {} FROM drawn d ORDER BY d.n), \
                 requests AS ({requests}), \
                 changes AS MATERIALIZED (SELECT CAST($3 AS jsonb) AS c), \
                 balances AS (UPDATE iaccounts AS a SET ({columns}) = (SELECT {values} FROM (SELECT c.c -> CAST(a.id AS TEXT) AS v FROM changes c) AS x) \
                 WHERE a.id = ANY(ARRAY(SELECT CAST(k AS BIGINT) FROM changes c, jsonb_object_keys(c.c) AS k)) RETURNING a.id) \
                 SELECT CAST(array_to_json(i.ids) AS TEXT) AS ids, (SELECT count(*) FROM balances) AS updated FROM ids i",
                entry_values("d.value")
            ))
        }
        Backend::Sqlite => {
            let ledger = "$2 ->> CAST(r.value ->> 7 AS INTEGER)";
            let (columns, values) = balances(&|i| format!("CAST(d.value ->> {i} AS BIGINT)"));
            Write::Each {
                entries: format!("INSERT INTO wallet_ledger ({ENTRY_COLUMNS}) SELECT {} FROM json_each($1) AS e RETURNING id, account_id, kind, reference", entry_values("e.value")),
                requests: insert_requests(ledger, &|id| format!("json_set(r.value ->> 8, '$.ledger_id', {id})"), "json_each($1) AS r"),
                balances: format!("UPDATE iaccounts AS a SET ({columns}) = ({values}) FROM json_each($1) AS d WHERE a.id = CAST(d.key AS BIGINT)"),
            }
        }
    }
}

/// Builds statement text for either database from constant text and numbered placeholders.
struct Sql {
    postgres: bool,
    text: String,
    n: usize,
}

impl Sql {
    fn new(backend: Backend, head: &str) -> Sql {
        Sql { postgres: backend == Backend::Postgres, text: head.to_owned(), n: 0 }
    }

    fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    /// The next placeholder, for a parameter the text names more than once.
    fn param_text(&mut self) -> String {
        self.n += 1;
        format!("${}", self.n)
    }

    /// The elements of a JSON array parameter as rows named `alias`, each element in
    /// `alias.value` (an element that is an array gives its fields with `alias.value ->> i`).
    fn json_rows(&mut self, alias: &str) -> &mut Sql {
        self.json_table("jsonb_array_elements", alias)
    }

    /// The scalar elements of a JSON array parameter as rows named `alias`, each as text (or an
    /// SQLite value) in `alias.value`.
    fn json_scalars(&mut self, alias: &str) -> &mut Sql {
        self.json_table("jsonb_array_elements_text", alias)
    }

    /// The scalar elements of the JSON array at `index` in the JSON array `column` as rows named
    /// `alias`, each as text (or an SQLite value) in `alias.value`.
    fn json_scalars_of(&mut self, column: &str, index: usize, alias: &str) -> &mut Sql {
        self.json_elements("jsonb_array_elements_text", &format!("{column} -> {index}"), &format!("{column}, '$[{index}]'"), alias)
    }

    /// SQLite's `json_each`, or `postgres_function`, over the next parameter.
    fn json_table(&mut self, postgres_function: &str, alias: &str) -> &mut Sql {
        let p = self.param_text();
        self.json_elements(postgres_function, &format!("{p}::jsonb"), &p, alias)
    }

    /// `postgres_function(postgres_source)`, or SQLite's `json_each(sqlite_arguments)`, as rows
    /// named `alias`.
    fn json_elements(&mut self, postgres_function: &str, postgres_source: &str, sqlite_arguments: &str, alias: &str) -> &mut Sql {
        let _ = match self.postgres {
            true => write!(self.text, "{postgres_function}({postgres_source}) AS {alias}(value)"),
            false => write!(self.text, "json_each({sqlite_arguments}) AS {alias}"),
        };
        self
    }

    /// A scalar subquery: the rows of `from` as one JSON array of arrays of `fields` (NULL or an
    /// empty array when there is none).
    fn json_list(&self, fields: &str, from: &str) -> String {
        match self.postgres {
            true => format!("CAST((SELECT json_agg(json_build_array({fields})) FROM {from}) AS TEXT)"),
            false => format!("(SELECT json_group_array(json_array({fields})) FROM {from})"),
        }
    }

    /// For each row so far, the rows of `table` (as `alias`) where `on` holds, found through
    /// `table`'s index: always with the rows so far as the outer loop.
    fn lookup(&mut self, table: &str, alias: &str, on: &str) -> &mut Sql {
        self.search(false, table, alias, on, "")
    }

    /// [`Sql::lookup`] that keeps a row with no match (its `alias` columns NULL).
    fn left_lookup(&mut self, table: &str, alias: &str, on: &str) -> &mut Sql {
        self.search(true, table, alias, on, "")
    }

    /// [`Sql::lookup`] that locks each row found (PostgreSQL), in the order of the rows so far.
    fn locked_lookup(&mut self, table: &str, alias: &str, on: &str) -> &mut Sql {
        self.search(false, table, alias, on, " FOR UPDATE")
    }

    fn search(&mut self, left: bool, table: &str, alias: &str, on: &str, lock: &str) -> &mut Sql {
        let _ = match (self.postgres, left) {
            (true, _) => write!(self.text, " {} LATERAL (SELECT * FROM {table} {alias} WHERE {on} OFFSET 0{lock}) AS {alias} ON TRUE", if left { "LEFT JOIN" } else { "JOIN" }),
            (false, true) => write!(self.text, " LEFT JOIN {table} {alias} ON {on}"),
            (false, false) => write!(self.text, " CROSS JOIN {table} {alias} ON {on}"),
        };
        self
    }
}

/// A statement with its JSON parameters bound in order.
fn query<'q>(text: &'q str, params: &'q [String]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    params.iter().fold(sqlx::query(AssertSqlSafe(text)), |q, p| q.bind(p.as_str()))
}

async fn fetch(tx: &mut AnyConnection, text: &str, params: &[String]) -> Result<Vec<AnyRow>> {
    Ok(query(text, params).fetch_all(&mut *tx).await?)
}

/// Runs the statement; answers the rows it changed.
async fn execute(tx: &mut AnyConnection, text: &str, params: &[String]) -> Result<u64> {
    Ok(query(text, params).execute(&mut *tx).await?.rows_affected())
}

/// A JSON array parameter.
fn json<T: serde::Serialize>(values: &T) -> String {
    serde_json::to_string(values).expect("batch keys and rows serialise")
}

/// Distinct values, in first-seen order.
fn distinct<T: Eq + std::hash::Hash + Copy>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// The writers a server runs when its configuration says 0. PostgreSQL: two, measured (`benches/
/// wallet.rs` on 2 cores: four writers made smaller batches and did less, one left the database
/// idle between a batch's statements).
pub fn default_writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    }
}

type Item = (Op, oneshot::Sender<WalletResult<TxnReply>>);

/// The wallet API's handle on the writers.
#[derive(Clone)]
pub struct WalletWriter {
    writers: Arc<Vec<mpsc::Sender<Item>>>,
}

impl WalletWriter {
    /// Starts the writers (`writers` 0: [`default_writers`]), each on a thread of its own with a
    /// current-thread runtime, so that a batch's waits on the database do not queue behind HTTP
    /// handlers. They stop when every handle is dropped and the queue is drained; each returned
    /// task finishes when its writer has stopped.
    pub fn start(store: Store, config: &WalletSettings) -> (WalletWriter, Vec<tokio::task::JoinHandle<()>>) {
        let writers = match config.writers {
            0 => default_writers(store.backend()),
            n => n,
        };
        let mut senders = Vec::with_capacity(writers);
        let mut tasks = Vec::with_capacity(writers);
        for i in 0..writers {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            senders.push(tx);
            let (store, max_batch) = (store.clone(), config.max_batch.max(1));
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new().name(format!("wallet-writer-{i}")).spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(run(store, rx, max_batch)),
                    Err(e) => tracing::error!(error = %e, "wallet writer could not start its runtime"),
                }
                drop(done_tx);
            });
            if let Err(e) = thread {
                tracing::error!(error = %e, "wallet writer thread could not start");
            }
            tasks.push(tokio::spawn(async move {
                let _ = done_rx.await;
            }));
        }
        (WalletWriter { writers: Arc::new(senders) }, tasks)
    }

    /// Applies a request in the next batch; answers after its commit.
    pub async fn submit(&self, op: Op) -> WalletResult<TxnReply> {
        let idx = crate::gateway::ingest::shard(&op.req.token, self.writers.len());
        let (tx, rx) = oneshot::channel();
        let stopped = || WalletError::Fault(Error::Unavailable("the wallet is shutting down".into()));
        self.writers[idx].send((op, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Item>, max_batch: usize) {
    let mut lane = Lane { store, own: None };
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let (ops, replies): (Vec<Op>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        match AssertUnwindSafe(lane.commit(ops)).catch_unwind().await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(_) => {
                // A bug, not a refusal. The writer carries on; the callers may send the same
                // requests again, which is safe: one that was committed is answered as stored.
                tracing::error!(requests = replies.len(), "wallet batch failed unexpectedly; its requests were answered with an error");
                lane.own = None;
                for reply in replies {
                    let _ = reply.send(Err(WalletError::Fault(Error::Unavailable("the wallet could not answer; send the request again".into()))));
                }
            }
        }
        batch.reserve(max_batch);
    }
    lane.close().await;
}

/// Applies `ops` in one transaction and commits it: one answer per request (see [`Lane::commit`]).
pub async fn commit(store: &Store, ops: Vec<Op>) -> Vec<WalletResult<TxnReply>> {
    let mut lane = Lane { store: store.clone(), own: None };
    let out = lane.commit(ops).await;
    lane.close().await;
    out
}

/// How a PostgreSQL writer's connection plans: each statement once, for every batch after
/// (`force_generic_plan`; this also covers the foreign-key checks the inserts run per row), and
/// only ever as index searches in nested loops, joined in the order written. The statements'
/// lookups are pinned ([`Statements`]), so the one plan stays right as the tables grow; without
/// the pins, a plan made while `wallet_requests` was small scanned its whole index for every
/// rollback key once it had grown. Planning each execution instead cost about 40 % of
/// PostgreSQL's time under load (`benches/wallet.rs`, profiled).
pub const WRITER_SETTINGS: [&str; 7] = [
    "SET plan_cache_mode = force_generic_plan",
    "SET join_collapse_limit = 1",
    "SET from_collapse_limit = 1",
    "SET enable_seqscan = off",
    "SET enable_bitmapscan = off",
    "SET enable_hashjoin = off",
    "SET enable_mergejoin = off",
];

/// Where a writer's transactions run. On PostgreSQL a connection of its own, kept between batches
/// and set up with [`WRITER_SETTINGS`]; on SQLite the store's one write connection.
struct Lane {
    store: Store,
    own: Option<AnyConnection>,
}

impl Lane {
    async fn close(&mut self) {
        if let Some(c) = self.own.take() {
            let _ = c.close().await;
        }
    }

    /// Applies `ops` in one transaction and commits it. When the batch cannot be committed, each
    /// request is applied on its own, so a request that faults again gets its own error and the
    /// others their answers. Repeating is safe: a request committed after all is answered as
    /// stored.
    async fn commit(&mut self, ops: Vec<Op>) -> Vec<WalletResult<TxnReply>> {
        let started = Instant::now();
        match self.try_commit(&ops).await {
            Ok(out) => {
                metrics::histogram!("floor_wallet_batch_size").record(ops.len() as f64);
                metrics::histogram!("floor_wallet_commit_seconds").record(started.elapsed().as_secs_f64());
                out
            }
            Err(e) if ops.len() > 1 => {
                tracing::warn!(error = %e, requests = ops.len(), "wallet batch not committed; applying its requests one by one");
                metrics::counter!("floor_wallet_batch_retries_total").increment(1);
                let mut out = Vec::with_capacity(ops.len());
                for op in ops {
                    out.push(one(&self.store, op).await);
                }
                out
            }
            Err(e) => vec![Err(e.into())],
        }
    }

    async fn try_commit(&mut self, ops: &[Op]) -> Result<Vec<WalletResult<TxnReply>>> {
        if self.store.backend() == Backend::Sqlite {
            let mut tx = self.store.begin().await?;
            let out = apply(&mut tx, ops).await?;
            tx.commit().await?;
            return Ok(out);
        }
        let conn = match &mut self.own {
            Some(c) => c,
            None => {
                let mut c = self.store.detached().await?;
                for setting in WRITER_SETTINGS {
                    sqlx::query(setting).execute(&mut c).await?;
                }
                self.own.insert(c)
            }
        };
        let result = async {
            let mut tx = conn.begin().await?;
            let out = apply(&mut tx, ops).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        if result.is_err() {
            // A connection in an unknown state is not used again.
            self.own = None;
        }
        result
    }
}

