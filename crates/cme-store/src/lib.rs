//! # cme-store: persistence for cme
//!
//! sea-orm entities and migrations for plans, executors, audit events and settings (the
//! halt switch), on SQLite (default `sqlite://cme.db?mode=rwc`, WAL, `synchronous=FULL`)
//! or PostgreSQL (by URL). The same queries serve both; the few statements that differ
//! (claiming with `FOR UPDATE SKIP LOCKED`) are chosen by backend.
//!
//! Invariant: every multi-row change that must be all-or-nothing (a plan and its
//! executors; a deletion and its cancellations) runs in one transaction.

pub mod entity;
mod migration;
mod plugins;
mod queries;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

pub use entity::{audit_event, credential, executor, plan, plugin, setting};
pub use plugins::{PluginChange, PluginRow, StoredUpload};
pub use queries::*;
pub use sea_orm::DbErr;

/// The database behind an engine.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite has one writer at a time: writers queue here instead of in SQLite's busy
    /// handler, which sleeps (up to 100 ms a try) and wrecks latency under load.
    writes: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Connection settings.
///
/// By default: SQLite `synchronous=FULL` (a committed change survives power loss) and
/// 16 pooled connections.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    pub sqlite_synchronous_full: bool,
    pub max_connections: u32,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig { url: url.into(), sqlite_synchronous_full: true, max_connections: 16 }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let mut options = ConnectOptions::new(config.url.clone());
        options
            .max_connections(config.max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let full = config.sqlite_synchronous_full;
        options.map_sqlx_sqlite_opts(move |o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(if full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
        let db = Database::connect(options).await?;
        migration::Migrator::up(&db, None).await?;
        let writes = (db.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store { db, writes })
    }

    /// Held for the duration of a write on SQLite; nothing on PostgreSQL.
    pub(crate) async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writes {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}
