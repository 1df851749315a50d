//! Storage on two backends through one code path: sqlx's `Any` driver with portable SQL.
//!
//! SQLite is the embedded default (WAL, `synchronous=FULL`: a floor server must survive power
//! loss); PostgreSQL is chosen by a `postgres://` URL and may be shared by several floor-server
//! processes. Times are integer milliseconds, money integer cents, ids integers or text, so that
//! every query means the same on both (see `migrations/README.md`).
//!
//! Writes go through [`Store::begin`]. On SQLite that is one connection with `BEGIN IMMEDIATE`, so
//! writers queue instead of failing on lock upgrades, while reads use a separate pool that WAL lets
//! run beside the writer. On PostgreSQL both are one pool; code that changes a member first bumps
//! the member's `lock_version` ([`lock_member`]), which takes the row lock and serialises
//! concurrent processes on that member.

pub mod multirow;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of an open connection or transaction.
    pub fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") { Backend::Postgres } else { Backend::Sqlite }
    }

    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Config("database url must start with sqlite: or postgres://".into()))
        }
    }
}

/// The floor server's database.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
}

/// Pool sizes; the defaults suit the 2-core floor server.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    pub read: u32,
    pub postgres: u32,
}

impl Default for PoolSizes {
    fn default() -> Self {
        PoolSizes { read: 4, postgres: 16 }
    }
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

fn sqlite_pool(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        // An embedded database has no link to lose: a ping before every transaction would only
        // add a round trip through the driver's worker thread.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 10000",
                    // No commit copies the log back into the database file: the checkpointer does
                    // (see `checkpointer`), so no writer waits on it.
                    "PRAGMA wal_autocheckpoint = 0",
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
}

impl Store {
    /// Connects (creating an SQLite file if needed). Does not migrate.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, PoolSizes::default()).await
    }

    pub async fn connect_with(url: &str, sizes: PoolSizes) -> Result<Store> {
        install_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        match backend {
            Backend::Sqlite => {
                let write = sqlite_pool(1).connect_with(options.clone()).await?;
                let read = sqlite_pool(sizes.read).connect_with(options).await?;
                tokio::spawn(checkpointer(read.clone()));
                Ok(Store { backend, write, read })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(sizes.postgres)
                    .acquire_timeout(Duration::from_secs(30))
                    // Our statements are short and run thousands of times a second: compiling one
                    // to machine code (PostgreSQL does when its estimate passes `jit_above_cost`,
                    // which a statement over a JSON list of keys easily does) takes longer than
                    // running it, every time. Measured: the wallet's batch statement took tens of
                    // milliseconds per execution with it.
                    .after_connect(|conn, _meta| Box::pin(async move { sqlx::query("SET jit = off").execute(&mut *conn).await.map(drop) }))
                    .connect_with(options)
                    .await?;
                Ok(Store { backend, write: pool.clone(), read: pool })
            }
        }
    }

    /// Applies the embedded migrations of this backend. Safe to run from several processes at
    /// once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.write).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// A connection of the caller's own, outside the pools (the write pool opens another in its
    /// place), for a task that keeps one between transactions. PostgreSQL only: on SQLite every
    /// writer shares the one write connection ([`Store::begin`]).
    pub async fn detached(&self) -> Result<sqlx::AnyConnection> {
        if self.backend == Backend::Sqlite {
            return Err(Error::Config("SQLite writers share the one write connection".into()));
        }
        Ok(self.write.acquire().await?.detach())
    }

    /// The pool for reads that need no transaction.
    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How often the SQLite log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies SQLite's write-ahead log back into the database file, beside the writer, until the pool
/// closes. SQLite would otherwise do it inside the commit that fills the log past 1,000 pages,
/// and that commit (with every request of its batch) would wait several milliseconds for it. A
/// passive checkpoint never blocks the writer or readers; the log restarts from its beginning
/// once a checkpoint has caught up.
async fn checkpointer(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next one will catch up");
        }
    }
}

/// Takes the member's row lock for the rest of the transaction (see the module header).
pub async fn lock_member(tx: &mut Transaction<'static, Any>, member_id: i64) -> Result<()> {
    sqlx::query("UPDATE members SET lock_version = lock_version + 1 WHERE id = $1")
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A 0/1 flag column.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}
