//! The SQLite writer: one thread, one connection, group commit.
//!
//! With `synchronous=FULL` every commit waits for the disk, and through sqlx every
//! statement of a transaction is a round trip to a connection's worker thread. Creating
//! plans at the rate of a busy API spent its time in those two places, not in SQLite. So
//! the hot writes (a plan with its executors and audit, a run-now executor) go to this
//! thread as ready statements (built by sea-orm's query builders, the same statements the
//! PostgreSQL path executes); it takes whatever writes are queued, runs each in a
//! savepoint of one transaction (a failing one rolls back alone), commits once, and only
//! then answers each caller. A caller is never answered before its commit, and one fsync
//! serves the whole batch.
//!
//! The writer holds the store's write gate for each batch, so the other (sea-orm) writers
//! of this process and it never meet in SQLite's busy handler.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use sea_orm::sea_query::Value;
use tokio::sync::oneshot;

use cme_engine::StorageError;

/// The most writes one transaction takes: bounds a batch's latency and size.
const MAX_BATCH: usize = 256;

/// How long the writer's connection waits for SQLite's locks.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the writer could not take or commit a write (a write's own refusal is its `E`).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("the database writer could not commit: {0}")]
    Commit(String),
    #[error("the database writer is gone")]
    Gone,
}

/// Connection settings for the writer's connection (the pool's, see `StoreConfig`).
pub(crate) struct WriterConfig<'a> {
    pub path: &'a Path,
    pub synchronous_full: bool,
    /// The checkpoint thread: nudged after each commit that kept a write, and the one that
    /// may ask the writer to restart the WAL.
    pub checkpointer: Option<Arc<crate::checkpoint::Checkpointer>>,
    /// The database's file system: a batch is refused, whole, while it has too little
    /// room (see `room`).
    pub room: Option<Arc<crate::room::Room>>,
}

/// A handle on the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

/// One queued write, erased: run in the open transaction (true: keep its changes), then
/// told how the transaction ended.
trait Job: Send {
    fn run(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Typed<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<Result<T, E>, WriteError>>,
}

impl<T: Send, E: Send + From<StorageError>, F: FnOnce(&Connection) -> Result<T, E> + Send> Job for Typed<T, E, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let work = self.work.take().expect("a job runs once");
        // A panicking job fails alone; the writer keeps serving the others.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(E::from(StorageError::Unavailable("the write panicked".into()))));
        let kept = result.is_ok();
        self.result = Some(result);
        kept
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let outcome = match (self.result, committed) {
            // Its own refusal stands whatever became of the others: it stored nothing.
            (Some(Err(e)), _) => Ok(Err(e)),
            (Some(Ok(value)), Ok(())) => Ok(Ok(value)),
            (Some(Ok(_)) | None, Err(why)) => Err(WriteError::Commit(why)),
            (None, Ok(())) => Err(WriteError::Commit("the write was not run".into())),
        };
        let _ = self.reply.send(outcome);
    }
}

impl Writer {
    /// Opens the writer's connection and starts its thread. `after_commit` runs after each
    /// commit that kept a write, before the gate is released (the outbox signal).
    pub(crate) fn start(
        config: WriterConfig<'_>,
        gate: Arc<tokio::sync::Mutex<()>>,
        after_commit: impl Fn() + Send + 'static,
    ) -> rusqlite::Result<Writer> {
        let conn = Connection::open(config.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Each write runs in a savepoint: its statement journal stays in memory (on disk,
        // SQLite would create and delete a temporary file for it, every write).
        // Checkpoints are the checkpoint thread's (see `checkpoint`), never a commit's.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; {}",
            if config.synchronous_full { "FULL" } else { "NORMAL" },
            crate::checkpoint::writer_pragmas(),
        ))?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let path = config.path.to_path_buf();
        let (checkpointer, room) = (config.checkpointer, config.room);
        std::thread::Builder::new()
            .name("cme-sqlite-writer".into())
            .spawn(move || serve(conn, &path, queue, gate, after_commit, checkpointer.as_deref(), room.as_deref()))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` in the next group transaction and answers after its commit: its value,
    /// its own refusal (nothing of it kept), or the writer's failure as a storage error.
    pub(crate) async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + From<StorageError> + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let unavailable = |e: WriteError| E::from(StorageError::Unavailable(e.to_string()));
        self.jobs
            .send(Box::new(Typed { work: Some(work), result: None, reply }))
            .map_err(|_| unavailable(WriteError::Gone))?;
        answer.await.map_err(|_| unavailable(WriteError::Gone))?.map_err(unavailable)?
    }
}

fn serve(
    conn: Connection,
    path: &Path,
    queue: mpsc::Receiver<Box<dyn Job>>,
    gate: Arc<tokio::sync::Mutex<()>>,
    after_commit: impl Fn(),
    checkpointer: Option<&crate::checkpoint::Checkpointer>,
    room: Option<&crate::room::Room>,
) {
    // Blocks without CPU until a write comes; whatever queued meanwhile joins its batch.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let gate = gate.blocking_lock();
        let began = std::time::Instant::now();
        let committed = match room.map(crate::room::Room::check).transpose() {
            Err(full) => Err(full.to_string()),
            Ok(_) => run_batch(&conn, &mut batch).map_err(|why| diagnosed(path, why)),
        };
        tracing::debug!(writes = batch.len(), committed_us = began.elapsed().as_micros() as u64, "write batch");
        if matches!(committed, Ok(true)) {
            after_commit();
            if let Some(checkpointer) = checkpointer {
                checkpointer.nudge();
            }
        }
        drop(gate);
        let committed = committed.map(|_| ());
        for job in batch {
            job.finish(committed.clone());
        }
        // After the callers are answered: the copy delays only the next batch.
        if let Some(wait) = checkpointer.and_then(|c| c.take_restart_due()) {
            crate::checkpoint::restart_on_the_writer(&conn, wait, BUSY_TIMEOUT);
        }
    }
}

/// One transaction for the batch: Ok(whether any write was kept), or why it did not commit.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<bool, String> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    let mut kept_any = false;
    let outcome = (|| {
        for job in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT write").map_err(|e| e.to_string())?;
            if job.run(conn) {
                kept_any = true;
                conn.execute_batch("RELEASE write").map_err(|e| e.to_string())?;
            } else {
                conn.execute_batch("ROLLBACK TO write; RELEASE write").map_err(|e| e.to_string())?;
            }
        }
        conn.execute_batch("COMMIT").map_err(|e| e.to_string())
    })();
    match outcome {
        Ok(()) => Ok(kept_any),
        Err(why) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(why)
        }
    }
}

/// A failed commit's message, with what SQLite does not say: a file system turned
/// read-only makes SQLite answer "database is locked" or "disk I/O error", which would
/// send an operator looking for another writer instead of at the disk.
fn diagnosed(path: &Path, why: String) -> String {
    match std::fs::OpenOptions::new().append(true).open(path) {
        Err(e) if e.raw_os_error() == Some(30) => {
            format!("{why} (the database's file system is read-only: os error 30)")
        }
        _ => why,
    }
}

/// A rusqlite error as the engine's storage error.
pub(crate) fn unavailable(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// A statement's bound values as SQLite takes them.
fn params(statement: &sea_orm::Statement) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    statement.values.iter().flat_map(|values| values.0.iter()).map(sqlite_value).collect()
}

/// Executes a statement sea-orm built for SQLite; the number of rows it changed.
pub(crate) fn execute(conn: &Connection, statement: &sea_orm::Statement) -> Result<usize, StorageError> {
    let mut prepared = conn.prepare_cached(&statement.sql).map_err(unavailable)?;
    prepared.execute(rusqlite::params_from_iter(params(statement).map_err(unavailable)?)).map_err(unavailable)
}

/// The executors a statement answers (a `SELECT` or `... RETURNING` of
/// `readers::EXECUTOR_COLUMNS` or `LISTED_EXECUTOR_COLUMNS`), as the engine's executors.
pub(crate) fn query_executors(
    conn: &Connection,
    statement: &sea_orm::Statement,
) -> Result<Vec<cme_engine::Executor>, StorageError> {
    let mut prepared = conn.prepare_cached(&statement.sql).map_err(unavailable)?;
    let rows = prepared
        .query_map(rusqlite::params_from_iter(params(statement).map_err(unavailable)?), crate::readers::executor_row)
        .map_err(unavailable)?;
    rows.map(|row| row.map_err(unavailable).and_then(crate::convert::executor)).collect()
}

/// sea-query's value as SQLite stores it (our columns hold integers, reals, text and bytes).
fn sqlite_value(value: &Value) -> rusqlite::Result<rusqlite::types::Value> {
    use rusqlite::types::Value as Sql;
    let integer = |v: Option<i64>| v.map_or(Sql::Null, Sql::Integer);
    Ok(match value {
        Value::Bool(v) => integer(v.map(i64::from)),
        Value::TinyInt(v) => integer(v.map(i64::from)),
        Value::SmallInt(v) => integer(v.map(i64::from)),
        Value::Int(v) => integer(v.map(i64::from)),
        Value::BigInt(v) => integer(*v),
        Value::TinyUnsigned(v) => integer(v.map(i64::from)),
        Value::SmallUnsigned(v) => integer(v.map(i64::from)),
        Value::Unsigned(v) => integer(v.map(i64::from)),
        Value::BigUnsigned(v) => match v {
            Some(v) => {
                Sql::Integer(i64::try_from(*v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?)
            }
            None => Sql::Null,
        },
        Value::Float(v) => v.map_or(Sql::Null, |v| Sql::Real(f64::from(v))),
        Value::Double(v) => v.map_or(Sql::Null, Sql::Real),
        Value::String(v) => v.clone().map_or(Sql::Null, Sql::Text),
        Value::Char(v) => v.map_or(Sql::Null, |c| Sql::Text(c.to_string())),
        Value::Bytes(v) => v.clone().map_or(Sql::Null, Sql::Blob),
        Value::Json(v) => v.as_ref().map_or(Sql::Null, |j| Sql::Text(j.to_string())),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("a value the SQLite writer does not bind: {other:?}").into(),
            ));
        }
    })
}
