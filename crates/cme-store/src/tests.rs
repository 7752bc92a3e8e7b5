//! Storage edge cases the engine's tests cannot reach: rows as earlier versions wrote
//! them, and rows that name no status.

use sea_orm::{ConnectionTrait, Statement};

use cme_engine::{ExecutorStatus, RunLog, Storage, StorageError};

use crate::{Store, StoreConfig};

async fn store_with_executor(status: &str, log: &str) -> Store {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let sql = format!(
        "INSERT INTO executors (id, plan_id, due_at_us, status, attempts, grace_ms, created_at_us, targets, log) \
         VALUES ('e1', 'p1', 1000, '{status}', 0, 60000, 1000, '[]', '{log}')"
    );
    store.db().execute_raw(Statement::from_string(store.backend(), sql)).await.unwrap();
    store
}

#[tokio::test]
async fn rows_of_earlier_versions_read_in_the_one_log_shape() {
    let store = store_with_executor("cancelled", "[]").await;
    let executor = store.executor("e1").await.unwrap().unwrap();
    assert_eq!(executor.status, ExecutorStatus::Cancelled);
    assert_eq!(executor.log, RunLog::default());
}

#[tokio::test]
async fn a_status_the_engine_does_not_know_is_corrupt_not_guessed() {
    let store = store_with_executor("exploded", "[]").await;
    match store.executor("e1").await {
        Err(StorageError::Corrupt(why)) => assert!(why.contains("exploded"), "{why}"),
        other => panic!("expected a corrupt row, got {other:?}"),
    }
}
