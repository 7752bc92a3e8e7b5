//! Guards: a plan's steady state, checked by its probes right before each run.
//!
//! Fail closed: a probe that answers unhealthy, cannot tell (an error, a trap, a
//! timeout), or may not run (disabled, pending, gone) keeps the attack from starting; the
//! executor is `skipped` with the probe's reason.

use std::time::Duration;

use chrono::Utc;

use crate::host::CheckInput;
use crate::model::{AuditEvent, Executor, Plan};
use crate::Engine;

/// The longest one probe check may take (the runtime's run deadline bounds it too).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

impl Engine {
    /// Checks `plan`'s steady state for `executor`, probe after probe: None when every
    /// one answered healthy, else why the run must not start (the first probe that did
    /// not). The probes' capability calls come back for the run's audit either way.
    pub(crate) async fn steady_state(&self, executor: &Executor, plan: &Plan) -> (Option<String>, Vec<AuditEvent>) {
        let mut audit = Vec::new();
        for (i, call) in plan.steady_state.iter().enumerate() {
            let entry = match self.runnable(&call.plugin).await {
                Ok(Ok(entry)) => entry,
                Ok(Err(reason)) => return (Some(format!("steady state: probe {} may not run ({reason})", call.plugin)), audit),
                Err(e) => return (Some(format!("steady state: cannot check the plugin registry for probe {}: {e}", call.plugin)), audit),
            };
            let input = CheckInput {
                check_id: format!("{}/steady-state/{i}", executor.id),
                plan_id: plan.id.clone(),
                created_by: plan.created_by.clone(),
                now: Utc::now(),
                args: call.args.clone(),
                deadline: PROBE_DEADLINE,
            };
            let checked = self.host.check(&entry.loaded, &entry.grant, input).await;
            audit.extend(checked.audit);
            match checked.verdict {
                Ok(verdict) if verdict.healthy => {
                    tracing::debug!(executor_id = %executor.id, probe = %call.plugin, reason = %verdict.reason, "steady state holds");
                }
                Ok(verdict) => return (Some(format!("steady state: {} unhealthy: {}", call.plugin, verdict.reason)), audit),
                Err(why) => return (Some(format!("steady state: {} could not tell (counts as unhealthy): {why}", call.plugin)), audit),
            }
        }
        (None, audit)
    }
}
