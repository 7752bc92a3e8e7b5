//! Group commit on PostgreSQL: new plans and run-now executors queued while a transaction
//! commits are stored together in the next one.
//!
//! Every insert takes the work-caps advisory lock (the caps hold across replicas), so
//! inserts were strictly one after another, each waiting for its own commit to reach the
//! disk. Here one task takes whatever inserts are queued, takes the lock once, reads the
//! stored counts once and judges each insert against them in order (counting the ones it
//! admitted before), runs the admitted ones' rows as one multi-row INSERT per table
//! (`Writes::absorb`) and commits once; each caller is
//! answered after that commit. Should the transaction fail (it never does for a refusal:
//! caps are judged before any statement), every insert of the batch is retried alone, so
//! that one bad insert cannot fail the others.

use tokio::sync::{mpsc, oneshot};

use cme_engine::storage::InsertPlanError;
use cme_engine::{StorageError, WorkCaps};
use sea_orm::TransactionTrait;

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

    pub(crate) async fn insert(&self, writes: Writes, caps: WorkCaps, plans: u64, executors: u64) -> Result<(), InsertPlanError> {
        let (reply, answer) = oneshot::channel();
        let gone = || InsertPlanError::from(StorageError::Unavailable("the insert batcher is gone".into()));
        self.queue.send(Insert { writes, caps, plans, executors, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn serve(store: Store, mut inserts: mpsc::UnboundedReceiver<Insert>) {
    while let Some(first) = inserts.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inserts.try_recv() {
                Ok(insert) => batch.push(insert),
                Err(_) => break,
            }
        }
        match commit(&store, &batch).await {
            Ok(verdicts) => answer(batch, verdicts),
            Err(_) if batch.len() > 1 => {
                for insert in batch {
                    let verdict = commit(&store, std::slice::from_ref(&insert)).await.and_then(|mut v| v.pop().unwrap_or(Ok(())));
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

/// One transaction for `batch`: each insert's verdict (stored, or over a cap), or why the
/// transaction failed (nothing of the batch is stored then).
async fn commit(store: &Store, batch: &[Insert]) -> Result<Vec<Result<(), InsertPlanError>>, InsertPlanError> {
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
    Ok(verdicts)
}
