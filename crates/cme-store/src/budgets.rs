//! The blast-radius ledger: terminations charged to groups, checked and recorded in one
//! transaction (serialised across PostgreSQL replicas by an advisory lock, on SQLite by
//! the write gate).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set, TransactionTrait};

use cme_engine::{BudgetTake, ExecutorStatus, StorageError};

use crate::advisory::AdvisoryLock;
use crate::convert::{at, us};
use crate::entity::{budget_entry, executor};
use crate::{Store, db_error as db};

/// How long ledger rows are kept: longer than any budget looks back.
pub(crate) const LEDGER_DAYS: i64 = 8;

impl Store {
    pub(crate) async fn take_from_ledger(
        &self,
        takes: &[BudgetTake],
        run_id: &str,
        now: DateTime<Utc>,
        record: bool,
    ) -> Result<Result<(), String>, StorageError> {
        if takes.is_empty() {
            return Ok(Ok(()));
        }
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        self.lock_until_commit(&txn, AdvisoryLock::Budgets).await?;
        let day_ago = us(now - chrono::Duration::days(1));
        for take in takes {
            if let Some(max) = take.max_per_day {
                let taken: Option<i64> = budget_entry::Entity::find()
                    .select_only()
                    .column_as(budget_entry::Column::Count.sum(), "taken")
                    .filter(budget_entry::Column::GroupKey.eq(take.group.as_str()))
                    .filter(budget_entry::Column::AtUs.gt(day_ago))
                    .into_tuple::<Option<i64>>()
                    .one(&txn)
                    .await
                    .map_err(db)?
                    .flatten();
                let taken = taken.unwrap_or(0).max(0) as u64;
                if taken + u64::from(take.count) > u64::from(max) {
                    return Ok(Err(format!(
                        "budget {:?}: group {} allows {max} terminations per 24 hours; {taken} already, {} more asked",
                        take.rule, take.group, take.count
                    )));
                }
            }
            if let Some(interval) = take.min_interval_seconds {
                let last: Option<i64> = budget_entry::Entity::find()
                    .select_only()
                    .column_as(budget_entry::Column::AtUs.max(), "last")
                    .filter(budget_entry::Column::GroupKey.eq(take.group.as_str()))
                    .into_tuple::<Option<i64>>()
                    .one(&txn)
                    .await
                    .map_err(db)?
                    .flatten();
                if let Some(last) = last {
                    let since = (now - at(last)).num_seconds().max(0) as u64;
                    if since < interval {
                        return Ok(Err(format!(
                            "budget {:?}: group {} was attacked {since} s ago; {interval} s must pass between attacks",
                            take.rule, take.group
                        )));
                    }
                }
            }
        }
        if record {
            let rows = takes.iter().map(|take| budget_entry::ActiveModel {
                id: sea_orm::NotSet,
                group_key: Set(take.group.clone()),
                rule: Set(take.rule.clone()),
                run_id: Set(run_id.to_string()),
                count: Set(take.count as i32),
                at_us: Set(us(now)),
            });
            budget_entry::Entity::insert_many(rows).exec_without_returning(&txn).await.map_err(db)?;
        }
        txn.commit().await.map_err(db)?;
        Ok(Ok(()))
    }

    /// Attacks running now, over every replica.
    pub async fn count_running(&self) -> Result<u64, StorageError> {
        executor::Entity::find()
            .filter(executor::Column::Status.eq(ExecutorStatus::Running.as_str()))
            .count(self.db())
            .await
            .map_err(db)
    }

    /// Ledger rows older than any budget looks back.
    pub(crate) async fn prune_ledger(&self) -> Result<u64, StorageError> {
        let before = us(Utc::now() - chrono::Duration::days(LEDGER_DAYS));
        let deleted = budget_entry::Entity::delete_many()
            .filter(budget_entry::Column::AtUs.lt(before))
            .exec(self.db())
            .await
            .map_err(db)?;
        Ok(deleted.rows_affected)
    }
}
