//! The caps on stored work (`WorkCaps`) are checked in every inserting transaction; counting
//! live plans and waiting executors there grew with the database (a scan per POST). The
//! database keeps the two counts itself, by triggers, so they are exact in every
//! transaction that reads them and no writer can forget them. On PostgreSQL the counts are
//! striped over 16 rows by backend (a reader sums them) so that claims on different
//! connections do not queue on one row; statement-level triggers count a statement's
//! rows once. SQLite has one writer at a time and one row.

use super::*;

pub(super) struct M0012WorkCounts;

impl MigrationName for M0012WorkCounts {
    fn name(&self) -> &str {
        "m0012_work_counts"
    }
}

pub(super) const SQLITE_WORK_COUNTS: &str = r#"
CREATE TABLE work_counts (slot INTEGER PRIMARY KEY, live_plans BIGINT NOT NULL, waiting_executors BIGINT NOT NULL);
INSERT INTO work_counts (slot, live_plans, waiting_executors) VALUES (0,
    (SELECT COUNT(*) FROM plans WHERE deleted_at_us IS NULL),
    (SELECT COUNT(*) FROM executors WHERE status IN ('pending', 'paused')));
CREATE TRIGGER work_counts_plan_insert AFTER INSERT ON plans WHEN NEW.deleted_at_us IS NULL
BEGIN UPDATE work_counts SET live_plans = live_plans + 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_plan_update AFTER UPDATE OF deleted_at_us ON plans
WHEN (OLD.deleted_at_us IS NULL) <> (NEW.deleted_at_us IS NULL)
BEGIN UPDATE work_counts SET live_plans = live_plans + (CASE WHEN NEW.deleted_at_us IS NULL THEN 1 ELSE -1 END) WHERE slot = 0; END;
CREATE TRIGGER work_counts_plan_delete AFTER DELETE ON plans WHEN OLD.deleted_at_us IS NULL
BEGIN UPDATE work_counts SET live_plans = live_plans - 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_insert AFTER INSERT ON executors WHEN NEW.status IN ('pending', 'paused')
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors + 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_update AFTER UPDATE OF status ON executors
WHEN (OLD.status IN ('pending', 'paused')) <> (NEW.status IN ('pending', 'paused'))
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors + (CASE WHEN NEW.status IN ('pending', 'paused') THEN 1 ELSE -1 END) WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_delete AFTER DELETE ON executors WHEN OLD.status IN ('pending', 'paused')
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors - 1 WHERE slot = 0; END;
"#;

pub(super) const POSTGRES_WORK_COUNTS: &str = r#"
CREATE TABLE work_counts (slot INTEGER PRIMARY KEY, live_plans BIGINT NOT NULL, waiting_executors BIGINT NOT NULL);
INSERT INTO work_counts (slot, live_plans, waiting_executors) SELECT s, 0, 0 FROM generate_series(0, 15) AS s;
UPDATE work_counts SET
    live_plans = (SELECT COUNT(*) FROM plans WHERE deleted_at_us IS NULL),
    waiting_executors = (SELECT COUNT(*) FROM executors WHERE status IN ('pending', 'paused'))
WHERE slot = 0;
CREATE FUNCTION cme_count_work(plans_delta BIGINT, executors_delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF plans_delta <> 0 OR executors_delta <> 0 THEN
        UPDATE work_counts SET live_plans = live_plans + plans_delta, waiting_executors = waiting_executors + executors_delta
        WHERE slot = pg_backend_pid() % 16;
    END IF;
END $$;
-- Each branch names only the transition tables its operation has (PL/pgSQL plans a
-- statement when it first runs it).
CREATE FUNCTION cme_count_plans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cme_count_work((SELECT COUNT(*) FROM new_rows WHERE deleted_at_us IS NULL), 0);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM cme_count_work((SELECT COUNT(*) FROM new_rows WHERE deleted_at_us IS NULL)
                             - (SELECT COUNT(*) FROM old_rows WHERE deleted_at_us IS NULL), 0);
    ELSE
        PERFORM cme_count_work(-(SELECT COUNT(*) FROM old_rows WHERE deleted_at_us IS NULL), 0);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION cme_count_executors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cme_count_work(0, (SELECT COUNT(*) FROM new_rows WHERE status IN ('pending', 'paused')));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM cme_count_work(0, (SELECT COUNT(*) FROM new_rows WHERE status IN ('pending', 'paused'))
                                - (SELECT COUNT(*) FROM old_rows WHERE status IN ('pending', 'paused')));
    ELSE
        PERFORM cme_count_work(0, -(SELECT COUNT(*) FROM old_rows WHERE status IN ('pending', 'paused')));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_counts_plan_insert AFTER INSERT ON plans REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_plan_update AFTER UPDATE ON plans REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_plan_delete AFTER DELETE ON plans REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_executor_insert AFTER INSERT ON executors REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
CREATE TRIGGER work_counts_executor_update AFTER UPDATE ON executors REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
CREATE TRIGGER work_counts_executor_delete AFTER DELETE ON executors REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0012WorkCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => POSTGRES_WORK_COUNTS,
            _ => SQLITE_WORK_COUNTS,
        };
        manager.get_connection().execute_unprepared(sql).await.map(|_| ())
    }
}
