//! A store with faults on demand: its first claim waits for the test's signal (the
//! window between claiming and starting a run, held open), halt writes can fail, and the
//! first horizon extension can wait for another engine's, results can fail to record. It
//! fakes four ports (claims, halt, horizon, runs); every other port is the real store's.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use cme_engine::storage::StorageResult;
use cme_engine::storage::prelude::*;
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
    /// While true, recording results fails as if the database were away.
    pub fail_records: std::sync::atomic::AtomicBool,
    /// The first horizon extension waits here for another engine's (a forced race), and
    /// every extension's outcome is recorded.
    pub extend_race: Option<ExtendRace>,
    raced: std::sync::atomic::AtomicBool,
    /// Added to the due time of every executor a claim hands out (ms): what the engine
    /// sees when its wall clock steps back by that much right after the claim.
    pub due_shift_ms: std::sync::atomic::AtomicI64,
}

impl SlowClaims {
    pub fn new(inner: Arc<Store>) -> Self {
        SlowClaims {
            inner,
            entered: Notify::new(),
            release: Notify::new(),
            released: Default::default(),
            fail_halt_writes: Default::default(),
            fail_records: Default::default(),
            extend_race: None,
            raced: Default::default(),
            due_shift_ms: Default::default(),
        }
    }

    /// Claims pass at once.
    pub fn fast(inner: Arc<Store>) -> Self {
        let store = SlowClaims::new(inner);
        store.released.store(true, std::sync::atomic::Ordering::SeqCst);
        store
    }

    fn shift(&self, claimed: &mut [Executor]) {
        let shift = chrono::Duration::milliseconds(self.due_shift_ms.load(std::sync::atomic::Ordering::SeqCst));
        for executor in claimed {
            executor.due += shift;
        }
    }

    /// The real store's ports, with the three this one fakes in their place.
    pub fn ports(self: &Arc<Self>) -> Ports {
        Ports {
            claims: self.clone(),
            halt: self.clone(),
            horizon: self.clone(),
            runs: self.clone(),
            ..Ports::of(self.inner.clone())
        }
    }
}

#[async_trait::async_trait]
impl ClaimStore for SlowClaims {
    async fn claim_due(&self, claim: &Claim) -> StorageResult<Vec<Executor>> {
        if !self.released.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        let mut claimed = self.inner.claim_due(claim).await?;
        self.shift(&mut claimed);
        Ok(claimed)
    }

    async fn claim_due_capped(&self, claim: &Claim, cap: u64) -> StorageResult<(Vec<Executor>, bool)> {
        let (mut claimed, held_back) = self.inner.claim_due_capped(claim, cap).await?;
        self.shift(&mut claimed);
        Ok((claimed, held_back))
    }

    async fn take_step_slot(&self, executor_id: &str, owner: &str, cap: u64) -> StorageResult<bool> {
        self.inner.take_step_slot(executor_id, owner, cap).await
    }

    async fn release_step_slot(&self, executor_id: &str) -> StorageResult<()> {
        self.inner.release_step_slot(executor_id).await
    }

    async fn running_ahead(
        &self,
        plan_id: &str,
        executor_id: &str,
        due: DateTime<Utc>,
    ) -> StorageResult<Option<String>> {
        self.inner.running_ahead(plan_id, executor_id, due).await
    }
}

#[async_trait::async_trait]
impl HaltStore for SlowClaims {
    async fn halt_state(&self) -> StorageResult<HaltState> {
        self.inner.halt_state().await
    }

    fn halt_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.halt_signals()
    }

    async fn set_halt_state(&self, state: &HaltState, audit: &AuditEvent) -> StorageResult<()> {
        if self.fail_halt_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Unavailable("database is locked".into()));
        }
        self.inner.set_halt_state(state, audit).await
    }

    async fn probe_write(&self) -> StorageResult<()> {
        self.inner.probe_write().await
    }
}

#[async_trait::async_trait]
impl HorizonStore for SlowClaims {
    async fn plans_to_extend(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u64,
    ) -> StorageResult<Vec<Plan>> {
        self.inner.plans_to_extend(before, after, limit).await
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
}

#[async_trait::async_trait]
impl RunStore for SlowClaims {
    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>> {
        self.inner.next_due().await
    }

    async fn mark_missed(&self, now: DateTime<Utc>) -> StorageResult<Vec<String>> {
        self.inner.mark_missed(now).await
    }

    async fn cancel_due_while_halted(&self, now: DateTime<Utc>) -> StorageResult<u64> {
        self.inner.cancel_due_while_halted(now).await
    }

    async fn record_runs(&self, runs: &[FinishedRun]) -> StorageResult<Vec<bool>> {
        if self.fail_records.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Unavailable("the database is away".into()));
        }
        self.inner.record_runs(runs).await
    }

    async fn reap_expired(&self, now: DateTime<Utc>, spare: &[String]) -> StorageResult<u64> {
        self.inner.reap_expired(now, spare).await
    }

    async fn renew_lease(&self, executor_id: &str, owner: &str, lease: std::time::Duration) -> StorageResult<bool> {
        self.inner.renew_lease(executor_id, owner, lease).await
    }

    async fn confirm_start(
        &self,
        executor_id: &str,
        owner: &str,
        started: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StorageResult<bool> {
        self.inner.confirm_start(executor_id, owner, started, lease).await
    }

    async fn journal(&self, executor_id: &str) -> StorageResult<Option<Journal>> {
        self.inner.journal(executor_id).await
    }

    async fn prune(
        &self,
        audit_before: Option<DateTime<Utc>>,
        logs_before: Option<DateTime<Utc>>,
    ) -> StorageResult<cme_engine::storage::Pruned> {
        self.inner.prune(audit_before, logs_before).await
    }
}
