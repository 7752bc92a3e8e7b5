//! The webhooks' outbox: one `deliveries` row per event and subscribed webhook, written
//! in the transaction of the change the event describes, claimed by senders with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and updated after each attempt.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
    Statement, TransactionTrait,
};

use cme_engine::events::EVENT_KINDS;
use cme_engine::{Attempt, AuditEvent, Delivery, DeliveryClaim, DeliveryCounts, Event, StorageError};

use crate::advisory::AdvisoryLock;
use crate::convert::{at, us};
use crate::entity::delivery;
use crate::queries::{DB_NOW_US, adapt};
use crate::writes::Writes;
use crate::{Store, db_error as db};

const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";

impl Store {
    /// Whether any webhook wants events of `kind` (when none does, nothing is written).
    pub(crate) fn wants(&self, kind: &str) -> bool {
        self.subscriptions.iter().any(|s| s.wants(kind))
    }

    /// Audit rows, and the outbox rows of the operator actions among them.
    pub(crate) async fn insert_audit_rows(
        &self,
        conn: &impl ConnectionTrait,
        events: &[AuditEvent],
    ) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        writes.audit(self, events);
        writes.execute(self, conn).await
    }

    /// The outbox rows of `events` for every webhook that wants them, and the signal to
    /// the senders. Callers hold the write gate to their commit.
    pub(crate) async fn write_outbox(&self, conn: &impl ConnectionTrait, events: &[Event]) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        writes.outbox(self, events);
        writes.execute(self, conn).await
    }

    /// One pending row per event and webhook that wants it.
    pub(crate) fn outbox_rows(&self, events: &[Event]) -> Vec<delivery::ActiveModel> {
        let now = us(Utc::now());
        events
            .iter()
            .flat_map(|event| self.subscriptions.iter().filter(|s| s.wants(event.kind)).map(move |s| (s, event)))
            .map(|(subscription, event)| delivery::ActiveModel {
                id: sea_orm::NotSet,
                webhook: Set(subscription.name.clone()),
                event_id: Set(event.id.clone()),
                kind: Set(event.kind.to_string()),
                subject: Set(event.subject.clone()),
                time_us: Set(us(event.time)),
                data: Set(event.data.to_string()),
                status: Set(PENDING.into()),
                attempts: Set(0),
                next_attempt_us: Set(now),
                lease_owner: Set(None),
                lease_until_us: Set(None),
                last_attempt_us: Set(None),
                last_error: Set(None),
                delivered_us: Set(None),
                created_us: Set(now),
            })
            .collect()
    }

    pub(crate) async fn insert_events_now(&self, events: &[Event]) -> Result<(), StorageError> {
        if !events.iter().any(|e| self.wants(e.kind)) {
            return Ok(());
        }
        let _gate = self.write_gate().await?;
        self.write_outbox(self.db(), events).await
    }

    /// The claim: due rows that no earlier pending row of their webhook blocks (held by a
    /// sender, or waiting for its retry), oldest first. On PostgreSQL an advisory lock
    /// serialises claims across replicas: two claims judged from one snapshot would each
    /// take a different part of a webhook's queue and send them side by side.
    pub(crate) async fn claim_due_deliveries(&self, claim: &DeliveryClaim<'_>) -> Result<Vec<Delivery>, StorageError> {
        let _gate = self.write_gate().await?;
        let now = self.now_us("$4");
        let blocks = self.blocks("$4", "$6");
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        // Picked once, in a materialised CTE (see the executors' claim: a subquery with a
        // LIMIT may run again per row and take more than the limit).
        let sql = format!(
            "WITH blocked AS (SELECT webhook, MIN(id) AS first FROM deliveries WHERE status = $3 AND {blocks} \
             GROUP BY webhook), \
             picked AS MATERIALIZED (SELECT d.id FROM deliveries d WHERE d.status = $3 \
             AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.webhook = d.webhook AND b.first <= d.id) \
             ORDER BY d.id LIMIT $5{lock}) \
             UPDATE deliveries SET lease_owner = $1, lease_until_us = {now} + $2 \
             WHERE id IN (SELECT id FROM picked) RETURNING *"
        );
        let values: [sea_orm::Value; 6] = [
            claim.owner.into(),
            micros(claim.lease).into(),
            PENDING.into(),
            us(claim.now).into(),
            (claim.limit as i64).into(),
            micros(claim.furthest).into(),
        ];
        let statement = Statement::from_sql_and_values(self.backend(), adapt(self.backend(), &sql), values);
        let claimed = delivery::Entity::find().from_raw_sql(statement);
        let mut rows = if self.backend() == DbBackend::Postgres {
            let txn = self.db().begin().await.map_err(db)?;
            self.lock_until_commit(&txn, AdvisoryLock::Outbox).await?;
            let rows = claimed.all(&txn).await.map_err(db)?;
            txn.commit().await.map_err(db)?;
            rows
        } else {
            // One statement, under the write gate: SQLite's one writer serialises it. (No
            // transaction around it: one that failed on a full disk could be left open on
            // a pooled connection, holding the write lock.)
            claimed.all(self.db()).await.map_err(db)?
        };
        rows.sort_by_key(|row| row.id);
        rows.into_iter().map(delivery_of).collect()
    }

    /// SQL: whether a pending row cannot be sent at `now` (bound to parameter `now`): it
    /// is held by a sender, or was tried and waits for its retry. A lease or retry beyond
    /// `now + furthest` (parameter `furthest`) was set by a clock that stepped back since
    /// and does not hold. A row never tried is due at once, whatever the clock of the
    /// replica that wrote it said.
    fn blocks(&self, now: &str, furthest: &str) -> String {
        let now = self.now_us(now);
        format!(
            "((lease_until_us IS NOT NULL AND lease_until_us >= {now} AND lease_until_us <= {now} + {furthest}) \
             OR (attempts > 0 AND next_attempt_us > {now} AND next_attempt_us <= {now} + {furthest}))"
        )
    }

    pub(crate) async fn finish_attempt(&self, id: i64, owner: &str, attempt: &Attempt) -> Result<(), StorageError> {
        let _gate = self.write_gate().await?;
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
            .col_expr(delivery::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(delivery::Column::LeaseUntilUs, Expr::value(Option::<i64>::None));
        update = match attempt {
            Attempt::Delivered { at } => update
                .col_expr(delivery::Column::Status, Expr::value(DELIVERED))
                .col_expr(delivery::Column::LastAttemptUs, Expr::value(us(*at)))
                .col_expr(delivery::Column::DeliveredUs, Expr::value(us(*at))),
            Attempt::Failed { at, error, retry_at } => update
                .col_expr(delivery::Column::LastAttemptUs, Expr::value(us(*at)))
                .col_expr(delivery::Column::LastError, Expr::value(error.clone()))
                // By the clock that judges claims (the database's, on PostgreSQL).
                .col_expr(
                    delivery::Column::NextAttemptUs,
                    match self.backend() {
                        DbBackend::Postgres => {
                            Expr::cust(format!("{DB_NOW_US} + {}", us(*retry_at).saturating_sub(us(*at))))
                        }
                        _ => Expr::value(us(*retry_at)),
                    },
                ),
            Attempt::GaveUp { at, error } => update
                .col_expr(delivery::Column::Status, Expr::value(FAILED))
                .col_expr(delivery::Column::LastAttemptUs, Expr::value(us(*at)))
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
        };
        update
            .filter(delivery::Column::Id.eq(id))
            .filter(delivery::Column::LeaseOwner.eq(owner))
            .filter(delivery::Column::Status.eq(PENDING))
            .exec(self.db())
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn next_pending_delivery(
        &self,
        furthest: std::time::Duration,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        #[derive(FromQueryResult)]
        struct Next {
            wait: Option<i64>,
        }
        // Only a webhook's first pending row matters: the rows after it wait for it. It is
        // due when its lease ends and its retry time has come, whichever is later; the wait
        // is measured by the clock that judges claims and handed back on this engine's.
        let now = self.now_us("$2");
        let blocks = self.blocks("$2", "$3");
        let sql = format!(
            "SELECT MIN(CASE WHEN {blocks} THEN \
             (CASE WHEN lease_until_us IS NOT NULL AND lease_until_us > next_attempt_us THEN lease_until_us \
             ELSE next_attempt_us END) - {now} ELSE 0 END) AS wait \
             FROM deliveries WHERE id IN (SELECT MIN(id) FROM deliveries WHERE status = $1 GROUP BY webhook)"
        );
        let local_now = Utc::now();
        let values: [sea_orm::Value; 3] = [PENDING.into(), us(local_now).into(), micros(furthest).into()];
        let next = Next::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            adapt(self.backend(), &sql),
            values,
        ))
        .one(self.db())
        .await
        .map_err(db)?;
        Ok(next.and_then(|n| n.wait).map(|wait| local_now + chrono::Duration::microseconds(Ord::max(wait, 0))))
    }

    pub(crate) async fn counts_of(&self, webhook: &str) -> Result<DeliveryCounts, StorageError> {
        #[derive(FromQueryResult)]
        struct ByStatus {
            status: String,
            count: i64,
            oldest: Option<i64>,
            next: Option<i64>,
            delivered: Option<i64>,
        }
        let rows = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Status)
            .column_as(delivery::Column::Id.count(), "count")
            .column_as(delivery::Column::TimeUs.min(), "oldest")
            .column_as(delivery::Column::NextAttemptUs.min(), "next")
            .column_as(delivery::Column::DeliveredUs.max(), "delivered")
            .filter(delivery::Column::Webhook.eq(webhook))
            .group_by(delivery::Column::Status)
            .into_model::<ByStatus>()
            .all(self.db())
            .await
            .map_err(db)?;
        let mut counts = DeliveryCounts::default();
        for row in rows {
            match row.status.as_str() {
                PENDING => {
                    counts.pending = row.count as u64;
                    counts.oldest_pending = row.oldest.map(at);
                    counts.next_attempt = row.next.map(at);
                }
                DELIVERED => {
                    counts.delivered = row.count as u64;
                    counts.last_delivered = row.delivered.map(at);
                }
                FAILED => counts.failed = row.count as u64,
                other => return Err(StorageError::Corrupt(format!("delivery status {other:?}"))),
            }
        }
        let failure = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::LastAttemptUs)
            .column(delivery::Column::LastError)
            .filter(delivery::Column::Webhook.eq(webhook))
            .filter(delivery::Column::LastError.is_not_null())
            .order_by_desc(delivery::Column::LastAttemptUs)
            .limit(1)
            .into_tuple::<(Option<i64>, Option<String>)>()
            .one(self.db())
            .await
            .map_err(db)?;
        if let Some((when, error)) = failure {
            counts.last_failure = when.map(at);
            counts.last_error = error;
        }
        Ok(counts)
    }

    /// Finished outbox rows (delivered or given up) that finished before `before`.
    pub(crate) async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = delivery::Entity::delete_many()
            .filter(delivery::Column::Status.ne(PENDING))
            .filter(delivery::Column::LastAttemptUs.lt(us(before)))
            .exec(self.db())
            .await
            .map_err(db)?;
        Ok(deleted.rows_affected)
    }
}

fn delivery_of(row: delivery::Model) -> Result<Delivery, StorageError> {
    let kind = EVENT_KINDS
        .iter()
        .find(|k| **k == row.kind)
        .ok_or_else(|| StorageError::Corrupt(format!("event kind {:?}", row.kind)))?;
    let data = serde_json::from_str(&row.data)
        .map_err(|e| StorageError::Corrupt(format!("event data of delivery {}: {e}", row.id)))?;
    Ok(Delivery {
        id: row.id,
        webhook: row.webhook,
        event: Event { id: row.event_id, kind, subject: row.subject, time: at(row.time_us), data },
        attempts: u32::try_from(row.attempts).unwrap_or(0),
    })
}

/// Whole microseconds of a duration, as stored times are, at most a hundred years (added
/// to a stored time, it must not overflow).
fn micros(duration: std::time::Duration) -> i64 {
    const CENTURY_US: i64 = 100 * 366 * 86_400 * 1_000_000;
    Ord::min(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX), CENTURY_US)
}
