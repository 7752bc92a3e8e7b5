//! Creating, listing and deleting plans.

use chrono::{SubsecRound, Utc};
use serde_json::Value;

use crate::credentials::{plan_credential_name, take_inline_key};
use crate::host::{HostError, PlanInput};
use crate::model::{Actor, AuditEvent, Executor, Page, PageOf, Plan, PlanSummary, PlannedCall, PluginKind};
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
}

/// How many executors a plan's document embeds.
pub const EMBEDDED_EXECUTORS: u64 = 100;

/// The most executors one plan may create.
pub const MAX_EXECUTORS_PER_PLAN: usize = 10_000;

impl Engine {
    /// Resolves both refs, validates both args, runs the planner and stores the plan
    /// with its executors (and the audit event of `by` creating it) in one transaction.
    /// Nothing is stored when any step fails.
    pub async fn create_plan(&self, mut new: NewPlan, by: &Actor) -> Result<(PlanSummary, Vec<Executor>), EngineError> {
        let plan_id = new_id();
        let inline_credential = take_inline_key(self.host.as_ref(), &mut new.attack.args, &plan_id)?;
        let planner = self.resolve_plugin(PluginKind::Planner, &new.planner.reference, "/planner/ref").await?;
        let attack = self.resolve_plugin(PluginKind::Attack, &new.attack.reference, "/attack/ref").await?;
        self.host.validate_args(&attack.loaded, &new.attack.args).map_err(|e| args_error("attack", e))?;
        self.host.validate_args(&planner.loaded, &new.planner.args).map_err(|e| args_error("planner", e))?;

        let timezone = match &new.timezone {
            None => self.config.timezone,
            Some(name) => name
                .parse::<chrono_tz::Tz>()
                .map_err(|_| EngineError::invalid("/timezone", format!("unknown IANA time zone {name:?} (e.g. Europe/Madrid, America/New_York)")))?,
        };

        // Stored times have microseconds: what is returned is what is stored.
        let now = Utc::now().trunc_subsecs(6);
        let seed: u64 = rand_seed();
        let input = PlanInput { now, timezone: timezone.name().to_string(), seed, args: new.planner.args.clone() };
        let mut instants = self.host.plan(&planner.loaded, input).await.map_err(|e| match e {
            HostError::InvalidArgs { .. } => args_error("planner", e),
            other => EngineError::PlannerFailed { plugin: planner.loaded.description.id.clone(), reason: other.to_string() },
        })?;
        if instants.is_empty() {
            return Err(EngineError::NoRunTime);
        }
        if instants.len() > MAX_EXECUTORS_PER_PLAN {
            return Err(EngineError::TooManyRunTimes { count: instants.len(), max: MAX_EXECUTORS_PER_PLAN });
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
            attack: call(&attack.loaded, new.attack),
            planner: call(&planner.loaded, new.planner),
            dry_run: new.dry_run || self.config.dry_run,
            timezone: timezone.name().to_string(),
            seed,
            grace,
            created_by: Some(by.clone()),
            paused: None,
        };
        instants.sort();
        let instants = instants.into_iter().map(|t| t.trunc_subsecs(6));
        let executors: Vec<Executor> = instants.map(|due| Executor::pending(new_id(), &plan, due)).collect();
        let audit = AuditEvent::action(&by.name, "plan.create", plan.id.clone());
        if let Some(credential) = &inline_credential {
            tracing::info!(plan_id = %plan.id, credential = %credential.name, fingerprint = %credential.fingerprint, "stored the plan's inline SSH key as a credential");
        }
        self.storage.insert_plan(&plan, &executors, &audit, inline_credential.as_ref(), &self.config.work_caps()).await?;
        self.wake_scheduler();
        tracing::info!(plan_id = %plan.id, name = %plan.name, executors = executors.len(), "plan created");
        // A new plan's figures are known: no need to read them back.
        let summary = PlanSummary { executors_count: executors.len() as u64, next_execution: executors.first().map(|e| e.due), executed: false, plan };
        Ok((summary, executors))
    }

    /// Fires a plan once, now: a new executor due at once, stored with the audit event of
    /// `by` asking for it. Refused while halted; otherwise it runs like any executor (the
    /// leash, the plugin's grant and the operator's fences apply).
    pub async fn run_plan_now(&self, id: &str, by: &Actor) -> Result<Executor, EngineError> {
        let plan = self.storage.plan(id).await?.filter(|p| p.deleted.is_none()).ok_or_else(|| EngineError::not_found(Resource::Plan, id))?;
        if self.halt_state().await?.state.halted {
            return Err(EngineError::Halted);
        }
        let now = Utc::now().trunc_subsecs(6);
        let mut executor = Executor::pending(new_id(), &plan, now);
        executor.created = now;
        let audit = AuditEvent::action(&by.name, "plan.run", format!("{id}: executor {}", executor.id));
        self.storage.insert_executors(std::slice::from_ref(&executor), &audit, &self.config.work_caps()).await?;
        self.wake_scheduler();
        tracing::info!(plan_id = %id, executor_id = %executor.id, by = %by.name, "plan fired on request");
        Ok(executor)
    }

    /// Pauses a plan: its pending executors become `paused` and do not fire until it is
    /// resumed. Pausing a paused plan changes nothing.
    pub async fn pause_plan(&self, id: &str, by: &str) -> Result<PlanSummary, EngineError> {
        let audit = AuditEvent::action(by, "plan.pause", id);
        if !self.storage.set_plan_paused(id, Some(Utc::now().trunc_subsecs(6)), &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        tracing::info!(plan_id = %id, by, "plan paused");
        Ok(self.plan(id).await?.0)
    }

    /// Resumes a paused plan: its paused executors are pending again (those past their
    /// grace become missed, as after downtime).
    pub async fn resume_plan(&self, id: &str, by: &str) -> Result<PlanSummary, EngineError> {
        let audit = AuditEvent::action(by, "plan.resume", id);
        if !self.storage.set_plan_paused(id, None, &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        self.wake_scheduler();
        tracing::info!(plan_id = %id, by, "plan resumed");
        Ok(self.plan(id).await?.0)
    }

    /// Plans that are not deleted (only those with work left unless `all`).
    pub async fn list_plans(&self, all: bool, page: Page) -> Result<PageOf<PlanSummary>, EngineError> {
        Ok(self.storage.list_plans(all, page).await?)
    }

    /// A plan (not deleted) with the first [`EMBEDDED_EXECUTORS`] of its executors by due
    /// time (the rest page through the executor list).
    pub async fn plan(&self, id: &str) -> Result<(PlanSummary, PageOf<Executor>), EngineError> {
        let plan = self.storage.plan(id).await?.filter(|p| p.deleted.is_none()).ok_or_else(|| EngineError::not_found(Resource::Plan, id))?;
        let summary = self.storage.summarize(plan).await?;
        let filter = crate::ExecutorFilter { statuses: None, plan_id: Some(id.to_string()) };
        let executors = self.storage.list_executors(&filter, Page::first(EMBEDDED_EXECUTORS).expect("a valid page size")).await?;
        Ok((summary, executors))
    }

    /// Deletes a plan: it leaves the plans API, its pending executors are cancelled, its
    /// executors' history stays; the deletion is audited in the same transaction.
    pub async fn delete_plan(&self, id: &str, by: &str) -> Result<(), EngineError> {
        let audit = AuditEvent::action(by, "plan.delete", id);
        if !self.storage.delete_plan(id, Utc::now(), &plan_credential_name(id), &audit).await? {
            return Err(EngineError::not_found(Resource::Plan, id));
        }
        self.wake_scheduler();
        tracing::info!(plan_id = %id, "plan deleted");
        Ok(())
    }
}

/// Args refused by a plugin's schema or by the plugin, located under the plan's field.
fn args_error(side: &str, error: HostError) -> EngineError {
    let base = format!("/{side}/args");
    match error {
        HostError::InvalidArgs { pointer, message } => {
            let field = match pointer.as_deref() {
                None | Some("") | Some("/") => base,
                Some(p) => format!("{base}{p}"),
            };
            EngineError::Invalid { field, message: format!("invalid {side} args: {message}") }
        }
        other => EngineError::Invalid { field: base, message: format!("invalid {side} args: {other}") },
    }
}

/// A 32-hex-digit id, as the original engine's.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn rand_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}
