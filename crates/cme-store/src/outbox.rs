//! The webhooks' outbox: one `deliveries` row per event and subscribed webhook, written
//! in the transaction of the change the event describes, claimed by senders with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) and updated after each attempt.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set,
    Statement,
};

use cme_engine::events::EVENT_KINDS;
use cme_engine::{Attempt, AuditEvent, Delivery, DeliveryCounts, Event, StorageError};

use crate::convert::{at, us};
use crate::entity::delivery;
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
        let _gate = self.write_gate().await;
        self.write_outbox(self.db(), events).await
    }

    pub(crate) async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StorageError> {
        let _gate = self.write_gate().await;
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE deliveries SET lease_owner = $1, lease_until_us = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE status = $3 AND next_attempt_us <= $4 \
             AND (lease_until_us IS NULL OR lease_until_us < $4) ORDER BY id LIMIT $5{lock}) RETURNING *"
        );
        let values: [sea_orm::Value; 5] =
            [owner.into(), us(lease_until).into(), PENDING.into(), us(now).into(), (limit as i64).into()];
        let sql = match self.backend() {
            DbBackend::Sqlite => sql.replace('$', "?"),
            _ => sql,
        };
        let mut rows = delivery::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(self.backend(), sql, values))
            .all(self.db())
            .await
            .map_err(db)?;
        rows.sort_by_key(|row| row.id);
        rows.into_iter().map(delivery_of).collect()
    }

    pub(crate) async fn finish_attempt(&self, id: i64, owner: &str, attempt: &Attempt) -> Result<(), StorageError> {
        let _gate = self.write_gate().await;
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
                .col_expr(delivery::Column::NextAttemptUs, Expr::value(us(*retry_at))),
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

    pub(crate) async fn next_pending_delivery(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        #[derive(FromQueryResult)]
        struct Next {
            next: Option<i64>,
        }
        // A leased row is due again when its lease ends (its sender may have died).
        let sql = "SELECT MIN(CASE WHEN lease_until_us IS NOT NULL AND lease_until_us > next_attempt_us THEN lease_until_us ELSE next_attempt_us END) AS next \
                   FROM deliveries WHERE status = $1";
        let sql = match self.backend() {
            DbBackend::Sqlite => sql.replace('$', "?"),
            _ => sql.to_string(),
        };
        let next = Next::find_by_statement(Statement::from_sql_and_values(self.backend(), sql, [PENDING.into()]))
            .one(self.db())
            .await
            .map_err(db)?;
        Ok(next.and_then(|n| n.next).map(at))
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
