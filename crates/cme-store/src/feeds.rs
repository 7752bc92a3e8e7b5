//! Calendars as a resource (`FeedStore`): one row each, the subscription URL sealed at
//! rest when the engine has a credential key. A due subscription is claimed by a write
//! conditioned on the next-fetch time it was read with, so that of replicas claiming at
//! once one wins; deleting a calendar deletes its blackouts in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use cme_engine::feeds::CalendarFeed;
use cme_engine::storage::{FeedStore, StorageResult};
use cme_engine::{AuditEvent, StorageError};

use crate::convert::{at, us};
use crate::entity::{blackout, calendar_feed};
use crate::queries::{BLACKOUTS_GENERATION, bump_setting};
use crate::{Store, db_error as db, sealed};

/// What seals a URL: the calendar's name, so that a sealed URL cannot be moved to another.
fn seal_name(name: &str) -> String {
    format!("calendar:{name}")
}

impl Store {
    fn feed_model(&self, feed: &CalendarFeed) -> calendar_feed::Model {
        let url = feed.url.as_deref().map(|url| match &self.credential_key {
            Some(key) => key.seal(&seal_name(&feed.name), url),
            None => url.to_string(),
        });
        calendar_feed::Model {
            name: feed.name.clone(),
            url,
            refresh_seconds: feed.refresh_seconds as i64,
            timezone: feed.timezone.clone(),
            plan_id: feed.plan_id.clone(),
            stop_running: feed.stop_running,
            include_free: feed.include_free,
            created_at_us: us(feed.created),
            created_by: feed.created_by.clone(),
            last_fetched_at_us: feed.last_fetched.map(us),
            last_error: feed.last_error.clone(),
            next_fetch_at_us: feed.next_fetch.map(us),
        }
    }

    fn feed_of(&self, m: calendar_feed::Model) -> Result<CalendarFeed, StorageError> {
        let url =
            m.url.as_deref().map(|u| sealed::open(self.credential_key.as_ref(), &seal_name(&m.name), u)).transpose()?;
        Ok(CalendarFeed {
            url,
            refresh_seconds: m.refresh_seconds.max(0) as u64,
            timezone: m.timezone,
            plan_id: m.plan_id,
            stop_running: m.stop_running,
            include_free: m.include_free,
            created: at(m.created_at_us),
            created_by: m.created_by,
            last_fetched: m.last_fetched_at_us.map(at),
            last_error: m.last_error,
            next_fetch: m.next_fetch_at_us.map(at),
            name: m.name,
        })
    }
}

#[derive(FromQueryResult)]
struct CalendarCount {
    calendar: Option<String>,
    count: i64,
}

#[async_trait::async_trait]
impl FeedStore for Store {
    async fn feeds(&self) -> StorageResult<Vec<CalendarFeed>> {
        let rows =
            calendar_feed::Entity::find().order_by_asc(calendar_feed::Column::Name).all(self.db()).await.map_err(db)?;
        rows.into_iter().map(|m| self.feed_of(m)).collect()
    }

    async fn feed(&self, name: &str) -> StorageResult<Option<CalendarFeed>> {
        let row = calendar_feed::Entity::find_by_id(name.to_string()).one(self.db()).await.map_err(db)?;
        row.map(|m| self.feed_of(m)).transpose()
    }

    async fn save_feed(&self, feed: &CalendarFeed, audit: Option<&AuditEvent>) -> StorageResult<()> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        calendar_feed::Entity::insert(self.feed_model(feed).into_active_model())
            .on_conflict(
                OnConflict::column(calendar_feed::Column::Name)
                    .update_columns([
                        calendar_feed::Column::Url,
                        calendar_feed::Column::RefreshSeconds,
                        calendar_feed::Column::Timezone,
                        calendar_feed::Column::PlanId,
                        calendar_feed::Column::StopRunning,
                        calendar_feed::Column::IncludeFree,
                        calendar_feed::Column::CreatedAtUs,
                        calendar_feed::Column::CreatedBy,
                        calendar_feed::Column::LastFetchedAtUs,
                        calendar_feed::Column::LastError,
                        calendar_feed::Column::NextFetchAtUs,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        if let Some(audit) = audit {
            self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        }
        txn.commit().await.map_err(db)
    }

    async fn delete_feed(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let deleted = calendar_feed::Entity::delete_by_id(name.to_string()).exec(&txn).await.map_err(db)?;
        let blackouts =
            blackout::Entity::delete_many().filter(blackout::Column::Calendar.eq(name)).exec(&txn).await.map_err(db)?;
        if blackouts.rows_affected > 0 {
            bump_setting(&txn, BLACKOUTS_GENERATION).await?;
        }
        self.audit_if_changed(txn, deleted.rows_affected + blackouts.rows_affected, audit).await
    }

    async fn claim_due_feed(&self, now: DateTime<Utc>, hold: DateTime<Utc>) -> StorageResult<Option<CalendarFeed>> {
        let due = calendar_feed::Entity::find()
            .filter(calendar_feed::Column::NextFetchAtUs.lte(us(now)))
            .order_by_asc(calendar_feed::Column::NextFetchAtUs)
            .limit(4)
            .all(self.db())
            .await
            .map_err(db)?;
        for row in due {
            let _gate = self.write_gate().await?;
            let claimed = calendar_feed::Entity::update_many()
                .col_expr(calendar_feed::Column::NextFetchAtUs, Expr::value(us(hold)))
                .filter(calendar_feed::Column::Name.eq(row.name.clone()))
                .filter(calendar_feed::Column::NextFetchAtUs.eq(row.next_fetch_at_us))
                .exec(self.db())
                .await
                .map_err(db)?;
            if claimed.rows_affected == 1 {
                let mut feed = self.feed_of(row)?;
                feed.next_fetch = Some(hold);
                return Ok(Some(feed));
            }
        }
        Ok(None)
    }

    async fn record_fetch(
        &self,
        name: &str,
        fetched: Option<DateTime<Utc>>,
        error: Option<&str>,
        next: DateTime<Utc>,
    ) -> StorageResult<()> {
        let _gate = self.write_gate().await?;
        let mut update = calendar_feed::Entity::update_many()
            .col_expr(calendar_feed::Column::NextFetchAtUs, Expr::value(us(next)))
            .col_expr(calendar_feed::Column::LastError, Expr::value(error.map(str::to_string)))
            .filter(calendar_feed::Column::Name.eq(name));
        if let Some(fetched) = fetched {
            update = update.col_expr(calendar_feed::Column::LastFetchedAtUs, Expr::value(us(fetched)));
        }
        update.exec(self.db()).await.map_err(db)?;
        Ok(())
    }

    async fn blackouts_per_calendar(&self) -> StorageResult<HashMap<String, u64>> {
        let rows = blackout::Entity::find()
            .select_only()
            .column(blackout::Column::Calendar)
            .column_as(blackout::Column::Id.count(), "count")
            .filter(blackout::Column::Calendar.is_not_null())
            .group_by(blackout::Column::Calendar)
            .into_model::<CalendarCount>()
            .all(self.db())
            .await
            .map_err(db)?;
        Ok(rows.into_iter().filter_map(|r| Some((r.calendar?, r.count.max(0) as u64))).collect())
    }
}
