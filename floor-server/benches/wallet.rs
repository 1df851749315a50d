//! Wallet benchmark: bets and wins through the real signed HTTP wallet API (`/wallet/v1`), as a
//! game server calls it, against the floor server on port 0: spread over many accounts, and all on
//! one hot account. Printed beside it, measured in the same run with the same client, concurrency
//! and database: the HTTP round trip to a trivial endpoint (a static file: no database, no
//! signature), the same bets and wins called in process through the group commit (no HTTP) and
//! one transaction per request (the design before group commit), and the raw limit of one durable
//! transaction per operation (a single-row INSERT committed on its own).
//!
//! Each figure is of a steady state: it follows a warm-up of `BENCH_WARMUP` operations of its own
//! kind, not measured, in which the writers open their connections and prepare their statements
//! and the database's caches fill (the first requests waited 30 to 40 ms, and in a figure of
//! 10,000 they counted towards the p99).
//!
//! `cargo bench -p floor-server --bench wallet` (both databases). Environment:
//! `BENCH_BACKEND=sqlite|postgres|both`, `BENCH_ACCOUNTS` (default 200), `BENCH_OPS` per
//! measurement (default 10000), `BENCH_WARMUP` before each (default 1000),
//! `BENCH_CONCURRENCY` requests in flight (default 32),
//! `BENCH_ROUNDS` (default 3; medians are reported), `BENCH_WALLET_WRITERS` (default: the
//! server's, 1 on SQLite and 2 on PostgreSQL).

// Rates and milliseconds are measurements, not money or points.
#![allow(clippy::float_arithmetic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use club_rules::Money;
use floor_server::iaccount::psp::sign;
use floor_server::iaccount::testkit::{self, GAME_SECRET, GAME_SERVER};
use floor_server::config::WalletSettings;
use floor_server::iaccount::batch::{Op, WalletWriter};
use floor_server::iaccount::wallet::{self, Kind, TxnRequest};
use floor_server::iaccount::{self, cashier};
use floor_server::store::{Backend, Store};
use floor_server::testing::{TestDb, TestServer, test_config};

const T0: i64 = 1_790_000_000_000;

mod support;
use support::{backends, env, median, run_rounds};

/// One measurement: operations per second and latency percentiles.
#[derive(Clone, Copy, Default)]
struct Figure {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Figure {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Figure {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
        Figure { per_s: latencies.len() as f64 / elapsed.as_secs_f64(), p50_ms: pct(0.50), p99_ms: pct(0.99) }
    }
}

/// What one round measured.
struct Round {
    spread: Figure,
    hot: Figure,
    in_process_spread: Figure,
    in_process_hot: Figure,
    per_txn_spread: Figure,
    per_txn_hot: Figure,
    trivial_http: Figure,
    raw_commit: Figure,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let accounts = env("BENCH_ACCOUNTS", 200).max(1);
    let load = Load { ops: env("BENCH_OPS", 10_000).max(2), warmup: env("BENCH_WARMUP", 1_000), concurrency: env("BENCH_CONCURRENCY", 32).max(1) };
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    println!(
        "wallet: {} bets and wins per measurement after {} not measured, {} in flight, spread over {accounts} accounts or on one; {rounds} rounds",
        load.ops, load.warmup, load.concurrency
    );
    for backend in backends() {
        let results = run_rounds(&runtime, backend, rounds, || round(backend, accounts, load));
        if results.is_empty() {
            continue;
        }
        let med = |f: &dyn Fn(&Round) -> Figure| {
            let pick = |g: fn(&Figure) -> f64| median(&results, |r| g(&f(r)));
            Figure { per_s: pick(|x| x.per_s), p50_ms: pick(|x| x.p50_ms), p99_ms: pick(|x| x.p99_ms) }
        };
        let line = |name: &str, f: Figure| println!("  {name:<44} {:>9.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms", f.per_s, f.p50_ms, f.p99_ms);
        println!("{backend:?} (medians of {} rounds):", results.len());
        line("HTTP wallet API, spread over accounts", med(&|r| r.spread));
        line("HTTP wallet API, one hot account", med(&|r| r.hot));
        line("in process (no HTTP), spread", med(&|r| r.in_process_spread));
        line("in process (no HTTP), one hot account", med(&|r| r.in_process_hot));
        line("in process, 1 transaction per request, spread", med(&|r| r.per_txn_spread));
        line("in process, 1 transaction per request, hot", med(&|r| r.per_txn_hot));
        line("baseline: HTTP round trip, static file", med(&|r| r.trivial_http));
        line("baseline: raw 1-row INSERT, 1 commit each", med(&|r| r.raw_commit));
        for (i, r) in results.iter().enumerate() {
            println!(
                "    round {}: spread {:.0}/s (p99 {:.2} ms), hot {:.0}/s (p99 {:.2} ms), in process {:.0}/s and {:.0}/s, per transaction {:.0}/s and {:.0}/s, static {:.0}/s, raw commit {:.0}/s",
                i + 1,
                r.spread.per_s,
                r.spread.p99_ms,
                r.hot.per_s,
                r.hot.p99_ms,
                r.in_process_spread.per_s,
                r.in_process_hot.per_s,
                r.per_txn_spread.per_s,
                r.per_txn_hot.per_s,
                r.trivial_http.per_s,
                r.raw_commit.per_s
            );
        }
    }
}

/// Accounts with money and a game session each: (account id, token).
async fn setup_accounts(store: &Store, n: usize) -> Vec<(i64, String)> {
    testkit::add_test_game_server(store, None, T0).await.unwrap();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(testkit::active_account(store, i as u32 + 1, T0).await.unwrap());
    }
    // Funded from one bank statement: EUR 1,000,000 each, so no bet runs out of money.
    let mut csv = String::from("booked_on,amount,reference,bank_ref\n");
    for id in &ids {
        let player_no: String = sqlx::query_scalar("SELECT player_no FROM iaccounts WHERE id = $1").bind(id).fetch_one(store.read()).await.unwrap();
        csv.push_str(&format!("2026-01-01,1000000.00,{player_no},FUND-{id}\n"));
    }
    let imported = cashier::import_bank_statement(store, &csv, &testkit::staff(), T0).await.unwrap();
    assert_eq!(imported.credited, n);
    let mut out = Vec::with_capacity(n);
    for id in ids {
        out.push((id, wallet::launch(store, id, GAME_SERVER, "slot", T0).await.unwrap()));
    }
    out
}

/// How much each measurement runs.
#[derive(Clone, Copy)]
struct Load {
    /// Operations measured.
    ops: usize,
    /// Operations run before them, not measured.
    warmup: usize,
    /// Operations in flight.
    concurrency: usize,
}

async fn round(backend: Backend, n: usize, load: Load) -> Option<Round> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    let accounts = Arc::new(setup_accounts(&store, n).await);
    let mut config = test_config();
    config.wallet.writers = writers(backend);
    let server = TestServer::start(store.clone(), T0, config).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::builder().pool_max_idle_per_host(load.concurrency).build().unwrap();

    let trivial_http = drive(load, {
        let (http, base) = (http.clone(), base.clone());
        move |_| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let r = http.get(format!("{base}/static/refresh.js")).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
            }
        }
    })
    .await;
    let spread = drive(load, http_op(&http, &base, &accounts, "s", false)).await;
    let hot = drive(load, http_op(&http, &base, &accounts, "h", true)).await;
    let (writer, writer_tasks) = WalletWriter::start(store.clone(), &WalletSettings { writers: writers(backend), ..WalletSettings::default() });
    let in_process_spread = drive(load, grouped_op(&writer, &accounts, "gs", false)).await;
    let in_process_hot = drive(load, grouped_op(&writer, &accounts, "gh", true)).await;
    drop(writer);
    for t in writer_tasks {
        t.await.unwrap();
    }
    let per_txn_spread = drive(load, direct_op(&store, &accounts, "ds", false)).await;
    let per_txn_hot = drive(load, direct_op(&store, &accounts, "dh", true)).await;
    for (id, _) in accounts.iter() {
        let a = iaccount::get(&store, *id).await.unwrap();
        let sums = iaccount::ledger_sums(&store, *id).await.unwrap();
        assert_eq!(sums.deposit + sums.winnings + sums.bonus, a.balances.total().cents(), "the ledger sums to the balance");
    }
    let raw_commit = raw_commits(&store, accounts[0].0, load).await;
    // The server closes the store when it stops.
    server.shutdown().await.unwrap();
    Some(Round { spread, hot, in_process_spread, in_process_hot, per_txn_spread, per_txn_hot, trivial_http, raw_commit })
}

/// Runs the warm-up, then the measured operations (`op(i)` is the i-th: 0 to `ops` measured, the
/// warm-up's after them), `concurrency` at a time. Returns the measured figure.
async fn drive<F, Fut>(load: Load, op: F) -> Figure
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    run(load.ops..load.ops + load.warmup, load.concurrency, op.clone()).await;
    run(0..load.ops, load.concurrency, op).await
}

/// Runs the operations `ops`, `concurrency` at a time. Returns their figure.
async fn run<F, Fut>(ops: std::ops::Range<usize>, concurrency: usize, op: F) -> Figure
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    if ops.is_empty() {
        return Figure::default();
    }
    let next = Arc::new(AtomicUsize::new(ops.start));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops.end {
                        break latencies;
                    }
                    let t = Instant::now();
                    op(i).await;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(ops.len());
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    Figure::of(latencies, start.elapsed())
}

/// The i-th operation's request: even ones bet EUR 1.00, odd ones win EUR 1.00 in the same round.
fn request(accounts: &[(i64, String)], tag: &str, hot: bool, i: usize) -> (bool, TxnRequest) {
    let pair = i / 2;
    // spread: consecutive pairs go to different accounts (a multiplicative step covers them all)
    let k = if hot { 0 } else { (pair * 7919) % accounts.len() };
    let bet = i.is_multiple_of(2);
    let req = TxnRequest {
        token: accounts[k].1.clone(),
        transaction_id: format!("{tag}-{i}"),
        round_id: format!("{tag}-r{pair}"),
        amount: Money::from_cents(100),
        regular: true,
        rollback_transaction_id: None,
    };
    (bet, req)
}

fn http_op(http: &reqwest::Client, base: &str, accounts: &Arc<Vec<(i64, String)>>, tag: &'static str, hot: bool) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone + Send + 'static {
    let (http, base, accounts) = (http.clone(), base.to_owned(), accounts.clone());
    move |i| {
        let (http, base) = (http.clone(), base.clone());
        let (bet, req) = request(&accounts, tag, hot, i);
        Box::pin(async move {
            let body = serde_json::to_vec(&req).unwrap();
            let path = if bet { "bet" } else { "win" };
            let r = http
                .post(format!("{base}/wallet/v1/{path}"))
                .header("x-game-server", GAME_SERVER)
                .header("x-signature", sign(GAME_SECRET, &body))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
        })
    }
}

/// The number of wallet writers: the server's default (`[wallet] writers = 0`) unless
/// `BENCH_WALLET_WRITERS` says otherwise.
fn writers(backend: Backend) -> usize {
    env("BENCH_WALLET_WRITERS", floor_server::iaccount::batch::default_writers(backend))
}

fn grouped_op(writer: &WalletWriter, accounts: &Arc<Vec<(i64, String)>>, tag: &'static str, hot: bool) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone + Send + 'static {
    let (writer, accounts) = (writer.clone(), accounts.clone());
    move |i| {
        let writer = writer.clone();
        let (bet, req) = request(&accounts, tag, hot, i);
        Box::pin(async move {
            let kind = if bet { Kind::Bet } else { Kind::Win };
            writer.submit(Op::new(GAME_SERVER, kind, &req, T0)).await.unwrap();
        })
    }
}

fn direct_op(store: &Store, accounts: &Arc<Vec<(i64, String)>>, tag: &'static str, hot: bool) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone + Send + 'static {
    let (store, accounts) = (store.clone(), accounts.clone());
    move |i| {
        let store = store.clone();
        let (bet, req) = request(&accounts, tag, hot, i);
        Box::pin(async move {
            if bet {
                wallet::bet(&store, GAME_SERVER, &req, T0).await.unwrap();
            } else {
                wallet::win(&store, GAME_SERVER, &req, T0).await.unwrap();
            }
        })
    }
}

/// The raw limit: one single-row INSERT per transaction, committed with the server's
/// durability, `concurrency` at a time, into the wallet's own ledger table.
async fn raw_commits(store: &Store, account: i64, load: Load) -> Figure {
    let store = store.clone();
    drive(load, move |i| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            sqlx::query(
                "INSERT INTO wallet_ledger (account_id, kind, bonus_cents, deposit_cents, winnings_cents, reference, round_id, actor, created_at) \
                 VALUES ($1, 'win', 0, 0, 0, $2, NULL, 'bench', $3)",
            )
            .bind(account)
            .bind(format!("raw-{i}"))
            .bind(T0)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    })
    .await
}
