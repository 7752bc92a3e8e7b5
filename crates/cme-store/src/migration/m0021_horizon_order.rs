//! Recurring plans are extended in (horizon, id) order, a page at a time. Plans extended in
//! one round share their new horizon, so the order's ties are as many as the plans: the
//! index on the horizon alone made every page sort all of them by id again (100,000
//! plans: 500 pages of a 100,000-row sort). The index on (horizon, id) lets a page seek to
//! where the last one ended.

use super::*;

pub(super) struct M0021HorizonOrder;

impl MigrationName for M0021HorizonOrder {
    fn name(&self) -> &str {
        "m0021_horizon_order"
    }
}

#[derive(DeriveIden)]
enum HorizonPlans {
    #[sea_orm(iden = "plans")]
    Table,
    PlannedUntilUs,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for M0021HorizonOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("plans_planned_until_id")
                    .table(HorizonPlans::Table)
                    .col(HorizonPlans::PlannedUntilUs)
                    .col(HorizonPlans::Id)
                    .to_owned(),
            )
            .await?;
        // Its prefix serves whatever the old index served.
        manager.drop_index(Index::drop().name("plans_planned_until").table(HorizonPlans::Table).to_owned()).await
    }
}
