//! m0002_credentials

use super::*;

pub(super) struct M0002Credentials;

impl MigrationName for M0002Credentials {
    fn name(&self) -> &str {
        "m0002_credentials"
    }
}

#[derive(DeriveIden)]
pub(super) enum Credentials {
    Table,
    Name,
    User,
    PrivateKey,
    Passphrase,
    Fingerprint,
    Algorithm,
    CreatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Credentials {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .if_not_exists()
                    .col(string(Credentials::Name).primary_key())
                    .col(text(Credentials::User))
                    .col(text(Credentials::PrivateKey))
                    .col(text_null(Credentials::Passphrase))
                    .col(text(Credentials::Fingerprint))
                    .col(text(Credentials::Algorithm))
                    .col(big_integer(Credentials::CreatedAtUs))
                    .to_owned(),
            )
            .await
    }
}
