//! The runtime's blast-radius ledger over the engine's storage: every replica charges
//! terminations to the same database.

use std::sync::Arc;

use cme_engine::{BudgetStore, BudgetTake};

pub struct StorageLedger(pub Arc<dyn BudgetStore>);

impl std::fmt::Debug for StorageLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageLedger")
    }
}

#[async_trait::async_trait]
impl cme_runtime::BudgetLedger for StorageLedger {
    /// A ledger that cannot be read refuses (fail closed).
    async fn take(&self, takes: &[BudgetTake], run_id: &str, record: bool) -> Result<(), String> {
        match self.0.take_budget(takes, run_id, chrono::Utc::now(), record).await {
            Ok(verdict) => verdict,
            Err(error) => Err(format!("the budget ledger cannot be read, so nothing is charged to it: {error}")),
        }
    }
}
