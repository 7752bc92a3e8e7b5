//! # cme-store: persistence for cme
//!
//! The engine's `Storage` port over sea-orm: entities and migrations for plans,
//! executors, audit events, credentials, plugins and settings (the halt switch), on
//! SQLite (default `sqlite://cme.db?mode=rwc`, WAL, `synchronous=FULL`) or PostgreSQL
//! (by URL). The same queries serve both; the few statements that differ (claiming with
//! `FOR UPDATE SKIP LOCKED`) are chosen by backend. Rows convert to the engine's types
//! at this crate's edge (`convert`); nothing of sea-orm leaves it.
//!
//! Invariant: every change that must be all-or-nothing (a plan with its executors,
//! audit event and inline credential; any operator action with its audit event; a batch
//! of results with its capability audit) runs in one transaction.

mod advisory;
mod batcher;
mod budgets;
mod checkpoint;
mod convert;
mod entity;
mod feeds;
mod migration;
mod outbox;
mod plugins;
mod queries;
mod ranks;
mod readers;
mod room;
mod sealed;
mod signals;
mod ssh_targets;
#[cfg(test)]
mod tests;
mod writer;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

pub use sealed::CredentialKey;

/// The database behind an engine.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite has one writer at a time: writers queue here instead of in SQLite's busy
    /// handler, which sleeps (up to 100 ms a try) and wrecks latency under load.
    writes: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Statements sent to the database (for tests and benchmarks that count round trips).
    statements: Arc<AtomicU64>,
    credential_key: Option<CredentialKey>,
    /// Halt and outbox signals (see `signals`).
    signals: Arc<signals::Signals>,
    /// The webhooks events are written for.
    subscriptions: Arc<[cme_engine::Subscription]>,
    /// The group-committing writer of a SQLite file (see `writer`); None on PostgreSQL
    /// and in memory (where every write goes through sea-orm).
    writer: Option<Arc<writer::Writer>>,
    /// The SQLite file's file system, checked before every write (see `room`); None on
    /// PostgreSQL and in memory.
    room: Option<Arc<room::Room>>,
    /// Read-only connections of a SQLite file for the hot reads (see `readers`).
    readers: Option<Arc<readers::Readers>>,
    /// Checkpoints a SQLite file's WAL after writes (see `checkpoint`).
    checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    /// Group commit of inserts on PostgreSQL (see `batcher`).
    batcher: Option<Arc<batcher::Batcher>>,
    /// A SQLite file's engine lock, held while the store lives (see `lock_sqlite_file`).
    _sole_engine: Option<Arc<std::fs::File>>,
}

/// Connection settings.
///
/// By default: SQLite `synchronous=FULL` (a committed change survives power loss) and
/// 16 pooled connections.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Seals credentials' private keys and passphrases at rest; None stores them as they
    /// are (tests, and engines that never store a credential).
    pub credential_key: Option<CredentialKey>,
    pub sqlite_synchronous_full: bool,
    pub max_connections: u32,
    /// The webhooks whose outbox rows changes write (none: no events are stored).
    pub subscriptions: Vec<cme_engine::Subscription>,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            sqlite_synchronous_full: true,
            max_connections: 16,
            credential_key: None,
            subscriptions: Vec::new(),
        }
    }

    /// A private in-memory SQLite database (one connection: each in-memory connection
    /// would be a database of its own), gone when the store is dropped.
    pub fn in_memory() -> Self {
        StoreConfig {
            url: "sqlite::memory:".into(),
            sqlite_synchronous_full: false,
            max_connections: 1,
            credential_key: None,
            subscriptions: Vec::new(),
        }
    }
}

/// The longest a PostgreSQL statement waits for a lock (row or advisory) before it fails.
pub const LOCK_TIMEOUT: &str = "5s";
/// The longest a PostgreSQL session may sit idle inside a transaction before the server
/// ends it (its locks released): far beyond any transaction of a live engine.
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "15s";

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot create the database file: {0}")]
    Create(#[source] std::io::Error),
    #[error("cannot connect: {0}")]
    Connect(#[source] sea_orm::DbErr),
    #[error("cannot apply the schema migrations: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("cannot open the SQLite writer's connection: {0}")]
    Writer(String),
    #[error(
        "another engine is serving the SQLite database {0} (its file is locked): a SQLite file serves one engine; replicas share a PostgreSQL database"
    )]
    InUse(String),
    #[error("cannot lock the SQLite database file {0}: {1}")]
    Lock(String, #[source] std::io::Error),
}

/// One engine per SQLite file: an exclusive `flock` on the database file, held while the
/// store lives (released by the kernel when the process dies, even by `kill -9`).
/// SQLite's own locks are POSIX record locks, which `flock` does not touch, so the
/// sqlite3 shell and backups still read the file. Two engines on one file would each
/// believe they alone claim, lease and reap.
fn lock_sqlite_file(url: &str) -> Result<Option<Arc<std::fs::File>>, ConnectError> {
    let Some(path) = sqlite_file(url) else { return Ok(None) };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        // Not created yet (mode=rwc creates it with the first connection): locked after.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConnectError::Lock(path.to_string(), e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(Arc::new(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(ConnectError::InUse(path.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(ConnectError::Lock(path.to_string(), e)),
    }
}

/// Replicas starting together must not migrate at once: the migrations run on one
/// connection holding a PostgreSQL advisory lock (released when that connection closes,
/// even if this process dies).
async fn migrate_postgres_one_at_a_time(url: &str) -> Result<(), ConnectError> {
    use sea_orm::ConnectionTrait;
    let mut options = ConnectOptions::new(url.to_string());
    options.max_connections(1).min_connections(1).connect_timeout(Duration::from_secs(10)).sqlx_logging(false);
    let single = Database::connect(options).await.map_err(ConnectError::Connect)?;
    let lock = |sql: &str| {
        sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [advisory::AdvisoryLock::Migration.key().into()],
        )
    };
    single.execute_raw(lock("SELECT pg_advisory_lock($1)")).await.map_err(ConnectError::Migrate)?;
    let migrated = migration::Migrator::up(&single, None).await;
    let _ = single.execute_raw(lock("SELECT pg_advisory_unlock($1)")).await;
    let _ = single.close().await;
    migrated.map_err(ConnectError::Migrate)
}

/// A new SQLite database file is created owner-only (0600) before SQLite opens it: it
/// holds credentials and plugin grants. (SQLite gives its -wal and -shm files the same
/// mode.) An existing file is left as the operator made it.
fn create_private_sqlite_file(url: &str) -> std::io::Result<()> {
    let Some(path) = sqlite_file(url) else { return Ok(()) };
    if !url.contains("mode=rwc") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The file a SQLite URL names (None: PostgreSQL, or a database in memory).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && !path.starts_with(':') && !url.contains("mode=memory")).then_some(path)
}

/// The SQLite write gate, held (see `Store::write_gate`).
pub(crate) struct WriteGate<'a> {
    _held: tokio::sync::MutexGuard<'a, ()>,
    checkpointer: Option<&'a checkpoint::Checkpointer>,
}

impl Drop for WriteGate<'_> {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer {
            checkpointer.nudge();
        }
    }
}

pub(crate) fn db_error(e: sea_orm::DbErr) -> cme_engine::StorageError {
    cme_engine::StorageError::Unavailable(e.to_string())
}

/// Whether a SQLite connection going back to the pool may be used again: not if a
/// transaction is open on it. SQLite rolls a transaction back by itself on some errors (a
/// full disk, an I/O error); sqlx then still counts it open (its ROLLBACK fails), and that
/// connection's next transaction would be a savepoint whose rollback leaves SQLite's
/// transaction open, holding the write lock against every other writer ("database is
/// locked" until the engine restarts). Such a connection is closed instead; closing rolls
/// back whatever it held.
async fn sqlite_reusable(conn: &mut sea_orm::sqlx::SqliteConnection) -> Result<bool, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Connection;
    // Waits for the rollback a dropped transaction queued on the connection's worker.
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for this call, and sqlite3_get_autocommit only reads it.
    let autocommit = unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
    drop(handle);
    Ok(autocommit && !conn.is_in_transaction())
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(config: &StoreConfig) -> Result<Store, ConnectError> {
        create_private_sqlite_file(&config.url).map_err(ConnectError::Create)?;
        let sole_engine = lock_sqlite_file(&config.url)?;
        let mut options = ConnectOptions::new(config.url.clone());
        options
            .max_connections(config.max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if config.max_connections == 1 {
            // An in-memory database lives as long as its one connection: never recycle it.
            options
                .idle_timeout(Duration::from_secs(u32::MAX as u64))
                .max_lifetime(Duration::from_secs(u32::MAX as u64));
        }
        if config.max_connections > 1 {
            // (Not for a one-connection in-memory database: closing it would lose it.)
            options.map_sqlx_sqlite_pool_opts(|pool| pool.after_release(|conn, _| Box::pin(sqlite_reusable(conn))));
        }
        let full = config.sqlite_synchronous_full;
        options.map_sqlx_sqlite_opts(move |o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(if full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // Checkpoints are the checkpoint thread's (see `checkpoint`), never a commit's.
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", checkpoint::WAL_SIZE_LIMIT.to_string())
        });
        // A replica paused (SIGSTOP) or cut off inside a transaction must not hold the
        // others up: a lock is waited for at most `LOCK_TIMEOUT` (the statement fails and
        // is retried, the claim's advisory lock included), and the server ends a session
        // left idle in a transaction, releasing what it held.
        options.map_sqlx_postgres_opts(|o| {
            o.options([
                ("lock_timeout", LOCK_TIMEOUT),
                ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT),
            ])
        });
        let is_postgres = config.url.starts_with("postgres");
        if is_postgres {
            migrate_postgres_one_at_a_time(&config.url).await?;
        }
        let mut db = Database::connect(options).await.map_err(ConnectError::Connect)?;
        if !is_postgres {
            migration::Migrator::up(&db, None).await.map_err(ConnectError::Migrate)?;
        }
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let writes = (db.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let signals: Arc<signals::Signals> = Default::default();
        let subscriptions: Arc<[cme_engine::Subscription]> = config.subscriptions.clone().into();
        let checkpointer = match (&writes, sqlite_file(&config.url)) {
            (Some(_), Some(path)) => Some(Arc::new(
                checkpoint::Checkpointer::start(std::path::Path::new(path), full)
                    .map_err(|e| ConnectError::Writer(e.to_string()))?,
            )),
            _ => None,
        };
        let room = sqlite_file(&config.url).map(|path| Arc::new(room::Room::of(std::path::Path::new(path))));
        let writer = match (&writes, sqlite_file(&config.url)) {
            (Some(gate), Some(path)) => {
                let signals = signals.clone();
                let announce = !subscriptions.is_empty();
                let config = writer::WriterConfig {
                    path: std::path::Path::new(path),
                    synchronous_full: full,
                    checkpointer: checkpointer.clone(),
                    room: room.clone(),
                };
                let started = writer::Writer::start(config, gate.clone(), move || {
                    if announce {
                        signals.bump_outbox();
                    }
                });
                Some(Arc::new(started.map_err(|e| ConnectError::Writer(e.to_string()))?))
            }
            _ => None,
        };
        let readers = writer
            .as_ref()
            .and(sqlite_file(&config.url))
            .map(|path| Arc::new(readers::Readers::new(std::path::Path::new(path))));
        let mut store = Store {
            db,
            writes,
            statements,
            credential_key: config.credential_key.clone(),
            signals,
            subscriptions,
            writer,
            room,
            readers,
            checkpointer,
            batcher: None,
            _sole_engine: sole_engine,
        };
        if is_postgres {
            store.batcher = Some(Arc::new(batcher::Batcher::start(store.clone())));
        }
        Ok(store)
    }

    /// Held for the duration of a write on SQLite; nothing on PostgreSQL. Released, it
    /// nudges the checkpoint thread. Refused (as a full disk) while the SQLite file's file
    /// system has less room than a write needs (see `room`).
    pub(crate) async fn write_gate(&self) -> cme_engine::storage::StorageResult<Option<WriteGate<'_>>> {
        let Some(lock) = &self.writes else { return Ok(None) };
        let held = lock.lock().await;
        if let Some(room) = &self.room {
            room.check()?;
        }
        Ok(Some(WriteGate { _held: held, checkpointer: self.checkpointer.as_deref() }))
    }

    /// Statements sent to the database since it was opened.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
