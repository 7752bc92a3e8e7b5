//! The queries the engine needs, as methods on [`Store`].

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Select, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::entity::{audit_event, credential, executor, plan, setting};
use crate::{Store, StoreError};

/// Executor statuses.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const MISSED: &str = "missed";
    pub const CANCELLED: &str = "cancelled";
    /// Statuses after which an executor never changes again.
    pub const TERMINAL: [&str; 4] = [SUCCEEDED, FAILED, MISSED, CANCELLED];
}

/// A plan with the figures the plan list shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    pub plan: plan::Model,
    pub executors_count: u64,
    /// Earliest due time of a pending executor.
    pub next_execution_us: Option<i64>,
    /// True once no executor is pending or running.
    pub executed: bool,
}

/// Which executors to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutorFilter {
    /// None: any status. Otherwise any of these.
    pub statuses: Option<Vec<String>>,
    pub plan_id: Option<String>,
}

/// A page request: `page` counts from 1.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: u64,
    pub size: u64,
}

/// One page of results; `has_more` tells whether a next page exists.
#[derive(Debug, Clone)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// A finished run to record: its executor, the engine holding its lease, how it ended and
/// the audit events of its capability calls.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub id: String,
    pub owner: String,
    pub record: RunRecord,
    pub audit: Vec<NewAudit>,
}

/// How a run ended, to record on its executor.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub status: String,
    pub finished_at_us: i64,
    pub summary: Option<String>,
    pub targets: Vec<String>,
    pub details: Option<serde_json::Value>,
    pub error: Option<String>,
    pub log: serde_json::Value,
}

/// The persisted halt switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltState {
    pub halted: bool,
    pub since_us: Option<i64>,
    pub reason: Option<String>,
}

/// Why a change to an executor was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorChangeError {
    #[error("executor not found")]
    NotFound,
    #[error("executor is {0}, not pending")]
    NotPending(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An audit event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at_us: i64,
    /// "plugin" or "api".
    pub source: String,
    pub run_id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub decision: String,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub outcome: Option<String>,
}

const HALT_KEY: &str = "halt";

impl Store {
    /// Stores a plan, its executors and the audit event of its creation in one transaction.
    /// Stores a plan, its executors, the audit event of its creation and, when the plan
    /// carried an SSH key inline, the credential made of it: all or nothing.
    pub async fn insert_plan(
        &self,
        plan: plan::Model,
        executors: Vec<executor::Model>,
        audit: NewAudit,
        credential: Option<credential::Model>,
    ) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        insert_audit_rows(&txn, vec![audit]).await?;
        if let Some(credential) = credential {
            credential::Entity::insert(credential.into_active_model()).exec_without_returning(&txn).await?;
        }
        plan::Entity::insert(plan.into_active_model()).exec_without_returning(&txn).await?;
        for chunk in executors.chunks(500) {
            let models: Vec<executor::ActiveModel> = chunk.iter().cloned().map(IntoActiveModel::into_active_model).collect();
            executor::Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<plan::Model>, StoreError> {
        Ok(plan::Entity::find_by_id(id.to_string()).one(self.db()).await?)
    }

    /// Plans not deleted, newest first; with `all` false only those with executors still
    /// pending or running.
    pub async fn list_plans(&self, all: bool, page: Page) -> Result<PageOf<PlanSummary>, StoreError> {
        // Figures per plan come from one grouped query over the page's plans.
        let mut query = plan::Entity::find().filter(plan::Column::DeletedAtUs.is_null());
        if !all {
            query = query.filter(
                Expr::col(plan::Column::Id).in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(executor::Column::PlanId)
                        .from(executor::Entity)
                        .and_where(executor::Column::Status.is_in([crate::status::PENDING, crate::status::RUNNING]))
                        .to_owned(),
                ),
            );
        }
        let plans = self.fetch_page(query.order_by_desc(plan::Column::CreatedAtUs).order_by_asc(plan::Column::Id), page).await?;
        let mut items = Vec::with_capacity(plans.items.len());
        for plan in plans.items {
            items.push(self.summarize(plan).await?);
        }
        Ok(PageOf { items, has_more: plans.has_more })
    }

    /// The plan list's figures for one plan.
    pub async fn summarize(&self, plan: plan::Model) -> Result<PlanSummary, StoreError> {
        #[derive(Debug, FromQueryResult)]
        struct Figures {
            total: i64,
            open: Option<i64>,
            next_due: Option<i64>,
        }
        let sql = "SELECT COUNT(*) AS total, \
                   SUM(CASE WHEN status IN ('pending','running') THEN 1 ELSE 0 END) AS open, \
                   MIN(CASE WHEN status = 'pending' THEN due_at_us END) AS next_due \
                   FROM executors WHERE plan_id = $1";
        let figures = Figures::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), sql),
            [plan.id.clone().into()],
        ))
        .one(self.db())
        .await?
        .ok_or_else(|| StoreError::Corrupt("aggregate returned no row".into()))?;
        Ok(PlanSummary {
            plan,
            executors_count: figures.total as u64,
            next_execution_us: figures.next_due,
            executed: figures.open.unwrap_or(0) == 0,
        })
    }

    /// Marks a plan deleted and cancels its pending executors, in one transaction.
    /// Returns false when there is no such (undeleted) plan.
    /// Marks a plan deleted and cancels its pending executors; the credential the plan
    /// owns (made from an inline key), if any, is deleted with it.
    pub async fn delete_plan(&self, id: &str, now_us: i64, owned_credential: &str) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        let updated = plan::Entity::update_many()
            .col_expr(plan::Column::DeletedAtUs, Expr::value(now_us))
            .filter(plan::Column::Id.eq(id))
            .filter(plan::Column::DeletedAtUs.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(crate::status::CANCELLED))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(now_us))
            .col_expr(executor::Column::Error, Expr::value("cancelled: plan deleted"))
            .filter(executor::Column::PlanId.eq(id))
            .filter(executor::Column::Status.eq(crate::status::PENDING))
            .exec(&txn)
            .await?;
        credential::Entity::delete_by_id(owned_credential.to_string()).exec(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    pub async fn executors_of(&self, plan_id: &str) -> Result<Vec<executor::Model>, StoreError> {
        Ok(executor::Entity::find()
            .filter(executor::Column::PlanId.eq(plan_id))
            .order_by_asc(executor::Column::DueAtUs)
            .order_by_asc(executor::Column::Id)
            .all(self.db())
            .await?)
    }

    pub async fn executor(&self, id: &str) -> Result<Option<executor::Model>, StoreError> {
        Ok(executor::Entity::find_by_id(id.to_string()).one(self.db()).await?)
    }

    /// Executors by due time (then id), one page. The page's ids are found first from
    /// the covering indexes alone (with a status filter: one ordered, limited range per
    /// status, merged), then only those rows are read; a page costs about the same with a
    /// million executors as with ten.
    pub async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> Result<PageOf<executor::Model>, StoreError> {
        let mut values: Vec<sea_orm::Value> = Vec::new();
        let mut bind = |v: sea_orm::Value| {
            values.push(v);
            format!("${}", values.len())
        };
        let plan = filter.plan_id.clone().map(|p| bind(p.into()));
        let keys = match filter.statuses.as_ref() {
            None => {
                let plan = plan.as_ref().map(|p| format!(" WHERE plan_id = {p}")).unwrap_or_default();
                format!("SELECT due_at_us, id FROM executors{plan}")
            }
            Some(statuses) => {
                let window = bind((((page.page - 1) * page.size + page.size + 1) as i64).into());
                let members: Vec<String> = statuses
                    .iter()
                    .enumerate()
                    .map(|(i, status)| {
                        let status = bind(status.clone().into());
                        let plan = plan.as_ref().map(|p| format!(" AND plan_id = {p}")).unwrap_or_default();
                        format!(
                            "SELECT due_at_us, id FROM (SELECT due_at_us, id FROM executors WHERE status = {status}{plan} \
                             ORDER BY due_at_us, id LIMIT {window}) AS s{i}"
                        )
                    })
                    .collect();
                if members.is_empty() {
                    return Ok(PageOf { items: Vec::new(), has_more: false });
                }
                members.join(" UNION ALL ")
            }
        };
        let limit = bind(((page.size + 1) as i64).into());
        let offset = bind((((page.page - 1) * page.size) as i64).into());
        let sql = format!("SELECT id FROM ({keys}) AS k ORDER BY due_at_us, id LIMIT {limit} OFFSET {offset}");
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), &sql), values);
        let ids: Vec<String> = self.db().query_all_raw(statement).await?.iter().map(|row| row.try_get_by_index::<String>(0)).collect::<Result<_, _>>()?;
        let has_more = ids.len() as u64 > page.size;
        let ids: Vec<String> = ids.into_iter().take(page.size as usize).collect();
        if ids.is_empty() {
            return Ok(PageOf { items: Vec::new(), has_more });
        }
        let items = executor::Entity::find()
            .filter(executor::Column::Id.is_in(ids))
            .order_by_asc(executor::Column::DueAtUs)
            .order_by_asc(executor::Column::Id)
            .all(self.db())
            .await?;
        Ok(PageOf { items, has_more })
    }

    /// Moves a pending executor to a new due time.
    pub async fn reschedule(&self, id: &str, due_at_us: i64) -> Result<executor::Model, ExecutorChangeError> {
        let _gate = self.write_gate().await;
        let updated = executor::Entity::update_many()
            .col_expr(executor::Column::DueAtUs, Expr::value(due_at_us))
            .filter(executor::Column::Id.eq(id))
            .filter(executor::Column::Status.eq(crate::status::PENDING))
            .exec(self.db())
            .await
            .map_err(StoreError::from)?;
        self.changed_or_why(id, updated.rows_affected).await
    }

    /// Cancels a pending executor.
    pub async fn cancel(&self, id: &str, now_us: i64, reason: &str) -> Result<executor::Model, ExecutorChangeError> {
        let _gate = self.write_gate().await;
        let updated = executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(crate::status::CANCELLED))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(now_us))
            .col_expr(executor::Column::Error, Expr::value(format!("cancelled: {reason}")))
            .filter(executor::Column::Id.eq(id))
            .filter(executor::Column::Status.eq(crate::status::PENDING))
            .exec(self.db())
            .await
            .map_err(StoreError::from)?;
        self.changed_or_why(id, updated.rows_affected).await
    }

    async fn changed_or_why(&self, id: &str, rows: u64) -> Result<executor::Model, ExecutorChangeError> {
        let current = self.executor(id).await?.ok_or(ExecutorChangeError::NotFound)?;
        if rows == 0 {
            return Err(ExecutorChangeError::NotPending(current.status));
        }
        Ok(current)
    }

    /// The earliest due time among pending executors.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let next = executor::Entity::find()
            .select_only()
            .column_as(executor::Column::DueAtUs.min(), "next")
            .filter(executor::Column::Status.eq(crate::status::PENDING))
            .into_tuple::<Option<i64>>()
            .one(self.db())
            .await?;
        Ok(next.flatten())
    }

    /// Pending executors whose grace has passed become `missed`. (`due_at_us < now` keeps
    /// the scan on the status/due index: only overdue rows are looked at.)
    pub async fn mark_missed(&self, now_us: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let sql = "UPDATE executors SET status = 'missed', finished_at_us = $1, \
                   error = 'missed: not started within its grace period after its due time (was the engine down or halted?)' \
                   WHERE status = 'pending' AND due_at_us < $1 AND due_at_us + grace_ms * 1000 < $1";
        let result = self
            .db()
            .execute_raw(Statement::from_sql_and_values(self.backend(), adapt(self.backend(), sql), [now_us.into()]))
            .await?;
        Ok(result.rows_affected())
    }

    /// While halted: pending executors that fall due are cancelled for good.
    pub async fn cancel_due_while_halted(&self, now_us: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let updated = executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(crate::status::CANCELLED))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(now_us))
            .col_expr(executor::Column::Error, Expr::value("cancelled: halted"))
            .filter(executor::Column::Status.eq(crate::status::PENDING))
            .filter(executor::Column::DueAtUs.lte(now_us))
            .exec(self.db())
            .await?;
        Ok(updated.rows_affected)
    }

    /// Atomically moves up to `limit` due pending executors to `running` under a lease
    /// held by `owner`; on PostgreSQL rows locked by another engine are skipped.
    pub async fn claim_due(&self, now_us: i64, owner: &str, lease_until_us: i64, limit: u64) -> Result<Vec<executor::Model>, StoreError> {
        let _gate = self.write_gate().await;
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE executors SET status = 'running', lease_owner = $1, lease_expires_us = $2, started_at_us = $3, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM executors WHERE status = 'pending' AND due_at_us <= $3 \
             ORDER BY due_at_us LIMIT $4{lock}) AND status = 'pending' RETURNING *"
        );
        let statement = Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), &sql),
            [owner.into(), lease_until_us.into(), now_us.into(), (limit as i64).into()],
        );
        Ok(executor::Entity::find().from_raw_sql(statement).all(self.db()).await?)
    }

    /// Records how runs ended, each only if its engine still holds its lease, with their
    /// audit events, all in one transaction (one commit for a whole batch of runs).
    /// Returns, per run, whether its result was recorded.
    pub async fn record_runs(&self, runs: Vec<FinishedRun>) -> Result<Vec<bool>, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        let mut recorded = Vec::with_capacity(runs.len());
        let mut audit = Vec::new();
        for run in runs {
            let record = run.record;
            let updated = executor::Entity::update_many()
                .col_expr(executor::Column::Status, Expr::value(record.status))
                .col_expr(executor::Column::FinishedAtUs, Expr::value(record.finished_at_us))
                .col_expr(executor::Column::Summary, Expr::value(record.summary))
                .col_expr(executor::Column::Targets, Expr::value(serde_json::to_string(&record.targets).unwrap_or_default()))
                .col_expr(executor::Column::Details, Expr::value(record.details.map(|d| d.to_string())))
                .col_expr(executor::Column::Error, Expr::value(record.error))
                .col_expr(executor::Column::Log, Expr::value(record.log.to_string()))
                .col_expr(executor::Column::LeaseOwner, Expr::value(Option::<String>::None))
                .col_expr(executor::Column::LeaseExpiresUs, Expr::value(Option::<i64>::None))
                .filter(executor::Column::Id.eq(run.id))
                .filter(executor::Column::Status.eq(crate::status::RUNNING))
                .filter(executor::Column::LeaseOwner.eq(run.owner))
                .exec(&txn)
                .await?;
            recorded.push(updated.rows_affected == 1);
            audit.extend(run.audit);
        }
        insert_audit_rows(&txn, audit).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// Running executors whose lease expired (their engine died) become `failed` with
    /// "outcome unknown": a destructive attack is never re-run blindly.
    pub async fn reap_expired(&self, now_us: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let updated = executor::Entity::update_many()
            .col_expr(executor::Column::Status, Expr::value(crate::status::FAILED))
            .col_expr(executor::Column::FinishedAtUs, Expr::value(now_us))
            .col_expr(
                executor::Column::Error,
                Expr::value("outcome unknown: the engine running this attack stopped before recording its result"),
            )
            .col_expr(executor::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .filter(executor::Column::Status.eq(crate::status::RUNNING))
            .filter(executor::Column::LeaseExpiresUs.lt(now_us))
            .exec(self.db())
            .await?;
        Ok(updated.rows_affected)
    }

    pub async fn halt_state(&self) -> Result<HaltState, StoreError> {
        match setting::Entity::find_by_id(HALT_KEY.to_string()).one(self.db()).await? {
            None => Ok(HaltState::default()),
            Some(row) => serde_json::from_str(&row.value).map_err(|e| StoreError::Corrupt(format!("halt setting: {e}"))),
        }
    }

    pub async fn set_halt_state(&self, state: &HaltState, now_us: i64) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let value = serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let txn = self.db().begin().await?;
        let existing = setting::Entity::find_by_id(HALT_KEY.to_string()).one(&txn).await?;
        match existing {
            Some(row) => {
                let mut row: setting::ActiveModel = row.into();
                row.value = Set(value);
                row.updated_at_us = Set(now_us);
                row.update(&txn).await?;
            }
            None => {
                setting::ActiveModel { key: Set(HALT_KEY.into()), value: Set(value), updated_at_us: Set(now_us) }
                    .insert(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn insert_audit(&self, events: Vec<NewAudit>) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        insert_audit_rows(self.db(), events).await
    }

    /// Stores a credential; false when the name is taken.
    pub async fn insert_credential(&self, row: credential::Model) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        if credential::Entity::find_by_id(row.name.clone()).one(&txn).await?.is_some() {
            txn.rollback().await?;
            return Ok(false);
        }
        credential::Entity::insert(row.into_active_model()).exec_without_returning(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// One credential, by name.
    pub async fn credential(&self, name: &str) -> Result<Option<credential::Model>, StoreError> {
        Ok(credential::Entity::find_by_id(name.to_string()).one(self.db()).await?)
    }

    /// Every credential, by name.
    pub async fn credentials(&self) -> Result<Vec<credential::Model>, StoreError> {
        Ok(credential::Entity::find().order_by_asc(credential::Column::Name).all(self.db()).await?)
    }

    /// Deletes a credential; false when there is none by that name.
    pub async fn delete_credential(&self, name: &str) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let deleted = credential::Entity::delete_by_id(name.to_string()).exec(self.db()).await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Audit events, newest first.
    pub async fn list_audit(&self, page: Page) -> Result<PageOf<audit_event::Model>, StoreError> {
        self.fetch_page(audit_event::Entity::find().order_by_desc(audit_event::Column::Id), page).await
    }

    /// One page of an ordered query: one row more than the page tells whether a next page
    /// exists, without counting the whole table.
    async fn fetch_page<E: EntityTrait>(&self, query: Select<E>, page: Page) -> Result<PageOf<E::Model>, StoreError> {
        let mut items = query.offset((page.page - 1) * page.size).limit(page.size + 1).all(self.db()).await?;
        let has_more = items.len() as u64 > page.size;
        items.truncate(page.size as usize);
        Ok(PageOf { items, has_more })
    }
}

pub(crate) async fn insert_audit_rows(db: &impl ConnectionTrait, events: Vec<NewAudit>) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = events.into_iter().map(|e| audit_event::ActiveModel {
        id: sea_orm::NotSet,
        at_us: Set(e.at_us),
        source: Set(e.source),
        run_id: Set(e.run_id),
        actor: Set(e.actor),
        action: Set(e.action),
        target: Set(e.target),
        decision: Set(e.decision),
        reason: Set(e.reason),
        dry_run: Set(e.dry_run),
        outcome: Set(e.outcome),
    });
    audit_event::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Raw statements are written with PostgreSQL's numbered `$n` placeholders; SQLite's
/// numbered form is `?n`.
fn adapt(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_string(),
    }
}
