//! m0008_webhooks

use super::*;

pub(super) struct M0008Webhooks;

impl MigrationName for M0008Webhooks {
    fn name(&self) -> &str {
        "m0008_webhooks"
    }
}

#[derive(DeriveIden)]
pub(super) enum Deliveries {
    Table,
    Id,
    Webhook,
    EventId,
    Kind,
    Subject,
    TimeUs,
    Data,
    Status,
    Attempts,
    NextAttemptUs,
    LeaseOwner,
    LeaseUntilUs,
    LastAttemptUs,
    LastError,
    DeliveredUs,
    CreatedUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Webhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(big_pk_auto(Deliveries::Id))
                    .col(string(Deliveries::Webhook))
                    .col(string(Deliveries::EventId))
                    .col(string(Deliveries::Kind))
                    .col(text(Deliveries::Subject))
                    .col(big_integer(Deliveries::TimeUs))
                    .col(text(Deliveries::Data))
                    .col(string(Deliveries::Status))
                    .col(integer(Deliveries::Attempts))
                    .col(big_integer(Deliveries::NextAttemptUs))
                    .col(string_null(Deliveries::LeaseOwner))
                    .col(big_integer_null(Deliveries::LeaseUntilUs))
                    .col(big_integer_null(Deliveries::LastAttemptUs))
                    .col(text_null(Deliveries::LastError))
                    .col(big_integer_null(Deliveries::DeliveredUs))
                    .col(big_integer(Deliveries::CreatedUs))
                    .to_owned(),
            )
            .await?;
        // What the senders claim (pending and due), and what the API counts per webhook.
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptUs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_webhook")
                    .table(Deliveries::Table)
                    .col(Deliveries::Webhook)
                    .col(Deliveries::Status)
                    .to_owned(),
            )
            .await
    }
}
