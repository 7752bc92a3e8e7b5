//! The first schema: plans, executors, audit events, settings.

use super::*;

pub(super) struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[derive(DeriveIden)]
pub(super) enum Plans {
    Table,
    Id,
    Name,
    CreatedAtUs,
    DeletedAtUs,
    AttackRef,
    AttackPlugin,
    AttackArgs,
    PlannerRef,
    PlannerPlugin,
    PlannerArgs,
    DryRun,
    Timezone,
    Seed,
    GraceMs,
}

#[derive(DeriveIden)]
pub(super) enum Executors {
    Table,
    Id,
    PlanId,
    DueAtUs,
    Status,
    Attempts,
    LeaseOwner,
    LeaseExpiresUs,
    GraceMs,
    CreatedAtUs,
    StartedAtUs,
    FinishedAtUs,
    Summary,
    Targets,
    Details,
    Error,
    Log,
}

#[derive(DeriveIden)]
pub(super) enum AuditEvents {
    Table,
    Id,
    AtUs,
    Source,
    RunId,
    Actor,
    Action,
    Target,
    Decision,
    Reason,
    DryRun,
    Outcome,
}

#[derive(DeriveIden)]
pub(super) enum Settings {
    Table,
    Key,
    Value,
    UpdatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .if_not_exists()
                    .col(string(Plans::Id).primary_key())
                    .col(text(Plans::Name))
                    .col(big_integer(Plans::CreatedAtUs))
                    .col(big_integer_null(Plans::DeletedAtUs))
                    .col(text(Plans::AttackRef))
                    .col(text(Plans::AttackPlugin))
                    .col(text(Plans::AttackArgs))
                    .col(text(Plans::PlannerRef))
                    .col(text(Plans::PlannerPlugin))
                    .col(text(Plans::PlannerArgs))
                    .col(boolean(Plans::DryRun))
                    .col(text(Plans::Timezone))
                    .col(big_integer(Plans::Seed))
                    .col(big_integer(Plans::GraceMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("plans_by_created").table(Plans::Table).col(Plans::CreatedAtUs).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Executors::Table)
                    .if_not_exists()
                    .col(string(Executors::Id).primary_key())
                    .col(string(Executors::PlanId))
                    .col(big_integer(Executors::DueAtUs))
                    .col(string(Executors::Status))
                    .col(integer(Executors::Attempts))
                    .col(string_null(Executors::LeaseOwner))
                    .col(big_integer_null(Executors::LeaseExpiresUs))
                    .col(big_integer(Executors::GraceMs))
                    .col(big_integer(Executors::CreatedAtUs))
                    .col(big_integer_null(Executors::StartedAtUs))
                    .col(big_integer_null(Executors::FinishedAtUs))
                    .col(text_null(Executors::Summary))
                    .col(text(Executors::Targets))
                    .col(text_null(Executors::Details))
                    .col(text_null(Executors::Error))
                    .col(text(Executors::Log))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            // Every listing orders by (due_at_us, id); each index ends so, so that a page is
            // an index range read, never a sort of the whole table.
            ("executors_by_status_due", vec![Executors::Status, Executors::DueAtUs, Executors::Id]),
            ("executors_by_plan", vec![Executors::PlanId, Executors::DueAtUs, Executors::Id]),
            ("executors_by_due", vec![Executors::DueAtUs, Executors::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Executors::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::AtUs))
                    .col(string(AuditEvents::Source))
                    .col(string(AuditEvents::RunId))
                    .col(text(AuditEvents::Actor))
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::Target))
                    .col(string(AuditEvents::Decision))
                    .col(text_null(AuditEvents::Reason))
                    .col(boolean(AuditEvents::DryRun))
                    .col(text_null(AuditEvents::Outcome))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .if_not_exists()
                    .col(string(Settings::Key).primary_key())
                    .col(text(Settings::Value))
                    .col(big_integer(Settings::UpdatedAtUs))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
