//! Test support shared by this crate's tests, the end-to-end tests and the benchmarks: a fresh
//! database per test on either backend, and the server started on port 0.
//!
//! PostgreSQL comes from `CLUB_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test gets its own database, dropped afterwards. When PostgreSQL cannot be reached the
//! PostgreSQL variant of a test is skipped, unless `CLUB_REQUIRE_ALL=1` (CI), where it fails.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{ManualClock, SharedClock};
use crate::config::Config;
use crate::store::{Backend, Store};

/// Whether every outside component is required (CI).
pub fn require_all() -> bool {
    std::env::var("CLUB_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// The PostgreSQL server tests use.
pub fn pg_admin_url() -> String {
    std::env::var("CLUB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh database, or `None` (with a printed reason) when PostgreSQL is not reachable and
    /// not required.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("floor.db").display());
                Some(TestDb { url, backend, _dir: Some(dir), pg_name: None })
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("club_test_{}", uuid::Uuid::new_v4().simple());
                let created = async {
                    let store = Store::connect_with(&admin, crate::store::PoolSizes { read: 1, postgres: 1 }).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(store.read()).await?;
                    store.close().await;
                    Ok::<_, crate::Error>(())
                }
                .await;
                match created {
                    Ok(()) => {
                        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
                        Some(TestDb { url: format!("{base}/{name}"), backend, _dir: None, pg_name: Some(name) })
                    }
                    Err(e) if !require_all() => {
                        eprintln!("skipped: PostgreSQL not reachable at {}: {e}", pg_admin_url());
                        None
                    }
                    Err(e) => panic!("PostgreSQL is required (CLUB_REQUIRE_ALL=1) but not reachable: {e}"),
                }
            }
        }
    }

    /// Connects and migrates.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Dropped from a plain thread with its own runtime: Drop may run inside a runtime.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(store) = Store::connect_with(&admin, crate::store::PoolSizes { read: 1, postgres: 1 }).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                            .execute(store.read())
                            .await;
                        store.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// The floor server running in this process on a port of its own.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    pub clock: ManualClock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts on an already migrated store, with a manual clock at `start_ms`.
    pub async fn start(store: Store, start_ms: i64, config: Config) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clock = ManualClock::new(start_ms);
        let shared: SharedClock = Arc::new(clock.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::app::run(config, store.clone(), shared, listener, async {
            let _ = stopped.await;
        }));
        TestServer { addr, store, clock, stop: Some(stop), task: Some(task) }
    }

    /// Stops it as Ctrl-C would and waits until it has finished.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, floor_protocol::GATEWAY_PATH)
    }
}

/// A configuration for tests: fast broadcast polling, short shutdown grace.
pub fn test_config() -> Config {
    Config { broadcast_poll_ms: 20, shutdown_grace_secs: 5, ..Config::default() }
}

/// Declares each named `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`, so that every storage-facing test runs on both databases.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::store::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::store::Backend::Postgres).await })*
        }
    };
}
