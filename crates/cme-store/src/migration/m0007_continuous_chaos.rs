//! Continuous chaos: recurring plans (their horizon, indexed: the scheduler asks for the
//! soonest), misfire and overlap policies, the reason of skipped executors, blackouts.

use super::*;

pub(super) struct M0007ContinuousChaos;

impl MigrationName for M0007ContinuousChaos {
    fn name(&self) -> &str {
        "m0007_continuous_chaos"
    }
}

#[derive(DeriveIden)]
pub(super) enum RecurringPlans {
    #[sea_orm(iden = "plans")]
    Table,
    PlannedUntilUs,
    Misfire,
    Overlap,
}

#[derive(DeriveIden)]
pub(super) enum SkippedExecutors {
    #[sea_orm(iden = "executors")]
    Table,
    Reason,
}

#[derive(DeriveIden)]
pub(super) enum Blackouts {
    Table,
    Id,
    Name,
    PlanId,
    Spec,
    Calendar,
    StopRunning,
    CreatedAtUs,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007ContinuousChaos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time. Plans stored
        // before are one-shot, with the original behaviour (skip misfires)...
        manager
            .alter_table(
                Table::alter()
                    .table(RecurringPlans::Table)
                    .add_column(big_integer_null(RecurringPlans::PlannedUntilUs))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RecurringPlans::Table)
                    .add_column(string(RecurringPlans::Misfire).default("skip"))
                    .to_owned(),
            )
            .await?;
        // ... and allow overlaps, as they always did.
        manager
            .alter_table(
                Table::alter()
                    .table(RecurringPlans::Table)
                    .add_column(string(RecurringPlans::Overlap).default("allow"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("plans_planned_until")
                    .table(RecurringPlans::Table)
                    .col(RecurringPlans::PlannedUntilUs)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SkippedExecutors::Table)
                    .add_column(text_null(SkippedExecutors::Reason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blackouts::Table)
                    .col(string(Blackouts::Id).primary_key())
                    .col(text(Blackouts::Name))
                    .col(string_null(Blackouts::PlanId))
                    .col(text(Blackouts::Spec))
                    .col(text_null(Blackouts::Calendar))
                    .col(boolean(Blackouts::StopRunning))
                    .col(big_integer(Blackouts::CreatedAtUs))
                    .col(text(Blackouts::CreatedBy))
                    .to_owned(),
            )
            .await
    }
}
