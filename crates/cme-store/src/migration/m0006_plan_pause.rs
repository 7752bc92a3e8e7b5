//! Paused plans (their waiting executors take the status `paused`, no schema change).

use super::*;

pub(super) struct M0006PlanPause;

impl MigrationName for M0006PlanPause {
    fn name(&self) -> &str {
        "m0006_plan_pause"
    }
}

#[derive(DeriveIden)]
pub(super) enum PausedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    PausedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0006PlanPause {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PausedPlans::Table)
                    .add_column(big_integer_null(PausedPlans::PausedAtUs))
                    .to_owned(),
            )
            .await
    }
}
