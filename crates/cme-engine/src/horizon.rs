//! Recurring plans: a task of its own (beside the scheduler, so that planning thousands
//! of windows never delays a firing) asks each plan's planner for the next window before
//! its executors run out, and stores what it answers, exactly once across replicas (the
//! horizon moves only from the value the planner was asked from, in the transaction
//! that stores the executors). It sleeps until the next plan needs extending, a plan is
//! made that needs it sooner, a plan is resumed, or a minute passes (plans made on other
//! replicas).

use cme_model::Locked;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

use crate::model::{Executor, Plan};
use crate::plans::new_id;
use crate::storage::Extension;
use crate::{Engine, EngineError};

/// Plans read, planned and stored per round (in one transaction on PostgreSQL; SQLite
/// commits a round a few plans at a time). Measured with 10,000
/// daily plans on SQLite: 16 per commit took 11.6 s, 50 took 7.2 s, 200 take 4.4 s; more
/// plans per commit means fewer fsyncs and a shorter stretch of slower claims.
const BATCH: u64 = 200;
/// How long a plan whose planner failed waits before it is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// One round's next windows, and the audit event of firings skipped beside each.
#[derive(Default)]
struct Round {
    extensions: Vec<Extension>,
    skipped: Vec<Option<crate::AuditEvent>>,
}

/// A round and what storing it answered (which plans' horizons this replica moved).
type StoredRound = (Round, Result<Vec<bool>, crate::storage::InsertPlanError>);

/// Longest sleep with no recurring plan to extend.
const MAX_IDLE: Duration = Duration::from_secs(60);

impl Engine {
    /// The planning loop; returns when shutdown is requested.
    pub(crate) async fn plan_ahead(self: std::sync::Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.extend_horizons(Utc::now()).await {
                Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_IDLE),
                Ok(None) => MAX_IDLE,
                Err(error) => {
                    tracing::error!(%error, "planning recurring plans failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.horizon_wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Wakes the planning loop (a recurring plan was resumed).
    pub(crate) fn wake_planning(&self) {
        self.horizon_wake.notify_one();
    }

    /// Wakes the planning loop for a plan just made, whose executors reach `planned_until`,
    /// if it needs extending before the loop's next pass could come (the loop never sleeps
    /// longer than [`MAX_IDLE`]): a frequent plan holding its most executors ahead, not a
    /// daily one whose horizon is a week away. Each pass reads every plan due for
    /// extension; woken by every plan made, it cost creation more than the plan's own
    /// insert once thousands of frequent plans were stored.
    pub(crate) fn wake_planning_for(&self, planned_until: Option<DateTime<Utc>>) {
        let Some(until) = planned_until else { return };
        let longest_sleep = chrono::Duration::from_std(MAX_IDLE).unwrap_or(chrono::Duration::minutes(1));
        if until - self.extension_lead() < Utc::now() + longest_sleep {
            self.wake_planning();
        }
    }

    /// How far ahead of now a recurring plan's executors must reach; a plan short of it is
    /// extended.
    fn extension_lead(&self) -> chrono::Duration {
        let ahead = self.config.recurring_horizon.saturating_sub(self.config.extend_every());
        chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::days(6))
    }

    /// Extends every recurring plan that needs it: the planners are asked plan by plan, and
    /// each round's answers stored in one transaction. Returns when the next
    /// plan will need it (None: no recurring plan), or a minute from now while a planner
    /// keeps failing.
    ///
    /// A round is stored while the next one is planned: the planners run on this thread
    /// and the store on the database's (SQLite's writer thread, or PostgreSQL), so the two
    /// halves overlap instead of taking turns. A round's plans are never read again by the
    /// next: its horizons either moved past `before` or sit behind the page's seek.
    pub(crate) async fn extend_horizons(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, EngineError> {
        let before = now + self.extension_lead();
        let mut failing = false;
        // Paged by (planned_until, id): plans that wait (failing, or full) never hide the
        // ones behind them.
        let mut after: Option<(DateTime<Utc>, String)> = None;
        let mut storing: Option<tokio::task::JoinHandle<StoredRound>> = None;
        loop {
            let due = match self.ports.horizon.plans_to_extend(before, after.as_ref(), BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    // The round in flight is seen through (its audit rows, the scheduler's
                    // wake-up) before the error ends this pass.
                    if let Some(previous) = storing.take() {
                        self.round_stored(previous.await).await?;
                    }
                    return Err(error.into());
                }
            };
            let count = due.len() as u64;
            after = due.last().and_then(|p| Some((p.planned_until?, p.id.clone())));
            let mut round = Round::default();
            for plan in &due {
                if self.extension_backoff(&plan.id) {
                    failing = true;
                    continue;
                }
                if self.extension_deferred(&plan.id, now) {
                    continue;
                }
                let window = self.next_window(plan, now).await;
                // A planner call may finish without ever waiting: the scheduler, on the same
                // thread, gets its turn between two of them, not after a round of 200.
                tokio::task::yield_now().await;
                match window {
                    Ok(Some((extension, skips))) => {
                        round.extensions.push(extension);
                        round.skipped.push(skips);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        failing = true;
                        tracing::error!(plan_id = %plan.id, %error, "could not plan the next window of a recurring plan; retrying in a minute");
                        self.horizon_failures.locked().insert(plan.id.clone(), Instant::now() + RETRY_AFTER);
                    }
                }
            }
            if let Some(previous) = storing.take() {
                self.round_stored(previous.await).await?;
            }
            if !round.extensions.is_empty() {
                let (horizon, caps) = (self.ports.horizon.clone(), self.config.work_caps());
                storing = Some(tokio::spawn(async move {
                    let stored = horizon.extend_plans(&round.extensions, &caps).await;
                    (round, stored)
                }));
            }
            if count < BATCH {
                break;
            }
        }
        if let Some(last) = storing.take() {
            self.round_stored(last.await).await?;
        }
        let next = self.ports.horizon.next_planned_until().await?.map(|until| until - self.extension_lead());
        let retry =
            failing.then(|| now + chrono::Duration::from_std(RETRY_AFTER).unwrap_or(chrono::Duration::minutes(1)));
        // A frequent plan's horizon is always within the lead: it waits for its deferral.
        let deferred = self.next_deferral(now);
        let waiting = match (retry, deferred) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(match (next, waiting) {
            // A failing or full plan's own horizon is in the past: wait for its retry or
            // for its executors to be used instead.
            (Some(next), Some(waiting)) if next <= now => Some(waiting),
            (Some(next), _) => Some(next),
            (None, waiting) => waiting,
        })
    }

    /// What follows a round's store: the audit rows of firings an outage skipped (told
    /// once: only by the replica whose extension was stored), and the scheduler woken for
    /// the new executors.
    async fn round_stored(&self, joined: Result<StoredRound, tokio::task::JoinError>) -> Result<(), EngineError> {
        let (round, stored) = match joined {
            Ok(done) => done,
            // The store panicked: as if it had panicked here.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return Ok(()),
        };
        let stored = stored?;
        let mut made = 0;
        let mut told = Vec::new();
        for ((extension, stored), skipped) in round.extensions.iter().zip(stored).zip(round.skipped) {
            if stored {
                made += extension.executors.len();
                told.extend(skipped);
                tracing::debug!(plan_id = %extension.plan_id, executors = extension.executors.len(), "recurring plan extended");
            } else {
                tracing::debug!(plan_id = %extension.plan_id, "another replica extended the plan first");
            }
        }
        tracing::info!(plans = round.extensions.len(), executors = made, "recurring plans extended");
        if !told.is_empty()
            && let Err(error) = self.ports.audit.insert_audit(&told).await
        {
            tracing::error!(%error, "cannot store the plan.firings_skipped audit rows");
        }
        if made > 0 {
            self.wake_scheduler();
        }
        Ok(())
    }

    /// Whether the plan holds enough executors ahead for now (and waits until half of
    /// them are used).
    fn extension_deferred(&self, plan_id: &str, now: DateTime<Utc>) -> bool {
        let mut deferred = self.horizon_deferred.locked();
        match deferred.get(plan_id) {
            Some(until) if *until > now => true,
            Some(_) => {
                deferred.remove(plan_id);
                false
            }
            None => false,
        }
    }

    /// The soonest a full plan needs extending; deferrals past are forgotten.
    fn next_deferral(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut deferred = self.horizon_deferred.locked();
        deferred.retain(|_, until| *until > now);
        deferred.values().min().copied()
    }

    /// Whether the plan's planner failed lately (and waits for its retry).
    fn extension_backoff(&self, plan_id: &str) -> bool {
        let mut failures = self.horizon_failures.locked();
        match failures.get(plan_id) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                failures.remove(plan_id);
                false
            }
            None => false,
        }
    }

    /// Asks the plan's planner for `[planned_until, now + horizon)`: the extension to store
    /// (None: nothing to ask). A window that starts in the past (the engine was down, or
    /// its clock stepped forward past the horizon's lead) starts now instead: firings an
    /// outage made impossible are not made up for here (misfire `run_once` does that for
    /// the executors already stored), but they are never silent: the `plan.firings_skipped`
    /// audit row (and webhook event) to store with the extension names their span and count.
    async fn next_window(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> Result<Option<(Extension, Option<crate::AuditEvent>)>, EngineError> {
        let Some(from) = plan.planned_until else { return Ok(None) };
        let now = now.trunc_subsecs(6);
        let (_, until) = self.first_window(now);
        let window = (from.max(now), until);
        if window.0 >= window.1 {
            return Ok(None);
        }
        let planner = self.planner_of(plan).await?;
        let skipped = if from < now { self.skipped_firings(plan, &planner, (from, now)).await } else { None };
        let mut planned = self.ask_planner(&planner, &plan.planner.args, &plan.timezone, plan.seed, window).await?;
        // At most `max_executors_ahead_per_plan` ahead: a plan holding more than half of
        // them waits until only half are left. Counted only for a window that brings many
        // (a tenth of the allowance or more), so that the many plans firing a few times a
        // day cost no extra read.
        let max_ahead = self.config.max_executors_ahead_per_plan;
        let mut held = 0;
        if planned.recurring && planned.instants.len() >= (max_ahead / 10).max(1) {
            let ahead = self.ports.executors.executors_between(&plan.id, now, from.max(now), max_ahead as u64).await?;
            let half = max_ahead / 2;
            if ahead.len() > half {
                let wake = ahead[ahead.len() - half - 1].due;
                self.horizon_deferred.locked().insert(plan.id.clone(), wake.max(now + chrono::Duration::seconds(1)));
                return Ok(None);
            }
            held = ahead.len();
        }
        let until =
            planned.recurring.then(|| crate::plans::keep_ahead(&mut planned.instants, window.1, max_ahead - held));
        let executors = planned
            .instants
            .into_iter()
            .map(|due| {
                let mut executor = Executor::pending(new_id(), plan, due);
                executor.created = now;
                executor
            })
            .collect();
        Ok(Some((Extension { plan_id: plan.id.clone(), from, until, executors }, skipped)))
    }

    /// The firings a plan's planner places in `span`, a stretch of the past no executor was
    /// planned for: the audit row saying so (None when there were none). Counted as the
    /// forecast counts (a frequent plan over several answers, "at least" past its bound).
    async fn skipped_firings(
        &self,
        plan: &Plan,
        planner: &crate::registry::Entry,
        (from, until): (DateTime<Utc>, DateTime<Utc>),
    ) -> Option<crate::AuditEvent> {
        let args = &plan.planner.args;
        let span = match self.planned_span(planner, args, &plan.timezone, plan.seed, (from, until), from).await {
            Ok(span) => span,
            Err(error) => {
                tracing::error!(plan_id = %plan.id, %error, "cannot count the firings skipped before this window");
                return Some(skipped_audit(&plan.id, (from, until), "an unknown number of"));
            }
        };
        if span.count == 0 {
            return None;
        }
        let count = if span.exact { span.count.to_string() } else { format!("at least {}", span.count) };
        tracing::warn!(plan_id = %plan.id, %from, %until, %count, "firings skipped: the clock or the engine jumped past them");
        Some(skipped_audit(&plan.id, (from, until), &count))
    }
}

/// The `plan.firings_skipped` audit row: the plan, how many, and the span.
fn skipped_audit(plan_id: &str, (from, until): (DateTime<Utc>, DateTime<Utc>), count: &str) -> crate::AuditEvent {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    crate::AuditEvent::action(
        "scheduler",
        "plan.firings_skipped",
        format!(
            "{plan_id}: {count} firings from {} to {} skipped (the engine was down or its clock jumped past them)",
            at(from),
            at(until)
        ),
    )
}
