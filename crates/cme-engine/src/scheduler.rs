//! The scheduler: sleeps until the earliest due executor (or a change), claims what is
//! due with a lease, runs it, records the result. Never polls in a loop: with nothing to
//! do it sleeps up to a minute (to notice plans made by other replicas).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use cme_store::{FinishedRun, NewAudit, RunRecord, executor, plan, status};

use crate::host::{CapabilityAudit, RunInput};
use crate::time::{now_us, to_us};
use crate::{Engine, EngineError};

/// Longest sleep with nothing due.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Longest sleep while attacks run here, so a halt made on another replica reaches them.
const MAX_IDLE_WHILE_RUNNING: Duration = Duration::from_secs(1);

impl Engine {
    /// The scheduler loop; returns when shutdown is requested.
    pub(crate) async fn schedule(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.tick().await {
                Ok(wait) => wait,
                Err(error) => {
                    // Fail closed: nothing fires while the database cannot be read.
                    tracing::error!(%error, "scheduler pass failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass: misfires, halt, claims. Returns how long to sleep.
    async fn tick(self: &Arc<Self>) -> Result<Duration, EngineError> {
        let now = now_us();
        let halt = self.store.halt_state().await?;
        let missed = self.store.mark_missed(now).await?;
        if missed > 0 {
            tracing::warn!(missed, "executors missed their grace period");
        }
        if halt.halted {
            let cancelled = self.store.cancel_due_while_halted(now).await?;
            if cancelled > 0 {
                tracing::warn!(cancelled, "executors fell due while halted and were cancelled");
            }
            if self.running() > 0 {
                self.stop_runs("halted");
            }
        } else {
            self.claim_and_start().await?;
        }
        let running = self.running() > 0;
        let cap = if running { MAX_IDLE_WHILE_RUNNING } else { MAX_IDLE };
        Ok(match self.store.next_due().await? {
            None => cap,
            Some(due) => Duration::from_micros((due - now_us()).max(0) as u64).min(cap),
        })
    }

    async fn claim_and_start(self: &Arc<Self>) -> Result<(), EngineError> {
        loop {
            let free = self.runs.available_permits();
            if free == 0 {
                return Ok(()); // a finishing run wakes the scheduler
            }
            let now = now_us();
            let lease_until = now + (self.config.run_deadline + self.config.lease_margin).as_micros() as i64;
            let claimed = self.store.claim_due(now, &self.config.engine_id, lease_until, free as u64).await?;
            let count = claimed.len();
            for row in claimed {
                let permit = self.runs.clone().try_acquire_owned().expect("claimed no more than the free permits");
                let engine = self.clone();
                tokio::spawn(async move { engine.execute(row, permit).await });
            }
            if count < free {
                return Ok(());
            }
        }
    }

    /// Runs one claimed executor and hands how it ended to the recorder, with its permit
    /// (released once the result is committed).
    async fn execute(self: Arc<Self>, row: executor::Model, permit: OwnedSemaphorePermit) {
        let late_ms = (row.started_at_us.unwrap_or(row.due_at_us) - row.due_at_us) / 1000;
        tracing::info!(executor_id = %row.id, plan_id = %row.plan_id, late_ms, "executor started");
        let (record, audit) = match self.plan_of(&row.plan_id).await {
            Ok(Some(plan)) => self.run_attack(&row, plan).await,
            Ok(None) => (failed(format!("plan {} not found", row.plan_id)), Vec::new()),
            Err(e) => (failed(format!("could not read the plan: {e}")), Vec::new()),
        };
        let finished = FinishedRun { id: row.id, owner: self.config.engine_id.clone(), record, audit };
        if let Err(tokio::sync::mpsc::error::SendError((finished, _))) = self.recorder.send((finished, permit)) {
            tracing::error!(executor_id = %finished.id, "the recorder is gone; the result is lost");
        }
    }

    /// The recorder: commits finished runs in batches (one transaction, one fsync, for
    /// all the runs that finished meanwhile), then releases their permits.
    pub(crate) async fn record(self: Arc<Self>, mut finished: mpsc::UnboundedReceiver<(FinishedRun, OwnedSemaphorePermit)>) {
        const BATCH: usize = 500;
        while let Some(first) = finished.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match finished.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let (runs, permits): (Vec<FinishedRun>, Vec<OwnedSemaphorePermit>) = batch.into_iter().unzip();
            let mut attempt = 0;
            loop {
                match self.store.record_runs(runs.clone()).await {
                    Ok(recorded) => {
                        for (run, ok) in runs.iter().zip(recorded) {
                            if ok {
                                tracing::info!(executor_id = %run.id, status = %run.record.status, "executor finished");
                            } else {
                                tracing::warn!(executor_id = %run.id, "lease lost before the result was recorded");
                            }
                        }
                        break;
                    }
                    Err(e) if attempt < 5 => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "recording results failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    Err(e) => {
                        // The leases expire and the reaper marks these runs failed, outcome unknown.
                        tracing::error!(error = %e, runs = runs.len(), "could not record results");
                        break;
                    }
                }
            }
            drop(permits);
            self.wake_scheduler();
        }
    }

    /// A plan, from a small cache: what a run needs of its plan (attack, args, dry run)
    /// never changes, and a burst of executors of one plan should not read it each time.
    async fn plan_of(&self, id: &str) -> Result<Option<Arc<plan::Model>>, cme_store::StoreError> {
        const CACHED: usize = 1024;
        if let Some(plan) = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(Some(plan.clone()));
        }
        let Some(plan) = self.store.plan(id).await? else { return Ok(None) };
        let plan = Arc::new(plan);
        let mut cache = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED {
            cache.clear();
        }
        cache.insert(id.to_string(), plan.clone());
        Ok(Some(plan))
    }

    async fn run_attack(&self, row: &executor::Model, plan: Arc<plan::Model>) -> (RunRecord, Vec<NewAudit>) {
        let args = match serde_json::from_str(&plan.attack_args) {
            Ok(args) => args,
            Err(e) => return (failed(format!("stored attack args are not JSON: {e}")), Vec::new()),
        };
        match self.refuse_run(&plan.attack_plugin).await {
            Ok(None) => {}
            Ok(Some(reason)) => return (failed(reason), Vec::new()),
            Err(e) => return (failed(format!("cannot check the plugin registry: {e}")), Vec::new()),
        }
        let input = RunInput { run_id: row.id.clone(), now: Utc::now(), args, dry_run: plan.dry_run };
        let mut stop = self.stop.subscribe();
        stop.borrow_and_update();
        let result = tokio::select! {
            result = self.host.run(&plan.attack_plugin, input) => result,
            _ = stop.changed() => {
                let reason = stop.borrow().1.clone();
                let record = RunRecord {
                    status: status::CANCELLED.into(),
                    finished_at_us: now_us(),
                    error: Some(format!("cancelled while running: {reason}")),
                    log: serde_json::json!([]),
                    ..RunRecord::default()
                };
                return (record, Vec::new());
            }
        };
        let audit: Vec<NewAudit> = result.audit.iter().map(|a| plugin_audit(&row.id, a)).collect();
        let record = match result.outcome {
            Ok(report) => RunRecord {
                status: status::SUCCEEDED.into(),
                finished_at_us: now_us(),
                summary: Some(report.summary),
                targets: report.targets,
                details: Some(report.details),
                error: None,
                log: result.log,
            },
            Err(error) => RunRecord {
                status: status::FAILED.into(),
                finished_at_us: now_us(),
                error: Some(error),
                log: result.log,
                ..RunRecord::default()
            },
        };
        (record, audit)
    }

    /// The reaper: at start and periodically, expired leases become failed.
    pub(crate) async fn reap(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            match self.store.reap_expired(now_us()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(reaped = n, "executors whose engine stopped mid-run marked failed (outcome unknown)"),
                Err(e) => tracing::error!(error = %e, "reaper pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.reaper_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn failed(error: String) -> RunRecord {
    RunRecord {
        status: status::FAILED.into(),
        finished_at_us: now_us(),
        error: Some(error),
        log: serde_json::json!([]),
        ..RunRecord::default()
    }
}

fn plugin_audit(run_id: &str, a: &CapabilityAudit) -> NewAudit {
    NewAudit {
        at_us: to_us(a.at),
        source: "plugin".into(),
        run_id: run_id.to_string(),
        actor: a.plugin.clone(),
        action: a.call.clone(),
        target: a.target.clone(),
        decision: a.decision.clone(),
        reason: a.reason.clone(),
        dry_run: a.dry_run,
        outcome: a.outcome.clone(),
    }
}
