//! Listing, rescheduling and cancelling executors.

use chrono::Utc;

use crate::model::{AuditEvent, Executor, ExecutorFilter, Page, PageOf};
use crate::storage::ExecutorChangeError;
use crate::{Engine, EngineError, ExecutorChange, Resource};
use cme_model::time::parse_datetime;

impl Engine {
    pub async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> Result<PageOf<Executor>, EngineError> {
        Ok(self.ports.executors.list_executors(filter, page).await?)
    }

    /// The store's data version (see [`crate::Storage::data_version`]): what a rendered
    /// executor list may be kept under.
    pub fn data_version(&self) -> Option<u64> {
        self.ports.executors.data_version()
    }

    /// One executor, with the plugin version it runs (`name@version`, from its plan).
    pub async fn executor(&self, id: &str) -> Result<(Executor, Option<String>), EngineError> {
        let found =
            self.ports.executors.executor(id).await?.ok_or_else(|| EngineError::not_found(Resource::Executor, id))?;
        let plugin = self.ports.plans.plan(&found.plan_id).await?.map(|p| p.attack.plugin);
        Ok((found, plugin))
    }

    /// Moves a pending executor to `date` (RFC 3339; without offset in the engine's
    /// zone), audited in the same transaction.
    pub async fn reschedule(&self, id: &str, date: &str, by: &str) -> Result<Executor, EngineError> {
        let due = parse_datetime(date, self.config.timezone)
            .map_err(|m| EngineError::invalid("/args/date", format!("invalid date: {m}")))?;
        let audit = AuditEvent::action(by, "executor.reschedule", id);
        let changed = self
            .ports
            .executors
            .reschedule(id, due, &audit)
            .await
            .map_err(|e| change_error(id, e, ExecutorChange::Reschedule))?;
        self.wake_scheduler();
        Ok(changed)
    }

    /// Cancels a pending executor (it stays in the history as `cancelled`), audited in
    /// the same transaction.
    pub async fn cancel_executor(&self, id: &str, by: &str) -> Result<Executor, EngineError> {
        let audit = AuditEvent::action(by, "executor.cancel", id);
        let changed = self
            .ports
            .executors
            .cancel(id, Utc::now(), "by request", &audit)
            .await
            .map_err(|e| change_error(id, e, ExecutorChange::Cancel))?;
        self.wake_scheduler();
        Ok(changed)
    }
}

fn change_error(id: &str, error: ExecutorChangeError, change: ExecutorChange) -> EngineError {
    match error {
        ExecutorChangeError::NotFound => EngineError::not_found(Resource::Executor, id),
        ExecutorChangeError::NotPending(status) => EngineError::NotPending { id: id.to_string(), status, change },
        ExecutorChangeError::Storage(e) => e.into(),
    }
}
