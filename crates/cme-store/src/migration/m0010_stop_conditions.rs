//! m0010_stop_conditions

use super::*;

pub(super) struct M0010StopConditions;

impl MigrationName for M0010StopConditions {
    fn name(&self) -> &str {
        "m0010_stop_conditions"
    }
}

#[derive(DeriveIden)]
pub(super) enum WatchedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    StopConditions,
}

#[async_trait::async_trait]
impl MigrationTrait for M0010StopConditions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WatchedPlans::Table)
                    .add_column(text_null(WatchedPlans::StopConditions))
                    .to_owned(),
            )
            .await
    }
}
