//! m0009_steady_state

use super::*;

pub(super) struct M0009SteadyState;

impl MigrationName for M0009SteadyState {
    fn name(&self) -> &str {
        "m0009_steady_state"
    }
}

#[derive(DeriveIden)]
pub(super) enum GuardedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    SteadyState,
}

#[async_trait::async_trait]
impl MigrationTrait for M0009SteadyState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plans stored before have no steady state (NULL).
        manager
            .alter_table(
                Table::alter().table(GuardedPlans::Table).add_column(text_null(GuardedPlans::SteadyState)).to_owned(),
            )
            .await
    }
}
