//! Running an experiment: its steps in the order of their `after`, at most
//! [`MAX_PARALLEL_STEPS`] at once, within its deadline. An attack step makes its fault
//! (the runtime stores each revert the attack registers, with the step's name, before it
//! acts), holds it for its duration, then reverts it; a verify step asks its probes; a
//! wait step waits. A failed step, an unhealthy verify, a stop (halt, shutdown, blackout,
//! stop condition), the deadline or a lost lease aborts the run: running steps are
//! cancelled, and every revert still pending runs, newest first. Whatever happens, the
//! run's pending reverts run before its result is handed to the recorder; those that
//! cannot reach their target stay pending for the undo keeper's retries.

use chrono::Utc;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use cme_model::Locked;

use crate::journal::{Journal, Outcome, ProbeReading, RevertRecord, StepRecord, StepStatus};
use crate::model::{AuditEvent, Executor, ExecutorStatus, LogLine, Plan, RunEnd, RunLog};
use crate::scheduler::{RunRegistration, first_stop};
use crate::steps::{MAX_PARALLEL_STEPS, StepAction};
use crate::{Engine, UndoState};

/// What one step left when it ended.
struct StepDone {
    index: usize,
    status: StepStatus,
    error: Option<String>,
    /// Why the run must stop, and as what: a failed attack aborts, an unhealthy verify
    /// refutes.
    stops_run: Option<(String, Outcome)>,
    audit: Vec<AuditEvent>,
    log: RunLog,
}

/// A run's journal as it is being written: shared by the run's steps and watched by
/// whoever streams it.
#[derive(Clone)]
pub(crate) struct LiveJournal(Arc<watch::Sender<Journal>>);

impl LiveJournal {
    fn update(&self, change: impl FnOnce(&mut Journal)) {
        self.0.send_modify(change);
    }

    fn step(&self, name: &str, change: impl FnOnce(&mut StepRecord)) {
        self.update(|journal| {
            if let Some(step) = journal.step_mut(name) {
                change(step);
            }
        });
    }

    fn snapshot(&self) -> Journal {
        self.0.borrow().clone()
    }
}

/// Completes with the reason once the run is aborted.
fn aborted(mut abort: watch::Receiver<Option<String>>) -> crate::host::Cancel {
    Box::pin(async move {
        loop {
            if let Some(reason) = abort.borrow_and_update().clone() {
                return reason;
            }
            if abort.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    })
}

impl Engine {
    /// A run in flight here: its journal as it is being written (None: not running here).
    pub fn live_journal(&self, executor_id: &str) -> Option<watch::Receiver<Journal>> {
        self.live_journals.locked().get(executor_id).map(|live| live.0.subscribe())
    }

    /// Runs `plan`'s steps for `executor` and reverts every fault they made.
    pub(crate) async fn run_experiment(
        self: &Arc<Self>,
        executor: &Executor,
        plan: Arc<Plan>,
        readings: Vec<ProbeReading>,
    ) -> (RunEnd, Vec<AuditEvent>) {
        let dry_run = plan.dry_run || self.config.dry_run;
        let most = self.config.max_experiment_seconds;
        let deadline = plan.deadline.map_or(most, |d| d.min(most));
        let journal = Journal {
            steps: plan
                .steps
                .iter()
                .map(|step| StepRecord {
                    name: step.name.clone(),
                    kind: step.action.kind().to_string(),
                    after: step.after.clone(),
                    plugin: match &step.action {
                        StepAction::Attack { call, .. } => Some(call.plugin.clone()),
                        _ => None,
                    },
                    status: StepStatus::Waiting,
                    started: None,
                    ended: None,
                    reverting: None,
                    targets: Vec::new(),
                    summary: None,
                    error: None,
                })
                .collect(),
            readings,
            ..Journal::default()
        };
        let live = LiveJournal(Arc::new(watch::channel(journal).0));
        self.live_journals.locked().insert(executor.id.clone(), live.clone());
        let _listed = scopeguard(|| {
            self.live_journals.locked().remove(&executor.id);
        });

        // Stopped by a halt or shutdown (every run here), a blackout or a stop condition (this plan's).
        let (own, own_signal) = watch::channel(None);
        let _registered = RunRegistration::new(self, &executor.id, &plan.id, own);
        self.run_started.notify_one();
        self.watch_stop_conditions(&plan);
        let stopped = first_stop(self.stop.subscribe(), own_signal);
        tokio::pin!(stopped);
        let expires = tokio::time::Instant::now() + deadline;
        let lease_every = (self.config.run_deadline + self.config.lease_margin) / 3;
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + lease_every, lease_every);

        let (abort, abort_signal) = watch::channel::<Option<String>>(None);
        let mut state: Vec<StepStatus> = vec![StepStatus::Waiting; plan.steps.len()];
        let mut tasks: JoinSet<StepDone> = JoinSet::new();
        let mut audit = Vec::new();
        let mut log = RunLog::default();
        // Why the run stopped early, what that shows, and the run's status.
        let mut stop: Option<(String, Outcome, ExecutorStatus)> = None;
        // `max_concurrent_attacks` counts each attack step in flight: the run's executor
        // counts for one, every other one takes a slot (or waits a second for one).
        let cap = self.config.budgets.max_concurrent_attacks.map(u64::from);
        let mut attacks_running = 0usize;
        let mut holds_slot = vec![false; plan.steps.len()];
        let mut waiting_for_slot;
        tracing::info!(executor_id = %executor.id, plan_id = %plan.id, steps = plan.steps.len(), "experiment started");
        loop {
            waiting_for_slot = false;
            if stop.is_none() {
                for index in 0..plan.steps.len() {
                    if tasks.len() >= MAX_PARALLEL_STEPS {
                        break;
                    }
                    let ready = state[index] == StepStatus::Waiting
                        && plan.steps[index].after.iter().all(|before| {
                            plan.steps.iter().position(|s| &s.name == before).map(|b| state[b])
                                == Some(StepStatus::Succeeded)
                        });
                    let attack = matches!(plan.steps[index].action, StepAction::Attack { .. });
                    if ready
                        && attack
                        && attacks_running >= 1
                        && let Some(cap) = cap
                    {
                        match self.ports.claims.take_step_slot(&executor.id, &self.config.engine_id, cap).await {
                            Ok(true) => holds_slot[index] = true,
                            Ok(false) => {
                                waiting_for_slot = true;
                                continue;
                            }
                            Err(error) => {
                                // Fail closed: without a slot, the step waits.
                                tracing::warn!(executor_id = %executor.id, %error, "cannot take a step's slot; it waits");
                                waiting_for_slot = true;
                                continue;
                            }
                        }
                    }
                    if ready {
                        attacks_running += usize::from(attack);
                        state[index] = StepStatus::Running;
                        tasks.spawn(self.clone().run_step(
                            executor.id.clone(),
                            plan.clone(),
                            index,
                            live.clone(),
                            abort_signal.clone(),
                        ));
                    }
                }
            }
            if tasks.is_empty() && !waiting_for_slot {
                break;
            }
            let failed = |reason: String| Some((reason, Outcome::Aborted, ExecutorStatus::Failed));
            let why: Option<(String, Outcome, ExecutorStatus)> = tokio::select! {
                Some(done) = tasks.join_next() => match done {
                    Ok(done) => {
                        state[done.index] = done.status;
                        if matches!(plan.steps[done.index].action, StepAction::Attack { .. }) {
                            attacks_running -= 1;
                        }
                        if std::mem::take(&mut holds_slot[done.index])
                            && let Err(error) = self.ports.claims.release_step_slot(&executor.id).await
                        {
                            tracing::warn!(executor_id = %executor.id, %error, "cannot give a step's slot back (the run's end frees it)");
                        }
                        audit.extend(done.audit);
                        let name = &plan.steps[done.index].name;
                        log.lines.extend(done.log.lines.into_iter().map(|line| LogLine { message: format!("[{name}] {}", line.message), ..line }));
                        for (into, from) in [(&mut log.stdout, done.log.stdout), (&mut log.stderr, done.log.stderr)] {
                            if !from.is_empty() {
                                into.push_str(&format!("[{name}]\n{from}"));
                            }
                        }
                        log.dry_run_actions.extend(done.log.dry_run_actions.into_iter().map(|a| format!("[{name}] {a}")));
                        if let Some(error) = &done.error {
                            tracing::warn!(executor_id = %executor.id, step = %name, %error, "experiment step did not succeed");
                        }
                        done.stops_run.map(|(reason, outcome)| (reason, outcome, ExecutorStatus::Failed))
                    }
                    Err(e) => failed(format!("a step's task failed: {e}")),
                },
                // A halt, a shutdown, a blackout, a stop condition: the run is cancelled.
                reason = &mut stopped, if stop.is_none() => Some((reason, Outcome::Aborted, ExecutorStatus::Cancelled)),
                // A step waits for a slot of max_concurrent_attacks: look again in a second.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if waiting_for_slot && stop.is_none() => None,
                _ = tokio::time::sleep_until(expires), if stop.is_none() => {
                    failed(format!("the experiment's deadline ({} s) passed", deadline.as_secs()))
                }
                _ = renew.tick() => {
                    let lease = self.config.run_deadline + self.config.lease_margin;
                    match self.ports.runs.renew_lease(&executor.id, &self.config.engine_id, lease).await {
                        Ok(true) => None,
                        Ok(false) => failed("this engine's lease on the run was lost (reaped, or held by another)".to_string()),
                        // Fail closed: a run whose lease may lapse is stopped and reverted.
                        Err(e) => failed(format!("cannot renew the run's lease: {e}")),
                    }
                }
            };
            if let Some((reason, outcome, status)) = why
                && stop.is_none()
            {
                tracing::warn!(executor_id = %executor.id, %reason, "experiment aborted");
                abort.send_replace(Some(reason.clone()));
                live.update(|journal| journal.aborted = Some(reason.clone()));
                stop = Some((reason, outcome, status));
            }
        }
        live.update(|journal| {
            for step in journal.steps.iter_mut().filter(|s| s.status == StepStatus::Waiting) {
                step.status = StepStatus::NotRun;
            }
        });
        // Every fault still on, newest first: aborted, a step that holds its fault until
        // the end, or a revert a step could not finish.
        let why = match &stop {
            Some((reason, ..)) => format!("aborted: {reason}"),
            None => "run ended".to_string(),
        };
        self.revert(&executor.id, None, &why, &live).await;
        let (outcome, status) = stop.as_ref().map_or((Outcome::Held, ExecutorStatus::Succeeded), |(_, o, s)| (*o, *s));
        live.update(|journal| journal.outcome = Some(outcome));
        let journal = live.snapshot();
        let failed_reverts = journal.reverts.iter().filter(|r| r.state == UndoState::Failed.as_str()).count();
        let succeeded = journal.steps.iter().filter(|s| s.status == StepStatus::Succeeded).count();
        let mut summary = format!(
            "experiment {}: {succeeded} of {} steps succeeded, {} reverts ran",
            outcome.as_str(),
            journal.steps.len(),
            journal.reverts.len()
        );
        if failed_reverts > 0 {
            summary.push_str(&format!(" ({failed_reverts} failed)"));
        }
        let targets: Vec<String> = journal.steps.iter().flat_map(|s| s.targets.iter().cloned()).collect();
        tracing::info!(executor_id = %executor.id, outcome = outcome.as_str(), "experiment ended");
        let end = RunEnd {
            status,
            finished: Utc::now(),
            report: (status == ExecutorStatus::Succeeded).then(|| crate::model::Report {
                summary: summary.clone(),
                targets,
                details: serde_json::json!({"outcome": outcome.as_str()}),
            }),
            error: stop.map(|(reason, ..)| format!("{summary}: {reason}")),
            log,
            dry_run: Some(dry_run),
            reason: None,
            outcome: Some(outcome),
            journal: Some(journal),
        };
        (end, audit)
    }

    /// Runs step `index` of `plan` and says how it ended.
    async fn run_step(
        self: Arc<Self>,
        run_id: String,
        plan: Arc<Plan>,
        index: usize,
        live: LiveJournal,
        abort: watch::Receiver<Option<String>>,
    ) -> StepDone {
        let step = &plan.steps[index];
        let name = step.name.clone();
        live.step(&name, |s| {
            s.status = StepStatus::Running;
            s.started = Some(Utc::now());
        });
        tracing::info!(run_id = %run_id, step = %name, kind = step.action.kind(), "experiment step started");
        let mut done = StepDone {
            index,
            status: StepStatus::Succeeded,
            error: None,
            stops_run: None,
            audit: Vec::new(),
            log: RunLog::default(),
        };
        match &step.action {
            StepAction::Attack { call, duration, .. } => {
                let signal = abort.clone();
                let (end, audit) =
                    self.attack_call(&run_id, &plan, call, Some(name.clone()), move || aborted(signal.clone())).await;
                done.audit = audit;
                done.log = end.log;
                live.step(&name, |s| {
                    s.targets = end.report.as_ref().map(|r| r.targets.clone()).unwrap_or_default();
                    s.summary = end.report.as_ref().map(|r| r.summary.clone());
                });
                match end.status {
                    ExecutorStatus::Succeeded => {
                        // Held for its duration (None: until the experiment ends), unless aborted.
                        if let Some(duration) = duration {
                            tokio::select! {
                                _ = tokio::time::sleep(*duration) => {}
                                reason = aborted(abort.clone()) => {
                                    done.status = StepStatus::Cancelled;
                                    done.error = Some(format!("cancelled while holding its fault: {reason}"));
                                }
                            }
                            // Aborted, every revert runs newest first once the steps stopped.
                            if done.status == StepStatus::Succeeded {
                                live.step(&name, |s| s.reverting = Some(Utc::now()));
                                self.revert(&run_id, Some(&name), "step ended", &live).await;
                            }
                        }
                    }
                    ExecutorStatus::Cancelled => {
                        done.status = StepStatus::Cancelled;
                        done.error = end.error;
                    }
                    _ => {
                        let error = end.error.unwrap_or_else(|| "the attack failed".into());
                        done.stops_run = Some((format!("step {name:?} failed: {error}"), Outcome::Aborted));
                        done.status = StepStatus::Failed;
                        done.error = Some(error);
                    }
                }
            }
            StepAction::Verify(probes) => {
                for (j, call) in probes.iter().enumerate() {
                    let check = self.ask_probe(call, format!("{run_id}/{name}/{j}"), Some(&plan));
                    let (verdict, calls) = tokio::select! {
                        answer = check => answer,
                        reason = aborted(abort.clone()) => {
                            done.status = StepStatus::Cancelled;
                            done.error = Some(format!("cancelled while verifying: {reason}"));
                            break;
                        }
                    };
                    done.audit.extend(calls);
                    live.update(|journal| {
                        let phase = journal.phase();
                        journal.readings.push(ProbeReading {
                            step: Some(name.clone()),
                            probe: call.plugin.clone(),
                            at: Utc::now(),
                            phase,
                            healthy: verdict.is_ok(),
                            reason: verdict.as_ref().err().cloned(),
                        });
                    });
                    if let Err(why) = verdict {
                        done.stops_run =
                            Some((format!("step {name:?} refuted the hypothesis: {why}"), Outcome::Refuted));
                        done.status = StepStatus::Failed;
                        done.error = Some(why);
                        break;
                    }
                }
            }
            StepAction::Wait(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(*wait) => {}
                    reason = aborted(abort.clone()) => {
                        done.status = StepStatus::Cancelled;
                        done.error = Some(format!("cancelled while waiting: {reason}"));
                    }
                }
            }
        }
        live.step(&name, |s| {
            s.status = done.status;
            s.ended = Some(Utc::now());
            s.error = done.error.clone();
        });
        tracing::info!(run_id = %run_id, step = %name, status = ?done.status, "experiment step ended");
        done
    }

    /// Runs the pending reverts of run `run_id` (of one step, or all), newest first, one
    /// after another, each recorded as the undo keeper records it and in the journal. One
    /// that cannot reach its target stays pending: the keeper retries it, backing off.
    async fn revert(&self, run_id: &str, step: Option<&str>, why: &str, live: &LiveJournal) {
        let undos = match self.ports.ssh.undos_of_run(run_id).await {
            Ok(undos) => undos,
            Err(error) => {
                // They stay pending: the keeper runs them when due, at a halt or a restart.
                tracing::error!(%run_id, %error, "cannot read the run's reverts; the undo keeper will run them");
                live.update(|journal| {
                    journal.reverts.push(RevertRecord {
                        step: step.map(str::to_string),
                        undo_id: String::new(),
                        target: String::new(),
                        at: Utc::now(),
                        state: UndoState::Pending.as_str().into(),
                        outcome: Some(format!("cannot read the run's reverts ({error}); the undo keeper runs them")),
                        why: why.to_string(),
                    })
                });
                return;
            }
        };
        let pending = undos
            .into_iter()
            .rev()
            .filter(|u| u.state == UndoState::Pending && (step.is_none() || u.step.as_deref() == step));
        for undo in pending {
            let (undo, _) = self.run_undo(undo, why).await;
            live.update(|journal| {
                journal.reverts.push(RevertRecord {
                    step: undo.step.clone(),
                    undo_id: undo.id.clone(),
                    target: undo.target(),
                    at: Utc::now(),
                    // A refused revert stays pending (retried), and is shown as failed.
                    state: match undo.outcome.as_deref() {
                        Some(outcome)
                            if undo.state == UndoState::Pending && outcome.starts_with(crate::undo::REFUSED) =>
                        {
                            UndoState::Failed.as_str().into()
                        }
                        _ => undo.state.as_str().into(),
                    },
                    outcome: undo.outcome.clone(),
                    why: why.to_string(),
                })
            });
        }
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
