//! Inventories (named groups of SSH hosts, their hosts as JSON: read and written whole)
//! and the undos attacks arm, with the index the undo keeper reads them by.

use super::*;

pub(super) struct M0014InventoriesAndUndos;

impl MigrationName for M0014InventoriesAndUndos {
    fn name(&self) -> &str {
        "m0014_inventories_and_undos"
    }
}

#[derive(DeriveIden)]
pub(super) enum Inventories {
    Table,
    Name,
    Hosts,
    UpdatedAtUs,
    UpdatedBy,
}

#[derive(DeriveIden)]
pub(super) enum Undos {
    Table,
    Id,
    RunId,
    PlanId,
    Plugin,
    Address,
    Port,
    User,
    Credential,
    Command,
    PlanCreatedBy,
    ArmedAtUs,
    DueAtUs,
    State,
    Attempts,
    Outcome,
    FinishedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0014InventoriesAndUndos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Inventories::Table)
                    .col(string(Inventories::Name).primary_key())
                    .col(text(Inventories::Hosts))
                    .col(big_integer(Inventories::UpdatedAtUs))
                    .col(string(Inventories::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Undos::Table)
                    .col(string(Undos::Id).primary_key())
                    .col(string(Undos::RunId))
                    .col(string(Undos::PlanId))
                    .col(string(Undos::Plugin))
                    .col(string(Undos::Address))
                    .col(integer(Undos::Port))
                    .col(string(Undos::User))
                    .col(string(Undos::Credential))
                    .col(text(Undos::Command))
                    .col(text_null(Undos::PlanCreatedBy))
                    .col(big_integer(Undos::ArmedAtUs))
                    .col(big_integer(Undos::DueAtUs))
                    .col(string(Undos::State))
                    .col(integer(Undos::Attempts))
                    .col(text_null(Undos::Outcome))
                    .col(big_integer_null(Undos::FinishedAtUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("undos_state_due")
                    .table(Undos::Table)
                    .col(Undos::State)
                    .col(Undos::DueAtUs)
                    .to_owned(),
            )
            .await
    }
}
