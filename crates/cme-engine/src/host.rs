//! What the engine needs from plugins, as a trait: the engine never sees wasm. The
//! binary implements it over the runtime.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Planner or attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Planner,
    Attack,
}

/// What the API shows about a plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The capabilities it requests (as JSON).
    pub capabilities: Value,
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    pub builtin: bool,
    /// The grant it runs with, as JSON (None: no capabilities).
    pub grant: Option<Value>,
}

/// Args refused by a plugin's schema or by the plugin itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsRejected {
    /// JSON pointer of the offending value inside the args, when known.
    pub pointer: Option<String>,
    pub message: String,
}

/// A planner call's context.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub now: DateTime<Utc>,
    pub timezone: String,
    pub seed: u64,
}

/// An attack run's input.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub run_id: String,
    pub now: DateTime<Utc>,
    pub args: Value,
    pub dry_run: bool,
}

/// What an attack reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub summary: String,
    pub targets: Vec<String>,
    pub details: Value,
}

/// One capability call, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityAudit {
    pub at: DateTime<Utc>,
    pub plugin: String,
    pub call: String,
    pub target: String,
    /// allowed, denied, unavailable.
    pub decision: String,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub outcome: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Result<Report, String>,
    /// The run's log lines, stdout/stderr and dry-run actions, as JSON.
    pub log: Value,
    pub audit: Vec<CapabilityAudit>,
}

/// Plugins as the engine sees them.
#[async_trait::async_trait]
pub trait PluginHost: Send + Sync + 'static {
    /// Every plugin of a kind.
    fn list(&self, kind: PluginKind) -> Vec<PluginDescription>;
    /// Whether a plugin with this id is loaded (cheaper than `list` on hot paths).
    fn contains(&self, plugin_id: &str) -> bool {
        [PluginKind::Planner, PluginKind::Attack].into_iter().any(|k| self.list(k).iter().any(|d| d.id == plugin_id))
    }
    /// The canonical spelling (`module:Class`) of a plan's ref (`module:Class` or the
    /// original's `module.Class`); None when it is not a ref at all.
    fn canonical_ref(&self, reference: &str) -> Option<String>;
    /// Whether `plugin_id` is a built-in plugin (shipped with the engine, always enabled).
    fn is_builtin(&self, plugin_id: &str) -> bool {
        [PluginKind::Planner, PluginKind::Attack].into_iter().any(|k| self.list(k).iter().any(|d| d.id == plugin_id && d.builtin))
    }
    /// Changes whenever the set of plugins changes, so that callers may cache `list`.
    fn generation(&self) -> u64 {
        0
    }
    /// Checks an uploaded component (a component of a supported world whose imports
    /// this engine provides, that compiles, whose describe() answers in time with valid
    /// info) without adding it; the error says what is wrong and how to fix it.
    async fn inspect(&self, wasm: &[u8]) -> Result<PluginDescription, String>;
    /// Adds an uploaded component under its id with `grant` (JSON of the runtime's grant;
    /// None grants nothing). Replaces a plugin with the same id.
    async fn install(&self, wasm: &[u8], grant: Option<&Value>) -> Result<PluginDescription, String>;
    /// Checks a grant's shape.
    fn check_grant(&self, grant: &Value) -> Result<(), String>;
    /// Replaces an uploaded plugin's grant; the next run uses it.
    fn set_grant(&self, plugin_id: &str, grant: Option<&Value>) -> Result<(), String>;
    /// Removes an uploaded plugin.
    fn unload(&self, plugin_id: &str);
    /// Validates args against the plugin's schema.
    fn validate_args(&self, plugin_id: &str, args: &Value) -> Result<(), ArgsRejected>;
    /// Asks a planner for instants.
    async fn plan(&self, plugin_id: &str, input: PlanInput, args: &Value) -> Result<Vec<DateTime<Utc>>, ArgsRejected>;
    /// Runs an attack. Dropping the future cancels the run.
    async fn run(&self, plugin_id: &str, input: RunInput) -> RunResult;
}
