//! The i-Account wallet on both databases: the stake split, idempotency, rollbacks (also before
//! their bet), expired tokens, limits, self-exclusion both ways, bonuses, the cashier, and the
//! ledger always summing to the balances under concurrency, and the group commit deciding a batch
//! of requests exactly as one request at a time.

use std::sync::Arc;

use club_rules::{Money, Points, Rules};
use club_rules::online::{LimitKind, Period};
use floor_server::audit::Actor;
use floor_server::cashdesk;
use floor_server::iaccount::cashier::{self, WithdrawalMethod, WithdrawalState};
use floor_server::iaccount::responsible::{self, ExclusionOutcome};
use floor_server::iaccount::testkit::{self, GAME_SERVER, staff};
use floor_server::config::WalletSettings;
use floor_server::iaccount::batch::{self, Op, WalletWriter};
use floor_server::iaccount::wallet::{self, Kind, TxnReply, TxnRequest};
use floor_server::iaccount::{self, Refusal, WalletError};
use floor_server::on_both_backends;
use floor_server::store::{Backend, Store};
use floor_server::testing::TestDb;
use sqlx::Row;

const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

fn eur(cents: i64) -> Money {
    Money::from_cents(cents)
}

async fn setup(backend: Backend) -> Option<(TestDb, Store)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    testkit::add_test_game_server(&store, None, T0).await.unwrap();
    Some((db, store))
}

/// An active account with `cents` deposited at a desk and a game session token.
async fn funded(store: &Store, n: u32, cents: i64) -> (i64, String) {
    let id = testkit::active_account(store, n, T0).await.unwrap();
    if cents > 0 {
        cashier::desk_deposit(store, &Rules::default(), id, eur(cents), &staff(), T0).await.unwrap();
    }
    let token = wallet::launch(store, id, GAME_SERVER, "slot", T0).await.unwrap();
    (id, token)
}

fn req(token: &str, txn: &str, cents: i64) -> TxnRequest {
    TxnRequest {
        token: token.into(),
        transaction_id: txn.into(),
        round_id: format!("round-{txn}"),
        amount: eur(cents),
        regular: true,
        rollback_transaction_id: None,
    }
}

#[track_caller]
fn refused(r: Result<impl std::fmt::Debug, WalletError>) -> Refusal {
    match r {
        Err(WalletError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn assert_ledger_matches(store: &Store, id: i64) {
    let a = iaccount::get(store, id).await.unwrap();
    let sums = iaccount::ledger_sums(store, id).await.unwrap();
    assert_eq!(
        (sums.bonus, sums.deposit, sums.winnings),
        (a.balances.bonus.cents(), a.balances.deposited.cents(), a.balances.winnings.cents()),
        "the ledger sums to the balances"
    );
    assert!(!a.balances.bonus.is_negative() && !a.balances.deposited.is_negative() && !a.balances.winnings.is_negative());
}

/// Every stored game-server request with a ledger entry names an entry of its own account made for
/// its own transaction id (the foreign key checks only that the entry exists: another request's
/// would pass). Answers how many requests there are.
async fn assert_requests_name_their_entries(store: &Store) -> i64 {
    let broken: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.game_server, r.txn_id FROM wallet_requests r WHERE r.ledger_id IS NOT NULL AND NOT EXISTS ( \
         SELECT 1 FROM wallet_ledger l WHERE l.id = r.ledger_id AND l.account_id = r.account_id AND l.reference = r.txn_id)",
    )
    .fetch_all(store.read())
    .await
    .unwrap();
    assert!(broken.is_empty(), "requests naming entries that are not theirs: {broken:?}");
    sqlx::query_scalar("SELECT COUNT(*) FROM wallet_requests").fetch_one(store.read()).await.unwrap()
}

async fn stakes_come_from_bonus_then_deposits_then_winnings(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    wallet::win(&store, GAME_SERVER, &req(&token, "w1", 500), T0).await.unwrap();
    cashier::grant_bonus(&store, id, eur(300), 0, &staff(), T0).await.unwrap();
    let r = wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 1000), T0).await.unwrap();
    assert_eq!((r.balance.bonus, r.balance.deposited, r.balance.winnings), (eur(0), eur(300), eur(500)));
    assert_eq!(r.balance.total, eur(800));
    assert_ledger_matches(&store, id).await;
}

async fn a_repeated_bet_is_answered_again_and_charged_once(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    let first = wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0).await.unwrap();
    let again = wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0 + 1000).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(900));
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 200), T0).await), Refusal::TransactionMismatch);
    let w1 = wallet::win(&store, GAME_SERVER, &req(&token, "w1", 250), T0).await.unwrap();
    assert_eq!(w1, wallet::win(&store, GAME_SERVER, &req(&token, "w1", 250), T0).await.unwrap());
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(1150));
    assert_ledger_matches(&store, id).await;
}

async fn a_rollback_gives_back_the_stake_once(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 400), T0).await.unwrap();
    let rb = TxnRequest { rollback_transaction_id: Some("b1".into()), ..req(&token, "r1", 0) };
    let r = wallet::rollback(&store, GAME_SERVER, &rb, T0).await.unwrap();
    assert_eq!(r.balance.total, eur(1000));
    // the same rollback again, and a second rollback of the same bet: nothing more given back
    wallet::rollback(&store, GAME_SERVER, &rb, T0).await.unwrap();
    let rb2 = TxnRequest { rollback_transaction_id: Some("b1".into()), ..req(&token, "r2", 0) };
    assert_eq!(wallet::rollback(&store, GAME_SERVER, &rb2, T0).await.unwrap().balance.total, eur(1000));
    wallet::win(&store, GAME_SERVER, &req(&token, "w1", 10), T0).await.unwrap();
    let rw = TxnRequest { rollback_transaction_id: Some("w1".into()), ..req(&token, "r3", 0) };
    assert_eq!(refused(wallet::rollback(&store, GAME_SERVER, &rw, T0).await), Refusal::NotABet);
    assert_ledger_matches(&store, id).await;
}

async fn a_rollback_before_its_bet_refuses_the_bet(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    let rb = TxnRequest { rollback_transaction_id: Some("b1".into()), ..req(&token, "r1", 0) };
    let r = wallet::rollback(&store, GAME_SERVER, &rb, T0).await.unwrap();
    assert_eq!((r.ledger_id, r.balance.total), (None, eur(1000)));
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 400), T0).await), Refusal::RolledBack);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(1000));
}

/// A batch that had to wait for an account's lock decides with what the transaction it waited for
/// stored: the bet committed meanwhile is rolled back (not taken for a rollback that came first),
/// and the rollback committed meanwhile refuses its bet (which changed no balance, only the
/// account's version).
async fn a_batch_that_waited_for_an_account_sees_what_the_transaction_before_it_stored(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    let rollback = |txn: &str, bet: &str| Op::new(GAME_SERVER, Kind::Rollback, &TxnRequest { rollback_transaction_id: Some(bet.into()), ..req(&token, txn, 0) }, T0 + 2);
    let bet = |txn: &str| Op::new(GAME_SERVER, Kind::Bet, &req(&token, txn, 400), T0 + 1);

    // The bet commits while the batch with its rollback waits.
    let b1 = the_second_batch_after_the_first(&store, bet("b1"), rollback("r1", "b1")).await;
    assert!(b1.as_ref().unwrap().ledger_id.is_some(), "the rollback gave the stake back: {b1:?}");
    assert_eq!(b1.unwrap().balance.total, eur(1000));

    // The rollback, before its bet, commits while the batch with the bet waits.
    let b2 = the_second_batch_after_the_first(&store, rollback("r2", "b2"), bet("b2")).await;
    assert_eq!(refused(b2), Refusal::RolledBack);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(1000));
    assert_ledger_matches(&store, id).await;
}

/// Applies `first` in a transaction held open until a batch with `second` waits for the account
/// (PostgreSQL; on SQLite the batch waits for the one write connection), then commits it; answers
/// the batch's answer.
async fn the_second_batch_after_the_first(store: &Store, first: Op, second: Op) -> Result<TxnReply, WalletError> {
    let mut tx = store.begin().await.unwrap();
    assert!(batch::apply(&mut tx, &[first]).await.unwrap()[0].is_ok());
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { batch::commit(&store, vec![second]).await.pop().unwrap() }
    });
    match store.backend() {
        Backend::Postgres => {
            let mut waited = false;
            for _ in 0..1000 {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").fetch_one(store.read()).await.unwrap();
                if n > 0 {
                    waited = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(waited, "the batch never waited for the account");
        }
        Backend::Sqlite => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
    }
    tx.commit().await.unwrap();
    waiting.await.unwrap()
}

async fn after_the_token_expires_bets_are_refused_but_wins_and_rollbacks_accepted(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token, "b2", 100), T0).await.unwrap();
    let later = T0 + 2 * HOUR;
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b3", 100), later).await), Refusal::TokenExpired);
    assert_eq!(wallet::win(&store, GAME_SERVER, &req(&token, "w1", 300), later).await.unwrap().balance.total, eur(1100));
    let rb = TxnRequest { rollback_transaction_id: Some("b2".into()), ..req(&token, "r1", 0) };
    assert_eq!(wallet::rollback(&store, GAME_SERVER, &rb, later).await.unwrap().balance.total, eur(1200));
    wallet::end_round(&store, GAME_SERVER, &req(&token, "e1", 0), later).await.unwrap();
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req("not-a-token", "b4", 100), T0).await), Refusal::InvalidToken);
    assert_ledger_matches(&store, id).await;
}

async fn insufficient_funds_is_refused_with_the_balance(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (_id, token) = funded(&store, 1, 150).await;
    assert_eq!(
        refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 151), T0).await),
        Refusal::InsufficientFunds { balance: eur(150) }
    );
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b2", 0), T0).await), Refusal::InvalidAmount);
}

async fn a_thousand_concurrent_bets_never_overdraw_one_account(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 10_000).await;
    let token = Arc::new(token);
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let store = store.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move { wallet::bet(&store, GAME_SERVER, &req(&token, &format!("b{i}"), 15), T0).await }));
    }
    the_thousand_bets_took_exactly_the_funds(&store, id, tasks).await;
}

/// 1,000 bets of EUR 0.15 on an account holding EUR 100.00: exactly 666 pass, the others are
/// refused for funds, and EUR 0.10 is left, as the ledger says.
async fn the_thousand_bets_took_exactly_the_funds(store: &Store, id: i64, tasks: Vec<tokio::task::JoinHandle<Result<TxnReply, WalletError>>>) {
    let (mut ok, mut short) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(WalletError::Refused(Refusal::InsufficientFunds { .. })) => short += 1,
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!((ok, short), (666, 334), "EUR 100.00 covers 666 stakes of EUR 0.15");
    assert_eq!(iaccount::get(store, id).await.unwrap().balances.total(), eur(10));
    assert_ledger_matches(store, id).await;
}

async fn a_random_workload_leaves_the_ledger_equal_to_the_balances(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let ops: usize = std::env::var("IACCOUNT_WORKLOAD_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut accounts = Vec::new();
    for n in 1..=4 {
        accounts.push(funded(&store, n, 5000).await);
    }
    let accounts = Arc::new(accounts);
    // Game-server requests go through the group commit, as the API sends them; the cashier's
    // movements run beside it in their own transactions.
    let (writer, writer_tasks) = WalletWriter::start(store.clone(), &WalletSettings { max_batch: 64, writers: 4, queue: 1024 });
    let workers = 8;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        let accounts = accounts.clone();
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            // a small deterministic generator per worker (xorshift): ids and amounts are inputs
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for i in 0..ops / workers {
                let (id, token) = &accounts[(next() % 4) as usize];
                let cents = (next() % 3000) as i64 + 1;
                let txn = format!("w{w}-{i}");
                let result: Result<(), WalletError> = match next() % 7 {
                    0..=2 => writer.submit(Op::new(GAME_SERVER, Kind::Bet, &req(token, &txn, cents), T0)).await.map(drop),
                    3 => writer.submit(Op::new(GAME_SERVER, Kind::Win, &req(token, &txn, cents), T0)).await.map(drop),
                    4 => {
                        let target = format!("w{w}-{}", next() % (i as u64 + 1));
                        let rb = TxnRequest { rollback_transaction_id: Some(target), ..req(token, &txn, 0) };
                        writer.submit(Op::new(GAME_SERVER, Kind::Rollback, &rb, T0)).await.map(drop).or_else(|e| match e {
                            WalletError::Refused(Refusal::NotABet) => Ok(()),
                            e => Err(e),
                        })
                    }
                    5 => cashier::desk_deposit(&store, &Rules::default(), *id, iaccount::positive(Money::from_cents(cents)).unwrap(), &staff(), T0).await.map(drop),
                    _ => match cashier::request_withdrawal(&store, *id, WithdrawalMethod::Desk, eur(cents), T0).await {
                        Ok(w) if next() % 2 == 0 => cashier::cancel_withdrawal(&store, *id, w.id, T0).await.map_err(Into::into),
                        other => other.map(drop),
                    },
                };
                match result {
                    Ok(()) | Err(WalletError::Refused(Refusal::InsufficientFunds { .. } | Refusal::RolledBack)) => {}
                    Err(e) => panic!("unexpected: {e:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(writer);
    for t in writer_tasks {
        t.await.unwrap();
    }
    for (id, _) in accounts.iter() {
        assert_ledger_matches(&store, *id).await;
    }
    let requests = assert_requests_name_their_entries(&store).await;
    assert!(requests > (ops / 2) as i64, "the workload stored its game-server requests ({requests})");
}

/// The same, through the group commit as the API sends them: with four session tokens of the one
/// account, several writers lock it at once (PostgreSQL).
async fn a_thousand_concurrent_bets_in_group_commits_never_overdraw_one_account(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, first) = funded(&store, 1, 10_000).await;
    let mut tokens = vec![first];
    for _ in 0..3 {
        tokens.push(wallet::launch(&store, id, GAME_SERVER, "slot", T0).await.unwrap());
    }
    let (writer, writer_tasks) = WalletWriter::start(store.clone(), &WalletSettings { max_batch: 64, writers: 4, queue: 2048 });
    let tokens = Arc::new(tokens);
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (writer, tokens) = (writer.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move { writer.submit(Op::new(GAME_SERVER, Kind::Bet, &req(&tokens[i % 4], &format!("b{i}"), 15), T0)).await }));
    }
    the_thousand_bets_took_exactly_the_funds(&store, id, tasks).await;
    drop(writer);
    for t in writer_tasks {
        t.await.unwrap();
    }
}

/// Three players: one with a bonus to wager, one with a daily loss limit, one banned half an hour
/// in. Answers each account's token, in that order.
async fn three_players(store: &Store) -> Vec<String> {
    let (bonus, t1) = funded(store, 1, 5000).await;
    cashier::grant_bonus(store, bonus, eur(1000), 3, &staff(), T0).await.unwrap();
    let (limited, t2) = funded(store, 2, 2000).await;
    responsible::set_limit(store, limited, LimitKind::Loss, Period::Day, Some(eur(1500)), T0).await.unwrap();
    let (banned, t3) = funded(store, 3, 3000).await;
    ban(store, banned, T0 + HOUR / 2, "test").await;
    vec![t1, t2, t3]
}

/// A deterministic mix of every kind of request over the three players, ten seconds apart (so the
/// last ones come after the ban and after the tokens expire): bets (some too big, zero), wins
/// (some negative), rollbacks of earlier, later and unknown bets and of wins, repeats of earlier
/// requests (some changed), round ends, an unknown token and a rollback naming nothing.
fn mixed_requests(tokens: &[String], n: usize) -> Vec<Op> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ops: Vec<Op> = Vec::with_capacity(n);
    for i in 0..n {
        let now = T0 + i as i64 * 10_000;
        let token = &tokens[(next() % 3) as usize];
        let cents = (next() % 1500) as i64;
        let op = match next() % 12 {
            0..=4 => Op::new(GAME_SERVER, Kind::Bet, &TxnRequest { regular: next() % 5 != 0, ..req(token, &format!("t{i}"), cents) }, now),
            5..=6 => Op::new(GAME_SERVER, Kind::Win, &req(token, &format!("t{i}"), if next() % 10 == 0 { -cents } else { cents }), now),
            7..=8 => {
                let target = match next() % 4 {
                    0 => format!("t{}", i + 1 + (next() % 5) as usize),
                    1 => "never".to_owned(),
                    _ => format!("t{}", next() % (i as u64 + 1)),
                };
                Op::new(GAME_SERVER, Kind::Rollback, &TxnRequest { rollback_transaction_id: Some(target), ..req(token, &format!("t{i}"), 0) }, now)
            }
            9 if i > 0 => {
                let mut earlier = ops[(next() % i as u64) as usize].clone();
                earlier.now = now;
                if next() % 3 == 0 {
                    earlier.req.amount += eur(1);
                }
                earlier
            }
            10 => Op::new(GAME_SERVER, Kind::EndRound, &req(token, &format!("t{i}"), 0), now),
            _ => match next() % 3 {
                0 => Op::new(GAME_SERVER, Kind::Bet, &req("no-such-token", &format!("t{i}"), cents), now),
                1 => Op::new(GAME_SERVER, Kind::Rollback, &req(token, &format!("t{i}"), 0), now),
                _ => Op::new(GAME_SERVER, Kind::Bet, &req(token, &format!("t{i}"), 0), now),
            },
        };
        ops.push(op);
    }
    ops
}

/// An answer as the two runs compare it.
fn outcome(r: Result<TxnReply, WalletError>) -> Result<TxnReply, Refusal> {
    r.map_err(|e| match e {
        WalletError::Refused(r) => r,
        WalletError::Fault(e) => panic!("fault: {e}"),
    })
}

/// Every row the game servers' requests wrote, in order, for comparing two databases (the
/// desk deposits that set the players up carry references of their own).
async fn wallet_rows(store: &Store) -> (Vec<(i64, i64, String, i64, i64, i64, Option<String>, i64)>, Vec<(String, String, i64, i64, Option<String>, Option<i64>, String)>, Vec<(i64, i64, i64, i64, i64, i64)>) {
    let ledger = sqlx::query_as("SELECT id, account_id, kind, bonus_cents, deposit_cents, winnings_cents, reference, created_at FROM wallet_ledger WHERE kind IN ('bet', 'win', 'rollback', 'bonus_release') ORDER BY id")
        .fetch_all(store.read())
        .await
        .unwrap();
    let requests = sqlx::query_as("SELECT txn_id, kind, account_id, amount_cents, ref_txn_id, ledger_id, reply FROM wallet_requests ORDER BY txn_id")
        .fetch_all(store.read())
        .await
        .unwrap();
    let accounts = sqlx::query_as("SELECT id, bonus_cents, deposit_cents, winnings_cents, wagering_left_cents, last_activity_at FROM iaccounts ORDER BY id")
        .fetch_all(store.read())
        .await
        .unwrap();
    (ledger, requests, accounts)
}

/// The group commit's promise: the same requests, decided in batches of 97 in one transaction
/// each, get exactly the answers, ledger entries, stored requests and balances that one request at
/// a time gets.
async fn requests_in_batches_are_decided_exactly_as_one_at_a_time(backend: Backend) {
    let Some((_one_db, single)) = setup(backend).await else { return };
    let Some((_batch_db, batched)) = setup(backend).await else { return };
    let n = 600;
    let one_ops = mixed_requests(&three_players(&single).await, n);
    let batch_ops = mixed_requests(&three_players(&batched).await, n);
    let mut one_answers = Vec::with_capacity(n);
    for op in one_ops {
        one_answers.push(outcome(batch::one(&single, op).await));
    }
    let mut batch_answers = Vec::with_capacity(n);
    for chunk in batch_ops.chunks(97) {
        batch_answers.extend(batch::commit(&batched, chunk.to_vec()).await.into_iter().map(outcome));
    }
    for (i, (a, b)) in one_answers.iter().zip(&batch_answers).enumerate() {
        assert_eq!(a, b, "request {i}");
    }
    let kinds = |answers: &[Result<TxnReply, Refusal>]| {
        let mut seen: Vec<String> = answers.iter().map(|a| match a {
            Ok(r) if r.ledger_id.is_some() => "moved".to_owned(),
            Ok(_) => "recorded".to_owned(),
            Err(r) => format!("{r:?}").split([' ', '{']).next().unwrap().to_owned(),
        }).collect();
        seen.sort();
        seen.dedup();
        seen
    };
    // The mix reaches every answer it is meant to test.
    for expected in ["moved", "recorded", "InsufficientFunds", "LimitReached", "Blocked", "TokenExpired", "InvalidToken", "RolledBack", "TransactionMismatch", "NotABet", "InvalidAmount"] {
        assert!(kinds(&one_answers).iter().any(|k| k == expected), "{expected} not reached: {:?}", kinds(&one_answers));
    }
    let (one_rows, batch_rows) = (wallet_rows(&single).await, wallet_rows(&batched).await);
    assert_eq!(one_rows.0, batch_rows.0, "ledger entries");
    assert_eq!(one_rows.1, batch_rows.1, "stored requests");
    assert_eq!(one_rows.2, batch_rows.2, "balances");
    for id in 1..=3 {
        assert_ledger_matches(&batched, id).await;
    }
}

/// A request the database refuses (here a trigger) fails its batch's commit: it gets its own
/// error, and the others of the batch are committed once, one by one.
async fn a_request_that_faults_is_answered_alone_and_the_rest_of_its_batch_commits(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 1000).await;
    let trigger: &[&str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER poison BEFORE INSERT ON wallet_ledger WHEN NEW.reference = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.reference = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON wallet_ledger FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
    };
    for sql in trigger {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(store.read()).await.unwrap();
    }
    let ops = vec![
        Op::new(GAME_SERVER, Kind::Bet, &req(&token, "b1", 100), T0),
        Op::new(GAME_SERVER, Kind::Bet, &req(&token, "poison", 100), T0),
        Op::new(GAME_SERVER, Kind::Win, &req(&token, "w1", 50), T0),
        Op::new(GAME_SERVER, Kind::Bet, &req(&token, "b2", 100), T0),
    ];
    let out = batch::commit(&store, ops.clone()).await;
    assert!(matches!(out[1], Err(WalletError::Fault(_))), "{:?}", out[1]);
    let totals: Vec<Money> = [&out[0], &out[2], &out[3]].iter().map(|r| r.as_ref().unwrap().balance.total).collect();
    assert_eq!(totals, vec![eur(900), eur(950), eur(850)]);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(850));
    // Sent again, the answered ones are answered as stored and move nothing.
    let again = batch::commit(&store, vec![ops[0].clone(), ops[2].clone(), ops[3].clone()]).await;
    assert_eq!(again.into_iter().map(|r| r.unwrap().balance.total).collect::<Vec<_>>(), totals);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(850));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wallet_requests WHERE txn_id = 'poison'").fetch_one(store.read()).await.unwrap();
    assert_eq!(stored, 0);
    assert_ledger_matches(&store, id).await;
}

async fn a_loss_limit_refuses_the_bet_that_could_pass_it_and_raising_waits_24_hours(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 10_000).await;
    let eff = responsible::set_limit(&store, id, LimitKind::Loss, Period::Day, Some(eur(1000)), T0).await.unwrap();
    assert_eq!(eff, T0, "a first limit applies at once");
    wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 800), T0).await.unwrap();
    assert_eq!(
        refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b2", 300), T0).await),
        Refusal::LimitReached { kind: LimitKind::Loss, period: Period::Day }
    );
    wallet::win(&store, GAME_SERVER, &req(&token, "w1", 200), T0).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token, "b3", 400), T0).await.unwrap();
    let raised = responsible::set_limit(&store, id, LimitKind::Loss, Period::Day, Some(eur(5000)), T0).await.unwrap();
    assert_eq!(raised, T0 + 24 * HOUR);
    let token2 = wallet::launch(&store, id, GAME_SERVER, "slot", T0 + HOUR).await.unwrap();
    assert!(matches!(
        refused(wallet::bet(&store, GAME_SERVER, &req(&token2, "b4", 100), T0 + HOUR).await),
        Refusal::LimitReached { .. }
    ));
    let limits = responsible::limits(&store, id, T0 + HOUR).await.unwrap();
    assert!(limits.iter().any(|l| l.pending && l.amount == Some(eur(5000))));
    // a day later the window has moved on as well
    let token3 = wallet::launch(&store, id, GAME_SERVER, "slot", T0 + 25 * HOUR).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token3, "b5", 2000), T0 + 25 * HOUR).await.unwrap();
}

async fn a_deposit_limit_refuses_the_deposit_over_it(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 0).await;
    responsible::set_limit(&store, id, LimitKind::Deposit, Period::Week, Some(eur(5000)), T0).await.unwrap();
    cashier::desk_deposit(&store, &Rules::default(), id, eur(4000), &staff(), T0).await.unwrap();
    assert!(matches!(
        refused(cashier::desk_deposit(&store, &Rules::default(), id, eur(1001), &staff(), T0).await),
        Refusal::LimitReached { kind: LimitKind::Deposit, period: Period::Week }
    ));
}

async fn an_online_self_exclusion_refuses_play_and_the_club_card_but_not_withdrawal(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 5000).await;
    // the same person is a club member with an active card
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(id).fetch_one(store.read()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let member = floor_server::club::create_member(&mut tx, person, T0).await.unwrap();
    let card = floor_protocol::CardNumber::new("1234567890".to_owned());
    let card_id = floor_server::club::issue_card(&mut tx, member, &card, T0).await.unwrap();
    tx.commit().await.unwrap();
    floor_server::club::set_card_state(&store, card_id, club_rules::CardState::Active, &staff(), T0).await.unwrap();

    let out = responsible::self_exclude(&store, id, 30, T0 + 1).await.unwrap();
    assert!(matches!(out, ExclusionOutcome::InForce { until, .. } if until == T0 + 1 + 30 * 24 * HOUR));
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0 + 2).await), Refusal::SelfExcluded);
    assert_eq!(refused(wallet::launch(&store, id, GAME_SERVER, "slot", T0 + 2).await), Refusal::SelfExcluded);
    let mut tx = store.begin().await.unwrap();
    let number = floor_server::club::normalise_card(&card).unwrap();
    let holder = floor_server::club::card_holder(&mut tx, &number, T0 + 2).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(floor_server::club::card_in_decision(&holder), Err(club_rules::RefusalCode::SelfExcluded));
    let w = cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(2000), T0 + 3).await.unwrap();
    assert_eq!(w.state, WithdrawalState::Pending);
    // after it ends, play again
    let token2 = wallet::launch(&store, id, GAME_SERVER, "slot", T0 + 31 * 24 * HOUR).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token2, "b2", 100), T0 + 31 * 24 * HOUR).await.unwrap();
}

/// An entry ban by the operator on the account's person, from `starts_at`.
async fn ban(store: &Store, account: i64, starts_at: i64, reason: &str) {
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(account).fetch_one(store.read()).await.unwrap();
    let ban = floor_server::club::NewExclusion::of_person(club_rules::gate::ExclusionKind::Ban, person, starts_at, None, Some(reason.into()));
    floor_server::club::add_exclusion(store, &ban, &staff(), T0).await.unwrap();
}

async fn a_floor_ban_refuses_online_play(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 5000).await;
    ban(&store, id, T0, "card abuse").await;
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0 + 1).await), Refusal::Blocked);
    assert_eq!(refused(cashier::desk_deposit(&store, &Rules::default(), id, eur(100), &staff(), T0 + 1).await), Refusal::Blocked);
}

/// A row of the national register that names a person the club never linked to a record (no
/// person id): it refuses online bets when it matches the player's personal ID number, or the
/// name (in any letter case) with the birth date. A row for the same birth date under another
/// name, or one that has ended, refuses nobody. Four bets in one batch, then one at a time.
async fn a_register_entry_matched_by_personal_id_or_name_and_birth_date_refuses_online_bets(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let mut players = Vec::new();
    for n in 1..=4 {
        let (id, token) = funded(&store, n, 5000).await;
        let row = sqlx::query("SELECT p.personal_id, p.first_name, p.last_name, p.birth_date FROM persons p JOIN iaccounts a ON a.person_id = p.id WHERE a.id = $1")
            .bind(id)
            .fetch_one(store.read())
            .await
            .unwrap();
        let person: (String, String, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
        players.push((token, person));
    }
    let register = |personal_id: Option<&str>, name: Option<(&str, &str)>, birth: Option<&str>, ends_at: Option<i64>| floor_server::club::NewExclusion {
        kind: club_rules::gate::ExclusionKind::Register.code().into(),
        person_id: None,
        personal_id: personal_id.map(Into::into),
        first_name: name.map(|n| n.0.to_uppercase()),
        last_name: name.map(|n| n.1.to_uppercase()),
        birth_date: birth.map(Into::into),
        starts_at: T0 - 10,
        ends_at,
        reason: Some("register import".into()),
    };
    let p = |i: usize| &players[i].1;
    for entry in [
        register(Some(&p(0).0), None, None, None),
        register(None, Some((&p(1).1, &p(1).2)), Some(&p(1).3), None),
        register(None, Some((&p(2).1, &p(2).2)), Some(&p(2).3), Some(T0)),
        register(None, Some(("Someone", "Else")), Some(&p(3).3), None),
    ] {
        floor_server::club::add_exclusion(&store, &entry, &staff(), T0 - 10).await.unwrap();
    }
    assert_eq!(p(1).3, p(3).3, "the players share a birth date: only the name tells them apart");

    let ops: Vec<Op> = players.iter().enumerate().map(|(i, (token, _))| Op::new(GAME_SERVER, Kind::Bet, &req(token, &format!("batched-{i}"), 100), T0 + 1)).collect();
    let answers = batch::commit(&store, ops).await;
    let outcome = |r: &Result<TxnReply, WalletError>| match r {
        Ok(_) => None,
        Err(WalletError::Refused(r)) => Some(r.clone()),
        Err(e) => panic!("unexpected fault {e:?}"),
    };
    assert_eq!(answers.iter().map(outcome).collect::<Vec<_>>(), [Some(Refusal::SelfExcluded), Some(Refusal::SelfExcluded), None, None]);
    for (i, (token, _)) in players.iter().enumerate() {
        let alone = wallet::bet(&store, GAME_SERVER, &req(token, &format!("alone-{i}"), 100), T0 + 2).await;
        assert_eq!(outcome(&alone), outcome(&answers[i]), "player {i} alone as in the batch");
    }
}

/// Every statement of a wallet batch searches each table through an index, once per key of the
/// batch, whatever the tables' statistics: checked with plans made while the tables are small and
/// freshly analysed (the statistics that once turned a PostgreSQL plan around, so that it scanned
/// `wallet_requests` whole for every rollback key once the table had grown). On PostgreSQL these
/// are the generic plans a writer's connection keeps ([`batch::WRITER_SETTINGS`]); on SQLite, the
/// plans of `EXPLAIN QUERY PLAN`.
async fn every_wallet_lookup_is_an_index_search_per_key_whatever_the_statistics(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let mut tokens = Vec::new();
    for n in 1..=6 {
        let (id, token) = funded(&store, n, 5000).await;
        if n == 1 {
            responsible::set_limit(&store, id, LimitKind::Loss, Period::Day, Some(eur(4000)), T0).await.unwrap();
            ban(&store, id, T0 + HOUR, "later").await;
        }
        tokens.push(token);
    }
    let mut ops: Vec<Op> = tokens.iter().enumerate().map(|(i, t)| Op::new(GAME_SERVER, Kind::Bet, &req(t, &format!("b{i}"), 100), T0 + 1)).collect();
    ops.push(Op::new(GAME_SERVER, Kind::Rollback, &TxnRequest { rollback_transaction_id: Some("b0".into()), ..req(&tokens[0], "rb0", 0) }, T0 + 2));
    ops.push(Op::new(GAME_SERVER, Kind::Win, &req(&tokens[1], "w1", 250), T0 + 3));
    assert!(batch::commit(&store, ops).await.iter().all(Result::is_ok));

    let mut tx = store.begin().await.unwrap();
    sqlx::query("ANALYZE").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.read().acquire().await.unwrap();
    if backend == Backend::Postgres {
        for setting in batch::WRITER_SETTINGS {
            sqlx::query(setting).execute(&mut *conn).await.unwrap();
        }
    }
    for (name, text) in batch::Statements::of(backend).all() {
        if backend == Backend::Sqlite && name.starts_with("insert_") {
            // An insert has no lookup of its own; SQLite's plan for one into `wallet_ledger` lists
            // scans of the tables that refer to it, which run only while a deferred foreign key
            // is broken (never: the keys are checked at once).
            continue;
        }
        let params = (1..=9).filter(|n| text.contains(&format!("${n}"))).count();
        let plan: Vec<String> = match backend {
            Backend::Postgres => {
                sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE wallet_{name} AS {text}"))).execute(&mut *conn).await.unwrap();
                let nulls = vec!["NULL"; params].join(", ");
                sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE wallet_{name}({nulls})"))).fetch_all(&mut *conn).await.unwrap().iter().map(|r| r.get(0)).collect()
            }
            Backend::Sqlite => {
                let q = (0..params).fold(sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {text}"))), |q, _| q.bind(None::<String>));
                q.fetch_all(&mut *conn).await.unwrap().iter().map(|r| r.get::<String, _>(3)).collect()
            }
        };
        let shown = plan.join("\n");
        let mut searches = 0;
        for (i, line) in plan.iter().enumerate() {
            match backend {
                Backend::Postgres => {
                    for wrong in ["Seq Scan", "Bitmap", "Materialize", "Hash Join", "Merge Join", "Join Filter"] {
                        assert!(!line.contains(wrong), "{name}: {wrong} in the plan\n{shown}");
                    }
                    if line.contains("Index Scan") || line.contains("Index Only Scan") {
                        searches += 1;
                        let details = plan[i + 1..].iter().take_while(|l| !l.trim_start().starts_with("->"));
                        assert!(details.clone().any(|l| l.contains("Index Cond")), "{name}: an index scanned whole\n{shown}");
                    }
                }
                Backend::Sqlite => {
                    assert!(!line.contains("AUTOMATIC"), "{name}: an index made for the query\n{shown}");
                    // Scanning the JSON keys, or the rows of a subquery, is no table scan.
                    let subquery = |l: &String| line.strip_prefix("SCAN ").is_some_and(|x| l.strip_prefix("CO-ROUTINE ").or(l.strip_prefix("MATERIALIZE ")) == Some(x));
                    assert!(!line.starts_with("SCAN ") || line.contains("VIRTUAL TABLE") || plan[..i].iter().any(subquery), "{name}: a table scanned\n{shown}");
                    searches += usize::from(line.starts_with("SEARCH "));
                }
            }
        }
        let lookups = text.matches(" JOIN ").count() + usize::from(name == "update_balances");
        assert!(searches >= lookups, "{name}: {searches} index searches for {lookups} tables\n{shown}");
    }
    // The session's settings and prepared statements must not go back to the pool.
    let _ = sqlx::Connection::close(conn.detach()).await;
}

/// The account's person as a club member with an active card and 750 points: (member, card).
async fn club_member_with_points(store: &Store, account: i64, card: &str) -> (i64, String) {
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM iaccounts WHERE id = $1").bind(account).fetch_one(store.read()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let member = floor_server::club::create_member(&mut tx, person, T0).await.unwrap();
    let number = floor_protocol::CardNumber::new(card.to_owned());
    let card_id = floor_server::club::issue_card(&mut tx, member, &number, T0).await.unwrap();
    tx.commit().await.unwrap();
    floor_server::club::set_card_state(store, card_id, club_rules::CardState::Active, &staff(), T0).await.unwrap();
    let manager = Actor::Staff { id: 6, username: "manager".into() };
    let at = floor_server::ledger::time(T0).unwrap();
    floor_server::ledger::request_correction(store, &Rules::default(), member, Points(750), "opening balance", &manager, at).await.unwrap().unwrap();
    (member, floor_server::club::normalise_card(&number).unwrap())
}

/// What the floor says about a card at `now`: the member's state, points and the card-in decision.
async fn on_the_floor(store: &Store, member: i64, card: &str, now: i64) -> (String, Points, Result<(), club_rules::RefusalCode>) {
    let state: String = sqlx::query_scalar("SELECT state FROM members WHERE id = $1").bind(member).fetch_one(store.read()).await.unwrap();
    let points = floor_server::ledger::balances(store, member).await.unwrap().points;
    let mut tx = store.begin().await.unwrap();
    let holder = floor_server::club::card_holder(&mut tx, card, now).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    (state, points, floor_server::club::card_in_decision(&holder))
}

async fn blocks_sent_for(store: &Store, card: &str) -> usize {
    let messages: Vec<String> = sqlx::query_scalar("SELECT message FROM terminal_broadcasts").fetch_all(store.read()).await.unwrap();
    messages.iter().filter(|m| m.contains("block_card") && m.contains(card)).count()
}

async fn closing_the_i_account_ends_the_club_membership_and_blocks_the_card(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 5000).await;
    let (member, card) = club_member_with_points(&store, id, "CLOSE00001").await;
    assert_eq!(on_the_floor(&store, member, &card, T0 + 1).await, ("active".into(), Points(750), Ok(())));
    let (close, _) = responsible::request_close(&store, id, T0 + 1).await.unwrap();
    assert_eq!(on_the_floor(&store, member, &card, T0 + 2).await.0, "active", "a request alone changes nothing");
    let before = blocks_sent_for(&store, &card).await;
    responsible::confirm(&store, &Rules::default(), id, close, T0 + HOUR).await.unwrap();
    // The member's own request (RULES.md 1, End of membership): the points stay, unusable, and
    // the card no longer opens a session; every terminal gets the block at once.
    let (state, points, decision) = on_the_floor(&store, member, &card, T0 + HOUR + 1).await;
    assert_eq!((state.as_str(), points), ("left", Points(750)));
    assert!(decision.is_err(), "the club card is refused after the closing: {decision:?}");
    assert_eq!(blocks_sent_for(&store, &card).await, before + 1);
    let ended: Vec<(String, String)> = sqlx::query_as("SELECT actor, after FROM audit_log WHERE action = 'membership.end'").fetch_all(store.read()).await.unwrap();
    assert_eq!(ended, vec![("system:iaccount.close".to_owned(), "\"member_request\"".to_owned())]);
    // Reopening the online account on request does not bring the membership back.
    responsible::reopen(&store, id, &staff(), T0 + 2 * HOUR).await.unwrap();
    assert_eq!(on_the_floor(&store, member, &card, T0 + 2 * HOUR).await.0, "left");
}

async fn an_i_account_without_a_club_membership_closes_alone(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 0).await;
    let (close, _) = responsible::request_close(&store, id, T0).await.unwrap();
    assert_eq!(responsible::confirm(&store, &Rules::default(), id, close, T0 + 1).await.unwrap(), responsible::Confirmed::Closed);
    assert_eq!(iaccount::get(&store, id).await.unwrap().state, iaccount::AccountState::Closed);
}

async fn a_minor_found_later_loses_the_club_membership_and_its_points(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 0).await;
    let (member, card) = club_member_with_points(&store, id, "MINOR00001").await;
    let before = blocks_sent_for(&store, &card).await;
    floor_server::iaccount::register::close_minor(&store, &Rules::default(), id, &staff(), T0 + 1).await.unwrap();
    // A minor may not be a member: ended as a breach of the club's rules, so the points are deleted.
    let (state, points, decision) = on_the_floor(&store, member, &card, T0 + 2).await;
    assert_eq!((state.as_str(), points), ("terminated", Points(0)));
    assert!(decision.is_err());
    assert_eq!(blocks_sent_for(&store, &card).await, before + 1);
    let reason: String = sqlx::query_scalar("SELECT ended_reason FROM members WHERE id = $1").bind(member).fetch_one(store.read()).await.unwrap();
    assert_eq!(reason, "breach_of_club_rules");
}

async fn a_long_self_exclusion_and_closing_wait_for_confirmation(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 5000).await;
    let ExclusionOutcome::AwaitingConfirmation { request_id, confirm_by } = responsible::self_exclude(&store, id, 730, T0).await.unwrap() else {
        panic!("a two-year exclusion needs confirmation")
    };
    assert_eq!(confirm_by, T0 + 72 * HOUR);
    wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 100), T0 + 1).await.unwrap();
    assert!(responsible::confirm(&store, &Rules::default(), id, request_id, T0 + 73 * HOUR).await.is_err(), "too late");
    let ExclusionOutcome::AwaitingConfirmation { request_id, .. } = responsible::self_exclude(&store, id, 730, T0 + 2).await.unwrap() else {
        panic!()
    };
    responsible::confirm(&store, &Rules::default(), id, request_id, T0 + 3).await.unwrap();
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token, "b2", 100), T0 + 4).await), Refusal::SelfExcluded);

    let (id2, token2) = funded(&store, 2, 5000).await;
    let (close, _) = responsible::request_close(&store, id2, T0).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token2, "c1", 100), T0 + 1).await.unwrap();
    let token2 = wallet::launch(&store, id2, GAME_SERVER, "slot", T0 + 20 * 24 * HOUR - 1).await.unwrap();
    responsible::confirm(&store, &Rules::default(), id2, close, T0 + 20 * 24 * HOUR).await.unwrap();
    assert_eq!(refused(wallet::bet(&store, GAME_SERVER, &req(&token2, "c2", 100), T0 + 20 * 24 * HOUR).await), Refusal::Blocked);
    responsible::reopen(&store, id2, &staff(), T0 + 30 * 24 * HOUR).await.unwrap();
    let token3 = wallet::launch(&store, id2, GAME_SERVER, "slot", T0 + 30 * 24 * HOUR).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token3, "c3", 100), T0 + 30 * 24 * HOUR).await.unwrap();
}

async fn a_bonus_is_wagered_by_regular_bets_only_and_voided_by_an_early_withdrawal(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, token) = funded(&store, 1, 2000).await;
    cashier::grant_bonus(&store, id, eur(1000), 3, &staff(), T0).await.unwrap();
    // a feature bet does not count; regular bets of EUR 30.00 meet 3 x EUR 10.00
    let feature = TxnRequest { regular: false, ..req(&token, "f1", 500) };
    wallet::bet(&store, GAME_SERVER, &feature, T0).await.unwrap();
    assert_eq!(iaccount::get(&store, id).await.unwrap().wagering_left, eur(3000));
    wallet::bet(&store, GAME_SERVER, &req(&token, "b1", 400), T0).await.unwrap();
    assert_eq!(iaccount::get(&store, id).await.unwrap().wagering_left, eur(2600));
    wallet::win(&store, GAME_SERVER, &req(&token, "w1", 2500), T0).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token, "b2", 2600), T0).await.unwrap();
    let a = iaccount::get(&store, id).await.unwrap();
    assert_eq!((a.wagering_left, a.balances.bonus), (eur(0), eur(0)), "the requirement is met and the bonus staked");

    let (id2, token2) = funded(&store, 2, 2000).await;
    cashier::grant_bonus(&store, id2, eur(1000), 3, &staff(), T0).await.unwrap();
    wallet::bet(&store, GAME_SERVER, &req(&token2, "x1", 300), T0).await.unwrap();
    let w = cashier::request_withdrawal(&store, id2, WithdrawalMethod::Desk, eur(500), T0).await.unwrap();
    assert_eq!(w.bonus_voided, eur(700));
    let a = iaccount::get(&store, id2).await.unwrap();
    assert_eq!((a.balances.bonus, a.balances.deposited, a.wagering_left), (eur(0), eur(1500), eur(0)));
    assert_ledger_matches(&store, id2).await;
}

async fn withdrawals_need_10_eur_to_a_bank_are_held_above_the_aml_threshold_and_cancel_while_pending(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 500_000).await;
    assert_eq!(refused(cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(999), T0).await), Refusal::BelowMinimum);
    let small = cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(1000), T0).await.unwrap();
    assert_eq!(small.state, WithdrawalState::Pending);
    let big = cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(300_000), T0).await.unwrap();
    assert_eq!(big.state, WithdrawalState::Review);
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(199_000));
    cashier::cancel_withdrawal(&store, id, big.id, T0).await.unwrap();
    assert!(cashier::cancel_withdrawal(&store, id, big.id, T0).await.is_err(), "cancelled once");
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(499_000));
    cashier::mark_paid(&store, &Rules::default(), small.id, WithdrawalMethod::Bank, &staff(), T0).await.unwrap();
    assert!(cashier::cancel_withdrawal(&store, id, small.id, T0).await.is_err(), "a paid withdrawal cannot be cancelled");
    assert!(matches!(
        refused(cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(600_000), T0).await),
        Refusal::InsufficientFunds { .. }
    ));
    let (desk, cash) = cashier::desk_withdrawal(&store, &Rules::default(), id, eur(5000), &staff(), T0).await.unwrap();
    assert_eq!(desk.state, WithdrawalState::Paid);
    assert_eq!(cash.map(|c| c.day_total), Some(eur(500_000 + 5000)), "the desk's deposit and this withdrawal, in the day's cash");
    assert!(cashier::desk_withdrawal(&store, &Rules::default(), id, eur(5000), &Actor::System("x"), T0).await.is_err(), "staff only");
    assert_ledger_matches(&store, id).await;
}

async fn a_held_withdrawal_is_rejected_or_approved_by_staff_and_each_decision_is_audited(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 900_000).await;
    let rejected = cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(300_000), T0).await.unwrap();
    let approved = cashier::request_withdrawal(&store, id, WithdrawalMethod::Bank, eur(400_000), T0).await.unwrap();
    assert_eq!((rejected.state, approved.state), (WithdrawalState::Review, WithdrawalState::Review));
    assert!(cashier::review_withdrawal(&store, rejected.id, false, &Actor::System("x"), T0).await.is_err(), "staff only");
    cashier::review_withdrawal(&store, rejected.id, false, &staff(), T0).await.unwrap();
    assert!(cashier::review_withdrawal(&store, rejected.id, true, &staff(), T0).await.is_err(), "decided once");
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(500_000), "a rejection gives the money back");
    assert!(cashier::mark_paid(&store, &Rules::default(), approved.id, WithdrawalMethod::Bank, &staff(), T0).await.is_err(), "not paid before approval");
    cashier::review_withdrawal(&store, approved.id, true, &staff(), T0).await.unwrap();
    cashier::mark_paid(&store, &Rules::default(), approved.id, WithdrawalMethod::Bank, &staff(), T0).await.unwrap();
    assert!(cashier::cancel_withdrawal(&store, id, approved.id, T0).await.is_err(), "a paid withdrawal cannot be cancelled");
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(500_000));
    // A bank withdrawal is no cash at the desk: only the desk deposit that funded the account counts.
    let person = iaccount::get(&store, id).await.unwrap().person_id;
    let day = |store: Store| async move { cashdesk::day_total(&store, &Rules::default(), person, T0).await.unwrap() };
    assert_eq!(day(store.clone()).await, eur(900_000));
    // A desk withdrawal held for review is cash when the desk pays it out after approval.
    let (held, cash) = cashier::desk_withdrawal(&store, &Rules::default(), id, eur(250_000), &staff(), T0).await.unwrap();
    assert_eq!((held.state, cash), (WithdrawalState::Review, None), "held: no cash leaves the desk");
    assert_eq!(day(store.clone()).await, eur(900_000));
    cashier::review_withdrawal(&store, held.id, true, &staff(), T0).await.unwrap();
    assert!(cashier::mark_paid(&store, &Rules::default(), held.id, WithdrawalMethod::Bank, &staff(), T0).await.is_err(), "cash is paid at a desk, not marked paid as a transfer");
    let paid = cashier::mark_paid(&store, &Rules::default(), held.id, WithdrawalMethod::Desk, &staff(), T0).await.unwrap();
    assert_eq!(paid.map(|c| c.day_total), Some(eur(1_150_000)));
    assert_eq!(day(store.clone()).await, eur(1_150_000));
    let audited: Vec<(String, String)> =
        sqlx::query_as("SELECT action, subject FROM audit_log WHERE action LIKE 'iaccount.withdrawal_%' ORDER BY id")
            .fetch_all(store.read())
            .await
            .unwrap();
    let expected = [
        ("iaccount.withdrawal_reject", rejected.id),
        ("iaccount.withdrawal_approve", approved.id),
        ("iaccount.withdrawal_paid", approved.id),
        ("iaccount.withdrawal_approve", held.id),
        ("iaccount.withdrawal_paid", held.id),
    ]
    .map(|(a, w)| (a.to_owned(), format!("withdrawal:{w}")));
    assert_eq!(audited, expected);
    assert_ledger_matches(&store, id).await;
}

async fn a_voucher_deposits_its_amount_once(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 0).await;
    let buyer = iaccount::get(&store, id).await.unwrap().person_id;
    let (code, cash) = cashier::sell_voucher(&store, &Rules::default(), buyer, eur(2500), &staff(), T0).await.unwrap();
    assert_eq!(cash.day_total, eur(2500), "the voucher's cash is recorded for the buyer's day");
    assert_eq!(cashier::redeem_voucher(&store, id, &code.to_lowercase(), T0).await.unwrap(), eur(2500));
    assert!(cashier::redeem_voucher(&store, id, &code, T0).await.is_err());
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.deposited, eur(2500));
}

async fn a_bank_statement_credits_each_line_once(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (id, _token) = funded(&store, 1, 0).await;
    let player_no: String = sqlx::query_scalar("SELECT player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(store.read()).await.unwrap();
    let csv = format!("booked_on,amount,reference,bank_ref\n2026-05-01,25.00,{player_no},B1\n2026-05-01,10.50,P99999999,B2\n");
    let first = cashier::import_bank_statement(&store, &csv, &staff(), T0).await.unwrap();
    assert_eq!((first.credited, first.unmatched, first.repeated), (1, 1, 0));
    let again = cashier::import_bank_statement(&store, &csv, &staff(), T0).await.unwrap();
    assert_eq!((again.credited, again.repeated), (0, 2));
    assert_eq!(iaccount::get(&store, id).await.unwrap().balances.deposited, eur(2500));
    assert!(cashier::import_bank_statement(&store, "date,amount\n", &staff(), T0).await.is_err());
    assert!(cashier::import_bank_statement(&store, "booked_on,amount,reference,bank_ref\n2026-05-01,1.001,X,B3\n", &staff(), T0).await.is_err());
}

async fn inactive_accounts_are_paid_out_or_written_off(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (rich, _) = funded(&store, 1, 5000).await;
    let (poor, _) = funded(&store, 2, 100).await;
    let (recent, _) = funded(&store, 3, 5000).await;
    let year = 365 * 24 * HOUR;
    cashier::desk_deposit(&store, &Rules::default(), recent, eur(100), &staff(), T0 + year).await.unwrap();
    let run = iaccount::jobs::inactivity(&store, T0 + year + HOUR).await.unwrap();
    assert_eq!((run.paid_out, run.written_off), (1, 1));
    for id in [rich, poor] {
        assert_eq!(iaccount::get(&store, id).await.unwrap().balances.total(), eur(0));
        assert_ledger_matches(&store, id).await;
    }
    assert_eq!(iaccount::get(&store, recent).await.unwrap().balances.total(), eur(5100));
    let again = iaccount::jobs::inactivity(&store, T0 + year + 2 * HOUR).await.unwrap();
    assert_eq!((again.paid_out, again.written_off), (0, 0));
}

async fn the_ledger_refuses_edits(backend: Backend) {
    let Some((_db, store)) = setup(backend).await else { return };
    let (_id, _token) = funded(&store, 1, 100).await;
    assert!(sqlx::query("UPDATE wallet_ledger SET deposit_cents = 1000000").execute(store.read()).await.is_err());
    assert!(sqlx::query("DELETE FROM wallet_ledger").execute(store.read()).await.is_err());
}

on_both_backends!(
    closing_the_i_account_ends_the_club_membership_and_blocks_the_card,
    an_i_account_without_a_club_membership_closes_alone,
    a_minor_found_later_loses_the_club_membership_and_its_points,
    stakes_come_from_bonus_then_deposits_then_winnings,
    a_repeated_bet_is_answered_again_and_charged_once,
    a_rollback_gives_back_the_stake_once,
    a_rollback_before_its_bet_refuses_the_bet,
    a_batch_that_waited_for_an_account_sees_what_the_transaction_before_it_stored,
    after_the_token_expires_bets_are_refused_but_wins_and_rollbacks_accepted,
    insufficient_funds_is_refused_with_the_balance,
    a_thousand_concurrent_bets_never_overdraw_one_account,
    a_thousand_concurrent_bets_in_group_commits_never_overdraw_one_account,
    requests_in_batches_are_decided_exactly_as_one_at_a_time,
    a_request_that_faults_is_answered_alone_and_the_rest_of_its_batch_commits,
    a_random_workload_leaves_the_ledger_equal_to_the_balances,
    a_loss_limit_refuses_the_bet_that_could_pass_it_and_raising_waits_24_hours,
    a_deposit_limit_refuses_the_deposit_over_it,
    an_online_self_exclusion_refuses_play_and_the_club_card_but_not_withdrawal,
    a_floor_ban_refuses_online_play,
    a_register_entry_matched_by_personal_id_or_name_and_birth_date_refuses_online_bets,
    every_wallet_lookup_is_an_index_search_per_key_whatever_the_statistics,
    a_long_self_exclusion_and_closing_wait_for_confirmation,
    a_bonus_is_wagered_by_regular_bets_only_and_voided_by_an_early_withdrawal,
    withdrawals_need_10_eur_to_a_bank_are_held_above_the_aml_threshold_and_cancel_while_pending,
    a_held_withdrawal_is_rejected_or_approved_by_staff_and_each_decision_is_audited,
    a_voucher_deposits_its_amount_once,
    a_bank_statement_credits_each_line_once,
    inactive_accounts_are_paid_out_or_written_off,
    the_ledger_refuses_edits,
);
