//! Experiments: a plan's steps and deadline, an executor's outcome and journal, the step
//! an undo reverts and what it restores when the host does it itself (HTTP, EC2).

use super::*;

pub(super) struct M0020Experiments;

impl MigrationName for M0020Experiments {
    fn name(&self) -> &str {
        "m0020_experiments"
    }
}

#[derive(DeriveIden)]
pub(super) enum ExperimentPlans {
    #[sea_orm(iden = "plans")]
    Table,
    Steps,
    DeadlineMs,
}

#[derive(DeriveIden)]
pub(super) enum ExperimentExecutors {
    #[sea_orm(iden = "executors")]
    Table,
    Outcome,
    Journal,
    ExtraSteps,
}

#[derive(DeriveIden)]
pub(super) enum StepUndos {
    #[sea_orm(iden = "undos")]
    Table,
    Step,
    Revert,
    RunId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0020Experiments {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column an ALTER: SQLite adds one at a time.
        for column in [text_null(ExperimentPlans::Steps), big_integer_null(ExperimentPlans::DeadlineMs)] {
            manager.alter_table(Table::alter().table(ExperimentPlans::Table).add_column(column).to_owned()).await?;
        }
        // Attack steps an experiment runs beside its first (what max_concurrent_attacks
        // counts besides the running executors).
        for column in [
            text_null(ExperimentExecutors::Outcome),
            text_null(ExperimentExecutors::Journal),
            integer(ExperimentExecutors::ExtraSteps).default(0).to_owned(),
        ] {
            manager.alter_table(Table::alter().table(ExperimentExecutors::Table).add_column(column).to_owned()).await?;
        }
        for column in [text_null(StepUndos::Step), text_null(StepUndos::Revert)] {
            manager.alter_table(Table::alter().table(StepUndos::Table).add_column(column).to_owned()).await?;
        }
        // A run's undos are read together (its steps' reverts, an abort's).
        manager
            .create_index(
                Index::create()
                    .name("undos_by_run")
                    .table(StepUndos::Table)
                    .col(StepUndos::RunId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
