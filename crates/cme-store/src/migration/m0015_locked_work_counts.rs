//! PostgreSQL only: the work-caps lock and the counts in one round trip. Every batch of
//! inserts takes the advisory lock and then reads the counts; as two statements that was
//! two round trips per batch. The counts must be read after the lock is granted (another
//! replica may have committed while this one waited): a VOLATILE PL/pgSQL function takes
//! a new snapshot for each statement it runs, so its `RETURN QUERY` sees every commit made
//! before the lock, which one plain statement (one snapshot, taken before the wait) would
//! not. SQLite has one writer and needs no lock.

use super::*;

pub(super) struct M0015LockedWorkCounts;

impl MigrationName for M0015LockedWorkCounts {
    fn name(&self) -> &str {
        "m0015_locked_work_counts"
    }
}

pub(super) const POSTGRES_LOCKED_WORK_COUNTS: &str = r#"
CREATE FUNCTION cme_locked_work_counts(lock_key BIGINT) RETURNS TABLE (plans BIGINT, executors BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT CAST(COALESCE(SUM(w.live_plans), 0) AS BIGINT), CAST(COALESCE(SUM(w.waiting_executors), 0) AS BIGINT)
    FROM work_counts AS w;
END $$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0015LockedWorkCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres_only(manager, POSTGRES_LOCKED_WORK_COUNTS).await
    }
}
