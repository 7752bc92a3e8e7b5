//! The engine's [`Storage`] port over sea-orm. Statuses in statements come from the
//! engine's enums (bound as values), never from literals.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use cme_engine::storage::prelude::*;
use cme_engine::storage::{CappedWork, Claim, Extension, InsertPlanError, OverCap, Pruned, StorageResult};
use cme_engine::{
    Attempt, AuditEntry, AuditEvent, Blackout, Credential, Delivery, DeliveryClaim, DeliveryCounts, Event, Executor,
    ExecutorChangeError, ExecutorFilter, ExecutorStatus, FinishedRun, HaltState, Page, PageOf, Plan, PlanSummary,
    PluginChange, PluginRecord, RunLog, StorageError, StoredUpload, WorkCaps,
};

use crate::advisory::AdvisoryLock;
use crate::convert::{self, at, us};
use crate::entity::{audit_event, blackout, credential, executor, plan, setting};
use crate::ranks::{self, ListKey, RowKey, Start};
use crate::readers::{EXECUTOR_COLUMNS, LISTED_EXECUTOR_COLUMNS};
use crate::writer::{query_executors, unavailable};
use crate::writes::Writes;
use crate::{Store, db_error as db};

const HALT_KEY: &str = "halt";
/// `"true"` while halted: what claims check, in the same statement.
const HALTED_KEY: &str = "halted";
/// A reaped run's error: its lease lapsed before its result was recorded. Replaced by
/// the result should its engine, alive but cut off from the database, record it later.
const REAPED: &str = "outcome unknown: the engine running this attack stopped (or lost the database) before recording its result, and its lease expired";
const PENDING: ExecutorStatus = ExecutorStatus::Pending;
const RUNNING: ExecutorStatus = ExecutorStatus::Running;

/// The halt switch as stored (JSON in the settings table).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredHalt {
    halted: bool,
    since_us: Option<i64>,
    reason: Option<String>,
}

fn status(s: ExecutorStatus) -> sea_orm::Value {
    s.as_str().into()
}

/// The statuses of executors waiting for their time (pending, or paused with their plan).
fn waiting() -> [&'static str; 2] {
    ExecutorStatus::WAITING.map(ExecutorStatus::as_str)
}

#[derive(Debug, FromQueryResult)]
struct Figures {
    plan_id: String,
    total: i64,
    open: Option<i64>,
    next_due: Option<i64>,
}

/// A plan with its figures (a plan without executors has none).
fn summary(plan: Plan, figures: Option<Figures>) -> PlanSummary {
    PlanSummary {
        executors_count: figures.as_ref().map_or(0, |f| f.total as u64),
        next_execution: figures.as_ref().and_then(|f| f.next_due).map(at),
        // A recurring plan has work left as long as it recurs.
        executed: figures.as_ref().and_then(|f| f.open).unwrap_or(0) == 0 && !plan.is_recurring(),
        plan,
    }
}

impl Store {
    /// The list figures of the given plans, by plan id, from one grouped query.
    async fn figures(&self, plan_ids: &[String]) -> StorageResult<HashMap<String, Figures>> {
        if plan_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut values: Vec<sea_orm::Value> = vec![status(PENDING), status(RUNNING), status(ExecutorStatus::Paused)];
        let placeholders: Vec<String> = plan_ids
            .iter()
            .map(|id| {
                values.push(id.clone().into());
                format!("${}", values.len())
            })
            .collect();
        let sql = format!(
            "SELECT plan_id, COUNT(*) AS total, \
             SUM(CASE WHEN status IN ($1, $2, $3) THEN 1 ELSE 0 END) AS open, \
             MIN(CASE WHEN status = $1 THEN due_at_us END) AS next_due \
             FROM executors WHERE plan_id IN ({}) GROUP BY plan_id",
            placeholders.join(", ")
        );
        let rows = Figures::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), &sql),
            values,
        ))
        .all(self.db())
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(|f| (f.plan_id.clone(), f)).collect())
    }

    async fn summaries(&self, plans: Vec<plan::Model>) -> StorageResult<Vec<PlanSummary>> {
        let ids: Vec<String> = plans.iter().map(|p| p.id.clone()).collect();
        let mut figures = self.figures(&ids).await?;
        plans
            .into_iter()
            .map(|p| {
                let f = figures.remove(&p.id);
                Ok(summary(convert::plan(p)?, f))
            })
            .collect()
    }

    async fn changed_or_why(&self, id: &str, rows: u64) -> Result<Executor, ExecutorChangeError> {
        let current = self.executor(id).await?.ok_or(ExecutorChangeError::NotFound)?;
        if rows == 0 {
            return Err(ExecutorChangeError::NotPending(current.status));
        }
        Ok(current)
    }

    /// Deletes the row of `E` whose (text) key is `key` with its audit event, in one
    /// transaction; false (nothing written) when there is none.
    pub(crate) async fn delete_audited<E>(&self, key: &str, audit: &AuditEvent) -> StorageResult<bool>
    where
        E: EntityTrait,
        <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<String>,
    {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let deleted = E::delete_by_id(key.to_string()).exec(&txn).await.map_err(db)?;
        self.audit_if_changed(txn, deleted.rows_affected, audit).await
    }

    /// Ends a one-change transaction: with its audit event and committed when the change
    /// touched a row, else rolled back (false: nothing written).
    pub(crate) async fn audit_if_changed(
        &self,
        txn: sea_orm::DatabaseTransaction,
        rows_affected: u64,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        if rows_affected == 0 {
            txn.rollback().await.map_err(db)?;
            return Ok(false);
        }
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        txn.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Every row of `query`, converted to the engine's type.
    async fn all_of<E: EntityTrait, T>(
        &self,
        query: Select<E>,
        convert: fn(E::Model) -> Result<T, StorageError>,
    ) -> StorageResult<Vec<T>> {
        query.all(self.db()).await.map_err(db)?.into_iter().map(convert).collect()
    }

    /// One page of an ordered query: one row more than the page tells whether a next page
    /// exists, without counting the whole table.
    async fn fetch_page<E: EntityTrait>(&self, query: Select<E>, page: Page) -> StorageResult<PageOf<E::Model>> {
        let mut items = query.offset(page.offset()).limit(page.size() + 1).all(self.db()).await.map_err(db)?;
        let has_more = items.len() as u64 > page.size();
        items.truncate(page.size() as usize);
        Ok(PageOf { items, has_more })
    }

    /// Changes a pending executor in one transaction with its audit event.
    async fn change_pending(
        &self,
        id: &str,
        update: sea_orm::UpdateMany<executor::Entity>,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError> {
        let rows = {
            let _gate = self.write_gate().await?;
            let txn = self.db().begin().await.map_err(db)?;
            let rows = update
                .filter(executor::Column::Id.eq(id))
                .filter(executor::Column::Status.is_in(waiting()))
                .exec(&txn)
                .await
                .map_err(db)?
                .rows_affected;
            if rows == 1 {
                self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
            }
            txn.commit().await.map_err(db)?;
            rows
        };
        self.changed_or_why(id, rows).await
    }
}

/// The setting that changes with every change to the blackouts.
pub(crate) const BLACKOUTS_GENERATION: &str = "blackouts_generation";

/// Sets `key` to a fresh unique value in the transaction `db_` (a generation stamp, written
/// by upsert: no read-modify-write race).
pub(crate) async fn bump_setting(db_: &impl ConnectionTrait, key: &str) -> StorageResult<()> {
    use sea_orm::sea_query::OnConflict;
    let now = chrono::Utc::now();
    let row = setting::ActiveModel {
        key: Set(key.into()),
        value: Set(format!("{}-{}", us(now), uuid::Uuid::new_v4().simple())),
        updated_at_us: Set(us(now)),
    };
    setting::Entity::insert(row)
        .on_conflict(
            OnConflict::column(setting::Column::Key)
                .update_columns([setting::Column::Value, setting::Column::UpdatedAtUs])
                .to_owned(),
        )
        .exec_without_returning(db_)
        .await
        .map_err(db)?;
    Ok(())
}

impl Store {
    /// A setting's value; empty when it was never set.
    pub(crate) async fn setting_value(&self, key: &str) -> StorageResult<String> {
        Ok(setting::Entity::find_by_id(key.to_string())
            .one(self.db())
            .await
            .map_err(db)?
            .map(|row| row.value)
            .unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl PlanStore for Store {
    async fn insert_plan(
        &self,
        plan: &Plan,
        executors: &[Executor],
        audit: &AuditEvent,
        credential: Option<&Credential>,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError> {
        let mut writes = Writes::default();
        writes.audit(self, std::slice::from_ref(audit));
        if let Some(credential) = credential {
            writes.push(
                self,
                credential::Entity::insert(
                    convert::credential_model(credential, self.credential_key.as_ref()).into_active_model(),
                ),
            );
        }
        writes.push(self, plan::Entity::insert(convert::plan_model(plan).into_active_model()));
        self.executor_writes(&mut writes, executors);
        self.store_new_work(writes, caps, 1, executors.len() as u64).await
    }

    async fn insert_executors(
        &self,
        executors: &[Executor],
        audit: &AuditEvent,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError> {
        let mut writes = Writes::default();
        writes.audit(self, std::slice::from_ref(audit));
        self.executor_writes(&mut writes, executors);
        self.store_new_work(writes, caps, 0, executors.len() as u64).await
    }

    async fn set_plan_paused(&self, id: &str, since: Option<DateTime<Utc>>, audit: &AuditEvent) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let exists = plan::Entity::find_by_id(id.to_string())
            .filter(plan::Column::DeletedAtUs.is_null())
            .count(&txn)
            .await
            .map_err(db)?
            == 1;
        if !exists {
            txn.rollback().await.map_err(db)?;
            return Ok(false);
        }
        let (from, to) = match since {
            Some(_) => (PENDING, ExecutorStatus::Paused),
            None => (ExecutorStatus::Paused, PENDING),
        };
        let mut plan_update = plan::Entity::update_many().filter(plan::Column::Id.eq(id));
        plan_update = match since {
            Some(at) => plan_update
                .col_expr(plan::Column::PausedAtUs, Expr::value(us(at)))
                .filter(plan::Column::PausedAtUs.is_null()),
            None => plan_update.col_expr(plan::Column::PausedAtUs, Expr::value(Option::<i64>::None)),
        };
        plan_update.exec(&txn).await.map_err(db)?;
        executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(to.as_str()))
            .filter(executor::Column::PlanId.eq(id))
            .filter(executor::Column::Status.eq(from.as_str()))
            .exec(&txn)
            .await
            .map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        txn.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn plan(&self, id: &str) -> StorageResult<Option<Plan>> {
        plan::Entity::find_by_id(id.to_string()).one(self.db()).await.map_err(db)?.map(convert::plan).transpose()
    }

    async fn plans_of(&self, ids: &[String]) -> StorageResult<Vec<Plan>> {
        let query = plan::Entity::find().filter(plan::Column::Id.is_in(ids.iter().cloned()));
        self.all_of(query, convert::plan).await
    }

    async fn list_plans(&self, all: bool, page: Page) -> StorageResult<PageOf<PlanSummary>> {
        let mut query = plan::Entity::find().filter(plan::Column::DeletedAtUs.is_null());
        if !all {
            query = query.filter(
                sea_orm::Condition::any().add(plan::Column::PlannedUntilUs.is_not_null()).add(
                    Expr::col(plan::Column::Id).in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(executor::Column::PlanId)
                            .from(executor::Entity)
                            .and_where(executor::Column::Status.is_in(ExecutorStatus::OPEN.map(ExecutorStatus::as_str)))
                            .to_owned(),
                    ),
                ),
            );
        }
        let plans = self
            .fetch_page(query.order_by_desc(plan::Column::CreatedAtUs).order_by_asc(plan::Column::Id), page)
            .await?;
        Ok(PageOf { items: self.summaries(plans.items).await?, has_more: plans.has_more })
    }

    async fn summarize(&self, plan: Plan) -> StorageResult<PlanSummary> {
        let f = self.figures(std::slice::from_ref(&plan.id)).await?.remove(&plan.id);
        Ok(summary(plan, f))
    }

    async fn delete_plan(
        &self,
        id: &str,
        now: DateTime<Utc>,
        owned_credential: &str,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let updated = plan::Entity::update_many()
            .col_expr(plan::Column::DeletedAtUs, Expr::value(us(now)))
            .filter(plan::Column::Id.eq(id))
            .filter(plan::Column::DeletedAtUs.is_null())
            .exec(&txn)
            .await
            .map_err(db)?;
        if updated.rows_affected == 0 {
            txn.rollback().await.map_err(db)?;
            return Ok(false);
        }
        executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(ExecutorStatus::Cancelled.as_str()))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(us(now)))
            .col_expr(executor::Column::Error, Expr::value("cancelled: plan deleted"))
            .filter(executor::Column::PlanId.eq(id))
            .filter(executor::Column::Status.is_in(waiting()))
            .exec(&txn)
            .await
            .map_err(db)?;
        credential::Entity::delete_by_id(owned_credential.to_string()).exec(&txn).await.map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        txn.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn count_live_plans(&self) -> StorageResult<u64> {
        plan::Entity::find().filter(plan::Column::DeletedAtUs.is_null()).count(self.db()).await.map_err(db)
    }
}

#[async_trait::async_trait]
impl HorizonStore for Store {
    async fn plans_to_extend(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u64,
    ) -> StorageResult<Vec<Plan>> {
        let mut query = plan::Entity::find()
            .filter(plan::Column::PlannedUntilUs.lt(us(before)))
            .filter(plan::Column::DeletedAtUs.is_null())
            .filter(plan::Column::PausedAtUs.is_null());
        if let Some((planned_until, id)) = after {
            // A row value: both databases seek the (horizon, id) index to it, however many
            // plans share the horizon.
            query = query.filter(
                Expr::tuple([Expr::col(plan::Column::PlannedUntilUs), Expr::col(plan::Column::Id)])
                    .gt(Expr::tuple([Expr::val(us(*planned_until)), Expr::val(id.as_str())])),
            );
        }
        let query = query.order_by_asc(plan::Column::PlannedUntilUs).order_by_asc(plan::Column::Id).limit(limit);
        self.all_of(query, convert::plan).await
    }

    async fn next_planned_until(&self) -> StorageResult<Option<DateTime<Utc>>> {
        let next = plan::Entity::find()
            .select_only()
            .column_as(plan::Column::PlannedUntilUs.min(), "next")
            .filter(plan::Column::PlannedUntilUs.is_not_null())
            .filter(plan::Column::DeletedAtUs.is_null())
            .filter(plan::Column::PausedAtUs.is_null())
            .into_tuple::<Option<i64>>()
            .one(self.db())
            .await
            .map_err(db)?;
        Ok(next.flatten().map(at))
    }

    /// The conditional UPDATE is what makes an extension happen once: on PostgreSQL a
    /// replica racing for the same plan waits for the row, then finds the horizon moved
    /// and changes nothing; its executors are never inserted.
    async fn extend_plans(&self, extensions: &[Extension], caps: &WorkCaps) -> Result<Vec<bool>, InsertPlanError> {
        // Each plan's horizon moves only from the value its planner was asked from; its
        // executors are stored only when it moved (another replica may have been first).
        let horizon_move = |extension: &Extension| {
            plan::Entity::update_many()
                .col_expr(plan::Column::PlannedUntilUs, Expr::value(extension.until.map(us)))
                .filter(plan::Column::Id.eq(extension.plan_id.as_str()))
                .filter(plan::Column::PlannedUntilUs.eq(us(extension.from)))
                .filter(plan::Column::DeletedAtUs.is_null())
                .filter(plan::Column::PausedAtUs.is_null())
                .build(self.backend())
        };
        let executors_of = |extensions: &[Extension]| extensions.iter().map(|e| e.executors.len() as u64).sum::<u64>();
        if let Some(writer) = &self.writer {
            // On the writer, a few plans per write: through sqlx, a round of 200 plans held
            // SQLite's one write lock for tens of milliseconds (a thread hop per statement),
            // and even on the writer 200 plans are a 15-55 ms write that every firing's
            // claim would queue behind. A claim waits for at most one small write now.
            let mut stored = Vec::with_capacity(extensions.len());
            for chunk in extensions.chunks(EXTENSIONS_PER_WRITE) {
                let adding = executors_of(chunk);
                let moves: Vec<(Statement, Writes)> = chunk
                    .iter()
                    .map(|extension| {
                        let mut executors = Writes::default();
                        self.executor_writes(&mut executors, &extension.executors);
                        (horizon_move(extension), executors)
                    })
                    .collect();
                let caps = *caps;
                let chunk_stored = writer
                    .write(move |conn| -> Result<Vec<bool>, InsertPlanError> {
                        if adding > 0 {
                            judge_caps_on_writer(conn, &caps, 0, adding)?;
                        }
                        let mut stored = Vec::with_capacity(moves.len());
                        for (moved, executors) in &moves {
                            let won = crate::writer::execute(conn, moved)? == 1;
                            if won {
                                executors.execute_sqlite(conn)?;
                            }
                            stored.push(won);
                        }
                        Ok(stored)
                    })
                    .await?;
                stored.extend(chunk_stored);
            }
            return Ok(stored);
        }
        let adding = executors_of(extensions);
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        if adding > 0 {
            self.check_caps(&txn, caps, 0, adding).await?;
        }
        let mut stored = Vec::with_capacity(extensions.len());
        let mut executors = Vec::with_capacity(adding as usize);
        for extension in extensions {
            let won = txn.execute_raw(horizon_move(extension)).await.map_err(db)?.rows_affected() == 1;
            if won {
                executors.extend(extension.executors.iter().cloned());
            }
            stored.push(won);
        }
        let mut writes = Writes::default();
        self.executor_writes(&mut writes, &executors);
        writes.execute(self, &txn).await?;
        txn.commit().await.map_err(db)?;
        Ok(stored)
    }
}

#[async_trait::async_trait]
impl ExecutorStore for Store {
    async fn executors_of(&self, plan_id: &str) -> StorageResult<Vec<Executor>> {
        let query = executor::Entity::find()
            .filter(executor::Column::PlanId.eq(plan_id))
            .order_by_asc(executor::Column::DueAtUs)
            .order_by_asc(executor::Column::Id);
        self.all_of(query, convert::executor).await
    }

    async fn executors_between(
        &self,
        plan_id: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> StorageResult<Vec<Executor>> {
        let query = executor::Entity::find()
            .filter(executor::Column::PlanId.eq(plan_id))
            .filter(executor::Column::DueAtUs.gte(us(from)))
            .filter(executor::Column::DueAtUs.lt(us(until)))
            .order_by_asc(executor::Column::DueAtUs)
            .order_by_asc(executor::Column::Id)
            .limit(limit);
        self.all_of(query, convert::executor).await
    }

    async fn executor(&self, id: &str) -> StorageResult<Option<Executor>> {
        executor::Entity::find_by_id(id.to_string())
            .one(self.db())
            .await
            .map_err(db)?
            .map(convert::executor)
            .transpose()
    }

    /// SQLite's data version (see `Readers::data_version`); None on PostgreSQL, whose
    /// other replicas commit where no cheap counter sees it.
    fn data_version(&self) -> Option<u64> {
        self.readers.as_ref()?.data_version()
    }

    async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> StorageResult<PageOf<Executor>> {
        let after = filter.after.as_ref().map(|after| RowKey { due_at_us: us(after.due), id: after.id.clone() });
        let statuses: Option<Vec<&'static str>> = filter.statuses.as_ref().map(|statuses| {
            let mut names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names
        });
        if let Some(readers) = &self.readers {
            // One read, on a reader (see `readers`): where the page starts (a cursor seeks;
            // a page number seeks through the rank index, see `ranks`), then the page's
            // rows and one more if any.
            let list = ListKey { plan_id: filter.plan_id.clone(), statuses };
            let size = page.size();
            let version = if after.is_none() && page.offset() >= ranks::EVERY { readers.data_version() } else { None };
            let ranks = readers.clone();
            let mut items = readers
                .read(move |conn| {
                    let start = match (after, version) {
                        (Some(after), _) => Start { after: Some(after), skip: 0 },
                        (None, Some(version)) => ranks.ranks.start(conn, &list, version, page.offset())?,
                        (None, None) => Start { after: None, skip: page.offset() },
                    };
                    let (keys, values) = page_keys(&list, &start, size, "rowid AS row_key", "row_key");
                    let sql = adapt(
                        DbBackend::Sqlite,
                        &format!(
                            "SELECT {LISTED_EXECUTOR_COLUMNS} FROM executors WHERE rowid IN ({keys}) ORDER BY due_at_us, id"
                        ),
                    );
                    query_executors(conn, &Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
                })
                .await?;
            let has_more = items.len() as u64 > page.size();
            items.truncate(page.size() as usize);
            return Ok(PageOf { items, has_more });
        }
        let list = ListKey { plan_id: filter.plan_id.clone(), statuses };
        let start = Start { skip: if after.is_some() { 0 } else { page.offset() }, after };
        let (keys, values) = page_keys(&list, &start, page.size(), "id AS row_key", "row_key");
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), &keys), values);
        let ids: Vec<String> = self
            .db()
            .query_all_raw(statement)
            .await
            .map_err(db)?
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let has_more = ids.len() as u64 > page.size();
        let ids: Vec<String> = ids.into_iter().take(page.size() as usize).collect();
        if ids.is_empty() {
            return Ok(PageOf { items: Vec::new(), has_more });
        }
        let items = executor::Entity::find()
            .filter(executor::Column::Id.is_in(ids))
            .order_by_asc(executor::Column::DueAtUs)
            .order_by_asc(executor::Column::Id)
            .all(self.db())
            .await
            .map_err(db)?
            .into_iter()
            .map(|row| convert::executor(executor::Model { log: "[]".into(), ..row }))
            .collect::<StorageResult<_>>()?;
        Ok(PageOf { items, has_more })
    }

    async fn reschedule(
        &self,
        id: &str,
        due: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError> {
        let update = executor::Entity::update_many().col_expr(executor::Column::DueAtUs, Expr::value(us(due)));
        self.change_pending(id, update, audit).await
    }

    async fn cancel(
        &self,
        id: &str,
        now: DateTime<Utc>,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError> {
        let update = executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(ExecutorStatus::Cancelled.as_str()))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(us(now)))
            .col_expr(executor::Column::Error, Expr::value(format!("cancelled: {reason}")));
        self.change_pending(id, update, audit).await
    }

    async fn count_executors(&self) -> StorageResult<Vec<(ExecutorStatus, u64)>> {
        let rows: Vec<(String, i64)> = executor::Entity::find()
            .select_only()
            .column(executor::Column::Status)
            .column_as(executor::Column::Id.count(), "count")
            .group_by(executor::Column::Status)
            .into_tuple()
            .all(self.db())
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|(status, count)| {
                Ok((
                    status.parse().map_err(|e| StorageError::Corrupt(format!("executor status: {e}")))?,
                    Ord::max(count, 0) as u64,
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl ClaimStore for Store {
    async fn running_ahead(
        &self,
        plan_id: &str,
        executor_id: &str,
        due: DateTime<Utc>,
    ) -> StorageResult<Option<String>> {
        let due = us(due);
        let ahead = sea_orm::Condition::any().add(executor::Column::DueAtUs.lt(due)).add(
            sea_orm::Condition::all().add(executor::Column::DueAtUs.eq(due)).add(executor::Column::Id.lt(executor_id)),
        );
        executor::Entity::find()
            .select_only()
            .column(executor::Column::Id)
            .filter(executor::Column::PlanId.eq(plan_id))
            .filter(executor::Column::Status.eq(RUNNING.as_str()))
            .filter(executor::Column::Id.ne(executor_id))
            .filter(ahead)
            .order_by_asc(executor::Column::DueAtUs)
            .into_tuple::<String>()
            .one(self.db())
            .await
            .map_err(db)
    }

    /// On PostgreSQL rows locked by another engine are skipped (`FOR UPDATE SKIP LOCKED`).
    async fn claim_due(&self, claim: &Claim) -> StorageResult<Vec<Executor>> {
        if let Some(writer) = &self.writer {
            if !self.anything_due(claim).await? {
                return Ok(Vec::new());
            }
            let statement = self.claim_statement(claim, claim.limit);
            return writer.write(move |conn| query_executors(conn, &statement)).await;
        }
        let _gate = self.write_gate().await?;
        self.claim(self.db(), claim, claim.limit).await
    }

    /// Counts and claims in one transaction, serialised across PostgreSQL replicas by an
    /// advisory lock (on SQLite by the one writer).
    async fn claim_due_capped(&self, claim: &Claim, cap: u64) -> StorageResult<(Vec<Executor>, bool)> {
        let limit = claim.limit;
        if let Some(writer) = &self.writer {
            if !self.anything_due(claim).await? {
                return Ok((Vec::new(), false));
            }
            let (store, claim) = (self.clone(), claim.clone());
            return writer
                .write(move |conn| -> StorageResult<(Vec<Executor>, bool)> {
                    let running = attacks_running_sqlite(conn)?;
                    let allowed = std::cmp::min(cap.saturating_sub(running), limit);
                    let claimed = if allowed == 0 {
                        Vec::new()
                    } else {
                        query_executors(conn, &store.claim_statement(&claim, allowed))?
                    };
                    Ok((claimed, allowed < limit))
                })
                .await;
        }
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let running = self.attacks_running(&txn).await?;
        let allowed = std::cmp::min(cap.saturating_sub(running), limit);
        let claimed = if allowed == 0 { Vec::new() } else { self.claim(&txn, claim, allowed).await? };
        txn.commit().await.map_err(db)?;
        Ok((claimed, allowed < limit))
    }

    async fn take_step_slot(&self, executor_id: &str, owner: &str, cap: u64) -> StorageResult<bool> {
        const TAKE: &str =
            "UPDATE executors SET extra_steps = extra_steps + 1 WHERE id = $1 AND status = $2 AND lease_owner = $3";
        let values = [executor_id.into(), status(RUNNING), owner.into()];
        if let Some(writer) = &self.writer {
            let statement = Statement::from_sql_and_values(DbBackend::Sqlite, adapt(DbBackend::Sqlite, TAKE), values);
            return writer
                .write(move |conn| -> StorageResult<bool> {
                    if attacks_running_sqlite(conn)? >= cap {
                        return Ok(false);
                    }
                    Ok(crate::writer::execute(conn, &statement)? == 1)
                })
                .await;
        }
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        if self.attacks_running(&txn).await? >= cap {
            return Ok(false);
        }
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), TAKE), values);
        let taken = txn.execute_raw(statement).await.map_err(db)?.rows_affected() == 1;
        txn.commit().await.map_err(db)?;
        Ok(taken)
    }

    async fn release_step_slot(&self, executor_id: &str) -> StorageResult<()> {
        let _gate = self.write_gate().await?;
        let sql = "UPDATE executors SET extra_steps = extra_steps - 1 WHERE id = $1 AND extra_steps > 0";
        self.db()
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                adapt(self.backend(), sql),
                [executor_id.into()],
            ))
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// Attacks running over every replica: running executors and the attack steps their
/// experiments run beside their first (read on the SQLite writer).
fn attacks_running_sqlite(conn: &rusqlite::Connection) -> StorageResult<u64> {
    let running: i64 = conn
        .query_row(
            "SELECT COUNT(*) + COALESCE(SUM(extra_steps), 0) FROM executors WHERE status = ?1",
            [RUNNING.as_str()],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(u64::try_from(running).unwrap_or(0))
}

impl Store {
    /// `attacks_running_sqlite` in a transaction, serialised across PostgreSQL replicas
    /// by an advisory lock held until it ends (claims and step slots take it too).
    async fn attacks_running(&self, txn: &sea_orm::DatabaseTransaction) -> StorageResult<u64> {
        self.lock_until_commit(txn, AdvisoryLock::RunningCap).await?;
        #[derive(FromQueryResult)]
        struct Running {
            running: i64,
        }
        let sql = "SELECT CAST(COUNT(*) + COALESCE(SUM(extra_steps), 0) AS BIGINT) AS running FROM executors WHERE status = $1";
        let row = Running::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), sql),
            [status(RUNNING)],
        ))
        .one(txn)
        .await
        .map_err(db)?;
        Ok(row.map_or(0, |r| u64::try_from(r.running).unwrap_or(0)))
    }
}

#[async_trait::async_trait]
impl RunStore for Store {
    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>> {
        let next = executor::Entity::find()
            .select_only()
            .column_as(executor::Column::DueAtUs.min(), "next")
            .filter(executor::Column::Status.eq(PENDING.as_str()))
            .into_tuple::<Option<i64>>()
            .one(self.db())
            .await
            .map_err(db)?;
        Ok(next.flatten().map(at))
    }

    /// (`due_at_us < now` keeps the scan on the status/due index: only overdue rows are
    /// looked at.)
    async fn mark_missed(&self, now: DateTime<Utc>) -> StorageResult<Vec<String>> {
        // Every scheduler pass asks; almost always nothing is past its grace. Looking first
        // (a read, which waits for no writer) keeps a firing from queueing behind the writes
        // of a busy API just to learn that.
        let now_sql = self.now_us("$2");
        let past_grace = format!(
            "SELECT 1 FROM executors WHERE status = $1 AND due_at_us < {now_sql} AND due_at_us + grace_ms * 1000 < {now_sql} LIMIT 1"
        );
        if !self.any_row(&past_grace, [status(PENDING), us(now).into()]).await? {
            return Ok(Vec::new());
        }
        let _gate = self.write_gate().await?;
        let now_sql = self.now_us("$1");
        let sql = format!(
            "UPDATE executors SET status = $2, finished_at_us = $1, \
             error = 'missed: not started within its grace period after its due time (was the engine down or halted?)' \
             WHERE status = $3 AND due_at_us < {now_sql} AND due_at_us + grace_ms * 1000 < {now_sql} RETURNING id, plan_id"
        );
        let values = [us(now).into(), status(ExecutorStatus::Missed), status(PENDING)];
        self.update_announcing(&sql, values, ExecutorStatus::Missed, now).await
    }

    /// Each cancelled executor is told (`executor.cancelled`), in the same transaction.
    async fn cancel_due_while_halted(&self, now: DateTime<Utc>) -> StorageResult<u64> {
        let _gate = self.write_gate().await?;
        let sql = "UPDATE executors SET status = $1, finished_at_us = $2, error = 'cancelled: halted' \
                   WHERE status = $3 AND due_at_us <= $2 RETURNING id, plan_id";
        let values = [status(ExecutorStatus::Cancelled), us(now).into(), status(PENDING)];
        Ok(self.update_announcing(sql, values, ExecutorStatus::Cancelled, now).await?.len() as u64)
    }

    async fn record_runs(&self, runs: &[FinishedRun]) -> StorageResult<Vec<bool>> {
        if let Some(writer) = &self.writer {
            // With the other writes of the moment, in one transaction (see `writer`).
            let (store, runs) = (self.clone(), runs.to_vec());
            return writer
                .write(move |conn| -> StorageResult<Vec<bool>> {
                    let mut results = RecordedRuns::default();
                    for run in &runs {
                        let changed = crate::writer::execute(conn, &store.record_statement(run))?;
                        store.recorded(&mut results, run, changed == 1);
                    }
                    store.record_writes(&results).execute_sqlite(conn)?;
                    Ok(results.recorded)
                })
                .await;
        }
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let mut results = RecordedRuns::default();
        for run in runs {
            let changed = txn.execute_raw(self.record_statement(run)).await.map_err(db)?.rows_affected();
            self.recorded(&mut results, run, changed == 1);
        }
        self.record_writes(&results).execute(self, &txn).await?;
        txn.commit().await.map_err(db)?;
        Ok(results.recorded)
    }

    async fn reap_expired(&self, now: DateTime<Utc>, spare: &[String]) -> StorageResult<u64> {
        // Spared ids are quoted literals (executor ids are generated hex, checked here).
        let spared: Vec<String> = spare
            .iter()
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map(|id| format!("'{id}'"))
            .collect();
        let except = if spared.is_empty() { String::new() } else { format!(" AND id NOT IN ({})", spared.join(", ")) };
        // Every reaper pass asks; almost always no lease has expired. Looking first (a
        // read) spares an idle engine a write transaction, and the checkpoint it would
        // wake, twice a minute, and a busy API a write queued just to learn that.
        let now_sql = self.now_us("$2");
        let expired =
            format!("SELECT 1 FROM executors WHERE status = $1 AND lease_expires_us < {now_sql}{except} LIMIT 1");
        if !self.any_row(&expired, [status(RUNNING), us(now).into()]).await? {
            return Ok(0);
        }
        let _gate = self.write_gate().await?;
        // The owner stays on the row: should its engine be alive after all (cut off from
        // the database past the lease), its result replaces this one when it arrives.
        let sql = format!(
            "UPDATE executors SET status = $1, finished_at_us = $2, error = $4, lease_expires_us = NULL \
             WHERE status = $3 AND lease_expires_us < {now_sql}{except} RETURNING id, plan_id"
        );
        let values = [status(ExecutorStatus::Failed), us(now).into(), status(RUNNING), REAPED.into()];
        Ok(self.update_announcing(&sql, values, ExecutorStatus::Failed, now).await?.len() as u64)
    }

    async fn renew_lease(&self, executor_id: &str, owner: &str, lease: std::time::Duration) -> StorageResult<bool> {
        let now = self.now_us("$4");
        let sql = format!(
            "UPDATE executors SET lease_expires_us = {now} + $5 WHERE id = $1 AND status = $2 AND lease_owner = $3"
        );
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
        let values = [executor_id.into(), status(RUNNING), owner.into(), us(Utc::now()).into(), lease_us.into()];
        Ok(self.execute_write(&sql, values).await? == 1)
    }

    async fn confirm_start(
        &self,
        executor_id: &str,
        owner: &str,
        started: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StorageResult<bool> {
        let now = self.now_us("$4");
        let sql = format!(
            "UPDATE executors SET started_at_us = $4, lease_expires_us = {now} + $7 \
             WHERE id = $1 AND status = $2 AND lease_owner = $3 \
             AND lease_expires_us > {now} AND NOT EXISTS (SELECT 1 FROM settings WHERE key = $5 AND value = $6) \
             AND NOT EXISTS (SELECT 1 FROM plans WHERE plans.id = executors.plan_id \
             AND (plans.paused_at_us IS NOT NULL OR plans.deleted_at_us IS NOT NULL))"
        );
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
        let values = [
            executor_id.into(),
            status(RUNNING),
            owner.into(),
            us(started).into(),
            HALTED_KEY.into(),
            "true".into(),
            lease_us.into(),
        ];
        Ok(self.execute_write(&sql, values).await? == 1)
    }

    async fn journal(&self, executor_id: &str) -> StorageResult<Option<cme_engine::Journal>> {
        let row = executor::Entity::find_by_id(executor_id)
            .select_only()
            .column(executor::Column::Journal)
            .into_tuple::<Option<String>>()
            .one(self.db())
            .await
            .map_err(db)?;
        row.flatten()
            .map(|text| serde_json::from_str(&text).map_err(|e| convert::corrupt("executor journal", e)))
            .transpose()
    }

    async fn prune(
        &self,
        audit_before: Option<DateTime<Utc>>,
        logs_before: Option<DateTime<Utc>>,
    ) -> StorageResult<Pruned> {
        let _gate = self.write_gate().await?;
        let mut pruned = Pruned::default();
        if let Some(before) = audit_before {
            let deleted = audit_event::Entity::delete_many()
                .filter(audit_event::Column::AtUs.lt(us(before)))
                .exec(self.db())
                .await
                .map_err(db)?;
            pruned.audit_events = deleted.rows_affected;
        }
        if let Some(before) = logs_before {
            let empty = convert::log_text(&RunLog::default());
            let cleared = executor::Entity::update_many()
                .col_expr(executor::Column::Log, Expr::value(empty.clone()))
                .filter(executor::Column::FinishedAtUs.lt(us(before)))
                .filter(executor::Column::Log.ne(empty))
                .exec(self.db())
                .await
                .map_err(db)?;
            pruned.run_logs = cleared.rows_affected;
            executor::Entity::update_many()
                .col_expr(executor::Column::Journal, Expr::value(Option::<String>::None))
                .filter(executor::Column::FinishedAtUs.lt(us(before)))
                .filter(executor::Column::Journal.is_not_null())
                .exec(self.db())
                .await
                .map_err(db)?;
            pruned.deliveries = self.prune_deliveries(before).await?;
        }
        self.prune_ledger().await?;
        Ok(pruned)
    }
}

#[async_trait::async_trait]
impl CalendarStore for Store {
    async fn blackouts(&self) -> StorageResult<Vec<Blackout>> {
        let query =
            blackout::Entity::find().order_by_asc(blackout::Column::CreatedAtUs).order_by_asc(blackout::Column::Id);
        self.all_of(query, convert::blackout).await
    }

    async fn blackouts_page(
        &self,
        after: Option<&cme_engine::storage::BlackoutCursor>,
        size: u64,
    ) -> StorageResult<PageOf<Blackout>> {
        let mut query = blackout::Entity::find();
        if let Some(after) = after {
            let created = us(after.created);
            query = query.filter(
                sea_orm::Condition::any().add(blackout::Column::CreatedAtUs.gt(created)).add(
                    sea_orm::Condition::all()
                        .add(blackout::Column::CreatedAtUs.eq(created))
                        .add(blackout::Column::Id.gt(after.id.clone())),
                ),
            );
        }
        let rows = query
            .order_by_asc(blackout::Column::CreatedAtUs)
            .order_by_asc(blackout::Column::Id)
            .limit(size + 1)
            .all(self.db())
            .await
            .map_err(db)?;
        let has_more = rows.len() as u64 > size;
        let items = rows.into_iter().take(size as usize).map(convert::blackout).collect::<Result<Vec<_>, _>>()?;
        Ok(PageOf { items, has_more })
    }

    async fn count_blackouts(&self) -> StorageResult<u64> {
        blackout::Entity::find().count(self.db()).await.map_err(db)
    }

    async fn blackout(&self, id: &str) -> StorageResult<Option<Blackout>> {
        blackout::Entity::find_by_id(id.to_string())
            .one(self.db())
            .await
            .map_err(db)?
            .map(convert::blackout)
            .transpose()
    }

    async fn blackouts_generation(&self) -> StorageResult<String> {
        self.setting_value(BLACKOUTS_GENERATION).await
    }

    async fn insert_blackouts(
        &self,
        replace_calendar: Option<&str>,
        blackouts: &[Blackout],
        audit: &AuditEvent,
        max: u64,
    ) -> Result<(), InsertPlanError> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        // Replicas insert one at a time, so that the cap holds across them.
        self.lock_until_commit(&txn, AdvisoryLock::Blackouts).await?;
        if let Some(calendar) = replace_calendar {
            blackout::Entity::delete_many()
                .filter(blackout::Column::Calendar.eq(calendar))
                .exec(&txn)
                .await
                .map_err(db)?;
        }
        let stored = blackout::Entity::find().count(&txn).await.map_err(db)?;
        let adding = blackouts.len() as u64;
        if stored + adding > max {
            txn.rollback().await.map_err(db)?;
            return Err(OverCap { what: CappedWork::Blackouts, max, stored, adding }.into());
        }
        for chunk in blackouts.chunks(500) {
            let models: Vec<blackout::ActiveModel> =
                chunk.iter().map(|b| convert::blackout_model(b).into_active_model()).collect();
            blackout::Entity::insert_many(models).exec_without_returning(&txn).await.map_err(db)?;
        }
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        bump_setting(&txn, BLACKOUTS_GENERATION).await?;
        txn.commit().await.map_err(db)?;
        Ok(())
    }

    async fn delete_blackout(&self, id: &str, audit: &AuditEvent) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let deleted = blackout::Entity::delete_by_id(id.to_string()).exec(&txn).await.map_err(db)?;
        if deleted.rows_affected > 0 {
            bump_setting(&txn, BLACKOUTS_GENERATION).await?;
        }
        self.audit_if_changed(txn, deleted.rows_affected, audit).await
    }
}

#[async_trait::async_trait]
impl SshTargetStore for Store {
    async fn inventories(&self) -> StorageResult<Vec<cme_engine::Inventory>> {
        self.all_inventories().await
    }

    async fn inventory(&self, name: &str) -> StorageResult<Option<cme_engine::Inventory>> {
        self.one_inventory(name).await
    }

    async fn put_inventories(&self, inventories: &[cme_engine::Inventory], audit: &AuditEvent) -> StorageResult<()> {
        self.store_inventories(inventories, audit).await
    }

    async fn delete_inventory(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool> {
        self.delete_audited::<crate::entity::inventory::Entity>(name, audit).await
    }

    async fn insert_undo(&self, undo: &cme_engine::Undo) -> StorageResult<()> {
        self.store_undo(undo).await
    }

    async fn undos(&self, pending: bool, limit: u64) -> StorageResult<Vec<cme_engine::Undo>> {
        self.list_undos(pending, limit).await
    }

    async fn undo(&self, id: &str) -> StorageResult<Option<cme_engine::Undo>> {
        self.one_undo(id).await
    }

    async fn undos_of_run(&self, run_id: &str) -> StorageResult<Vec<cme_engine::Undo>> {
        self.run_undos(run_id).await
    }

    async fn update_undo(&self, undo: &cme_engine::Undo, audit: &AuditEvent) -> StorageResult<bool> {
        self.record_undo(undo, audit).await
    }

    async fn insert_credential(&self, credential: &Credential, audit: &AuditEvent) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        if credential::Entity::find_by_id(credential.name.clone()).one(&txn).await.map_err(db)?.is_some() {
            txn.rollback().await.map_err(db)?;
            return Ok(false);
        }
        credential::Entity::insert(
            convert::credential_model(credential, self.credential_key.as_ref()).into_active_model(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        txn.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn credential(&self, name: &str) -> StorageResult<Option<Credential>> {
        credential::Entity::find_by_id(name.to_string())
            .one(self.db())
            .await
            .map_err(db)?
            .map(|m| convert::credential(m, self.credential_key.as_ref()))
            .transpose()
    }

    async fn credentials(&self) -> StorageResult<Vec<Credential>> {
        credential::Entity::find()
            .order_by_asc(credential::Column::Name)
            .all(self.db())
            .await
            .map_err(db)?
            .into_iter()
            .map(|m| convert::credential(m, self.credential_key.as_ref()))
            .collect()
    }

    async fn delete_credential(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool> {
        self.delete_audited::<credential::Entity>(name, audit).await
    }
}

#[async_trait::async_trait]
impl HaltStore for Store {
    async fn halt_state(&self) -> StorageResult<HaltState> {
        match setting::Entity::find_by_id(HALT_KEY.to_string()).one(self.db()).await.map_err(db)? {
            None => Ok(HaltState::default()),
            Some(row) => {
                let stored: StoredHalt = serde_json::from_str(&row.value)
                    .map_err(|e| StorageError::Corrupt(format!("halt setting: {e}")))?;
                Ok(HaltState { halted: stored.halted, since: stored.since_us.map(at), reason: stored.reason })
            }
        }
    }

    fn halt_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.halt_signal_receiver()
    }

    async fn set_halt_state(&self, state: &HaltState, audit: &AuditEvent) -> StorageResult<()> {
        let stored = StoredHalt { halted: state.halted, since_us: state.since.map(us), reason: state.reason.clone() };
        let value = serde_json::to_string(&stored).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let existing = setting::Entity::find_by_id(HALT_KEY.to_string()).one(&txn).await.map_err(db)?;
        match existing {
            Some(row) => {
                let mut row: setting::ActiveModel = row.into();
                row.value = Set(value);
                row.updated_at_us = Set(us(audit.at));
                row.update(&txn).await.map_err(db)?;
            }
            None => {
                setting::ActiveModel { key: Set(HALT_KEY.into()), value: Set(value), updated_at_us: Set(us(audit.at)) }
                    .insert(&txn)
                    .await
                    .map_err(db)?;
            }
        }
        let flag = setting::ActiveModel {
            key: Set(HALTED_KEY.into()),
            value: Set(state.halted.to_string()),
            updated_at_us: Set(us(audit.at)),
        };
        setting::Entity::insert(flag)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                    .update_columns([setting::Column::Value, setting::Column::UpdatedAtUs])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        if self.backend() == DbBackend::Postgres {
            // Delivered to every replica's listener when this transaction commits.
            txn.execute_raw(crate::signals::notify(crate::signals::HALT_CHANNEL)).await.map_err(db)?;
        }
        txn.commit().await.map_err(db)?;
        Ok(())
    }

    async fn probe_write(&self) -> StorageResult<()> {
        let sql = "INSERT INTO settings (key, value, updated_at_us) VALUES ($1, $2, $3) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_us = excluded.updated_at_us";
        let now = Utc::now();
        self.execute_write(sql, [WRITE_PROBE_KEY.into(), now.to_rfc3339().into(), us(now).into()]).await?;
        Ok(())
    }
}

/// The setting the write probe rewrites.
const WRITE_PROBE_KEY: &str = "write_probe";

#[async_trait::async_trait]
impl AuditStore for Store {
    async fn insert_audit(&self, events: &[AuditEvent]) -> StorageResult<()> {
        let _gate = self.write_gate().await?;
        self.insert_audit_rows(self.db(), events).await
    }

    async fn list_audit(&self, page: Page) -> StorageResult<PageOf<AuditEntry>> {
        let rows = self.fetch_page(audit_event::Entity::find().order_by_desc(audit_event::Column::Id), page).await?;
        Ok(PageOf {
            items: rows.items.into_iter().map(convert::audit).collect::<StorageResult<_>>()?,
            has_more: rows.has_more,
        })
    }

    async fn list_audit_before(&self, before: i64, size: u64) -> StorageResult<PageOf<AuditEntry>> {
        let query = audit_event::Entity::find()
            .filter(audit_event::Column::Id.lt(before))
            .order_by_desc(audit_event::Column::Id);
        let rows =
            self.fetch_page(query, Page::first(size).map_err(|e| StorageError::Unavailable(e.to_string()))?).await?;
        Ok(PageOf {
            items: rows.items.into_iter().map(convert::audit).collect::<StorageResult<_>>()?,
            has_more: rows.has_more,
        })
    }
}

#[async_trait::async_trait]
impl PluginStore for Store {
    async fn plugins_generation(&self) -> StorageResult<String> {
        self.generation().await
    }

    async fn plugin_records(&self) -> StorageResult<Vec<PluginRecord>> {
        self.rows().await?.into_iter().map(convert::plugin_record).collect()
    }

    async fn plugin_record(&self, id: &str) -> StorageResult<Option<PluginRecord>> {
        self.row(id).await?.map(convert::plugin_record).transpose()
    }

    async fn plugin_wasm(&self, id: &str) -> StorageResult<Option<Vec<u8>>> {
        self.wasm(id).await
    }

    async fn insert_plugin(
        &self,
        record: &PluginRecord,
        wasm: &[u8],
        audit: &AuditEvent,
    ) -> StorageResult<StoredUpload> {
        self.insert_upload(record, wasm, audit).await
    }

    async fn update_plugin(
        &self,
        id: &str,
        change: &PluginChange,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        self.change(id, change, now, audit).await
    }

    async fn delete_plugin(&self, id: &str, audit: &AuditEvent) -> StorageResult<Option<u64>> {
        self.delete(id, audit).await
    }
}

#[async_trait::async_trait]
impl EventStore for Store {
    async fn insert_events(&self, events: &[Event]) -> StorageResult<()> {
        self.insert_events_now(events).await
    }

    async fn claim_deliveries(&self, claim: &DeliveryClaim<'_>) -> StorageResult<Vec<Delivery>> {
        self.claim_due_deliveries(claim).await
    }

    async fn finish_delivery(&self, id: i64, owner: &str, attempt: &Attempt) -> StorageResult<()> {
        self.finish_attempt(id, owner, attempt).await
    }

    async fn next_delivery(&self, furthest: std::time::Duration) -> StorageResult<Option<DateTime<Utc>>> {
        self.next_pending_delivery(furthest).await
    }

    async fn delivery_counts(&self, webhook: &str) -> StorageResult<DeliveryCounts> {
        self.counts_of(webhook).await
    }

    fn outbox_signals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox_signal_receiver()
    }
}

#[async_trait::async_trait]
impl BudgetStore for Store {
    async fn take_budget(
        &self,
        takes: &[cme_engine::BudgetTake],
        run_id: &str,
        now: DateTime<Utc>,
        record: bool,
    ) -> StorageResult<Result<(), String>> {
        self.take_from_ledger(takes, run_id, now, record).await
    }
}

/// Raw statements are written with PostgreSQL's numbered `$n` placeholders; SQLite's
/// numbered form is `?n`.
/// PostgreSQL's clock in microseconds, as stored times are.
pub(crate) const DB_NOW_US: &str = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)";

/// The query (with its values, `$n` placeholders) of the `key` of each row of a page of
/// `list` from `start`, `size` rows and one more if any: found from the covering indexes
/// alone (with statuses: one ordered, limited range per status, merged), so that a page
/// costs about the same with a million executors as with ten.
fn page_keys(list: &ListKey, start: &Start, size: u64, key_column: &str, key: &str) -> (String, Vec<sea_orm::Value>) {
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut bind = |v: sea_orm::Value| {
        values.push(v);
        format!("${}", values.len())
    };
    let mut conditions: Vec<String> = Vec::new();
    if let Some(plan) = &list.plan_id {
        conditions.push(format!("plan_id = {}", bind(plan.clone().into())));
    }
    if let Some(after) = &start.after {
        // The first conjunct is an index range (a seek); the second drops what is at the
        // cursor's own due time up to and including it.
        let (due, due_again, id) =
            (bind(after.due_at_us.into()), bind(after.due_at_us.into()), bind(after.id.clone().into()));
        conditions.push(format!("due_at_us >= {due} AND (due_at_us > {due_again} OR id > {id})"));
    }
    let key_columns = format!("due_at_us, id, {key_column}");
    // Page::new guarantees offset + size + 1 fits an i64.
    let window = (start.skip + size + 1) as i64;
    let keys = match &list.statuses {
        None => {
            let conditions =
                if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
            format!("SELECT {key_columns} FROM executors{conditions}")
        }
        Some(statuses) if statuses.is_empty() => format!("SELECT {key_columns} FROM executors WHERE 0 = 1"),
        Some(statuses) => {
            let and_conditions: String = conditions.iter().map(|c| format!(" AND {c}")).collect();
            let window = bind(window.into());
            statuses
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = bind((*s).into());
                    format!(
                        "SELECT * FROM (SELECT {key_columns} FROM executors WHERE status = {s}{and_conditions} \
                         ORDER BY due_at_us, id LIMIT {window}) AS s{i}"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        }
    };
    let limit = bind(((size + 1) as i64).into());
    let offset = bind((start.skip as i64).into());
    (format!("SELECT {key} FROM ({keys}) AS k ORDER BY due_at_us, id LIMIT {limit} OFFSET {offset}"), values)
}

pub(crate) fn adapt(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_string(),
    }
}

impl Store {
    /// The claim itself (at most `limit` executors): due pending executors to running
    /// under the claimer's lease, unless the stored halt switch is on (checked in the same
    /// statement).
    async fn claim(&self, conn: &impl ConnectionTrait, claim: &Claim, limit: u64) -> StorageResult<Vec<Executor>> {
        let statement = self.claim_statement(claim, limit);
        executor::Entity::find()
            .from_raw_sql(statement)
            .all(conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(convert::executor)
            .collect()
    }

    /// Whether any executor is due by the claim's horizon: a read, so that a scheduler pass
    /// with nothing due (an idle engine's, once a minute) queues no write on the SQLite
    /// writer just to learn that. A row made due meanwhile wakes the scheduler again.
    async fn anything_due(&self, claim: &Claim) -> StorageResult<bool> {
        let due_by = us(std::cmp::max(claim.due_by, claim.now));
        self.any_row(
            "SELECT 1 FROM executors WHERE status = $1 AND due_at_us <= $2 LIMIT 1",
            [status(PENDING), due_by.into()],
        )
        .await
    }

    /// Whether a read-only `SELECT 1 ... LIMIT 1` finds a row: the look before a write that
    /// is almost always unneeded (a read waits for no writer and wakes no checkpoint).
    async fn any_row<const N: usize>(&self, sql: &str, values: [sea_orm::Value; N]) -> StorageResult<bool> {
        let look = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), sql), values);
        Ok(self.db().query_one_raw(look).await.map_err(db)?.is_some())
    }

    /// The claim's `UPDATE ... RETURNING` (every executor column, in `executor_row`'s order).
    pub(crate) fn claim_statement(&self, claim: &Claim, limit: u64) -> Statement {
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let now = self.now_us("$3");
        // SQLite, without statistics, would find the picked rows by the status index (every
        // pending row: a million rows read for a claim of one) rather than by their ids; the
        // unary plus keeps that term off any index.
        let status_again = match self.backend() {
            DbBackend::Sqlite => "+status",
            _ => "status",
        };
        // The rows are picked once, in a materialised CTE: as a plain `IN (SELECT ... LIMIT
        // n FOR UPDATE SKIP LOCKED)` PostgreSQL may plan the subquery as the inner side of
        // a nested-loop semi-join and run it again for every outer row, and the rows it
        // locked itself count again each time: the claim took every due row, whatever the
        // limit (and the attack cap) said.
        let sql = format!(
            "WITH picked AS MATERIALIZED (SELECT id FROM executors WHERE status = $6 AND due_at_us <= {now} + $9 \
             ORDER BY due_at_us LIMIT $4{lock}) \
             UPDATE executors SET status = $5, lease_owner = $1, lease_expires_us = {now} + $2, \
             started_at_us = CASE WHEN due_at_us > {now} THEN due_at_us ELSE {now} END, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM picked) AND {status_again} = $6 \
             AND NOT EXISTS (SELECT 1 FROM settings WHERE key = $7 AND value = $8) RETURNING {EXECUTOR_COLUMNS}"
        );
        Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), &sql),
            [
                claim.owner.as_str().into(),
                (us(claim.lease_until) - us(claim.now)).into(),
                us(claim.now).into(),
                (limit as i64).into(),
                status(RUNNING),
                status(PENDING),
                HALTED_KEY.into(),
                "true".into(),
                (us(std::cmp::max(claim.due_by, claim.now)) - us(claim.now)).into(),
            ],
        )
    }

    /// "Now" in microseconds where a statement judges time: on PostgreSQL the database's
    /// clock (every replica reads that one, so a replica whose clock is off neither fires
    /// early nor reaps live runs); on SQLite, whose one engine's clock is the only one,
    /// the bound parameter `param` (the engine's now).
    pub(crate) fn now_us(&self, param: &str) -> String {
        match self.backend() {
            // `$N + 0 * …` keeps the engine's bound value a typed, used parameter.
            DbBackend::Postgres => format!("({DB_NOW_US} + 0 * {param})"),
            _ => param.to_string(),
        }
    }

    /// Runs one writing statement (on SQLite's writer when there is one); answers the
    /// rows it changed.
    async fn execute_write<const N: usize>(&self, sql: &str, values: [sea_orm::Value; N]) -> StorageResult<u64> {
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), sql), values);
        if let Some(writer) = &self.writer {
            return writer.write(move |conn| Ok(crate::writer::execute(conn, &statement)? as u64)).await;
        }
        let _gate = self.write_gate().await?;
        Ok(self.db().execute_raw(statement).await.map_err(db)?.rows_affected())
    }

    /// Runs an executor `UPDATE ... RETURNING id, plan_id` that moves executors to
    /// `status`, with their events in the same transaction; answers the plans' ids.
    async fn update_announcing<const N: usize>(
        &self,
        sql: &str,
        values: [sea_orm::Value; N],
        status: ExecutorStatus,
        now: DateTime<Utc>,
    ) -> StorageResult<Vec<String>> {
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), sql), values);
        let txn = self.db().begin().await.map_err(db)?;
        let rows = txn.query_all_raw(statement).await.map_err(db)?;
        let moved = rows
            .iter()
            .map(|row| {
                Ok((row.try_get::<String>("", "id").map_err(db)?, row.try_get::<String>("", "plan_id").map_err(db)?))
            })
            .collect::<StorageResult<Vec<_>>>()?;
        if !moved.is_empty() && self.wants(&format!("executor.{}", status.as_str())) {
            let detail = |error| cme_engine::ExecutorDetail { error, ..Default::default() };
            let events: Vec<Event> =
                moved.iter().filter_map(|(id, plan)| Event::executor(id, plan, status, now, detail(None))).collect();
            self.write_outbox(&txn, &events).await?;
        }
        txn.commit().await.map_err(db)?;
        Ok(moved.into_iter().map(|(_, plan)| plan).collect())
    }

    /// Stores new plans' or executors' rows within the caps, in one transaction: on the
    /// SQLite writer (group commit) when there is one, else through sea-orm.
    async fn store_new_work(
        &self,
        writes: Writes,
        caps: &WorkCaps,
        plans: u64,
        executors: u64,
    ) -> Result<(), InsertPlanError> {
        if let Some(writer) = &self.writer {
            let caps = *caps;
            return writer
                .write(move |conn| -> Result<(), InsertPlanError> {
                    judge_caps_on_writer(conn, &caps, plans, executors)?;
                    Ok(writes.execute_sqlite(conn)?)
                })
                .await;
        }
        if let Some(batcher) = &self.batcher {
            return batcher.insert(writes, *caps, plans, executors).await;
        }
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        self.check_caps(&txn, caps, plans, executors).await?;
        writes.execute(self, &txn).await?;
        txn.commit().await.map_err(db)?;
        Ok(())
    }

    /// A run's result, stored only while its owner still holds it running.
    fn record_statement(&self, run: &FinishedRun) -> Statement {
        let end = &run.end;
        executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(end.status.as_str()))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(us(end.finished)))
            // When the engine really began it (a run claimed ahead waits for its due time).
            .col_expr(executor::Column::StartedAtUs, Expr::value(us(run.started)))
            .col_expr(executor::Column::Summary, Expr::value(end.report.as_ref().map(|r| r.summary.clone())))
            .col_expr(executor::Column::Targets, Expr::value(convert::targets_text(end.report.as_ref())))
            .col_expr(executor::Column::Details, Expr::value(end.report.as_ref().map(|r| r.details.to_string())))
            .col_expr(executor::Column::Error, Expr::value(end.error.clone()))
            .col_expr(executor::Column::Log, Expr::value(convert::log_text(&end.log)))
            .col_expr(executor::Column::DryRun, Expr::value(end.dry_run))
            .col_expr(executor::Column::Outcome, Expr::value(end.outcome.map(|o| o.as_str().to_string())))
            .col_expr(executor::Column::Journal, Expr::value(end.journal.as_ref().map(convert::journal_text)))
            // A catch-up run keeps the reason it was made for.
            .col_expr(
                executor::Column::Reason,
                match &end.reason {
                    Some(reason) => Expr::value(reason.clone()),
                    None => Expr::col(executor::Column::Reason),
                },
            )
            .col_expr(executor::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(executor::Column::LeaseExpiresUs, Expr::value(Option::<i64>::None))
            .filter(executor::Column::Id.eq(run.executor_id.as_str()))
            .filter(executor::Column::LeaseOwner.eq(run.owner.as_str()))
            .filter(
                sea_orm::Condition::any().add(executor::Column::Status.eq(RUNNING.as_str())).add(
                    // Reaped while its engine, cut off from the database, still ran it.
                    sea_orm::Condition::all()
                        .add(executor::Column::Status.eq(ExecutorStatus::Failed.as_str()))
                        .add(executor::Column::LeaseExpiresUs.is_null())
                        .add(executor::Column::Error.eq(REAPED)),
                ),
            )
            .build(self.backend())
    }

    /// Notes whether `run` was stored, its audit events, and its event when it was.
    fn recorded(&self, results: &mut RecordedRuns, run: &FinishedRun, stored: bool) {
        let end = &run.end;
        results.recorded.push(stored);
        results.audit.extend(run.audit.iter().cloned());
        if stored && self.wants(&format!("executor.{}", end.status.as_str())) {
            let detail = cme_engine::ExecutorDetail {
                summary: end.report.as_ref().map(|r| r.summary.as_str()),
                error: end.error.as_deref(),
                reason: end.reason.as_deref(),
                dry_run: end.dry_run,
            };
            results.events.extend(Event::executor(&run.executor_id, &run.plan_id, end.status, end.finished, detail));
        }
    }

    /// The audit and outbox rows of a batch of recorded runs.
    fn record_writes(&self, results: &RecordedRuns) -> Writes {
        let mut writes = Writes::default();
        writes.audit(self, &results.audit);
        writes.outbox(self, &results.events);
        writes
    }

    /// The executors' rows, in batches that stay under every backend's bound-parameter limit.
    fn executor_writes(&self, writes: &mut Writes, executors: &[Executor]) {
        for chunk in executors.chunks(500) {
            let models: Vec<executor::ActiveModel> =
                chunk.iter().map(|e| convert::executor_model(e).into_active_model()).collect();
            writes.push(self, executor::Entity::insert_many(models));
        }
    }

    async fn check_caps(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        caps: &WorkCaps,
        plans: u64,
        executors: u64,
    ) -> Result<(), InsertPlanError> {
        let counts = self.locked_work_counts(txn).await?;
        judge_caps(caps, counts, plans, executors)
    }

    /// The stored (live plans, waiting executors), read under the work-caps lock: on
    /// PostgreSQL an advisory transaction lock serialises every inserting transaction
    /// across replicas (SQLite has one writer).
    pub(crate) async fn locked_work_counts(
        &self,
        txn: &sea_orm::DatabaseTransaction,
    ) -> Result<(i64, i64), StorageError> {
        // On PostgreSQL the lock and the counts read after it are one call (m0015).
        let statement = match self.backend() {
            DbBackend::Postgres => Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT plans, executors FROM cme_locked_work_counts($1)",
                [AdvisoryLock::WorkCaps.key().into()],
            ),
            backend => Statement::from_string(backend, WORK_COUNTS),
        };
        let row = txn
            .query_one_raw(statement)
            .await
            .map_err(db)?
            .ok_or_else(|| db(sea_orm::DbErr::RecordNotFound("work_counts".into())))?;
        Ok((row.try_get_by_index::<i64>(0).map_err(db)?, row.try_get_by_index::<i64>(1).map_err(db)?))
    }
}

/// Recurring plans extended per write on the SQLite writer: small enough that a firing's
/// claim queued behind one waits a few milliseconds, not the whole round's.
pub(crate) const EXTENSIONS_PER_WRITE: usize = 20;

/// What recording a batch of runs found: which were stored, and what they leave.
#[derive(Default)]
struct RecordedRuns {
    recorded: Vec<bool>,
    audit: Vec<AuditEvent>,
    events: Vec<Event>,
}

/// Live plans and waiting executors, as the database's triggers keep them (m0012): one
/// small read, however much is stored.
const WORK_COUNTS: &str = "SELECT CAST(COALESCE(SUM(live_plans), 0) AS BIGINT), CAST(COALESCE(SUM(waiting_executors), 0) AS BIGINT) FROM work_counts";

/// `judge_caps` on the SQLite writer's connection (the one writer: no lock to take).
fn judge_caps_on_writer(
    conn: &rusqlite::Connection,
    caps: &WorkCaps,
    plans: u64,
    executors: u64,
) -> Result<(), InsertPlanError> {
    let counts = conn
        .query_row(WORK_COUNTS, [], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
        .map_err(unavailable)?;
    judge_caps(caps, counts, plans, executors)
}

/// Whether adding `plans` and `executors` to the stored `(plans, executors)` stays within the caps.
pub(crate) fn judge_caps(
    caps: &WorkCaps,
    (stored_plans, stored_executors): (i64, i64),
    plans: u64,
    executors: u64,
) -> Result<(), InsertPlanError> {
    let stored_plans = u64::try_from(stored_plans).unwrap_or(0);
    let stored_executors = u64::try_from(stored_executors).unwrap_or(0);
    if plans > 0 && stored_plans.saturating_add(plans) > caps.max_plans {
        return Err(
            OverCap { what: CappedWork::Plans, max: caps.max_plans, stored: stored_plans, adding: plans }.into()
        );
    }
    if stored_executors.saturating_add(executors) > caps.max_pending_executors {
        return Err(OverCap {
            what: CappedWork::PendingExecutors,
            max: caps.max_pending_executors,
            stored: stored_executors,
            adding: executors,
        }
        .into());
    }
    Ok(())
}
