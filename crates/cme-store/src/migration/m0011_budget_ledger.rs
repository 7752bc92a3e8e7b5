//! m0011_budget_ledger

use super::*;

pub(super) struct M0011BudgetLedger;

impl MigrationName for M0011BudgetLedger {
    fn name(&self) -> &str {
        "m0011_budget_ledger"
    }
}

#[derive(DeriveIden)]
pub(super) enum BudgetLedger {
    Table,
    Id,
    GroupKey,
    Rule,
    RunId,
    Count,
    AtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0011BudgetLedger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BudgetLedger::Table)
                    .col(big_pk_auto(BudgetLedger::Id))
                    .col(string(BudgetLedger::GroupKey))
                    .col(string(BudgetLedger::Rule))
                    .col(string(BudgetLedger::RunId))
                    .col(integer(BudgetLedger::Count))
                    .col(big_integer(BudgetLedger::AtUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("budget_ledger_group")
                    .table(BudgetLedger::Table)
                    .col(BudgetLedger::GroupKey)
                    .col(BudgetLedger::AtUs)
                    .to_owned(),
            )
            .await
    }
}
