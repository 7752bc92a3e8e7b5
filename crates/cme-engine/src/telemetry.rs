//! What the engine counts, through the `metrics` facade (the binary decides where it
//! goes; without a recorder these are no-ops): firings and their lateness, runs by
//! outcome and plugin with their duration, capability calls by decision, and gauges read
//! from storage when metrics are gathered.

use std::time::Duration;

use crate::model::{AuditEvent, AuditSource, ExecutorStatus, PluginStatus};
use crate::{Engine, EngineError};

/// Gives each of the engine's metrics its help text and unit (call once a recorder is
/// installed).
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "cme_firing_lateness_seconds",
        Unit::Seconds,
        "How late executors started after their due time, by attack plugin."
    );
    describe_histogram!(
        "cme_run_duration_seconds",
        Unit::Seconds,
        "How long runs took, from start to result, by attack plugin."
    );
    describe_counter!("cme_runs_total", "Runs ended on this engine, by attack plugin and final status.");
    describe_counter!(
        "cme_capability_calls_total",
        "Capability calls of plugins, by capability and decision (allowed, denied, unavailable)."
    );
    describe_gauge!("cme_executors", "Executors stored, by status (all replicas).");
    describe_gauge!("cme_plans", "Live (not deleted) plans (all replicas).");
    describe_gauge!("cme_plugins", "Plugins in the registry, built-in and uploaded, by status.");
    describe_gauge!("cme_halted", "1 while the engine is halted (or its halt switch cannot be read), else 0.");
    describe_gauge!("cme_runs_in_flight", "Attacks running on this engine now.");
}

/// An executor started `late` after its due time, running `plugin`.
pub(crate) fn run_started(plugin: &str, late: Duration) {
    metrics::histogram!("cme_firing_lateness_seconds", "plugin" => plugin.to_string()).record(late.as_secs_f64());
}

/// An executor ended with `status` after `took`; `audit` is what its capability calls left.
pub(crate) fn run_ended(plugin: &str, status: ExecutorStatus, took: Duration, audit: &[AuditEvent]) {
    metrics::counter!("cme_runs_total", "plugin" => plugin.to_string(), "status" => status.as_str()).increment(1);
    metrics::histogram!("cme_run_duration_seconds", "plugin" => plugin.to_string()).record(took.as_secs_f64());
    for event in audit.iter().filter(|e| e.source == AuditSource::Plugin) {
        metrics::counter!("cme_capability_calls_total", "capability" => event.action.clone(), "decision" => event.decision.as_str()).increment(1);
    }
}

impl Engine {
    /// Sets the gauges that storage and the registry know: executors by status, live
    /// plans, plugins by status, the halt switch. Called when metrics are gathered.
    pub async fn refresh_gauges(&self) -> Result<(), EngineError> {
        let counts = self.ports.executors.count_executors().await?;
        for status in ExecutorStatus::ALL {
            let count = counts.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
            metrics::gauge!("cme_executors", "status" => status.as_str()).set(count as f64);
        }
        metrics::gauge!("cme_plans").set(self.ports.plans.count_live_plans().await? as f64);
        let plugins = self.plugin_views().await?;
        for status in [PluginStatus::Pending, PluginStatus::Enabled, PluginStatus::Disabled] {
            let count = plugins.iter().filter(|p| p.status == status).count();
            metrics::gauge!("cme_plugins", "status" => status.as_str()).set(count as f64);
        }
        let halted = self.halt_state().await.map(|h| h.state.halted).unwrap_or(true);
        metrics::gauge!("cme_halted").set(if halted { 1.0 } else { 0.0 });
        metrics::gauge!("cme_runs_in_flight").set(self.running() as f64);
        Ok(())
    }
}
