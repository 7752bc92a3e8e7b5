//! A blackout says what it is for: a calendar event's DESCRIPTION, or the operator's
//! words (`description`, NULL when none).

use super::*;

pub(super) struct M0018BlackoutDescription;

impl MigrationName for M0018BlackoutDescription {
    fn name(&self) -> &str {
        "m0018_blackout_description"
    }
}

#[derive(DeriveIden)]
pub(super) enum BlackoutDescription {
    #[sea_orm(iden = "blackouts")]
    Table,
    Description,
}

#[async_trait::async_trait]
impl MigrationTrait for M0018BlackoutDescription {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BlackoutDescription::Table)
                    .add_column(text_null(BlackoutDescription::Description))
                    .to_owned(),
            )
            .await
    }
}
