//! Blackouts are listed page by page in creation order (`created_at_us`, `id`): the
//! index the keyset seeks on.

use super::*;

pub(super) struct M0017BlackoutOrder;

impl MigrationName for M0017BlackoutOrder {
    fn name(&self) -> &str {
        "m0017_blackout_order"
    }
}

#[derive(DeriveIden)]
pub(super) enum BlackoutOrder {
    #[sea_orm(iden = "blackouts")]
    Table,
    CreatedAtUs,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for M0017BlackoutOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("blackouts_by_creation")
                    .table(BlackoutOrder::Table)
                    .col(BlackoutOrder::CreatedAtUs)
                    .col(BlackoutOrder::Id)
                    .to_owned(),
            )
            .await
    }
}
