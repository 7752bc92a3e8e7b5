//! Listing, rescheduling and cancelling executors.

use cme_store::{ExecutorChangeError, ExecutorFilter, Page, PageOf};

use crate::time::{now_us, parse_instant, to_us};
use crate::views::ExecutorView;
use crate::{Engine, EngineError};

impl Engine {
    pub async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> Result<PageOf<ExecutorView>, EngineError> {
        let listed = self.store.list_executors(filter, page).await?;
        Ok(PageOf { items: listed.items.into_iter().map(ExecutorView::from_model).collect(), has_more: listed.has_more })
    }

    /// One executor, with the plugin version it runs (`name@version`, from its plan).
    pub async fn executor(&self, id: &str) -> Result<ExecutorView, EngineError> {
        let found = self.store.executor(id).await?.ok_or_else(|| not_found(id))?;
        let plugin = self.store.plan(&found.plan_id).await?.map(|p| p.attack_plugin);
        let mut view = ExecutorView::from_model(found);
        view.attack_plugin = plugin;
        Ok(view)
    }

    /// Moves a pending executor to `date` (RFC 3339; without offset in the engine's zone).
    pub async fn reschedule(&self, id: &str, date: &str) -> Result<ExecutorView, EngineError> {
        let due = parse_instant(date, self.config.timezone).map_err(|m| EngineError::invalid(format!("invalid date: {m}"), Some("/args/date")))?;
        let changed = self.store.reschedule(id, to_us(due)).await.map_err(|e| change_error(id, e, "rescheduled"))?;
        self.wake_scheduler();
        Ok(ExecutorView::from_model(changed))
    }

    /// Cancels a pending executor (it stays in the history as `cancelled`).
    pub async fn cancel_executor(&self, id: &str) -> Result<ExecutorView, EngineError> {
        let changed = self.store.cancel(id, now_us(), "by request").await.map_err(|e| change_error(id, e, "cancelled"))?;
        self.wake_scheduler();
        Ok(ExecutorView::from_model(changed))
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound(format!("executor {id} not found"))
}

fn change_error(id: &str, error: ExecutorChangeError, verb: &str) -> EngineError {
    match error {
        ExecutorChangeError::NotFound => not_found(id),
        ExecutorChangeError::NotPending(status) => {
            EngineError::Conflict(format!("executor {id} is {status}; only a pending executor can be {verb}"))
        }
        ExecutorChangeError::Store(e) => e.into(),
    }
}
