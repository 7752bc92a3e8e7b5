//! Engine settings.

use std::time::Duration;

use chrono_tz::Tz;

/// How the engine schedules and runs.
///
/// By default: UTC for times without offset, a misfire grace of 60 s, no forced dry run,
/// 256 attacks at once, leases of the run deadline (60 s) plus 30 s, a reaper pass every
/// 30 s, 30 s for running attacks to finish at shutdown, uploads up to 20 MiB, and at most
/// 100,000 live plans and 1,000,000 pending executors, audit events kept 365 days and the
/// logs of finished runs 30 days (pruned at most hourly, see [`EngineConfig::prune_interval`]),
/// and recurring plans planned 7 days ahead (extended a day at a time, see
/// [`EngineConfig::extend_every`]).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub timezone: Tz,
    pub default_grace: Duration,
    /// Every plan runs as a dry run (Chaos Monkey's "leashed" mode).
    pub dry_run: bool,
    /// The most blackouts stored (a calendar import counts every event); more are
    /// refused with 429 naming `max_blackouts`.
    pub max_blackouts: u64,
    /// `[probes]`: the methods probes may send besides GET and HEAD (plans naming another
    /// are refused at creation; the runtime refuses the request itself).
    pub probes: cme_grant::ProbeFence,
    pub max_concurrent_runs: usize,
    /// The longest an attack may run (the runtime enforces it): each plugin call of an
    /// experiment's steps too.
    pub run_deadline: Duration,
    /// The longest an experiment's run may take, all its steps and reverts (default one
    /// hour): a plan's `deadline_seconds` may only shorten it.
    pub max_experiment_seconds: Duration,
    /// Added to the run deadline to make a lease.
    pub lease_margin: Duration,
    /// How long before their due time executors are claimed (default 50 ms): the claim's
    /// commit, which waits behind whatever else is being written, happens before the due
    /// time, and the run starts at it. From its claim an executor counts as running (a
    /// halt still stops it before it starts).
    pub claim_ahead: Duration,
    pub reaper_interval: Duration,
    pub shutdown_deadline: Duration,
    /// Identifies this engine in leases.
    pub engine_id: String,
    /// The largest plugin upload accepted (default 20 MiB).
    pub max_plugin_bytes: usize,
    /// Live (not deleted) plans all replicas hold at most.
    pub max_plans: u64,
    /// Executors still pending, over all plans, at most.
    pub max_pending_executors: u64,
    /// How long audit events are kept; None: forever.
    pub audit_retention: Option<Duration>,
    /// How long the logs (lines, stdout, stderr) of finished runs are kept; their status
    /// and result stay. None: forever.
    pub run_log_retention: Option<Duration>,
    /// How far ahead the executors of recurring plans are made.
    /// Executors a recurring plan keeps ahead at most (default 1,000): the horizon of a
    /// plan firing more often ends at its 1,000th executor, and moves on as they are used.
    pub max_executors_ahead_per_plan: usize,
    pub recurring_horizon: Duration,
    /// The webhooks events go to (their sender runs outside the engine); none by default.
    pub webhooks: Vec<crate::Subscription>,
    /// Probes asked all the time; an unhealthy one halts everything (none by default).
    pub stop_conditions: Vec<crate::guards::EngineStopCondition>,
    /// The dead-man's switch (see [`crate::guards::Deadman`]).
    pub deadman: crate::guards::Deadman,
    /// The operator's blast-radius budgets (the engine applies `max_concurrent_attacks`
    /// at claims; the runtime charges terminations to groups). None by default.
    pub budgets: crate::Budgets,
    /// The names of the engine's `[[http.credentials]]`: a grant may name only these.
    pub http_credentials: Vec<String>,
    /// Who may sign uploaded plugins, and whether they must be signed (by default no
    /// key is trusted and unsigned uploads are accepted).
    pub trusted_keys: crate::TrustedKeys,
    /// Notified by whoever stores an undo (the binary's SSH store), so that the undo
    /// keeper learns of it without polling; a fresh one by default.
    pub undo_armed: std::sync::Arc<tokio::sync::Notify>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timezone: chrono_tz::UTC,
            default_grace: Duration::from_secs(60),
            dry_run: false,
            probes: Default::default(),
            max_blackouts: 50_000,
            max_concurrent_runs: 256,
            run_deadline: Duration::from_secs(60),
            lease_margin: Duration::from_secs(30),
            max_experiment_seconds: Duration::from_secs(3600),
            claim_ahead: Duration::from_millis(50),
            reaper_interval: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(30),
            engine_id: format!("engine-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]),
            max_plugin_bytes: crate::registry::DEFAULT_MAX_PLUGIN_BYTES,
            max_plans: 100_000,
            max_pending_executors: 1_000_000,
            audit_retention: Some(Duration::from_secs(365 * 86_400)),
            run_log_retention: Some(Duration::from_secs(30 * 86_400)),
            recurring_horizon: Duration::from_secs(7 * 86_400),
            max_executors_ahead_per_plan: 1000,
            webhooks: Vec::new(),
            stop_conditions: Vec::new(),
            deadman: crate::guards::Deadman::default(),
            trusted_keys: crate::TrustedKeys::default(),
            undo_armed: Default::default(),
            budgets: crate::Budgets::default(),
            http_credentials: Vec::new(),
        }
    }
}

impl EngineConfig {
    /// How often retention runs: a tenth of the shortest retention, at least every reaper
    /// pass and at most hourly (pruning scans unindexed times; once an hour is cheap).
    pub fn prune_interval(&self) -> Duration {
        let shortest = [self.audit_retention, self.run_log_retention].into_iter().flatten().min();
        shortest
            .map_or(Duration::from_secs(3600), |k| k / 10)
            .clamp(self.reaper_interval, Duration::from_secs(3600).max(self.reaper_interval))
    }

    /// How much a recurring plan's horizon moves at a time: a seventh of the horizon (a day
    /// by default). A plan is extended once its executors reach less than
    /// `recurring_horizon - extend_every` ahead.
    pub fn extend_every(&self) -> Duration {
        (self.recurring_horizon / 7).max(Duration::from_millis(100))
    }

    /// The caps on stored work.
    pub fn work_caps(&self) -> crate::WorkCaps {
        crate::WorkCaps { max_plans: self.max_plans, max_pending_executors: self.max_pending_executors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_runs_hourly_by_default_and_often_enough_for_short_retentions() {
        assert_eq!(EngineConfig::default().prune_interval(), Duration::from_secs(3600));
        let short = EngineConfig {
            audit_retention: Some(Duration::from_secs(3)),
            reaper_interval: Duration::from_secs(1),
            ..EngineConfig::default()
        };
        assert_eq!(short.prune_interval(), Duration::from_secs(1), "never more often than the reaper");
        let day = EngineConfig { run_log_retention: Some(Duration::from_secs(86_400)), ..EngineConfig::default() };
        assert_eq!(day.prune_interval(), Duration::from_secs(3600));
        let forever = EngineConfig { audit_retention: None, run_log_retention: None, ..EngineConfig::default() };
        assert_eq!(forever.prune_interval(), Duration::from_secs(3600));
    }
}
