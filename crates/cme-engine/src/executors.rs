//! Listing, rescheduling and cancelling executors.

use chrono::Utc;

use crate::model::{AuditEvent, Executor, ExecutorFilter, ExecutorStatus, Page, PageOf};
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

/// A run's journal as the API shows it.
#[derive(Debug, Clone)]
pub enum JournalView {
    /// The run is in flight here: its journal so far, and its changes as they come.
    Live(tokio::sync::watch::Receiver<crate::journal::Journal>),
    /// The run ended: its stored journal.
    Stored(crate::journal::Journal),
}

impl JournalView {
    /// The journal as it stands now.
    pub fn now(&self) -> crate::journal::Journal {
        match self {
            JournalView::Live(live) => live.borrow().clone(),
            JournalView::Stored(journal) => journal.clone(),
        }
    }
}

impl Engine {
    /// Executor `id` with its journal: live while its run is in flight here, stored once
    /// it ended. A run that has not started, runs on another replica, or whose journal
    /// retention emptied has none (`JournalMissing`, saying which).
    /// The name of the executor's plan comes with it (what a JUnit suite is called).
    pub async fn journal(&self, id: &str) -> Result<(Executor, String, JournalView), EngineError> {
        let executor =
            self.ports.executors.executor(id).await?.ok_or_else(|| EngineError::not_found(Resource::Executor, id))?;
        let plan = self.ports.plans.plan(&executor.plan_id).await?.map_or_else(|| executor.plan_id.clone(), |p| p.name);
        if let Some(live) = self.live_journal(id) {
            return Ok((executor, plan, JournalView::Live(live)));
        }
        match self.ports.runs.journal(id).await? {
            Some(journal) => Ok((executor, plan, JournalView::Stored(journal))),
            None => {
                let why = match (executor.status, &executor.lease) {
                    (ExecutorStatus::Pending | ExecutorStatus::Paused, _) => "its run has not started".to_string(),
                    (ExecutorStatus::Running, Some(lease)) if lease.owner != self.config.engine_id => {
                        format!(
                            "its run is in flight on another replica ({}); the journal is stored when it ends",
                            lease.owner
                        )
                    }
                    (ExecutorStatus::Running, _) => "its run is starting".to_string(),
                    (status, _) => format!("it is {status} and has no journal (it never ran, or retention emptied it)"),
                };
                Err(EngineError::JournalMissing { id: id.to_string(), why })
            }
        }
    }
}
