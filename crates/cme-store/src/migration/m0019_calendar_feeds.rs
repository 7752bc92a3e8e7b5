//! Calendars as a resource: each calendar the engine holds blackouts of, uploaded or
//! subscribed to by URL (sealed at rest when the engine has a credential key), with its
//! fetch state; the index the refresh keeper claims due subscriptions by.

use super::*;

pub(super) struct M0019CalendarFeeds;

impl MigrationName for M0019CalendarFeeds {
    fn name(&self) -> &str {
        "m0019_calendar_feeds"
    }
}

#[derive(DeriveIden)]
pub(super) enum CalendarFeeds {
    Table,
    Name,
    Url,
    RefreshSeconds,
    Timezone,
    PlanId,
    StopRunning,
    IncludeFree,
    CreatedAtUs,
    CreatedBy,
    LastFetchedAtUs,
    LastError,
    NextFetchAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0019CalendarFeeds {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CalendarFeeds::Table)
                    .col(string(CalendarFeeds::Name).primary_key())
                    .col(text_null(CalendarFeeds::Url))
                    .col(big_integer(CalendarFeeds::RefreshSeconds))
                    .col(string_null(CalendarFeeds::Timezone))
                    .col(string_null(CalendarFeeds::PlanId))
                    .col(boolean(CalendarFeeds::StopRunning))
                    .col(boolean(CalendarFeeds::IncludeFree))
                    .col(big_integer(CalendarFeeds::CreatedAtUs))
                    .col(string(CalendarFeeds::CreatedBy))
                    .col(big_integer_null(CalendarFeeds::LastFetchedAtUs))
                    .col(text_null(CalendarFeeds::LastError))
                    .col(big_integer_null(CalendarFeeds::NextFetchAtUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("calendar_feeds_by_next_fetch")
                    .table(CalendarFeeds::Table)
                    .col(CalendarFeeds::NextFetchAtUs)
                    .to_owned(),
            )
            .await
    }
}
