//! Creating, listing and deleting plans.

use chrono::{SubsecRound, Utc};
use serde_json::Value;

use crate::credentials::{plan_credential_name, take_inline_key};
use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;

use crate::host::{PlanInput, Planned, PluginHostError};
use crate::model::{
    Actor, AuditEvent, Executor, Misfire, OnFailure, Overlap, Page, PageOf, Plan, PlanSummary, PlannedCall, PluginKind,
    StopCondition,
};
use crate::registry::Entry;
use crate::steps::{NewStepAction, Step, StepAction};
use crate::{Engine, EngineError, Resource};

/// A plugin reference with its args, as a plan names it.
#[derive(Debug, Clone)]
pub struct PluginCall {
    pub reference: String,
    pub args: Value,
}

/// A plan to create.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: String,
    pub attack: PluginCall,
    pub planner: PluginCall,
    pub dry_run: bool,
    /// Misfire grace; None: the engine's default.
    pub grace_seconds: Option<u64>,
    /// The IANA zone the planner works in (wall times without offset, "today"); None: the
    /// engine's zone.
    pub timezone: Option<String>,
    /// The planner's seed; None: a random one. The same seed and args plan the same times
    /// (what a forecast with that seed showed).
    pub seed: Option<u64>,
    pub misfire: Misfire,
    pub overlap: Overlap,
    /// Probes checked right before each run (see [`Plan::steady_state`]).
    pub steady_state: Vec<PluginCall>,
    /// Probes watching the plan's runs (see [`Plan::stop_conditions`]).
    pub stop_conditions: Vec<NewStopCondition>,
    /// An experiment's steps (empty: a one-attack plan). `attack` is then the first
    /// attack step's call, as the body's reader sets it.
    pub steps: Vec<crate::steps::NewStep>,
    /// An experiment's deadline (None: the engine's `max_experiment_seconds`).
    pub deadline_seconds: Option<u64>,
}

/// A stop condition as a plan body gives it.
#[derive(Debug, Clone)]
pub struct NewStopCondition {
    pub probe: PluginCall,
    /// Default 10 s; 1 s to an hour.
    pub interval_seconds: Option<u64>,
    /// Default 30 s; up to an hour.
    pub settle_seconds: Option<u64>,
    pub on_failure: OnFailure,
}

/// How often a stop condition is asked by default, and how long after the last run.
pub const DEFAULT_STOP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
pub const DEFAULT_STOP_SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// The most probes a plan's steady state may name.
pub const MAX_STEADY_STATE_PROBES: usize = 8;

/// A plan body checked and resolved, not stored: what creating and forecasting share.
pub(crate) struct Draft {
    pub planner: Arc<Entry>,
    pub attack: Arc<Entry>,
    /// The steady state's probes, in the body's order.
    pub probes: Vec<Arc<Entry>>,
    /// The stop conditions' probes, in the body's order.
    pub stop_probes: Vec<Arc<Entry>>,
    pub timezone: Tz,
    pub seed: u64,
    /// An experiment's steps, resolved (empty: a one-attack plan).
    pub steps: Vec<Step>,
}

/// How many executors a plan's document embeds.
pub const EMBEDDED_EXECUTORS: u64 = 100;

/// The most executors one plan may create.
pub const MAX_EXECUTORS_PER_PLAN: usize = 10_000;

/// The most bytes a plan's args may take in all (attack, planner and probes, as JSON):
/// every page of plans shows them, so a page of the largest plans stays a few MiB.
pub const MAX_PLAN_ARGS_BYTES: usize = 32 << 10;

/// Keeps the earliest `room` of a recurring window's firings (sorted); answers how far
/// the plan is then planned: the window's end, or just after the last firing kept.
pub(crate) fn keep_ahead(instants: &mut Vec<DateTime<Utc>>, until: DateTime<Utc>, room: usize) -> DateTime<Utc> {
    if instants.len() <= room {
        return until;
    }
    instants.truncate(room);
    instants.last().map_or(until, |last| (*last + chrono::Duration::microseconds(1)).min(until))
}

/// Writes the creation time into every arg the plugin's schema marks
/// `"x-cme-stamp": "created"` that the plan leaves out (the cron planner's `start`, the
/// anchor of its intervals), so that the stored args plan the same on every replica and
/// after every restart.
pub(crate) fn stamp_creation_time(schema: &Value, args: &mut Value, now: DateTime<Utc>) {
    let (Some(properties), Some(given)) = (schema.get("properties").and_then(Value::as_object), args.as_object_mut())
    else {
        return;
    };
    for (key, property) in properties {
        if property.get("x-cme-stamp").and_then(Value::as_str) == Some("created") && !given.contains_key(key) {
            given.insert(key.clone(), Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
        }
    }
}

fn check_args_size(new: &NewPlan) -> Result<(), EngineError> {
    let size = |v: &serde_json::Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    let mut total = 0usize;
    let mut largest = ("/attack/args".to_string(), 0usize);
    let mut count = |pointer: String, args: &serde_json::Value| {
        let n = size(args);
        total = total.saturating_add(n);
        if n > largest.1 {
            largest = (pointer, n);
        }
    };
    count("/attack/args".into(), &new.attack.args);
    count("/planner/args".into(), &new.planner.args);
    for (i, call) in new.steady_state.iter().enumerate() {
        count(format!("/steady_state/{i}/args"), &call.args);
    }
    for (i, condition) in new.stop_conditions.iter().enumerate() {
        count(format!("/stop_conditions/{i}/args"), &condition.probe.args);
    }
    for (i, step) in new.steps.iter().enumerate() {
        match &step.action {
            NewStepAction::Attack { call, .. } => count(format!("/steps/{i}/attack/args"), &call.args),
            NewStepAction::Verify(probes) => {
                for (j, probe) in probes.iter().enumerate() {
                    count(format!("/steps/{i}/verify/{j}/args"), &probe.args);
                }
            }
            NewStepAction::Wait { .. } => {}
        }
    }
    if total > MAX_PLAN_ARGS_BYTES {
        return Err(EngineError::invalid(
            &largest.0,
            format!("a plan's args take at most {MAX_PLAN_ARGS_BYTES} bytes in all (these take {total})"),
        ));
    }
    Ok(())
}

impl Engine {
    /// Probes observe: a probe's `method` arg must be GET or HEAD, or a method the
    /// operator's `[probes] allow_methods` allows.
    fn check_probe_method(&self, args: &serde_json::Value, pointer: &str) -> Result<(), EngineError> {
        let Some(method) = args.get("method").and_then(|m| m.as_str()) else { return Ok(()) };
        let method = method.to_ascii_uppercase();
        if self.config.probes.allows(&method) {
            return Ok(());
        }
        Err(EngineError::invalid(
            pointer,
            format!(
                "probes observe: a probe may use GET or HEAD, not {method} (the operator's [probes] allow_methods may allow it)"
            ),
        ))
    }

    /// Resolves both refs, validates both args and the zone: everything about a plan body
    /// that does not need its planner.
    pub(crate) async fn draft(&self, new: &NewPlan) -> Result<Draft, EngineError> {
        check_args_size(new)?;
        // An experiment's steps first: a fault in its first attack step is named there.
        let steps = self.resolve_steps(new).await?;
        let planner = self.resolve_plugin(PluginKind::Planner, &new.planner.reference, "/planner/ref").await?;
        let attack = self.resolve_plugin(PluginKind::Attack, &new.attack.reference, "/attack/ref").await?;
        self.host.validate_args(&attack.loaded, &new.attack.args).map_err(|e| args_error("attack", e))?;
        self.host.validate_args(&planner.loaded, &new.planner.args).map_err(|e| args_error("planner", e))?;
        let timezone = self.zone_named(new.timezone.as_deref())?;
        if new.steady_state.len() > MAX_STEADY_STATE_PROBES {
            return Err(EngineError::invalid("/steady_state", format!("at most {MAX_STEADY_STATE_PROBES} probes")));
        }
        let mut probes = Vec::with_capacity(new.steady_state.len());
        for (i, call) in new.steady_state.iter().enumerate() {
            let probe =
                self.resolve_plugin(PluginKind::Probe, &call.reference, &format!("/steady_state/{i}/ref")).await?;
            self.host
                .validate_args(&probe.loaded, &call.args)
                .map_err(|e| args_error(&format!("steady_state/{i}"), e))?;
            self.check_probe_method(&call.args, &format!("/steady_state/{i}/args/method"))?;
            probes.push(probe);
        }
        if new.stop_conditions.len() > MAX_STEADY_STATE_PROBES {
            return Err(EngineError::invalid(
                "/stop_conditions",
                format!("at most {MAX_STEADY_STATE_PROBES} stop conditions"),
            ));
        }
        let mut stop_probes = Vec::with_capacity(new.stop_conditions.len());
        for (i, condition) in new.stop_conditions.iter().enumerate() {
            let probe = self
                .resolve_plugin(PluginKind::Probe, &condition.probe.reference, &format!("/stop_conditions/{i}/ref"))
                .await?;
            self.host
                .validate_args(&probe.loaded, &condition.probe.args)
                .map_err(|e| args_error(&format!("stop_conditions/{i}"), e))?;
            self.check_probe_method(&condition.probe.args, &format!("/stop_conditions/{i}/args/method"))?;
            if condition.interval_seconds.is_some_and(|s| !(1..=3600).contains(&s)) {
                return Err(EngineError::invalid(
                    &format!("/stop_conditions/{i}/interval_seconds"),
                    "1 to 3600 seconds",
                ));
            }
            if condition.settle_seconds.is_some_and(|s| s > 3600) {
                return Err(EngineError::invalid(&format!("/stop_conditions/{i}/settle_seconds"), "0 to 3600 seconds"));
            }
            stop_probes.push(probe);
        }
        Ok(Draft { planner, attack, probes, stop_probes, timezone, seed: new.seed.unwrap_or_else(rand_seed), steps })
    }

    /// An experiment's steps checked and resolved: their order (`steps::check_graph`),
    /// each attack's ref, args and reversibility, each verify's probes (which observe).
    /// Every refusal names the step (`/steps/3/attack/args/...`).
    async fn resolve_steps(&self, new: &NewPlan) -> Result<Vec<Step>, EngineError> {
        if new.steps.is_empty() {
            if new.deadline_seconds.is_some() {
                return Err(EngineError::invalid(
                    "/deadline_seconds",
                    "only an experiment (a plan with steps) has a deadline",
                ));
            }
            return Ok(Vec::new());
        }
        crate::steps::check_graph(&new.steps)?;
        let most = self.config.max_experiment_seconds.as_secs();
        if new.deadline_seconds.is_some_and(|s| s == 0 || s > most) {
            return Err(EngineError::invalid(
                "/deadline_seconds",
                format!("1 to {most} seconds (the engine's max_experiment_seconds)"),
            ));
        }
        let mut steps = Vec::with_capacity(new.steps.len());
        for (i, step) in new.steps.iter().enumerate() {
            let action = match &step.action {
                NewStepAction::Attack { call, duration_seconds, irreversible } => {
                    let at = format!("/steps/{i}/attack");
                    let entry = self.resolve_plugin(PluginKind::Attack, &call.reference, &format!("{at}/ref")).await?;
                    self.host
                        .validate_args(&entry.loaded, &call.args)
                        .map_err(|e| args_error(&format!("steps/{i}/attack"), e))?;
                    if crate::credentials::has_inline_key(&call.args) {
                        return Err(EngineError::invalid(
                            &format!("{at}/args/ssh/pem"),
                            "an experiment's steps name stored credentials (POST /api/1/credentials/), not inline keys",
                        ));
                    }
                    if !irreversible && !crate::steps::reversible(&entry.loaded.description.args_schema, &call.args) {
                        return Err(EngineError::invalid(
                            &format!("/steps/{i}/irreversible"),
                            format!(
                                "{} does not declare that it can revert this fault: say \"irreversible\": true to run it in an experiment anyway",
                                entry.loaded.description.id
                            ),
                        ));
                    }
                    StepAction::Attack {
                        call: PlannedCall {
                            reference: entry.loaded.description.refs.first().cloned().unwrap_or(call.reference.clone()),
                            plugin: entry.loaded.description.id.clone(),
                            args: call.args.clone(),
                        },
                        duration: duration_seconds.map(std::time::Duration::from_secs),
                        irreversible: *irreversible,
                    }
                }
                NewStepAction::Verify(probes) => {
                    let mut calls = Vec::with_capacity(probes.len());
                    for (j, probe) in probes.iter().enumerate() {
                        let at = format!("/steps/{i}/verify/{j}");
                        let entry =
                            self.resolve_plugin(PluginKind::Probe, &probe.reference, &format!("{at}/ref")).await?;
                        self.host
                            .validate_args(&entry.loaded, &probe.args)
                            .map_err(|e| args_error(&format!("steps/{i}/verify/{j}"), e))?;
                        self.check_probe_method(&probe.args, &format!("{at}/args/method"))?;
                        calls.push(PlannedCall {
                            reference: entry
                                .loaded
                                .description
                                .refs
                                .first()
                                .cloned()
                                .unwrap_or(probe.reference.clone()),
                            plugin: entry.loaded.description.id.clone(),
                            args: probe.args.clone(),
                        });
                    }
                    StepAction::Verify(calls)
                }
                NewStepAction::Wait { seconds } => StepAction::Wait(std::time::Duration::from_secs(*seconds)),
            };
            steps.push(Step { name: step.name.clone(), after: step.after.clone(), action });
        }
        Ok(steps)
    }

    /// Asks a plan's planner about `[from, until)`. Its args are refused as the caller's
    /// mistake (located under /planner/args), anything else is the plugin's fault.
    pub(crate) async fn ask_planner(
        &self,
        planner: &Entry,
        args: &Value,
        timezone: &str,
        seed: u64,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Planned, EngineError> {
        let input = PlanInput {
            now: Utc::now().trunc_subsecs(6),
            timezone: timezone.to_string(),
            seed,
            args: args.clone(),
            window,
        };
        let mut planned = self.host.plan(&planner.loaded, input).await.map_err(|e| match e {
            PluginHostError::InvalidArgs { .. } => args_error("planner", e),
            other => {
                EngineError::PlannerFailed { plugin: planner.loaded.description.id.clone(), reason: other.to_string() }
            }
        })?;
        // A recurring planner's answer is kept in part (the earliest); a one-off plan's is
        // stored whole, so it is bounded here.
        if !planned.recurring && planned.instants.len() > MAX_EXECUTORS_PER_PLAN {
            return Err(EngineError::TooManyRunTimes { count: planned.instants.len(), max: MAX_EXECUTORS_PER_PLAN });
        }
        // Stored times have microseconds: what is returned is what is stored.
        planned.instants.iter_mut().for_each(|t| *t = t.trunc_subsecs(6));
        planned.instants.sort();
        Ok(planned)
    }

    /// A stored plan's planner, if it may still plan (enabled); otherwise why not, as the
    /// planner's failure.
    pub(crate) async fn planner_of(&self, plan: &Plan) -> Result<Arc<Entry>, EngineError> {
        match self.runnable(&plan.planner.plugin).await? {
            Ok(entry) => Ok(entry),
            Err(reason) => Err(EngineError::PlannerFailed { plugin: plan.planner.plugin.clone(), reason }),
        }
    }

    /// The first window of a plan made now: `[now, now + horizon)`.
    pub(crate) fn first_window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (now, now + chrono::Duration::from_std(self.config.recurring_horizon).unwrap_or(chrono::Duration::days(7)))
    }

    /// Resolves both refs, validates both args, runs the planner over the first window
    /// and stores the plan with its executors (and the audit event of `by` creating it) in
    /// one transaction. Nothing is stored when any step fails. A recurring plan records
    /// how far it is planned; the scheduler extends it as time passes.
    pub async fn create_plan(&self, mut new: NewPlan, by: &Actor) -> Result<(PlanSummary, Vec<Executor>), EngineError> {
        let plan_id = new_id();
        // An experiment's steps name stored credentials (its draft refuses inline keys).
        let inline_credential = match new.steps.is_empty() {
            true => take_inline_key(&self.host, &mut new.attack.args, &plan_id).await?,
            false => None,
        };
        let mut draft = self.draft(&new).await?;
        let now = Utc::now().trunc_subsecs(6);
        stamp_creation_time(&draft.planner.loaded.description.args_schema, &mut new.planner.args, now);
        let window = self.first_window(now);
        let mut planned =
            self.ask_planner(&draft.planner, &new.planner.args, draft.timezone.name(), draft.seed, window).await?;
        if planned.instants.is_empty() && !planned.recurring {
            return Err(EngineError::NoRunTime);
        }

        let grace = new.grace_seconds.map(std::time::Duration::from_secs).unwrap_or(self.config.default_grace);
        let call = |loaded: &crate::LoadedPlugin, given: PluginCall| PlannedCall {
            reference: loaded.description.refs.first().cloned().unwrap_or(given.reference),
            plugin: loaded.description.id.clone(),
            args: given.args,
        };
        let plan = Plan {
            id: plan_id,
            name: new.name,
            created: now,
            deleted: None,
            attack: call(&draft.attack.loaded, new.attack),
            planner: call(&draft.planner.loaded, new.planner),
            dry_run: new.dry_run || self.config.dry_run,
            timezone: draft.timezone.name().to_string(),
            seed: draft.seed,
            grace,
            created_by: Some(by.clone()),
            paused: None,
            planned_until: planned
                .recurring
                .then(|| keep_ahead(&mut planned.instants, window.1, self.config.max_executors_ahead_per_plan)),
            misfire: new.misfire,
            overlap: new.overlap,
            steady_state: draft
                .probes
                .iter()
                .zip(new.steady_state)
                .map(|(probe, given)| call(&probe.loaded, given))
                .collect(),
            steps: std::mem::take(&mut draft.steps),
            deadline: new.deadline_seconds.map(std::time::Duration::from_secs),
            stop_conditions: draft
                .stop_probes
                .iter()
                .zip(new.stop_conditions)
                .map(|(probe, given)| StopCondition {
                    probe: call(&probe.loaded, given.probe),
                    interval: given.interval_seconds.map_or(DEFAULT_STOP_INTERVAL, std::time::Duration::from_secs),
                    settle: given.settle_seconds.map_or(DEFAULT_STOP_SETTLE, std::time::Duration::from_secs),
                    on_failure: given.on_failure,
                })
                .collect(),
        };
        let executors: Vec<Executor> =
            planned.instants.into_iter().map(|due| Executor::pending(new_id(), &plan, due)).collect();
        let audit = AuditEvent::action(&by.name, "plan.create", plan.id.clone());
        if let Some(credential) = &inline_credential {
            tracing::info!(plan_id = %plan.id, credential = %credential.name, fingerprint = %credential.fingerprint, "stored the plan's inline SSH key as a credential");
        }
        self.ports
            .plans
            .insert_plan(&plan, &executors, &audit, inline_credential.as_ref(), &self.config.work_caps())
            .await?;
        self.wake_scheduler_for(executors.iter().map(|e| e.due).min());
        if plan.is_recurring() {
            self.wake_planning_for(plan.planned_until);
        }
        tracing::info!(plan_id = %plan.id, name = %plan.name, executors = executors.len(), recurring = plan.is_recurring(), "plan created");
        // A new plan's figures are known: no need to read them back.
        let summary = PlanSummary {
            executors_count: executors.len() as u64,
            next_execution: executors.first().map(|e| e.due),
            executed: executors.is_empty() && !plan.is_recurring(),
            plan,
        };
        Ok((summary, executors))
    }

    /// The plan `id`, unless it does not exist or was deleted (404 either way).
    pub(crate) async fn live_plan(&self, id: &str) -> Result<Plan, EngineError> {
        self.ports
            .plans
            .plan(id)
            .await?
            .filter(|p| p.deleted.is_none())
            .ok_or_else(|| EngineError::not_found(Resource::Plan, id))
    }

    /// Fires a plan once, now: a new executor due at once, stored with the audit event of
    /// `by` asking for it. Refused while halted; otherwise it runs like any executor (the
    /// leash, the plugin's grant and the operator's fences apply).
    pub async fn run_plan_now(&self, id: &str, by: &Actor) -> Result<Executor, EngineError> {
        let plan = self.live_plan(id).await?;
        if self.halt_state().await?.state.halted {
            return Err(EngineError::Halted);
        }
        let now = Utc::now().trunc_subsecs(6);
        if let Some(blackout) = self.blackout_index().await?.holding(id, now) {
            return Err(EngineError::InBlackout { name: blackout.reason() });
        }
        let mut executor = Executor::pending(new_id(), &plan, now);
        executor.created = now;
        let audit = AuditEvent::action(&by.name, "plan.run", format!("{id}: executor {}", executor.id));
        self.ports.plans.insert_executors(std::slice::from_ref(&executor), &audit, &self.config.work_caps()).await?;
        self.wake_scheduler();
        tracing::info!(plan_id = %id, executor_id = %executor.id, by = %by.name, "plan fired on request");
        Ok(executor)
    }

    /// Pauses a plan: its pending executors become `paused` and do not fire until it is
    /// resumed. Pausing a paused plan changes nothing.
    pub async fn pause_plan(&self, id: &str, by: &str) -> Result<PlanSummary, EngineError> {
        let audit = AuditEvent::action(by, "plan.pause", id);
        if !self.ports.plans.set_plan_paused(id, Some(Utc::now().trunc_subsecs(6)), &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        tracing::info!(plan_id = %id, by, "plan paused");
        Ok(self.plan(id).await?.0)
    }

    /// Resumes a paused plan: its paused executors are pending again (those past their
    /// grace become missed, as after downtime).
    pub async fn resume_plan(&self, id: &str, by: &str) -> Result<PlanSummary, EngineError> {
        let audit = AuditEvent::action(by, "plan.resume", id);
        if !self.ports.plans.set_plan_paused(id, None, &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        self.wake_scheduler();
        self.wake_planning();
        tracing::info!(plan_id = %id, by, "plan resumed");
        Ok(self.plan(id).await?.0)
    }

    /// Plans that are not deleted (only those with work left unless `all`).
    pub async fn list_plans(&self, all: bool, page: Page) -> Result<PageOf<PlanSummary>, EngineError> {
        Ok(self.ports.plans.list_plans(all, page).await?)
    }

    /// A plan (not deleted) with the first [`EMBEDDED_EXECUTORS`] of its executors by due
    /// time (the rest page through the executor list).
    pub async fn plan(&self, id: &str) -> Result<(PlanSummary, PageOf<Executor>), EngineError> {
        let plan = self.live_plan(id).await?;
        let summary = self.ports.plans.summarize(plan).await?;
        let filter = crate::ExecutorFilter { statuses: None, plan_id: Some(id.to_string()), after: None };
        let executors = self
            .ports
            .executors
            .list_executors(&filter, Page::first(EMBEDDED_EXECUTORS).expect("a valid page size"))
            .await?;
        Ok((summary, executors))
    }

    /// Deletes a plan: it leaves the plans API, its pending executors are cancelled, its
    /// executors' history stays; the deletion is audited in the same transaction.
    pub async fn delete_plan(&self, id: &str, by: &str) -> Result<(), EngineError> {
        let audit = AuditEvent::action(by, "plan.delete", id);
        if !self.ports.plans.delete_plan(id, Utc::now(), &plan_credential_name(id), &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        self.wake_scheduler();
        tracing::info!(plan_id = %id, "plan deleted");
        Ok(())
    }
}

/// Args refused by a plugin's schema or by the plugin, located under the plan's field.
fn args_error(side: &str, error: PluginHostError) -> EngineError {
    let base = format!("/{side}/args");
    match error {
        PluginHostError::InvalidArgs { pointer, message } => {
            let field = match pointer.as_deref() {
                None | Some("") | Some("/") => base,
                Some(p) => format!("{base}{p}"),
            };
            EngineError::Invalid { field, message: format!("invalid {side} args: {message}") }
        }
        other => EngineError::Invalid { field: base, message: format!("invalid {side} args: {other}") },
    }
}

/// A 32-hex-digit id, as the original engine's. Time-ordered (UUIDv7: 48 bits of
/// milliseconds, then random bits): new rows land at the end of every index keyed by id,
/// so a batch of inserts dirties a few pages instead of one random leaf per row and index
/// (what each commit writes and syncs). Ids are names, not secrets: access is by token.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn rand_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}
