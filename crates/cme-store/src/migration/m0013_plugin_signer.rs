//! Who signed an uploaded plugin (a trusted key's name and fingerprint); None: unsigned.

use super::*;

pub(super) struct M0013PluginSigner;

impl MigrationName for M0013PluginSigner {
    fn name(&self) -> &str {
        "m0013_plugin_signer"
    }
}

#[derive(DeriveIden)]
pub(super) enum PluginSigner {
    #[sea_orm(iden = "plugins")]
    Table,
    SignedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0013PluginSigner {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(PluginSigner::Table).add_column(text_null(PluginSigner::SignedBy)).to_owned(),
            )
            .await
    }
}
