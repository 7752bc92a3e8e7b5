//! Group commit on PostgreSQL: new plans and run-now executors queued while a transaction
//! commits are stored together in the next one.
//!
//! Every insert takes the work-caps advisory lock (the caps hold across replicas), so
//! inserts were strictly one after another, each waiting for its own commit to reach the
//! disk. Here one task takes whatever inserts are queued and stores them together; each
//! caller is answered after that commit.
//!
//! - When the batch fits under the caps (the usual case), it is one statement committed
//!   on its own: the rows, one multi-row INSERT per table (`Writes::absorb`), and the
//!   check that the counts read under the lock leave room for all of them (m0016), which
//!   undoes the statement when they do not. One round trip.
//! - Otherwise one transaction takes the lock, reads the counts once and judges each
//!   insert against them in order (counting the ones it admitted before), then stores the
//!   admitted ones' rows and commits.
//!
//! Should either fail for another reason (caps are judged before any row is kept), every
//! insert of the batch is retried alone, so that one bad insert cannot fail the others.

use tokio::sync::{mpsc, oneshot};

use cme_engine::storage::InsertPlanError;
use cme_engine::{StorageError, WorkCaps};
use sea_orm::sqlx::{self, Postgres, pool::PoolConnection};
use sea_orm::{DbBackend, Statement, TransactionTrait};
use sea_query_sqlx::SqlxValues;

use crate::writes::Writes;
use crate::{Store, db_error};

/// The most inserts one transaction takes.
const MAX_BATCH: usize = 256;

/// One queued insert: its statements, the caps it must fit and what it adds.
struct Insert {
    writes: Writes,
    caps: WorkCaps,
    plans: u64,
    executors: u64,
    reply: oneshot::Sender<Result<(), InsertPlanError>>,
}

/// A handle on the batching task; the task ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Insert>,
}

impl Batcher {
    /// Starts the task on `store` (a store without a batcher of its own).
    pub(crate) fn start(store: Store) -> Batcher {
        let (queue, inserts) = mpsc::unbounded_channel();
        tokio::spawn(serve(store, inserts));
        Batcher { queue }
    }

    pub(crate) async fn insert(
        &self,
        writes: Writes,
        caps: WorkCaps,
        plans: u64,
        executors: u64,
    ) -> Result<(), InsertPlanError> {
        let (reply, answer) = oneshot::channel();
        let gone = || InsertPlanError::from(StorageError::Unavailable("the insert batcher is gone".into()));
        self.queue.send(Insert { writes, caps, plans, executors, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn serve(store: Store, mut inserts: mpsc::UnboundedReceiver<Insert>) {
    let mut held = Held::default();
    while let Some(first) = inserts.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inserts.try_recv() {
                Ok(insert) => batch.push(insert),
                Err(_) => break,
            }
        }
        match commit(&store, &mut held, &batch).await {
            Ok(verdicts) => answer(batch, verdicts),
            Err(_) if batch.len() > 1 => {
                for insert in batch {
                    let verdict = commit(&store, &mut held, std::slice::from_ref(&insert))
                        .await
                        .and_then(|mut v| v.pop().unwrap_or(Ok(())));
                    let _ = insert.reply.send(verdict);
                }
            }
            Err(e) => answer(batch, vec![Err(e)]),
        }
    }
}

fn answer(batch: Vec<Insert>, verdicts: Vec<Result<(), InsertPlanError>>) {
    let mut verdicts = verdicts.into_iter();
    let mut last = Ok(());
    for insert in batch {
        let verdict = verdicts.next().unwrap_or_else(|| last.clone());
        last = verdict.clone();
        let _ = insert.reply.send(verdict);
    }
}

/// Stores `batch`: each insert's verdict (stored, or over a cap), or why storing failed
/// (nothing of the batch is stored then).
async fn commit(
    store: &Store,
    held: &mut Held,
    batch: &[Insert],
) -> Result<Vec<Result<(), InsertPlanError>>, InsertPlanError> {
    if store_whole(store, held, batch).await? {
        return Ok(batch.iter().map(|_| Ok(())).collect());
    }
    commit_judged(store, batch).await
}

/// `batch` in one statement that keeps it only if all of it fits under the caps; false
/// (nothing stored) when it does not, or when it cannot be one statement.
async fn store_whole(store: &Store, held: &mut Held, batch: &[Insert]) -> Result<bool, InsertPlanError> {
    let began = std::time::Instant::now();
    let Some((plans_room, executors_room)) = room(batch) else { return Ok(false) };
    let mut all = Writes::default();
    for insert in batch {
        all.absorb(&insert.writes);
    }
    let mut sql = String::from("SELECT cme_admit_work($1, $2, $3)");
    let mut values: Vec<sea_orm::Value> =
        vec![crate::advisory::AdvisoryLock::WorkCaps.key().into(), plans_room.into(), executors_room.into()];
    if all.writes_outbox() {
        // The outbox signal in the same statement is delivered at its commit.
        sql.push_str(", pg_notify($4, '')");
        values.push(crate::signals::OUTBOX_CHANNEL.into());
    }
    let Some(statement) = all.guarded_by(&Statement::from_sql_and_values(DbBackend::Postgres, sql, values)) else {
        return Ok(false);
    };
    let unavailable = |e: sqlx::Error| InsertPlanError::from(StorageError::Unavailable(e.to_string()));
    let connection = held.connection(store).await.map_err(unavailable)?;
    let values = statement.values.unwrap_or(sea_orm::Values(Vec::new()));
    match sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), SqlxValues(values)).execute(&mut **connection).await {
        Ok(_) => {}
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some(NO_ROOM) => return Ok(false),
        Err(e) => {
            // Back to the pool, which tests it (and closes it if it broke).
            held.connection = None;
            return Err(unavailable(e));
        }
    }
    if all.writes_outbox() {
        store.signals.bump_outbox();
    }
    tracing::debug!(
        inserts = batch.len(),
        committed_us = began.elapsed().as_micros() as u64,
        "insert batch in one statement"
    );
    Ok(true)
}

/// What `cme_admit_work` raises when the stored counts leave too little room (m0016).
const NO_ROOM: &str = "CMEC1";

/// The connection the one-statement path keeps between batches. sqlx pings a pooled
/// connection each time it is taken from the pool and each time it goes back: for a batch
/// that is one statement, that tripled the round trips (and woke the server three times).
/// Batches back to back need no test; a connection idle for `IDLE_TEST` is pinged first
/// and, if the server or a proxy dropped it meanwhile, replaced from the pool (which tests
/// what it hands out), so an outage fails no insert made after it.
#[derive(Default)]
struct Held {
    connection: Option<PoolConnection<Postgres>>,
    used: Option<std::time::Instant>,
}

/// How long the held connection may idle before it is tested again.
const IDLE_TEST: std::time::Duration = std::time::Duration::from_secs(1);

impl Held {
    async fn connection(&mut self, store: &Store) -> Result<&mut PoolConnection<Postgres>, sqlx::Error> {
        use sqlx::Connection;
        let idle = self.used.is_none_or(|used| used.elapsed() >= IDLE_TEST);
        self.used = Some(std::time::Instant::now());
        if let Some(connection) = &mut self.connection
            && idle
            && connection.ping().await.is_err()
        {
            connection.close_on_drop();
            self.connection = None;
        }
        match &mut self.connection {
            Some(connection) => Ok(connection),
            empty => Ok(empty.insert(store.db().get_postgres_connection_pool().acquire().await?)),
        }
    }
}

/// The most live plans and waiting executors there may be stored for every insert of
/// `batch` to pass `judge_caps` in order, each counting the ones before it; None when
/// some insert would not fit even into an empty database.
fn room(batch: &[Insert]) -> Option<(i64, i64)> {
    let (mut plans_room, mut executors_room) = (i128::from(i64::MAX), i128::from(i64::MAX));
    let (mut plans, mut executors) = (0i128, 0i128);
    for insert in batch {
        plans += i128::from(insert.plans);
        executors += i128::from(insert.executors);
        if insert.plans > 0 {
            plans_room = plans_room.min(i128::from(insert.caps.max_plans) - plans);
        }
        executors_room = executors_room.min(i128::from(insert.caps.max_pending_executors) - executors);
    }
    Some((i64::try_from(plans_room).ok().filter(|r| *r >= 0)?, i64::try_from(executors_room).ok().filter(|r| *r >= 0)?))
}

/// One transaction for `batch` that judges each insert on its own: each insert's verdict
/// (stored, or over a cap), or why the transaction failed (nothing of the batch is stored
/// then).
async fn commit_judged(store: &Store, batch: &[Insert]) -> Result<Vec<Result<(), InsertPlanError>>, InsertPlanError> {
    let began = std::time::Instant::now();
    let txn = store.db().begin().await.map_err(db_error)?;
    let mut counts = store.locked_work_counts(&txn).await?;
    let mut verdicts = Vec::with_capacity(batch.len());
    // The admitted inserts' rows, table by table (see `Writes::absorb`).
    let mut admitted = Writes::default();
    for insert in batch {
        match crate::queries::judge_caps(&insert.caps, counts, insert.plans, insert.executors) {
            Ok(()) => {
                admitted.absorb(&insert.writes);
                counts.0 += insert.plans as i64;
                counts.1 += insert.executors as i64;
                verdicts.push(Ok(()));
            }
            Err(refused) => verdicts.push(Err(refused)),
        }
    }
    admitted.execute(store, &txn).await?;
    txn.commit().await.map_err(db_error)?;
    tracing::debug!(
        inserts = batch.len(),
        committed_us = began.elapsed().as_micros() as u64,
        "insert batch judged one by one"
    );
    Ok(verdicts)
}
