//! The scheduler: sleeps until the earliest due executor (or a change), claims what is
//! due with a lease, runs it, records the result. Never polls in a loop: with nothing to
//! do it sleeps up to a minute (to notice plans made by other replicas).

use cme_model::Locked;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::blackout_index::BlackoutIndex;
use crate::blackouts::Blackout;
use crate::host::RunInput;
use crate::model::{AuditEvent, Executor, ExecutorStatus, FinishedRun, Misfire, Overlap, Plan, RunEnd};
use crate::{Claim, Engine, EngineError};

/// Longest sleep with nothing due.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Longest sleep while attacks run here, so a halt made on another replica reaches them.
const MAX_IDLE_WHILE_RUNNING: Duration = Duration::from_secs(1);
/// How soon the scheduler looks again at due work it was held back from starting.
const HELD_BACK_RETRY: Duration = Duration::from_secs(1);

/// Whether a claiming pass started all it could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed {
    /// Everything due that fits this engine's free slots (or nothing was due).
    All,
    /// Held back by a budget over all replicas or the dead-man's switch.
    HeldBack,
}
/// How long a cancelled run may take to stop and hand over its partial record.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Plans kept by `plan_of` (the cache starts again when full).
const CACHED_PLANS: usize = 1024;

impl Engine {
    /// The scheduler loop; returns when shutdown is requested.
    pub(crate) async fn schedule(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.next_pass_us.store(i64::MAX, std::sync::atomic::Ordering::SeqCst);
            let wait = match self.tick().await {
                Ok(wait) => wait,
                Err(error) => {
                    // Fail closed: nothing fires while the database cannot be read.
                    self.note_storage_failure();
                    tracing::error!(%error, "scheduler pass failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            self.next_pass_us.store(next.timestamp_micros(), std::sync::atomic::Ordering::SeqCst);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass: misfires, halt, claims. Returns how long to sleep.
    pub(crate) async fn tick(self: &Arc<Self>) -> Result<Duration, EngineError> {
        let now = Utc::now();
        // This engine's own halt holds even when it is not stored (yet).
        let halt = match self.local_halt() {
            Some(local) => local,
            None => self.ports.halt.halt_state().await?,
        };
        let halted = halt.halted;
        let missed = self.ports.runs.mark_missed(now).await?;
        if !missed.is_empty() {
            tracing::warn!(missed = missed.len(), "executors missed their grace period");
            if !halted {
                self.catch_up(missed).await;
            }
        }
        if halted {
            let cancelled = self.ports.runs.cancel_due_while_halted(now).await?;
            if cancelled > 0 {
                tracing::warn!(cancelled, "executors fell due while halted and were cancelled");
            }
            if self.running() > 0 {
                self.stop_runs(&crate::halt::halted_because(halt.reason.as_deref()));
            }
        }
        let held_back = !halted && self.claim_and_start().await? == Claimed::HeldBack;
        if self.running() > 0 {
            self.stop_runs_in_blackouts(now).await;
        }
        let cap = if self.running() > 0 { MAX_IDLE_WHILE_RUNNING } else { MAX_IDLE };
        let ahead = chrono::Duration::from_std(self.config.claim_ahead).unwrap_or_default();
        let wait = match self.ports.runs.next_due().await? {
            None => cap,
            Some(at) => (at - ahead - self.db_now()).to_std().unwrap_or(Duration::ZERO).min(cap),
        };
        // Due work this engine may not start yet (a budget over all replicas, the
        // dead-man's switch): look again in a while, not at once (no spinning on it).
        Ok(if held_back { wait.max(HELD_BACK_RETRY) } else { wait })
    }

    /// The audit event of a catch-up run (misfire `run_once`).
    fn catch_up_audit(plan_id: &str, missed: usize, executor_id: &str) -> AuditEvent {
        AuditEvent::action(
            "scheduler",
            "plan.catch_up",
            format!("{plan_id}: executor {executor_id} for {missed} missed firings"),
        )
    }

    /// Misfire `run_once`: one run, now, for each such plan that just missed firings
    /// (however many it missed). `missed` names a plan once per executor marked missed.
    async fn catch_up(&self, missed: Vec<String>) {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for plan_id in missed {
            *counts.entry(plan_id).or_default() += 1;
        }
        for (plan_id, count) in counts {
            // Read from storage, not the run cache: a pause or a deletion must count.
            let plan = match self.ports.plans.plan(&plan_id).await {
                Ok(Some(plan)) => plan,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%plan_id, %error, "cannot read a plan that missed firings");
                    continue;
                }
            };
            if plan.misfire != Misfire::RunOnce || plan.deleted.is_some() || plan.paused.is_some() {
                continue;
            }
            let now = Utc::now().trunc_subsecs(6);
            let mut executor = Executor::pending(crate::plans::new_id(), &plan, now);
            executor.created = now;
            executor.reason = Some(format!("catch-up run for {count} firings missed (misfire: run_once)"));
            let audit = Engine::catch_up_audit(&plan_id, count, &executor.id);
            match self
                .ports
                .plans
                .insert_executors(std::slice::from_ref(&executor), &audit, &self.config.work_caps())
                .await
            {
                Ok(()) => {
                    tracing::info!(%plan_id, missed = count, executor_id = %executor.id, "catch-up run scheduled")
                }
                Err(error) => tracing::error!(%plan_id, %error, "could not schedule the catch-up run"),
            }
        }
    }

    /// Claims as many due executors as there are free run slots and starts them. The
    /// slots are taken before claiming: whatever takes permits meanwhile (a shutdown
    /// takes them all) cannot leave a claimed executor without one.
    async fn claim_and_start(self: &Arc<Self>) -> Result<Claimed, EngineError> {
        loop {
            if *self.shutdown.borrow() {
                return Ok(Claimed::All);
            }
            if self.deadman_tripped() {
                return Ok(Claimed::HeldBack);
            }
            let free = self.runs.available_permits();
            if free == 0 {
                return Ok(Claimed::All); // a finishing run wakes the scheduler
            }
            let Ok(mut slots) = self.runs.clone().try_acquire_many_owned(free as u32) else {
                return Ok(Claimed::All); // taken meanwhile (by a shutdown): claim nothing
            };
            let now = Utc::now();
            let lease = self.config.run_deadline + self.config.lease_margin + self.config.claim_ahead;
            let claim = Claim {
                now,
                due_by: now + chrono::Duration::from_std(self.config.claim_ahead).unwrap_or_default(),
                owner: self.config.engine_id.clone(),
                lease_until: now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX),
                limit: free as u64,
            };
            let (claimed, held_back) = match self.config.budgets.max_concurrent_attacks {
                // Attacks running over every replica (a run ending elsewhere wakes no one
                // here: the caller looks again in a while).
                Some(cap) => self.ports.claims.claim_due_capped(&claim, u64::from(cap)).await?,
                None => (self.ports.claims.claim_due(&claim).await?, false),
            };
            let count = claimed.len();
            self.live_runs.locked().extend(claimed.iter().map(|e| e.id.clone()));
            if let Some(lease) = claimed.first().and_then(|e| e.lease.as_ref()) {
                let offset = (lease.expires - claim.lease_until).num_microseconds().unwrap_or(0);
                self.db_clock_offset_us.store(offset, std::sync::atomic::Ordering::Relaxed);
            }
            // Read once per batch, never cached: a blackout made on any replica holds at once.
            let blackouts: Arc<BlackoutIndex> =
                if count > 0 { self.blackout_index_or_all().await } else { Arc::default() };
            self.cache_plans_of(&claimed).await;
            for executor in claimed {
                let Some(slot) = slots.split(1) else {
                    tracing::error!(executor_id = %executor.id, "claimed more executors than asked for; its lease will expire");
                    self.live_runs.locked().remove(&executor.id);
                    continue;
                };
                let engine = self.clone();
                let blackouts = blackouts.clone();
                self.host.spawn_run(Box::pin(async move { engine.execute(executor, slot, blackouts).await }));
            }
            drop(slots);
            if held_back {
                return Ok(Claimed::HeldBack);
            }
            if count < free {
                return Ok(Claimed::All);
            }
        }
    }

    /// Runs one claimed executor and hands how it ended to the recorder, with its permit
    /// (released once the result is committed).
    async fn execute(self: Arc<Self>, executor: Executor, permit: OwnedSemaphorePermit, blackouts: Arc<BlackoutIndex>) {
        let stopped = self.until_due(&executor).await;
        // By the clock the due time was judged by (the database's, on PostgreSQL).
        let started = self.db_now();
        let late = (started - executor.due).to_std().unwrap_or_default();
        tracing::info!(executor_id = %executor.id, plan_id = %executor.plan_id, late_ms = late.as_millis() as u64, "executor started");
        let began = std::time::Instant::now();
        // The attack plugin names the run in the metrics ("" when the plan cannot be read).
        let mut plugin = String::new();
        let stopped = stopped.or_else(|| self.local_halt().map(|h| crate::halt::halted_because(h.reason.as_deref())));
        let (end, audit) = if let Some(reason) = stopped {
            // Claimed just before a halt: it must not start after the halt answered.
            let end = RunEnd {
                status: ExecutorStatus::Cancelled,
                error: Some(format!("cancelled before it started: {reason}")),
                ..RunEnd::failed("")
            };
            (end, Vec::new())
        } else {
            match self.plan_of(&executor.plan_id).await {
                Ok(Some(plan)) => {
                    plugin = plan.attack.plugin.clone();
                    let skip = match self.why_skip(&executor, &plan, &blackouts).await {
                        Some(reason) => Err((reason, Vec::new())),
                        None => match self.steady_state(&executor, &plan).await {
                            (Some(reason), probes, _) => Err((reason, probes)),
                            (None, probes, readings) => Ok((probes, readings)),
                        },
                    };
                    let skip = match skip {
                        Ok(ready) => match self.confirm_claim(&executor, started).await {
                            None => Ok(ready),
                            Some(reason) => {
                                tracing::warn!(executor_id = %executor.id, %reason, "run not started: its claim no longer holds");
                                let end = RunEnd {
                                    status: ExecutorStatus::Cancelled,
                                    error: Some(format!("cancelled before it started: {reason}")),
                                    ..RunEnd::failed("")
                                };
                                return self.hand_over(executor, started, end, ready.0, permit);
                            }
                        },
                        skipped => skipped,
                    };
                    match skip {
                        Err((reason, probes)) => {
                            tracing::info!(executor_id = %executor.id, plan_id = %executor.plan_id, %reason, "executor skipped");
                            (RunEnd::skipped(reason), probes)
                        }
                        Ok((probes, readings)) => {
                            self.announce_start(&executor, &plan, started).await;
                            let (end, mut audit) = if plan.steps.is_empty() {
                                self.run_one_attack(&executor, plan, readings, started).await
                            } else {
                                self.run_experiment(&executor, plan, readings).await
                            };
                            audit.splice(0..0, probes);
                            (end, audit)
                        }
                    }
                }
                Ok(None) => (RunEnd::failed(format!("plan {} not found", executor.plan_id)), Vec::new()),
                Err(e) => (RunEnd::failed(format!("could not read the plan: {e}")), Vec::new()),
            }
        };
        crate::telemetry::run_started(&plugin, late);
        crate::telemetry::run_ended(&plugin, end.status, began.elapsed(), &audit);
        self.hand_over(executor, started, end, audit, permit);
    }

    /// Hands how a run ended to the recorder, with its permit.
    fn hand_over(
        &self,
        executor: Executor,
        started: chrono::DateTime<Utc>,
        end: RunEnd,
        audit: Vec<AuditEvent>,
        permit: OwnedSemaphorePermit,
    ) {
        let finished = FinishedRun {
            executor_id: executor.id,
            plan_id: executor.plan_id,
            owner: self.config.engine_id.clone(),
            started,
            end,
            audit,
        };
        if let Err(mpsc::error::SendError((finished, _))) = self.recorder.send((finished, permit)) {
            tracing::error!(executor_id = %finished.executor_id, "the recorder is gone; the result is lost");
        }
    }

    /// Right before a run's first effect: whether its claim still holds, confirmed by the
    /// database in one statement (running, this engine's lease, unexpired by the
    /// database's clock, no stored halt). A replica paused past its lease, or a halt
    /// stored by another replica during the claim-ahead wait, keeps the run unstarted.
    /// None when it holds; why not otherwise (fail closed: an unreadable database too).
    async fn confirm_claim(&self, executor: &Executor, started: chrono::DateTime<Utc>) -> Option<String> {
        let lease = self.config.run_deadline + self.config.lease_margin;
        match self.ports.runs.confirm_start(&executor.id, &self.config.engine_id, started, lease).await {
            Ok(true) => None,
            Ok(false) => Some(match self.ports.halt.halt_state().await {
                Ok(halt) if halt.halted => crate::halt::halted_because(halt.reason.as_deref()),
                _ => {
                    "its claim no longer holds (its plan was paused or deleted, or its lease expired or was taken over)"
                        .to_string()
                }
            }),
            Err(error) => Some(format!("cannot confirm its claim: {error}")),
        }
    }

    /// Waits until a claimed executor is due (it was claimed ahead of its due time); the
    /// reason when a halt or a shutdown stopped every run meanwhile.
    async fn until_due(&self, executor: &Executor) -> Option<String> {
        // At most the claim-ahead window it was claimed for (and the second of clock
        // offset `db_now` ignores): a wall clock stepped back meanwhile must not hold the
        // run, its slot and its lease for as long as the step.
        let longest = self.config.claim_ahead + Duration::from_secs(1);
        let wait = (executor.due - self.db_now()).to_std().ok().filter(|wait| !wait.is_zero())?.min(longest);
        let mut stop = self.stop.subscribe();
        stop.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(wait) => None,
            Ok(()) = stop.changed() => Some(stop.borrow().1.clone()),
        }
    }

    /// Now by the database's clock, as the last claim showed it (this engine's clock on
    /// SQLite, where the two are one).
    /// An offset under a second is the claim's round trip, not a clock apart: ignored, so
    /// that a run never starts before its due time by this engine's own clock either.
    fn db_now(&self) -> chrono::DateTime<Utc> {
        let offset = self.db_clock_offset_us.load(std::sync::atomic::Ordering::Relaxed);
        if offset.abs() < 1_000_000 {
            return Utc::now();
        }
        Utc::now() + chrono::Duration::microseconds(offset)
    }

    /// Tells the webhooks that a run starts. Notifications never hold an attack back: an
    /// event that cannot be stored is logged and the run goes on (its end is recorded with
    /// its own event, in the record's transaction).
    async fn announce_start(&self, executor: &Executor, plan: &Plan, started: chrono::DateTime<Utc>) {
        if self.config.webhooks.is_empty() {
            return;
        }
        let detail = crate::ExecutorDetail { dry_run: Some(plan.dry_run || self.config.dry_run), ..Default::default() };
        let Some(event) =
            crate::Event::executor(&executor.id, &executor.plan_id, ExecutorStatus::Running, started, detail)
        else {
            return;
        };
        if let Err(error) = self.ports.events.insert_events(&[event]).await {
            tracing::error!(executor_id = %executor.id, %error, "cannot store the executor.started event");
        }
    }

    /// Why a claimed executor must not run: a blackout holding its plan at its due time or
    /// now, or (overlap `forbid`) an earlier run of its plan still in flight.
    async fn why_skip(&self, executor: &Executor, plan: &Plan, blackouts: &BlackoutIndex) -> Option<String> {
        if let Some(blackout) =
            blackouts.holding(&plan.id, executor.due).or_else(|| blackouts.holding(&plan.id, Utc::now()))
        {
            return Some(blackout.reason());
        }
        if plan.overlap == Overlap::Forbid {
            match self.ports.claims.running_ahead(&plan.id, &executor.id, executor.due).await {
                Ok(Some(other)) => {
                    return Some(format!("the plan's previous run {other} is still running (overlap: forbid)"));
                }
                Ok(None) => {}
                // Fail closed: without knowing, do not stack a second attack.
                Err(error) => {
                    return Some(format!("cannot check the plan's runs in flight (overlap: forbid): {error}"));
                }
            }
        }
        None
    }

    /// Cancels the runs on this engine of plans that a `stop_running` blackout holds now
    /// (checked at every pass while attacks run, so within a second of its start).
    async fn stop_runs_in_blackouts(&self, now: chrono::DateTime<Utc>) {
        let blackouts = match self.blackout_index().await {
            Ok(blackouts) => blackouts,
            Err(error) => {
                tracing::error!(%error, "cannot read the blackouts to stop runs they hold");
                return;
            }
        };
        let stopping: Vec<&Blackout> = blackouts.covering(now).into_iter().filter(|b| b.stop_running).collect();
        if stopping.is_empty() {
            return;
        }
        let runs = self.runs_in_flight.locked();
        for (executor_id, (plan_id, stop)) in runs.iter() {
            if let Some(blackout) = stopping.iter().find(|b| b.holds(plan_id, now))
                && stop.borrow().is_none()
            {
                tracing::warn!(%executor_id, %plan_id, blackout = %blackout.name, "a blackout started: cancelling the run");
                stop.send_replace(Some(format!("{} started", blackout.reason())));
            }
        }
    }

    /// The recorder: commits finished runs in batches (one transaction, one fsync, for
    /// all the runs that finished meanwhile), then releases their permits.
    pub(crate) async fn record(
        self: Arc<Self>,
        mut finished: mpsc::UnboundedReceiver<(FinishedRun, OwnedSemaphorePermit)>,
    ) {
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
            // Retried (backing off up to 5 s) for as long as this engine lives: a database
            // that is away for a while loses no result. Past the runs' leases another
            // replica's reaper may mark them "outcome unknown"; the result, recorded when
            // the database is back, replaces that. The permits are held meanwhile, so
            // nothing new is claimed while results cannot be written.
            let mut attempt: u32 = 0;
            loop {
                match self.ports.runs.record_runs(&runs).await {
                    Ok(recorded) => {
                        let mut live = self.live_runs.locked();
                        for run in &runs {
                            live.remove(&run.executor_id);
                        }
                        drop(live);
                        for (run, ok) in runs.iter().zip(recorded) {
                            if ok {
                                tracing::info!(executor_id = %run.executor_id, status = %run.end.status, "executor finished");
                            } else {
                                tracing::warn!(executor_id = %run.executor_id, "lease lost before the result was recorded");
                            }
                        }
                        break;
                    }
                    Err(e) => {
                        self.note_storage_failure();
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, runs = runs.len(), "recording results failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))).await;
                    }
                }
            }
            drop(permits);
            self.wake_scheduler();
        }
    }

    /// A plan, from a small cache: what a run needs of its plan (attack, args, dry run)
    /// never changes, and a burst of executors of one plan should not read it each time.
    async fn plan_of(&self, id: &str) -> Result<Option<Arc<Plan>>, crate::StorageError> {
        if let Some(plan) = self.plans.locked().get(id) {
            return Ok(Some(plan.clone()));
        }
        let Some(plan) = self.ports.plans.plan(id).await? else { return Ok(None) };
        let plan = Arc::new(plan);
        self.remember_plans([plan.clone()]);
        Ok(Some(plan))
    }

    /// Keeps `plans` in the cache; a cache they would overfill starts again.
    fn remember_plans(&self, plans: impl IntoIterator<Item = Arc<Plan>, IntoIter: ExactSizeIterator>) {
        let plans = plans.into_iter();
        let mut cache = self.plans.locked();
        if cache.len() + plans.len() > CACHED_PLANS {
            cache.clear();
        }
        for plan in plans {
            cache.insert(plan.id.clone(), plan);
        }
    }

    /// Reads the plans of a claimed batch that are not cached, in one query: a burst of
    /// executors of many plans (every daily plan of a zone at noon) would otherwise read
    /// them one at a time. A failed read is left to `plan_of`, run by run.
    async fn cache_plans_of(&self, claimed: &[Executor]) {
        let missing: Vec<String> = {
            let cache = self.plans.locked();
            let mut ids: Vec<String> =
                claimed.iter().filter(|e| !cache.contains_key(&e.plan_id)).map(|e| e.plan_id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        if missing.len() < 2 {
            return;
        }
        let Ok(plans) = self.ports.plans.plans_of(&missing).await else { return };
        self.remember_plans(plans.into_iter().map(Arc::new));
    }

    /// Runs a one-attack plan's attack, registered as in flight here (a halt, a shutdown,
    /// a blackout or a stop condition stops it), with its one-step journal.
    async fn run_one_attack(
        self: &Arc<Self>,
        executor: &Executor,
        plan: Arc<Plan>,
        readings: Vec<crate::journal::ProbeReading>,
        started: chrono::DateTime<Utc>,
    ) -> (RunEnd, Vec<AuditEvent>) {
        let (own, own_signal) = watch::channel(None);
        let _registered = RunRegistration::new(self, &executor.id, &plan.id, own);
        self.run_started.notify_one();
        self.watch_stop_conditions(&plan);
        let stop = self.stop.subscribe();
        let stopped = move || -> crate::host::Cancel { Box::pin(first_stop(stop.clone(), own_signal.clone())) };
        let (mut end, audit) = self.attack_call(&executor.id, &plan, &plan.attack, None, stopped).await;
        let journal = crate::journal::Journal::of_one_attack(&plan.attack.plugin, &end, readings, started);
        end.outcome = journal.outcome;
        end.journal = Some(journal);
        (end, audit)
    }

    /// Runs one attack call of `plan` for run `run_id` (`step`: the experiment step it
    /// makes) until it ends or `stopped()` completes; the host is given that long to stop
    /// it before it is dropped.
    pub(crate) async fn attack_call(
        &self,
        run_id: &str,
        plan: &Plan,
        call: &crate::model::PlannedCall,
        step: Option<String>,
        stopped: impl Fn() -> crate::host::Cancel,
    ) -> (RunEnd, Vec<AuditEvent>) {
        let entry = match self.runnable(&call.plugin).await {
            Ok(Ok(entry)) => entry,
            Ok(Err(reason)) => return (RunEnd::failed(reason), Vec::new()),
            Err(e) => return (RunEnd::failed(format!("cannot check the plugin registry: {e}")), Vec::new()),
        };
        // The engine's leash applies to every run it starts, whenever the plan was made.
        let dry_run = plan.dry_run || self.config.dry_run;
        let input = RunInput {
            run_id: run_id.to_string(),
            plan_id: plan.id.clone(),
            created_by: plan.created_by.clone(),
            now: Utc::now(),
            args: call.args.clone(),
            dry_run,
            step,
        };
        let run = self.host.run(&entry.loaded, &entry.grant, input, stopped());
        tokio::pin!(run);
        let result = tokio::select! {
            result = &mut run => result,
            reason = stopped() => match tokio::time::timeout(CANCEL_GRACE, &mut run).await {
                Ok(result) => result,
                Err(_) => {
                    // The host did not stop the run: drop it (its partial record is lost).
                    let end = RunEnd { status: ExecutorStatus::Cancelled, error: Some(format!("cancelled while running: {reason}")), dry_run: Some(dry_run), ..RunEnd::failed("") };
                    return (end, Vec::new());
                }
            },
        };
        let end = RunEnd { log: result.log, dry_run: Some(dry_run), ..RunEnd::failed("") };
        let end = match (result.cancelled, result.outcome) {
            (Some(reason), _) => RunEnd {
                status: ExecutorStatus::Cancelled,
                error: Some(format!("cancelled while running: {reason}")),
                ..end
            },
            (None, Ok(report)) => {
                RunEnd { status: ExecutorStatus::Succeeded, report: Some(report), error: None, ..end }
            }
            (None, Err(error)) => RunEnd { status: ExecutorStatus::Failed, error: Some(error.0), ..end },
        };
        (end, result.audit)
    }

    /// The reaper: at start and periodically, expired leases become failed, and what is
    /// past its retention is pruned.
    pub(crate) async fn reap(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            let now = Utc::now();
            let spare: Vec<String> = self.live_runs.locked().iter().cloned().collect();
            match self.ports.runs.reap_expired(now, &spare).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(
                        reaped = n,
                        "executors whose engine stopped mid-run marked failed (outcome unknown)"
                    );
                    // Their experiments' faults are reverted now, not when each was due.
                    self.wake_undos();
                }
                Err(e) => tracing::error!(error = %e, "reaper pass failed"),
            }
            if last_prune.is_none_or(|at| at.elapsed() >= self.config.prune_interval()) {
                last_prune = Some(std::time::Instant::now());
                self.prune(now).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.reaper_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Deletes audit events and empties run logs past their retention.
    async fn prune(&self, now: chrono::DateTime<Utc>) {
        let before = |keep: Option<std::time::Duration>| {
            keep.and_then(|k| chrono::Duration::from_std(k).ok()).and_then(|k| now.checked_sub_signed(k))
        };
        match self.ports.runs.prune(before(self.config.audit_retention), before(self.config.run_log_retention)).await {
            Ok(p) if p == crate::storage::Pruned::default() => {}
            Ok(p) => tracing::info!(
                audit_events = p.audit_events,
                run_logs = p.run_logs,
                "pruned what is past its retention"
            ),
            Err(e) => tracing::error!(error = %e, "retention pass failed"),
        }
    }
}

/// Completes with the reason of the first stop: every run's (halt, shutdown) or this one's
/// (a blackout). A signal whose sender is gone never completes.
pub(crate) async fn first_stop(
    mut all: watch::Receiver<(u64, String)>,
    mut own: watch::Receiver<Option<String>>,
) -> String {
    all.borrow_and_update();
    let every_run = async move {
        match all.changed().await {
            Ok(()) => all.borrow().1.clone(),
            Err(_) => std::future::pending().await,
        }
    };
    let this_run = async move {
        loop {
            if let Some(reason) = own.borrow_and_update().clone() {
                return reason;
            }
            if own.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };
    // This run's own reason first when both are there: a stop condition set it before it
    // halted the engine, and the run ended for the condition, not for the halt it caused.
    tokio::select! {
        biased;
        reason = this_run => reason,
        reason = every_run => reason,
    }
}

/// A run in flight on this engine, listed (with its plan and its own stop signal) for as
/// long as it lives.
pub(crate) struct RunRegistration<'a> {
    engine: &'a Engine,
    executor_id: String,
}

impl<'a> RunRegistration<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        executor_id: &str,
        plan_id: &str,
        stop: watch::Sender<Option<String>>,
    ) -> Self {
        engine.runs_in_flight.locked().insert(executor_id.to_string(), (plan_id.to_string(), stop));
        RunRegistration { engine, executor_id: executor_id.to_string() }
    }
}

impl Drop for RunRegistration<'_> {
    fn drop(&mut self) {
        self.engine.runs_in_flight.locked().remove(&self.executor_id);
    }
}
