//! Whether an executor's run was dry, recorded with its result (the engine-wide leash
//! applies at run time, so the plan's flag alone does not tell).

use super::*;

pub(super) struct M0004ExecutorDryRun;

impl MigrationName for M0004ExecutorDryRun {
    fn name(&self) -> &str {
        "m0004_executor_dry_run"
    }
}

#[derive(DeriveIden)]
pub(super) enum ExecutorRuns {
    #[sea_orm(iden = "executors")]
    Table,
    DryRun,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004ExecutorDryRun {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(ExecutorRuns::Table).add_column(boolean_null(ExecutorRuns::DryRun)).to_owned(),
            )
            .await
    }
}
