//! The shared ledger blast-radius budgets are charged to: a port the binary implements
//! over the database, so that every replica counts the same terminations.

use cme_grant::BudgetTake;

/// Checks and records terminations against the operator's budgets.
#[async_trait::async_trait]
pub trait BudgetLedger: Send + Sync + std::fmt::Debug + 'static {
    /// Records `takes` for `run_id` when every group allows them (all or nothing); else
    /// which budget refuses and why. `record: false` only checks (a dry run). An error
    /// reaching the ledger is a refusal too (fail closed).
    async fn take(&self, takes: &[BudgetTake], run_id: &str, record: bool) -> Result<(), String>;
}
