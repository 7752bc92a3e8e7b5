//! A store with faults on demand: its first claim waits for the test's signal (the
//! window between claiming and starting a run, held open), and halt writes can fail.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use cme_engine::storage::StorageResult;
use cme_engine::*;
use cme_store::Store;
use tokio::sync::Notify;

/// Where the first extension waits for the other engine, and every extension's outcome.
pub type ExtendRace = (Arc<tokio::sync::Barrier>, Arc<std::sync::Mutex<Vec<bool>>>);

pub struct SlowClaims {
    inner: Arc<Store>,
    /// Notified when a claim starts.
    pub entered: Notify,
    /// Notify to let the first claim through (later claims pass at once).
    pub release: Notify,
    released: std::sync::atomic::AtomicBool,
    /// While true, storing the halt switch fails as if the database were locked.
    pub fail_halt_writes: std::sync::atomic::AtomicBool,
    /// The first horizon extension waits here for another engine's (a forced race), and
    /// every extension's outcome is recorded.
    pub extend_race: Option<ExtendRace>,
    raced: std::sync::atomic::AtomicBool,
}

impl SlowClaims {
    pub fn new(inner: Arc<Store>) -> Self {
        SlowClaims {
            inner,
            entered: Notify::new(),
            release: Notify::new(),
            released: Default::default(),
            fail_halt_writes: Default::default(),
            extend_race: None,
            raced: Default::default(),
        }
    }

    /// Claims pass at once.
    pub fn fast(inner: Arc<Store>) -> Self {
        let store = SlowClaims::new(inner);
        store.released.store(true, std::sync::atomic::Ordering::SeqCst);
        store
    }
}

#[async_trait::async_trait]
impl Storage for SlowClaims {
    async fn insert_executors(
        &self,
        executors: &[Executor],
        audit: &AuditEvent,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError> {
        self.inner.insert_executors(executors, audit, caps).await
    }

    async fn set_plan_paused(&self, id: &str, since: Option<DateTime<Utc>>, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.set_plan_paused(id, since, audit).await
    }

    async fn insert_plan(
        &self,
        plan: &Plan,
        executors: &[Executor],
        audit: &AuditEvent,
        credential: Option<&Credential>,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError> {
        self.inner.insert_plan(plan, executors, audit, credential, caps).await
    }

    async fn plan(&self, id: &str) -> StorageResult<Option<Plan>> {
        self.inner.plan(id).await
    }

    async fn list_plans(&self, all: bool, page: Page) -> StorageResult<PageOf<PlanSummary>> {
        self.inner.list_plans(all, page).await
    }

    async fn summarize(&self, plan: Plan) -> StorageResult<PlanSummary> {
        self.inner.summarize(plan).await
    }

    async fn delete_plan(
        &self,
        id: &str,
        at: DateTime<Utc>,
        owned_credential: &str,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        self.inner.delete_plan(id, at, owned_credential, audit).await
    }

    async fn executors_of(&self, plan_id: &str) -> StorageResult<Vec<Executor>> {
        self.inner.executors_of(plan_id).await
    }

    async fn executor(&self, id: &str) -> StorageResult<Option<Executor>> {
        self.inner.executor(id).await
    }

    async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> StorageResult<PageOf<Executor>> {
        self.inner.list_executors(filter, page).await
    }

    async fn reschedule(
        &self,
        id: &str,
        due: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError> {
        self.inner.reschedule(id, due, audit).await
    }

    async fn cancel(
        &self,
        id: &str,
        at: DateTime<Utc>,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError> {
        self.inner.cancel(id, at, reason, audit).await
    }

    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>> {
        self.inner.next_due().await
    }

    async fn mark_missed(&self, now: DateTime<Utc>) -> StorageResult<Vec<String>> {
        self.inner.mark_missed(now).await
    }

    async fn count_executors(&self) -> StorageResult<Vec<(ExecutorStatus, u64)>> {
        self.inner.count_executors().await
    }

    async fn count_live_plans(&self) -> StorageResult<u64> {
        self.inner.count_live_plans().await
    }

    async fn running_ahead(
        &self,
        plan_id: &str,
        executor_id: &str,
        due: DateTime<Utc>,
    ) -> StorageResult<Option<String>> {
        self.inner.running_ahead(plan_id, executor_id, due).await
    }

    async fn executors_between(
        &self,
        plan_id: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> StorageResult<Vec<Executor>> {
        self.inner.executors_between(plan_id, from, until, limit).await
    }

    async fn plans_to_extend(&self, before: DateTime<Utc>, limit: u64) -> StorageResult<Vec<Plan>> {
        self.inner.plans_to_extend(before, limit).await
    }

    async fn next_planned_until(&self) -> StorageResult<Option<DateTime<Utc>>> {
        self.inner.next_planned_until().await
    }

    async fn extend_plans(&self, extensions: &[Extension], caps: &WorkCaps) -> Result<Vec<bool>, InsertPlanError> {
        let Some((gate, outcomes)) = &self.extend_race else {
            return self.inner.extend_plans(extensions, caps).await;
        };
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // Both engines have asked their planner; now both try to store the window.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), gate.wait()).await;
        }
        let stored = self.inner.extend_plans(extensions, caps).await;
        if let Ok(stored) = &stored {
            outcomes.lock().unwrap().extend(stored.iter().copied());
        }
        stored
    }

    async fn blackouts(&self) -> StorageResult<Vec<Blackout>> {
        self.inner.blackouts().await
    }

    async fn blackouts_page(
        &self,
        after: Option<&cme_engine::storage::BlackoutCursor>,
        size: u64,
    ) -> StorageResult<PageOf<Blackout>> {
        self.inner.blackouts_page(after, size).await
    }

    async fn count_blackouts(&self) -> StorageResult<u64> {
        self.inner.count_blackouts().await
    }

    async fn blackout(&self, id: &str) -> StorageResult<Option<Blackout>> {
        self.inner.blackout(id).await
    }

    async fn blackouts_generation(&self) -> StorageResult<String> {
        self.inner.blackouts_generation().await
    }

    async fn insert_blackouts(
        &self,
        replace_calendar: Option<&str>,
        blackouts: &[Blackout],
        audit: &AuditEvent,
        max: u64,
    ) -> Result<(), InsertPlanError> {
        self.inner.insert_blackouts(replace_calendar, blackouts, audit, max).await
    }

    async fn delete_blackout(&self, id: &str, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.delete_blackout(id, audit).await
    }

    async fn inventories(&self) -> StorageResult<Vec<cme_engine::Inventory>> {
        self.inner.inventories().await
    }

    async fn inventory(&self, name: &str) -> StorageResult<Option<cme_engine::Inventory>> {
        self.inner.inventory(name).await
    }

    async fn put_inventories(&self, inventories: &[cme_engine::Inventory], audit: &AuditEvent) -> StorageResult<()> {
        self.inner.put_inventories(inventories, audit).await
    }

    async fn delete_inventory(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.delete_inventory(name, audit).await
    }

    async fn insert_undo(&self, undo: &cme_engine::Undo) -> StorageResult<()> {
        self.inner.insert_undo(undo).await
    }

    async fn undos(&self, pending: bool, limit: u64) -> StorageResult<Vec<cme_engine::Undo>> {
        self.inner.undos(pending, limit).await
    }

    async fn undo(&self, id: &str) -> StorageResult<Option<cme_engine::Undo>> {
        self.inner.undo(id).await
    }

    async fn update_undo(&self, undo: &cme_engine::Undo, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.update_undo(undo, audit).await
    }

    async fn cancel_due_while_halted(&self, now: DateTime<Utc>) -> StorageResult<u64> {
        self.inner.cancel_due_while_halted(now).await
    }

    async fn claim_due(&self, claim: &Claim) -> StorageResult<Vec<Executor>> {
        if !self.released.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.claim_due(claim).await
    }

    async fn claim_due_capped(&self, claim: &Claim, cap: u64) -> StorageResult<(Vec<Executor>, bool)> {
        self.inner.claim_due_capped(claim, cap).await
    }

    async fn record_runs(&self, runs: &[FinishedRun]) -> StorageResult<Vec<bool>> {
        self.inner.record_runs(runs).await
    }

    async fn prune(
        &self,
        audit_before: Option<DateTime<Utc>>,
        logs_before: Option<DateTime<Utc>>,
    ) -> StorageResult<storage::Pruned> {
        self.inner.prune(audit_before, logs_before).await
    }

    async fn reap_expired(&self, now: DateTime<Utc>) -> StorageResult<u64> {
        self.inner.reap_expired(now).await
    }

    async fn halt_state(&self) -> StorageResult<HaltState> {
        self.inner.halt_state().await
    }

    async fn set_halt_state(&self, state: &HaltState, audit: &AuditEvent) -> StorageResult<()> {
        if self.fail_halt_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Unavailable("database is locked".into()));
        }
        self.inner.set_halt_state(state, audit).await
    }

    async fn insert_audit(&self, events: &[AuditEvent]) -> StorageResult<()> {
        self.inner.insert_audit(events).await
    }

    async fn list_audit(&self, page: Page) -> StorageResult<PageOf<AuditEntry>> {
        self.inner.list_audit(page).await
    }

    async fn list_audit_before(&self, before: i64, size: u64) -> StorageResult<PageOf<AuditEntry>> {
        self.inner.list_audit_before(before, size).await
    }

    async fn insert_credential(&self, credential: &Credential, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.insert_credential(credential, audit).await
    }

    async fn credential(&self, name: &str) -> StorageResult<Option<Credential>> {
        self.inner.credential(name).await
    }

    async fn credentials(&self) -> StorageResult<Vec<Credential>> {
        self.inner.credentials().await
    }

    async fn delete_credential(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool> {
        self.inner.delete_credential(name, audit).await
    }

    async fn plugins_generation(&self) -> StorageResult<String> {
        self.inner.plugins_generation().await
    }

    async fn plugin_records(&self) -> StorageResult<Vec<PluginRecord>> {
        self.inner.plugin_records().await
    }

    async fn plugin_record(&self, id: &str) -> StorageResult<Option<PluginRecord>> {
        self.inner.plugin_record(id).await
    }

    async fn plugin_wasm(&self, id: &str) -> StorageResult<Option<Vec<u8>>> {
        self.inner.plugin_wasm(id).await
    }

    async fn insert_plugin(
        &self,
        record: &PluginRecord,
        wasm: &[u8],
        audit: &AuditEvent,
    ) -> StorageResult<StoredUpload> {
        self.inner.insert_plugin(record, wasm, audit).await
    }

    async fn update_plugin(
        &self,
        id: &str,
        change: &PluginChange,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        self.inner.update_plugin(id, change, at, audit).await
    }

    async fn delete_plugin(&self, id: &str, audit: &AuditEvent) -> StorageResult<Option<u64>> {
        self.inner.delete_plugin(id, audit).await
    }

    async fn insert_events(&self, events: &[Event]) -> StorageResult<()> {
        self.inner.insert_events(events).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> StorageResult<Vec<Delivery>> {
        self.inner.claim_deliveries(now, owner, lease_until, limit).await
    }

    async fn finish_delivery(&self, id: i64, owner: &str, attempt: &Attempt) -> StorageResult<()> {
        self.inner.finish_delivery(id, owner, attempt).await
    }

    async fn next_delivery(&self) -> StorageResult<Option<DateTime<Utc>>> {
        self.inner.next_delivery().await
    }

    async fn delivery_counts(&self, webhook: &str) -> StorageResult<DeliveryCounts> {
        self.inner.delivery_counts(webhook).await
    }

    async fn take_budget(
        &self,
        takes: &[BudgetTake],
        run_id: &str,
        now: DateTime<Utc>,
        record: bool,
    ) -> StorageResult<Result<(), String>> {
        self.inner.take_budget(takes, run_id, now, record).await
    }

    fn outbox_signals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.outbox_signals()
    }
}
