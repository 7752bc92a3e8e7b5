//! What the engine needs from the plugin host, as stateless operations: the engine keeps
//! which plugins are loaded, their statuses and grants (see `registry`), and hands the
//! host a [`LoadedPlugin`] and a [`Grant`] for every call. The engine never sees wasm;
//! the binary implements this trait over the runtime.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{AuditEvent, Grant, PluginKind, Report, RunLog};

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDescription {
    /// `name@version`: identifies the exact plugin version plans record.
    pub id: String,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    /// Refs in canonical `module:Class` form; the first is the primary ref.
    pub refs: Vec<String>,
    pub description: String,
    /// JSON Schema of the args.
    pub args_schema: Value,
    pub example_args: Value,
    /// The capabilities it declares (as JSON).
    pub capabilities: Value,
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
}

impl PluginDescription {
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).unwrap_or(semver::Version::new(0, 0, 0))
    }
}

/// The host's compiled form of a plugin, opaque to the engine.
#[derive(Clone)]
pub struct PluginHandle(Arc<dyn Any + Send + Sync>);

impl PluginHandle {
    pub fn new<T: Any + Send + Sync>(compiled: T) -> Self {
        PluginHandle(Arc::new(compiled))
    }

    /// The host's own type back; None for a handle another host made.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginHandle")
    }
}

/// A plugin the host compiled: its description and its handle.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    pub description: PluginDescription,
    pub handle: PluginHandle,
}

/// Why the plugin host (the engine's port onto the wasm runtime) could not do what was
/// asked. Not the contract's `host-error`, which a capability answers a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginHostError {
    /// The bytes are not a plugin this engine can load; the text says how to fix it.
    #[error("{0}")]
    NotAPlugin(String),
    /// The args were refused, by the schema or by the plugin.
    #[error("{message}")]
    InvalidArgs { pointer: Option<String>, message: String },
    /// The plugin trapped, ran out of time or memory, or broke the contract: a fault of
    /// the plugin, not of the caller's input.
    #[error("{0}")]
    PluginFault(String),
    /// The handle is not one of this host's.
    #[error("plugin {0} is not loaded on this host")]
    NotLoaded(String),
    /// An SSH private key that does not parse (with its passphrase); the text never
    /// quotes the key.
    #[error("{0}")]
    InvalidKey(String),
}

/// A planner call's input.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub now: DateTime<Utc>,
    pub timezone: String,
    pub seed: u64,
    pub args: Value,
    /// The span asked about, `[from, until)`.
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

pub use cme_model::Planned;

/// An attack run's input.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub run_id: String,
    /// The plan of the run and who created it: what credential checks compare with.
    pub plan_id: String,
    pub created_by: Option<crate::model::Actor>,
    pub now: DateTime<Utc>,
    pub args: Value,
    pub dry_run: bool,
    /// The experiment step it makes (None: a one-attack plan's run).
    pub step: Option<String>,
}

/// Why a plugin call ended without an answer (a limit, a trap, a refusal of its args, a
/// cancellation), as the runtime said it: shown as the run's or the check's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallFailure(pub String);

impl From<String> for CallFailure {
    fn from(message: String) -> Self {
        CallFailure(message)
    }
}

/// Completes, with the reason, when a run must stop (a halt, a shutdown).
pub type Cancel = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;

/// How a run ended: the report or why it failed, its log, and its capability calls
/// (of a cancelled run too: what it did before it was stopped).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Result<Report, CallFailure>,
    pub log: RunLog,
    pub audit: Vec<AuditEvent>,
    /// Some(reason) when the run was cancelled.
    pub cancelled: Option<String>,
}

/// A probe check's input.
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// Unique per check; its audit rows carry it.
    pub check_id: String,
    /// The plan guarded and who created it: what credential checks compare with.
    pub plan_id: String,
    pub created_by: Option<crate::model::Actor>,
    pub now: DateTime<Utc>,
    pub args: Value,
    /// The longest the check may take.
    pub deadline: std::time::Duration,
    /// The engine or the plan runs dry: the probe still observes (GET, HEAD), but sends
    /// no other method even where `[probes] allow_methods` allows it.
    pub dry_run: bool,
}

pub use cme_model::Verdict;

/// How a check ended: the verdict, or why the probe could not tell (which counts as
/// unhealthy), and its capability calls.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub verdict: Result<Verdict, CallFailure>,
    pub audit: Vec<AuditEvent>,
}

/// The facts of a parsed SSH key that may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    /// `SHA256:...`.
    pub fingerprint: String,
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
}

/// Plugins (and SSH keys) as the engine sees them.
#[async_trait::async_trait]
pub trait PluginHost: Send + Sync + 'static {
    /// The canonical spelling (`module:Class`) of a plan's ref (`module:Class` or the
    /// original's `module.Class`); None when it is not a ref at all.
    fn canonical_ref(&self, reference: &str) -> Option<String>;
    /// Checks and compiles a component: a supported world whose imports the host
    /// provides, a describe() that answers in time with valid info.
    async fn load(&self, wasm: &[u8]) -> Result<LoadedPlugin, PluginHostError>;
    /// Validates args against the plugin's schema.
    fn validate_args(&self, plugin: &LoadedPlugin, args: &Value) -> Result<(), PluginHostError>;
    /// Asks a planner to plan a window.
    async fn plan(&self, plugin: &LoadedPlugin, input: PlanInput) -> Result<Planned, PluginHostError>;
    /// Runs an attack with `grant`. When `cancel` completes the run stops and answers at
    /// once with what it recorded so far; dropping the future also stops it.
    async fn run(&self, plugin: &LoadedPlugin, grant: &Grant, input: RunInput, cancel: Cancel) -> RunResult;
    /// Asks a probe, with `grant`, whether its system is healthy (never a dry run).
    async fn check(&self, plugin: &LoadedPlugin, grant: &Grant, input: CheckInput) -> CheckResult;
    /// Parses an SSH private key (OpenSSH or PEM, optionally encrypted).
    fn inspect_key(&self, private_key: &str, passphrase: Option<&str>) -> Result<KeyFacts, PluginHostError>;
    /// Starts a run's task (start checks, the attack, handing over its result) where this
    /// host's calls cost least. By default, on the caller's runtime.
    /// Runs an armed undo now: over SSH to its target, or what the host restores itself
    /// (an HTTP revert with `grant`, the arming plugin's; EC2). Hosts without these cannot.
    async fn run_undo(&self, undo: &crate::Undo, grant: Option<&Grant>) -> crate::UndoAttempt {
        let _ = (undo, grant);
        crate::UndoAttempt::Unreachable("this host cannot run undos".into())
    }

    fn spawn_run(&self, run: RunTask) {
        tokio::spawn(run);
    }
}

/// A run's whole task, as the scheduler hands it to [`PluginHost::spawn_run`].
pub type RunTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
