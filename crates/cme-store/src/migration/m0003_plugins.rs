//! m0003_plugins

use super::*;

pub(super) struct M0003Plugins;

impl MigrationName for M0003Plugins {
    fn name(&self) -> &str {
        "m0003_plugins"
    }
}

#[derive(DeriveIden)]
pub(super) enum Plugins {
    Table,
    Id,
    Name,
    Version,
    Kind,
    Sha256,
    Size,
    Wasm,
    Status,
    Grant,
    UploadedBy,
    UploadedAtUs,
    UpdatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Plugins {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plugins::Table)
                    .if_not_exists()
                    .col(string(Plugins::Id).primary_key())
                    .col(text(Plugins::Name))
                    .col(text(Plugins::Version))
                    .col(text(Plugins::Kind))
                    .col(text(Plugins::Sha256))
                    .col(big_integer(Plugins::Size))
                    .col(blob(Plugins::Wasm))
                    .col(text(Plugins::Status))
                    .col(text_null(Plugins::Grant))
                    .col(text(Plugins::UploadedBy))
                    .col(big_integer(Plugins::UploadedAtUs))
                    .col(big_integer(Plugins::UpdatedAtUs))
                    .to_owned(),
            )
            .await
    }
}
