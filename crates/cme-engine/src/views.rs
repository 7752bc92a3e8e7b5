//! What the engine returns about plans and executors (the API renders these as HAL).

use chrono::{DateTime, Utc};
use serde_json::Value;

use cme_store::{executor, plan, status};

use crate::time::from_us;

#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub attack_ref: String,
    pub attack_plugin: String,
    pub attack_args: Value,
    pub planner_ref: String,
    pub planner_plugin: String,
    pub planner_args: Value,
    pub dry_run: bool,
    pub timezone: String,
    pub grace_seconds: u64,
    pub deleted: bool,
    pub executors_count: u64,
    pub next_execution: Option<DateTime<Utc>>,
    pub executed: bool,
}

impl PlanView {
    pub(crate) fn from_summary(summary: cme_store::PlanSummary) -> Self {
        let mut view = PlanView::from_model(summary.plan);
        view.executors_count = summary.executors_count;
        view.next_execution = summary.next_execution_us.map(from_us);
        view.executed = summary.executed;
        view
    }

    pub(crate) fn from_model(p: plan::Model) -> Self {
        PlanView {
            id: p.id,
            name: p.name,
            created: from_us(p.created_at_us),
            attack_ref: p.attack_ref,
            attack_plugin: p.attack_plugin,
            attack_args: serde_json::from_str(&p.attack_args).unwrap_or(Value::Null),
            planner_ref: p.planner_ref,
            planner_plugin: p.planner_plugin,
            planner_args: serde_json::from_str(&p.planner_args).unwrap_or(Value::Null),
            dry_run: p.dry_run,
            timezone: p.timezone,
            grace_seconds: (p.grace_ms / 1000) as u64,
            deleted: p.deleted_at_us.is_some(),
            executors_count: 0,
            next_execution: None,
            executed: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorView {
    pub id: String,
    pub plan_id: String,
    pub next_run_time: DateTime<Utc>,
    pub status: String,
    /// The original's flag: true once the executor is terminal.
    pub executed: bool,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub log: Value,
    /// The attack plugin version it runs (`name@version`); filled where one executor is
    /// shown, not in lists.
    pub attack_plugin: Option<String>,
}

impl ExecutorView {
    pub(crate) fn from_model(e: executor::Model) -> Self {
        let result = e.summary.as_ref().map(|summary| {
            serde_json::json!({
                "summary": summary,
                "targets": serde_json::from_str::<Value>(&e.targets).unwrap_or(Value::Array(vec![])),
                "details": e.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()).unwrap_or(Value::Null),
            })
        });
        ExecutorView {
            executed: status::TERMINAL.contains(&e.status.as_str()),
            id: e.id,
            plan_id: e.plan_id,
            next_run_time: from_us(e.due_at_us),
            status: e.status,
            attempts: e.attempts,
            started_at: e.started_at_us.map(from_us),
            finished_at: e.finished_at_us.map(from_us),
            result,
            error: e.error,
            log: serde_json::from_str(&e.log).unwrap_or(Value::Array(vec![])),
            attack_plugin: None,
        }
    }
}
