//! # cme-engine: plans, executors, the scheduler, halt
//!
//! Creating a plan resolves its refs, validates its args against the plugins' schemas,
//! asks the planner for run times and stores plan and executors in one transaction. The
//! scheduler fires executors on time, each exactly once across replicas (atomic claims
//! with a lease), and records their results; a reaper fails runs whose engine died
//! ("outcome unknown": destructive attacks are never re-run blindly). A persisted halt
//! switch stops everything and fails closed.
//!
//! Invariant: no HTTP and no SQL here; plugins are reached only through [`PluginHost`],
//! storage only through `cme_store::Store`.

mod config;
mod credentials;
mod error;
mod executors;
pub mod host;
mod plans;
mod registry;
mod scheduler;
pub mod time;
mod views;

use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

pub use cme_store::{ExecutorFilter, HaltState, Page, PageOf, Store, StoreConfig, status};
pub use config::EngineConfig;
pub use credentials::{CredentialView, NewCredential, load_ssh_credential, plan_credential_name};
pub use error::EngineError;
pub use host::{PluginDescription, PluginHost, PluginKind};
pub use plans::{MAX_EXECUTORS_PER_PLAN, NewPlan, PluginCall};
pub use registry::{DEFAULT_MAX_PLUGIN_BYTES, PluginStatus, PluginView, Upload, Uploaded};
pub use views::{ExecutorView, PlanView};

/// The engine. Share it as `Arc<Engine>`.
pub struct Engine {
    store: Store,
    host: Arc<dyn PluginHost>,
    config: EngineConfig,
    wake: Notify,
    /// Bounds attacks running at once; its free permits are how many may be claimed.
    runs: Arc<Semaphore>,
    /// Bumped (with a reason) to cancel every running attack.
    stop: watch::Sender<(u64, String)>,
    shutdown: watch::Sender<bool>,
    /// Finished runs, with their permits, on their way to the recorder.
    recorder: mpsc::UnboundedSender<(cme_store::FinishedRun, OwnedSemaphorePermit)>,
    recorded: std::sync::Mutex<Option<mpsc::UnboundedReceiver<(cme_store::FinishedRun, OwnedSemaphorePermit)>>>,
    /// Plans of recent runs (see `plan_of`).
    plans: std::sync::Mutex<std::collections::HashMap<String, Arc<cme_store::plan::Model>>>,
    /// One upload compiles at a time.
    uploads: tokio::sync::Mutex<()>,
    /// This replica's view of the stored plugins.
    registry: tokio::sync::RwLock<registry::RegistryState>,
    /// One registry sync at a time.
    syncing: tokio::sync::Mutex<()>,
    /// Bumped whenever that view changes (statuses and grants included).
    registry_changes: std::sync::atomic::AtomicU64,
}

/// Audit events of API actions.
#[derive(Debug, Clone)]
pub struct ApiAction {
    pub actor: String,
    pub action: String,
    pub target: String,
}

/// The audit event of an operator's action.
fn api_audit(action: ApiAction) -> cme_store::NewAudit {
    cme_store::NewAudit {
        at_us: time::now_us(),
        source: "api".into(),
        run_id: String::new(),
        actor: action.actor,
        action: action.action,
        target: action.target,
        decision: "allowed".into(),
        reason: None,
        dry_run: false,
        outcome: None,
    }
}

impl Engine {
    pub fn new(store: Store, host: Arc<dyn PluginHost>, config: EngineConfig) -> Arc<Engine> {
        let permits = config.max_concurrent_runs.max(1);
        let (recorder, recorded) = mpsc::unbounded_channel();
        Arc::new(Engine {
            recorder,
            recorded: std::sync::Mutex::new(Some(recorded)),
            plans: Default::default(),
            uploads: Default::default(),
            registry: Default::default(),
            syncing: Default::default(),
            registry_changes: Default::default(),
            store,
            host,
            config,
            wake: Notify::new(),
            runs: Arc::new(Semaphore::new(permits)),
            stop: watch::channel((0, String::new())).0,
            shutdown: watch::channel(false).0,
        })
    }

    /// Starts the scheduler and the reaper (which passes once at once).
    pub fn start(self: &Arc<Self>) {
        let recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner()).take().expect("start is called once");
        tokio::spawn(self.clone().record(recorded));
        tokio::spawn(self.clone().reap());
        tokio::spawn(self.clone().schedule());
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

    /// Changes whenever the plugins this replica has loaded change (see
    /// [`PluginHost::generation`]); call after [`Engine::plugin_views`], which syncs.
    pub fn plugins_generation(&self) -> u64 {
        self.host.generation().wrapping_add(self.registry_changes.load(std::sync::atomic::Ordering::SeqCst) << 32)
    }

    /// Attacks running on this engine now.
    pub fn running(&self) -> usize {
        self.config.max_concurrent_runs.max(1) - self.runs.available_permits()
    }

    pub(crate) fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    fn stop_runs(&self, reason: &str) {
        self.stop.send_modify(|(generation, why)| {
            *generation += 1;
            *why = reason.to_string();
        });
    }

    /// Halts: nothing new starts, running attacks are cancelled, executors falling due
    /// while halted are cancelled for good.
    pub async fn halt(&self, reason: Option<String>, by: &str) -> Result<HaltState, EngineError> {
        let state = HaltState { halted: true, since_us: Some(time::now_us()), reason };
        self.store.set_halt_state(&state, time::now_us()).await?;
        self.stop_runs("halted");
        self.wake_scheduler();
        self.audit_api(ApiAction { actor: by.into(), action: "halt".into(), target: String::new() }).await;
        tracing::warn!(by, "engine halted");
        Ok(state)
    }

    pub async fn resume(&self, by: &str) -> Result<HaltState, EngineError> {
        let state = HaltState::default();
        self.store.set_halt_state(&state, time::now_us()).await?;
        self.wake_scheduler();
        self.audit_api(ApiAction { actor: by.into(), action: "resume".into(), target: String::new() }).await;
        tracing::warn!(by, "engine resumed");
        Ok(state)
    }

    pub async fn halt_state(&self) -> Result<HaltState, EngineError> {
        Ok(self.store.halt_state().await?)
    }

    /// Records an operator's action.
    pub async fn audit_api(&self, action: ApiAction) {
        if let Err(e) = self.store.insert_audit(vec![api_audit(action)]).await {
            tracing::error!(error = %e, "could not store an audit event");
        }
    }

    pub async fn audit(&self, page: Page) -> Result<PageOf<cme_store::audit_event::Model>, EngineError> {
        Ok(self.store.list_audit(page).await?)
    }

    /// True when the database answers.
    pub async fn healthy(&self) -> bool {
        self.store.halt_state().await.is_ok()
    }
}
