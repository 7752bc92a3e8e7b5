//! Guards: probes that keep attacks from doing harm.
//!
//! - A plan's steady state is checked right before each run; the run starts only when
//!   every probe answered healthy.
//! - A plan's stop conditions are checked every interval while its runs are in flight on
//!   this engine, and for a settle time after: an unhealthy answer cancels the plan's
//!   running attacks and pauses the plan or halts the engine.
//! - The engine's own stop conditions (configuration) are checked all the time and halt
//!   everything.
//! - The dead-man's switch: while attacks run here, the database is pinged every second
//!   (and a heartbeat probe, when configured, asked at its interval); when either has not
//!   answered for its limit, this engine cancels its runs and starts none until both
//!   answer again, by itself.
//!
//! Every guard fails closed: a probe that cannot tell (an error, a trap, a timeout) or may
//! not run (disabled, pending, gone) counts as unhealthy. Probes' capability calls are
//! audited (with the run they guarded, or on their own); a tripped guard leaves a
//! `guard.trip` audit event (and a `guard.tripped` event for webhooks) naming the probe
//! and why.

use cme_model::Locked;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::host::CheckInput;
use crate::model::{AuditEvent, Executor, OnFailure, Plan, PlannedCall, StopCondition};
use crate::{Engine, PluginCall, PluginKind};

/// The longest one probe check may take (the runtime's run deadline bounds it too).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// How often the dead-man's switch pings the database while attacks run.
const DEADMAN_PING: Duration = Duration::from_secs(1);

/// A stop condition of the whole engine (configuration): unhealthy halts everything.
#[derive(Debug, Clone)]
pub struct EngineStopCondition {
    pub probe: PluginCall,
    pub interval: Duration,
}

/// The dead-man's switch.
///
/// By default the database may be silent for 10 s while attacks run; no heartbeat probe.
#[derive(Debug, Clone)]
pub struct Deadman {
    /// How long the database may not answer before this engine cancels its runs.
    pub database_after: Duration,
    /// A probe asked every `interval`; when it has not answered healthy for `after`,
    /// this engine cancels its runs and starts none.
    pub heartbeat: Option<(EngineStopCondition, Duration)>,
}

impl Default for Deadman {
    fn default() -> Self {
        Deadman { database_after: Duration::from_secs(10), heartbeat: None }
    }
}

impl Engine {
    /// Asks one probe; Ok when healthy, else why not. Its capability calls come back.
    pub(crate) async fn ask_probe(
        &self,
        call: &PlannedCall,
        check_id: String,
        plan: Option<&Plan>,
    ) -> (Result<(), String>, Vec<AuditEvent>) {
        let entry = match self.runnable(&call.plugin).await {
            Ok(Ok(entry)) => entry,
            Ok(Err(reason)) => return (Err(format!("probe {} may not run ({reason})", call.plugin)), Vec::new()),
            Err(e) => {
                return (Err(format!("cannot check the plugin registry for probe {}: {e}", call.plugin)), Vec::new());
            }
        };
        let input = CheckInput {
            check_id,
            plan_id: plan.map(|p| p.id.clone()).unwrap_or_default(),
            created_by: plan.and_then(|p| p.created_by.clone()),
            now: Utc::now(),
            args: call.args.clone(),
            deadline: PROBE_DEADLINE,
            dry_run: self.config.dry_run || plan.is_some_and(|p| p.dry_run),
        };
        let checked = self.host.check(&entry.loaded, &entry.grant, input).await;
        let verdict = match checked.verdict {
            Ok(verdict) if verdict.healthy => Ok(()),
            Ok(verdict) => Err(format!("{} unhealthy: {}", call.plugin, verdict.reason)),
            Err(why) => Err(format!("{} could not tell (counts as unhealthy): {why}", call.plugin)),
        };
        (verdict, checked.audit)
    }

    /// Checks `plan`'s steady state for `executor`, probe after probe: None when every
    /// one answered healthy, else why the run must not start (the first probe that did
    /// not). The probes' capability calls come back for the run's audit either way.
    /// The probes' readings come back too, for the run's journal.
    pub(crate) async fn steady_state(
        &self,
        executor: &Executor,
        plan: &Plan,
    ) -> (Option<String>, Vec<AuditEvent>, Vec<crate::journal::ProbeReading>) {
        let mut audit = Vec::new();
        let mut readings = Vec::new();
        for (i, call) in plan.steady_state.iter().enumerate() {
            let (verdict, calls) = self.ask_probe(call, format!("{}/steady-state/{i}", executor.id), Some(plan)).await;
            audit.extend(calls);
            readings.push(crate::journal::ProbeReading {
                step: None,
                probe: call.plugin.clone(),
                at: Utc::now(),
                phase: crate::journal::Phase::Before,
                healthy: verdict.is_ok(),
                reason: verdict.as_ref().err().cloned(),
            });
            if let Err(why) = verdict {
                return (Some(format!("steady state: {why}")), audit, readings);
            }
        }
        (None, audit, readings)
    }

    /// Starts watching `plan`'s stop conditions, unless this engine already does. Called
    /// once a run of the plan is registered as in flight.
    pub(crate) fn watch_stop_conditions(self: &Arc<Self>, plan: &Arc<Plan>) {
        if plan.stop_conditions.is_empty() {
            return;
        }
        if self.watched_plans.locked().insert(plan.id.clone()) {
            tokio::spawn(self.clone().watch_plan(plan.clone()));
        }
    }

    fn plan_runs_here(&self, plan_id: &str) -> bool {
        self.runs_in_flight.locked().values().any(|(plan, _)| plan == plan_id)
    }

    /// Asks each of the plan's stop conditions at its interval while the plan's runs are
    /// in flight here and for the longest settle time after; trips on the first unhealthy
    /// answer.
    async fn watch_plan(self: Arc<Self>, plan: Arc<Plan>) {
        let settle = plan.stop_conditions.iter().map(|c| c.settle).max().unwrap_or_default();
        let mut due: Vec<Instant> = plan.stop_conditions.iter().map(|c| Instant::now() + c.interval).collect();
        let mut quiet_since: Option<Instant> = None;
        let mut shutdown = self.shutdown.subscribe();
        tracing::info!(plan_id = %plan.id, conditions = plan.stop_conditions.len(), "watching the plan's stop conditions");
        loop {
            if !until_first_due(&due, &mut shutdown).await {
                break;
            }
            // Runs in flight, or settling after the last: keep watching.
            if self.plan_runs_here(&plan.id) {
                quiet_since = None;
            } else {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    let mut watched = self.watched_plans.locked();
                    // A run registered meanwhile keeps this watcher (it found it watching).
                    if !self.plan_runs_here(&plan.id) {
                        watched.remove(&plan.id);
                        break;
                    }
                    quiet_since = None;
                }
            }
            let now = Instant::now();
            for (i, condition) in plan.stop_conditions.iter().enumerate() {
                if due[i] > now {
                    continue;
                }
                due[i] = now + condition.interval;
                let check_id = format!("{}/stop-condition/{i}/{}", plan.id, Utc::now().timestamp_millis());
                let (verdict, calls) = self.ask_probe(&condition.probe, check_id, Some(&plan)).await;
                self.audit_calls(calls).await;
                if let Err(why) = verdict {
                    self.trip_plan(&plan, condition, &why).await;
                    self.watched_plans.locked().remove(&plan.id);
                    tracing::info!(plan_id = %plan.id, "stopped watching the plan: a stop condition tripped");
                    return;
                }
            }
        }
        tracing::info!(plan_id = %plan.id, "stopped watching the plan's stop conditions");
    }

    /// Stores probes' capability calls made outside a run.
    async fn audit_calls(&self, calls: Vec<AuditEvent>) {
        if calls.is_empty() {
            return;
        }
        if let Err(error) = self.ports.audit.insert_audit(&calls).await {
            tracing::error!(%error, "cannot store the audit events of a probe's calls");
        }
    }

    /// A plan's stop condition is unhealthy: its running attacks are cancelled at once,
    /// then the plan is paused or the engine halted, and the trip is audited.
    async fn trip_plan(self: &Arc<Self>, plan: &Plan, condition: &StopCondition, why: &str) {
        let reason = format!("stop condition of plan {} ({}): {why}", plan.id, plan.name);
        tracing::warn!(plan_id = %plan.id, probe = %condition.probe.plugin, %why, on_failure = condition.on_failure.as_str(), "stop condition tripped");
        self.cancel_plan_runs(&plan.id, &reason);
        self.audit_trip(&format!("{}: {} ({})", plan.id, condition.probe.plugin, condition.on_failure.as_str()), why)
            .await;
        match condition.on_failure {
            OnFailure::Halt => {
                if let Err(error) = self.halt(Some(reason), GUARD).await {
                    tracing::error!(%error, "a stop condition could not halt the engine");
                }
            }
            OnFailure::PausePlan => {
                if let Err(error) = self.pause_plan(&plan.id, GUARD).await {
                    tracing::error!(plan_id = %plan.id, %error, "a stop condition could not pause its plan");
                }
            }
        }
    }

    async fn audit_trip(&self, target: &str, why: &str) {
        let audit = AuditEvent { reason: Some(why.to_string()), ..AuditEvent::action(GUARD, "guard.trip", target) };
        if let Err(error) = self.ports.audit.insert_audit(&[audit]).await {
            tracing::error!(%error, "cannot store the audit event of a tripped guard");
        }
    }

    /// Cancels this engine's running attacks of one plan.
    pub(crate) fn cancel_plan_runs(&self, plan_id: &str, reason: &str) {
        let runs = self.runs_in_flight.locked();
        for (executor_id, (plan, stop)) in runs.iter() {
            if plan == plan_id && stop.borrow().is_none() {
                tracing::warn!(%executor_id, %plan_id, "cancelling the run: {reason}");
                stop.send_replace(Some(reason.to_string()));
            }
        }
    }

    /// Resolves the configured engine-wide stop conditions and the heartbeat probe; an
    /// unknown ref or invalid args stop the start.
    pub async fn check_guards(&self) -> Result<(), crate::EngineError> {
        let heartbeat = self.config.deadman.heartbeat.iter().map(|(c, _)| ("/deadman/heartbeat", c));
        let conditions = self.config.stop_conditions.iter().map(|c| ("/stop_conditions", c));
        for (field, condition) in conditions.chain(heartbeat) {
            let entry =
                self.resolve_plugin(PluginKind::Probe, &condition.probe.reference, &format!("{field}/ref")).await?;
            self.host
                .validate_args(&entry.loaded, &condition.probe.args)
                .map_err(|e| crate::EngineError::invalid(&format!("{field}/args"), e.to_string()))?;
        }
        Ok(())
    }

    async fn resolved(&self, condition: &EngineStopCondition) -> Result<PlannedCall, String> {
        let entry = self
            .resolve_plugin(PluginKind::Probe, &condition.probe.reference, "/ref")
            .await
            .map_err(|e| e.to_string())?;
        Ok(PlannedCall {
            reference: condition.probe.reference.clone(),
            plugin: entry.loaded.description.id.clone(),
            args: condition.probe.args.clone(),
        })
    }

    /// Asks the engine's own stop conditions at their intervals (not while halted: there
    /// is nothing to stop); an unhealthy one halts everything.
    pub(crate) async fn watch_engine(self: Arc<Self>) {
        let conditions = self.config.stop_conditions.clone();
        if conditions.is_empty() {
            return;
        }
        let mut due: Vec<Instant> = conditions.iter().map(|c| Instant::now() + c.interval).collect();
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if !until_first_due(&due, &mut shutdown).await {
                return;
            }
            let now = Instant::now();
            for (i, condition) in conditions.iter().enumerate() {
                if due[i] > now {
                    continue;
                }
                due[i] = now + condition.interval;
                if self.local_halt().is_some() || matches!(self.halt_state().await, Ok(h) if h.state.halted) {
                    continue;
                }
                let verdict = match self.resolved(condition).await {
                    Ok(call) => {
                        let (verdict, calls) = self
                            .ask_probe(
                                &call,
                                format!("engine/stop-condition/{i}/{}", Utc::now().timestamp_millis()),
                                None,
                            )
                            .await;
                        self.audit_calls(calls).await;
                        verdict
                    }
                    Err(why) => Err(format!("probe {} cannot be resolved: {why}", condition.probe.reference)),
                };
                if let Err(why) = verdict {
                    tracing::warn!(probe = %condition.probe.reference, %why, "engine stop condition tripped: halting");
                    self.audit_trip(&format!("engine: {}", condition.probe.reference), &why).await;
                    if let Err(error) = self.halt(Some(format!("engine stop condition: {why}")), GUARD).await {
                        tracing::error!(%error, "an engine stop condition could not halt the engine");
                    }
                }
            }
        }
    }

    /// Whether the dead-man's switch holds this engine (it starts nothing).
    pub(crate) fn deadman_tripped(&self) -> bool {
        self.deadman.load(Ordering::SeqCst)
    }

    /// The dead-man's switch (see the module's documentation). Idle (no attack running,
    /// no heartbeat configured) it waits for a run to start, without polling.
    pub(crate) async fn watch_deadman(self: Arc<Self>) {
        let limits = self.config.deadman.clone();
        let heartbeat = match &limits.heartbeat {
            Some((condition, after)) => match self.resolved(condition).await {
                Ok(call) => Some((call, condition.interval, *after)),
                Err(why) => {
                    tracing::error!(%why, "the heartbeat probe cannot be resolved: the dead-man's switch holds this engine");
                    self.deadman.store(true, Ordering::SeqCst);
                    return;
                }
            },
            None => None,
        };
        let mut shutdown = self.shutdown.subscribe();
        let (mut database_ok, mut heartbeat_ok) = (Instant::now(), Instant::now());
        let mut next_heartbeat = Instant::now();
        loop {
            if heartbeat.is_none() && self.running() == 0 && !self.deadman_tripped() {
                tokio::select! {
                    _ = self.run_started.notified() => {}
                    _ = shutdown.changed() => {}
                }
                database_ok = Instant::now();
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(DEADMAN_PING) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if *shutdown.borrow() {
                return;
            }
            if tokio::time::timeout(DEADMAN_PING, self.ports.halt.halt_state()).await.is_ok_and(|r| r.is_ok()) {
                database_ok = Instant::now();
            }
            if let Some((call, interval, _)) = &heartbeat
                && Instant::now() >= next_heartbeat
            {
                next_heartbeat = Instant::now() + *interval;
                let (verdict, calls) =
                    self.ask_probe(call, format!("engine/heartbeat/{}", Utc::now().timestamp_millis()), None).await;
                self.audit_calls(calls).await;
                match verdict {
                    Ok(()) => heartbeat_ok = Instant::now(),
                    Err(why) => tracing::warn!(%why, "the heartbeat probe is not healthy"),
                }
            }
            let silent = if database_ok.elapsed() > limits.database_after {
                Some(format!("the database has not answered for {} s", database_ok.elapsed().as_secs()))
            } else {
                heartbeat.as_ref().filter(|(_, _, after)| heartbeat_ok.elapsed() > *after).map(|(call, _, _)| {
                    format!(
                        "the heartbeat probe {} has not answered healthy for {} s",
                        call.plugin,
                        heartbeat_ok.elapsed().as_secs()
                    )
                })
            };
            match (silent, self.deadman_tripped()) {
                (Some(why), false) => {
                    tracing::error!(%why, "dead-man's switch: cancelling this engine's runs and starting none");
                    self.deadman.store(true, Ordering::SeqCst);
                    self.stop_runs(&format!("dead-man's switch: {why}"));
                    // In the background: the database may be what is silent, and waiting on
                    // it here would keep the switch from seeing it answer again.
                    let engine = self.clone();
                    tokio::spawn(async move { engine.audit_trip("engine: dead-man's switch", &why).await });
                }
                (None, true) => {
                    tracing::warn!("dead-man's switch released: the database and heartbeat answer again");
                    self.deadman.store(false, Ordering::SeqCst);
                    let audit = AuditEvent::action(GUARD, "deadman.release", "engine");
                    if let Err(error) = self.ports.audit.insert_audit(&[audit]).await {
                        tracing::error!(%error, "cannot store the audit event of the dead-man's switch's release");
                    }
                    self.wake_scheduler();
                }
                _ => {}
            }
        }
    }
}

/// Sleeps until the earliest of `due` (or at once when there is none); false when the
/// engine is shutting down instead.
async fn until_first_due(due: &[Instant], shutdown: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    let next = due.iter().min().copied().unwrap_or_else(Instant::now);
    tokio::select! {
        _ = tokio::time::sleep_until(next.into()) => {}
        _ = shutdown.changed() => {}
    }
    !*shutdown.borrow()
}

/// Who guards act as in the audit log.
const GUARD: &str = "guard";
