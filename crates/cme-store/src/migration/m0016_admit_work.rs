//! PostgreSQL only: a batch of inserts that all fit under the caps is stored by one
//! statement, committed on its own: its rows as data-modifying `WITH` clauses and, as its
//! main query, this function, which takes the work-caps lock, reads the counts after it
//! (a new snapshot, as in m0015) and raises `CMEC1` when they leave less room than the
//! batch needs; the raise undoes the whole statement. Rows inserted before the lock was
//! granted count nowhere until the statement's triggers run, after this function, so the
//! counts it reads never include its own batch. One round trip instead of four
//! (BEGIN, lock and counts, insert, COMMIT); a batch refused here is judged insert by
//! insert in a transaction of its own (`batcher`).

use super::*;

pub(super) struct M0016AdmitWork;

impl MigrationName for M0016AdmitWork {
    fn name(&self) -> &str {
        "m0016_admit_work"
    }
}

pub(super) const POSTGRES_ADMIT_WORK: &str = r#"
CREATE FUNCTION cme_admit_work(lock_key BIGINT, plans_room BIGINT, executors_room BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    stored_plans BIGINT;
    stored_executors BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT COALESCE(SUM(w.live_plans), 0), COALESCE(SUM(w.waiting_executors), 0) INTO stored_plans, stored_executors
    FROM work_counts AS w;
    IF stored_plans > plans_room OR stored_executors > executors_room THEN
        RAISE EXCEPTION 'the stored work leaves no room for this batch' USING ERRCODE = 'CMEC1';
    END IF;
    RETURN stored_plans;
END $$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0016AdmitWork {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres_only(manager, POSTGRES_ADMIT_WORK).await
    }
}
