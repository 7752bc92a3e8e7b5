//! Read-only SQLite connections for the hot reads (the executor list a dashboard polls).
//!
//! Through sqlx, every row of a result crosses from a connection's worker thread to the
//! caller on a channel (a wake-up per row), and sea-orm looks each column up by a name it
//! formats per row: a page of 100 executors cost more in hand-offs and allocations than in
//! SQLite. Here a query runs start to end on one blocking-pool thread, on a pooled
//! read-only connection (WAL: readers never wait for the writer), and its rows come back
//! at once.

use cme_model::Locked;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use cme_engine::StorageError;

use crate::entity::executor;

/// Connections kept open between reads (more may be opened under load; the extra ones
/// are closed when given back).
const KEPT: usize = 4;

#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The one connection `data_version` asks, with how many times it was opened.
    versions: Mutex<(Option<Connection>, u64)>,
    /// Where deep pages of executor lists start, per data version.
    pub(crate) ranks: crate::ranks::Ranks,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            versions: Mutex::new((None, 0)),
            ranks: crate::ranks::Ranks::default(),
        }
    }

    /// A number that changes whenever any connection (of this process or another) commits
    /// to the database: SQLite's `PRAGMA data_version`, asked always on the same
    /// connection (its values are only comparable there), with the number of times that
    /// connection was opened in the high bits (a reopened connection counts afresh). A few
    /// microseconds, waiting at most 5 ms for a WAL read lock: None when SQLite stays busy
    /// or the file cannot be read. A busy answer keeps the connection (and so the numbers
    /// it gives): reopening it would change the version of unchanged data, and every page
    /// and rank index kept under it would be read again.
    pub(crate) fn data_version(&self) -> Option<u64> {
        let mut versions = self.versions.locked();
        if versions.0.is_none() {
            let conn = self.open().ok()?;
            conn.busy_timeout(std::time::Duration::from_millis(5)).ok()?;
            versions.0 = Some(conn);
            versions.1 += 1;
        }
        let asked =
            versions.0.as_ref().map(|conn| conn.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)));
        match asked {
            Some(Ok(version)) => Some((versions.1 << 40) | (u64::try_from(version).ok()? & ((1 << 40) - 1))),
            Some(Err(rusqlite::Error::SqliteFailure(e, _)))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
            {
                None
            }
            _ => {
                versions.0 = None;
                None
            }
        }
    }

    /// Runs `read` on a pooled connection, off the async threads.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take().map_err(crate::writer::unavailable)?;
            let result = read(&conn);
            readers.give(conn);
            result
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("a read did not finish: {e}")))?
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle.locked().pop() {
            return Ok(conn);
        }
        let conn = self.open()?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(conn)
    }

    /// A new connection: read-write to the WAL index as every WAL reader is, refusing
    /// writes itself.
    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.locked();
        if idle.len() < KEPT {
            idle.push(conn);
        }
    }
}

/// The executor columns of a list in the order `executor_row` reads them: the run log is
/// left out (`[]`, read as an empty log; see `Storage::list_executors`).
pub(crate) const LISTED_EXECUTOR_COLUMNS: &str = "id, plan_id, due_at_us, status, attempts, lease_owner, lease_expires_us, grace_ms, \
     created_at_us, started_at_us, finished_at_us, summary, targets, details, error, '[]', dry_run, reason, outcome, NULL AS journal";

/// Every executor column, in the order `executor_row` reads them.
pub(crate) const EXECUTOR_COLUMNS: &str = "id, plan_id, due_at_us, status, attempts, lease_owner, lease_expires_us, grace_ms, \
     created_at_us, started_at_us, finished_at_us, summary, targets, details, error, log, dry_run, reason, outcome, NULL AS journal";

/// One row of `SELECT {EXECUTOR_COLUMNS}` (or `LISTED_EXECUTOR_COLUMNS`) as the entity's model.
pub(crate) fn executor_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<executor::Model> {
    Ok(executor::Model {
        id: row.get(0)?,
        plan_id: row.get(1)?,
        due_at_us: row.get(2)?,
        status: row.get(3)?,
        attempts: row.get(4)?,
        lease_owner: row.get(5)?,
        lease_expires_us: row.get(6)?,
        grace_ms: row.get(7)?,
        created_at_us: row.get(8)?,
        started_at_us: row.get(9)?,
        finished_at_us: row.get(10)?,
        summary: row.get(11)?,
        targets: row.get(12)?,
        details: row.get(13)?,
        error: row.get(14)?,
        log: row.get(15)?,
        dry_run: row.get(16)?,
        reason: row.get(17)?,
        outcome: row.get(18)?,
        // Journals are read one at a time (`RunStore::journal`), never with lists.
        journal: None,
    })
}
