//! # cme-engine: plans, executors, the scheduler, halt, the plugin registry
//!
//! Creating a plan resolves its refs, validates its args against the plugins' schemas,
//! asks the planner for run times and stores plan and executors in one transaction. The
//! scheduler fires executors on time, each exactly once across replicas (atomic claims
//! with a lease), and records their results; a reaper fails runs whose engine died
//! ("outcome unknown": destructive attacks are never re-run blindly). A persisted halt
//! switch stops everything and fails closed. The registry keeps which plugin versions
//! exist, their statuses and grants, and which are loaded on this replica.
//!
//! Invariant: no HTTP, no SQL and no wasm here. The engine speaks its own vocabulary
//! ([`model`]) to two ports: [`Storage`] (implemented by `cme-store`) and [`PluginHost`]
//! (implemented by the binary over the runtime).

pub mod blackout_index;
pub mod blackouts;
pub mod bounded;
pub mod calendar;
pub mod calendar_view;
mod config;
mod credentials;
mod error;
pub mod events;
mod executors;
mod experiment;
pub mod feeds;
mod forecast;
pub mod guards;
mod halt;
mod horizon;
pub mod host;
pub mod inventory;
pub mod journal;
pub mod model;
mod plans;
pub mod recurrence;
mod registry;
mod scheduler;
pub mod signatures;
pub mod steps;
pub mod storage;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod undo;

use cme_model::Locked;
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

pub use blackouts::{Blackout, BlackoutWhen, CalendarImport, Imported, NewBlackout, WallTime};
pub use cme_grant::{BudgetTake, Budgets, GroupBudget};
pub use config::EngineConfig;
pub use credentials::{CredentialView, NewCredential, plan_credential_name};
pub use error::{EngineError, ExecutorChange, Resource};
pub use events::{Attempt, Delivery, DeliveryClaim, DeliveryCounts, Event, ExecutorDetail, Subscription, WebhookState};
pub use executors::JournalView;
pub use feeds::{CalendarFeed, CalendarFetch, FetchError, NewSubscription};
pub use forecast::{Firing, Forecast};
pub use guards::{Deadman, EngineStopCondition};
pub use halt::Halt;
pub use host::{
    CheckInput, CheckResult, KeyFacts, LoadedPlugin, PluginDescription, PluginHandle, PluginHost, PluginHostError,
    Verdict,
};
pub use inventory::{Inventory, InventoryHost};
pub use journal::{Journal, Outcome, Phase, ProbeReading, RevertRecord, StepRecord, StepStatus};
pub use model::*;
pub use plans::{
    DEFAULT_STOP_INTERVAL, DEFAULT_STOP_SETTLE, EMBEDDED_EXECUTORS, MAX_EXECUTORS_PER_PLAN, MAX_PLAN_ARGS_BYTES,
    MAX_STEADY_STATE_PROBES, NewPlan, NewStopCondition, PluginCall,
};
pub use registry::{Builtin, DEFAULT_MAX_PLUGIN_BYTES, PluginView, Upload, Uploaded, check_upload};
pub use signatures::{SIGNATURE_NAMESPACE, SignatureError, Signer, TrustedKeys};
pub use steps::{MAX_PARALLEL_STEPS, MAX_STEPS, NewStep, NewStepAction, Step, StepAction};
pub use storage::{
    AuditStore, BudgetStore, CalendarStore, CappedWork, Claim, ClaimStore, EventStore, ExecutorChangeError,
    ExecutorStore, Extension, HaltStore, HorizonStore, InsertPlanError, OverCap, PlanStore, PluginStore, Ports,
    RunStore, SshTargetStore, Storage, StorageCause, StorageError,
};
pub use telemetry::describe_metrics;
pub use undo::{Undo, UndoAttempt, UndoState};

/// The engine. Share it as `Arc<Engine>`.
/// A run in flight on this engine: its plan id and its own stop signal (a reason once stopped).
type RunInFlight = (String, watch::Sender<Option<String>>);

pub struct Engine {
    ports: storage::Ports,
    host: Arc<dyn PluginHost>,
    config: EngineConfig,
    wake: Notify,
    /// When the scheduler's next pass is (µs since the epoch), i64::MAX during a pass.
    next_pass_us: std::sync::atomic::AtomicI64,
    /// How far the database's clock is ahead of this engine's (µs), as the last claim
    /// showed (its leases are set by the database's clock on PostgreSQL): a run claimed
    /// ahead waits for its due time by the database's clock, as every replica judges it.
    db_clock_offset_us: std::sync::atomic::AtomicI64,
    /// Set by any failed storage call this engine or its API saw; cleared by a write that
    /// succeeds (see [`Engine::writable`]).
    storage_failing: std::sync::atomic::AtomicBool,
    /// This engine's runs from their claim until their result is committed: its own
    /// reaper spares them (a wall clock stepped forward would call their leases expired).
    live_runs: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The last write probe: when, and whether it was taken.
    write_probe: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// Bounds attacks running at once; its free permits are how many may be claimed.
    runs: Arc<Semaphore>,
    /// Bumped (with a reason) to cancel every running attack.
    stop: watch::Sender<(u64, String)>,
    shutdown: watch::Sender<bool>,
    /// Finished runs, with their permits, on their way to the recorder.
    recorder: mpsc::UnboundedSender<(FinishedRun, OwnedSemaphorePermit)>,
    recorded: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(FinishedRun, OwnedSemaphorePermit)>>>,
    /// Plans of recent runs (see `plan_of`).
    plans: std::sync::Mutex<std::collections::HashMap<String, Arc<Plan>>>,
    /// One upload compiles at a time.
    uploads: tokio::sync::Mutex<()>,
    registry: registry::Registry,
    /// A halt asked of this engine and not yet lifted by a resume: it holds here even
    /// while it cannot be stored.
    local_halt: std::sync::Mutex<Option<HaltState>>,
    /// Halt, resume and the halt's retried persisting write one at a time.
    halt_writes: tokio::sync::Mutex<()>,
    /// Attacks running on this engine: executor id -> (plan id, its own stop signal).
    runs_in_flight: std::sync::Mutex<std::collections::HashMap<String, RunInFlight>>,
    /// Wakes the planning loop of recurring plans.
    horizon_wake: Notify,
    /// Plans whose stop conditions this engine watches.
    watched_plans: std::sync::Mutex<std::collections::HashSet<String>>,
    /// How subscribed calendars are fetched (set by the binary; none: no subscriptions).
    calendar_fetch: std::sync::OnceLock<Arc<dyn feeds::CalendarFetch>>,
    /// Set while the dead-man's switch holds this engine: it starts nothing.
    deadman: std::sync::atomic::AtomicBool,
    /// Notified when a run starts (wakes an idle dead-man's switch).
    run_started: Notify,
    /// Recurring plans whose planner failed, and when to ask it again.
    horizon_failures: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Frequent plans holding enough executors ahead, and when each needs extending.
    horizon_deferred: std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// Wakes the undo keeper (a halt).
    undo_wake: Notify,
    /// The journals of the experiments running here, as they are written.
    live_journals: std::sync::Mutex<std::collections::HashMap<String, experiment::LiveJournal>>,
    /// The blackouts as last read, with the store's generation they were read at.
    blackout_cache: std::sync::Mutex<Option<(String, Arc<blackout_index::BlackoutIndex>)>>,
}

impl Engine {
    /// An engine over `storage` and `host`, with the built-in plugins (always enabled,
    /// with the grants the operator's configuration gives them).
    pub fn new(
        storage: Arc<dyn Storage>,
        host: Arc<dyn PluginHost>,
        builtins: Vec<Builtin>,
        config: EngineConfig,
    ) -> Arc<Engine> {
        Engine::with_ports(storage::Ports::of(storage), host, builtins, config)
    }

    /// An engine over storage `ports` (a test may fake one of them) and `host`.
    pub fn with_ports(
        ports: storage::Ports,
        host: Arc<dyn PluginHost>,
        builtins: Vec<Builtin>,
        config: EngineConfig,
    ) -> Arc<Engine> {
        let permits = config.max_concurrent_runs.max(1);
        let (recorder, recorded) = mpsc::unbounded_channel();
        Arc::new(Engine {
            recorder,
            recorded: std::sync::Mutex::new(Some(recorded)),
            plans: Default::default(),
            uploads: Default::default(),
            registry: registry::Registry::new(builtins),
            local_halt: Default::default(),
            halt_writes: Default::default(),
            horizon_failures: Default::default(),
            horizon_deferred: Default::default(),
            undo_wake: Notify::new(),
            live_journals: Default::default(),
            blackout_cache: Default::default(),
            watched_plans: Default::default(),
            calendar_fetch: Default::default(),
            deadman: Default::default(),
            run_started: Notify::new(),
            horizon_wake: Notify::new(),
            runs_in_flight: Default::default(),
            ports,
            host,
            config,
            wake: Notify::new(),
            next_pass_us: std::sync::atomic::AtomicI64::new(i64::MAX),
            db_clock_offset_us: std::sync::atomic::AtomicI64::new(0),
            storage_failing: Default::default(),
            live_runs: Default::default(),
            write_probe: Default::default(),
            runs: Arc::new(Semaphore::new(permits)),
            stop: watch::channel((0, String::new())).0,
            shutdown: watch::channel(false).0,
        })
    }

    /// Starts the scheduler, the recorder and the reaper (which passes once at once).
    pub fn start(self: &Arc<Self>) {
        let recorded = self.recorded.locked().take().expect("start is called once");
        tokio::spawn(self.clone().record(recorded));
        tokio::spawn(self.clone().reap());
        tokio::spawn(self.clone().schedule());
        tokio::spawn(self.clone().plan_ahead());
        tokio::spawn(self.clone().watch_engine());
        tokio::spawn(self.clone().watch_deadman());
        tokio::spawn(self.clone().keep_undos());
        tokio::spawn(self.clone().keep_calendars());
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.disable_unsigned_plugins().await {
                tracing::error!(error = %e, "cannot apply require_signature to the stored plugins");
            }
        });
        if let Some(signals) = self.ports.halt.halt_signals() {
            tokio::spawn(self.clone().follow_halts(signals));
        }
        tracing::info!(engine_id = %self.config.engine_id, dry_run = self.config.dry_run, "scheduler started");
    }

    /// Stops claiming, lets running attacks finish up to the shutdown deadline, then
    /// cancels what is left and records it.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let all = self.config.max_concurrent_runs.max(1) as u32;
        let drained = tokio::time::timeout(self.config.shutdown_deadline, self.runs.acquire_many(all)).await;
        if drained.is_err() {
            self.stop_runs("engine shutting down");
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.runs.acquire_many(all)).await;
        }
        tracing::info!("engine stopped");
    }

    /// Attacks running on this engine now.
    pub fn running(&self) -> usize {
        self.config.max_concurrent_runs.max(1) - self.runs.available_permits()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    /// Wakes the scheduler for new work due at `due` only if it would otherwise sleep past
    /// it: a burst of plans due next week costs the scheduler nothing. A pass in progress
    /// counts as sleeping past everything (it may have read the due times before this
    /// work was stored).
    pub(crate) fn wake_scheduler_for(&self, due: Option<chrono::DateTime<chrono::Utc>>) {
        let Some(due) = due else { return };
        // The pass that claims it comes `claim_ahead` before it is due.
        let ahead = i64::try_from(self.config.claim_ahead.as_micros()).unwrap_or(i64::MAX);
        if due.timestamp_micros().saturating_sub(ahead) < self.next_pass_us.load(std::sync::atomic::Ordering::SeqCst) {
            self.wake_scheduler();
        }
    }

    fn stop_runs(&self, reason: &str) {
        self.stop.send_modify(|(generation, why)| {
            *generation += 1;
            *why = reason.to_string();
        });
    }

    /// Audit events, newest first.
    pub async fn audit(&self, page: Page) -> Result<PageOf<AuditEntry>, EngineError> {
        Ok(self.ports.audit.list_audit(page).await?)
    }

    /// Up to `size` audit events older than event `before`, newest first.
    pub async fn audit_before(&self, before: i64, size: u64) -> Result<PageOf<AuditEntry>, EngineError> {
        Ok(self.ports.audit.list_audit_before(before, size).await?)
    }

    /// A date from a client: RFC 3339, or without an offset in the engine's zone. The
    /// error names `field`.
    pub fn parse_time(&self, text: &str, field: &str) -> Result<chrono::DateTime<chrono::Utc>, EngineError> {
        cme_model::time::parse_datetime(text, self.config.timezone)
            .map_err(|m| EngineError::invalid(field, format!("invalid date: {m}")))
    }

    /// True once shutdown has begun (no new runs start).
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// True when the database answers.
    pub async fn healthy(&self) -> bool {
        self.ports.halt.halt_state().await.is_ok()
    }

    /// A storage call failed (seen by the API or the engine's own tasks): not writable
    /// until a write succeeds again.
    pub fn note_storage_failure(&self) {
        self.storage_failing.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the database takes writes: false from the first failed storage call until
    /// a write probe succeeds. The probe (one small committed row) runs at most once a
    /// second however often this is asked, so a full disk or a read-only file system is
    /// seen within a second even when nothing else writes.
    pub async fn writable(&self) -> bool {
        const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
        let failing = || self.storage_failing.load(std::sync::atomic::Ordering::SeqCst);
        if let Some((at, ok)) = *self.write_probe.locked()
            && at.elapsed() < PROBE_EVERY
        {
            return ok && !failing();
        }
        // Marked before the write: a concurrent failure noted meanwhile is not lost.
        *self.write_probe.locked() = Some((std::time::Instant::now(), !failing()));
        let ok = match self.ports.halt.probe_write().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, cause = ?error.cause(), "the database refuses writes");
                false
            }
        };
        self.storage_failing.store(!ok, std::sync::atomic::Ordering::SeqCst);
        *self.write_probe.locked() = Some((std::time::Instant::now(), ok));
        ok
    }
}
