//! Creating, listing and deleting plans.

use chrono::Utc;
use serde_json::Value;

use cme_store::{Page, PageOf, executor, plan, status};

use crate::credentials::{plan_credential_name, take_inline_key};
use crate::host::{PlanInput, PluginKind};
use crate::time::{now_us, to_us};
use crate::views::{ExecutorView, PlanView};
use crate::{ApiAction, Engine, EngineError};

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
}

/// The most executors one plan may create.
pub const MAX_EXECUTORS_PER_PLAN: usize = 10_000;

impl Engine {
    /// Resolves both refs, validates both args, runs the planner and stores the plan
    /// with its executors (and the audit event of `by` creating it) in one transaction.
    /// Nothing is stored when any step fails.
    pub async fn create_plan(&self, mut new: NewPlan, by: &str) -> Result<(PlanView, Vec<ExecutorView>), EngineError> {
        let plan_id = new_id();
        let inline_credential = take_inline_key(&mut new.attack.args, &plan_id)?;
        let planner = self.resolve_plugin(PluginKind::Planner, &new.planner.reference, "/planner/ref").await?;
        let attack = self.resolve_plugin(PluginKind::Attack, &new.attack.reference, "/attack/ref").await?;
        self.host
            .validate_args(&attack.id, &new.attack.args)
            .map_err(|r| EngineError::invalid(format!("invalid attack args: {}", r.message), Some(&under("/attack/args", r.pointer))))?;
        self.host
            .validate_args(&planner.id, &new.planner.args)
            .map_err(|r| EngineError::invalid(format!("invalid planner args: {}", r.message), Some(&under("/planner/args", r.pointer))))?;

        let now = Utc::now();
        let seed: u64 = rand_seed();
        let input = PlanInput { now, timezone: self.config.timezone.name().to_string(), seed };
        let instants = self
            .host
            .plan(&planner.id, input, &new.planner.args)
            .await
            .map_err(|r| EngineError::invalid(format!("invalid planner args: {}", r.message), Some(&under("/planner/args", r.pointer))))?;
        if instants.is_empty() {
            return Err(EngineError::invalid("the planner returned no run time", Some("/planner/args")));
        }
        if instants.len() > MAX_EXECUTORS_PER_PLAN {
            return Err(EngineError::invalid(
                format!("the planner returned {} run times; a plan may have at most {MAX_EXECUTORS_PER_PLAN}", instants.len()),
                Some("/planner/args"),
            ));
        }

        let grace_ms = new.grace_seconds.map(|s| s as i64 * 1000).unwrap_or(self.config.default_grace.as_millis() as i64);
        let created_at_us = to_us(now);
        let plan = plan::Model {
            id: plan_id,
            name: new.name,
            created_at_us,
            deleted_at_us: None,
            attack_ref: attack.refs.first().cloned().unwrap_or(new.attack.reference),
            attack_plugin: attack.id,
            attack_args: new.attack.args.to_string(),
            planner_ref: planner.refs.first().cloned().unwrap_or(new.planner.reference),
            planner_plugin: planner.id,
            planner_args: new.planner.args.to_string(),
            dry_run: new.dry_run || self.config.dry_run,
            timezone: self.config.timezone.name().to_string(),
            seed: seed as i64,
            grace_ms,
        };
        let mut instants = instants;
        instants.sort();
        let executors: Vec<executor::Model> = instants
            .into_iter()
            .map(|due| executor::Model {
                id: new_id(),
                plan_id: plan.id.clone(),
                due_at_us: to_us(due),
                status: status::PENDING.into(),
                attempts: 0,
                lease_owner: None,
                lease_expires_us: None,
                grace_ms,
                created_at_us,
                started_at_us: None,
                finished_at_us: None,
                summary: None,
                targets: "[]".into(),
                details: None,
                error: None,
                log: "[]".into(),
            })
            .collect();
        let audit = crate::api_audit(ApiAction { actor: by.to_string(), action: "plan.create".into(), target: plan.id.clone() });
        if let Some(credential) = &inline_credential {
            tracing::info!(plan_id = %plan.id, credential = %credential.name, fingerprint = %credential.fingerprint, "stored the plan's inline SSH key as a credential");
        }
        self.store.insert_plan(plan.clone(), executors.clone(), audit, inline_credential).await?;
        self.wake_scheduler();
        tracing::info!(plan_id = %plan.id, name = %plan.name, executors = executors.len(), "plan created");
        // A new plan's figures are known: no need to read them back.
        let summary = cme_store::PlanSummary {
            executors_count: executors.len() as u64,
            next_execution_us: executors.first().map(|e| e.due_at_us),
            executed: false,
            plan,
        };
        Ok((PlanView::from_summary(summary), executors.into_iter().map(ExecutorView::from_model).collect()))
    }

    /// Plans that are not deleted (only those with work left unless `all`).
    pub async fn list_plans(&self, all: bool, page: Page) -> Result<PageOf<PlanView>, EngineError> {
        let listed = self.store.list_plans(all, page).await?;
        Ok(PageOf { items: listed.items.into_iter().map(PlanView::from_summary).collect(), has_more: listed.has_more })
    }

    /// A plan (not deleted) with its executors.
    pub async fn plan(&self, id: &str) -> Result<(PlanView, Vec<ExecutorView>), EngineError> {
        let plan = self.store.plan(id).await?.filter(|p| p.deleted_at_us.is_none()).ok_or_else(|| not_found_plan(id))?;
        let summary = self.store.summarize(plan).await?;
        let executors = self.store.executors_of(id).await?;
        Ok((PlanView::from_summary(summary), executors.into_iter().map(ExecutorView::from_model).collect()))
    }

    /// Deletes a plan: it leaves the plans API, its pending executors are cancelled, its
    /// executors' history stays.
    pub async fn delete_plan(&self, id: &str) -> Result<(), EngineError> {
        if !self.store.delete_plan(id, now_us(), &plan_credential_name(id)).await? {
            return Err(not_found_plan(id));
        }
        self.wake_scheduler();
        tracing::info!(plan_id = %id, "plan deleted");
        Ok(())
    }
}

fn not_found_plan(id: &str) -> EngineError {
    EngineError::NotFound(format!("plan {id} not found"))
}

fn under(base: &str, pointer: Option<String>) -> String {
    match pointer.as_deref() {
        None | Some("") | Some("/") => base.to_string(),
        Some(p) => format!("{base}{p}"),
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
