//! Why the engine refused or failed a request, in domain terms. The API alone decides
//! which HTTP status each variant is and adds wording about routes and configuration.

use crate::model::{ExecutorStatus, PluginKind};
use crate::storage::StorageError;

/// A kind of thing the engine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Plan,
    Executor,
    Plugin,
    Credential,
    Blackout,
    Inventory,
    Undo,
    Calendar,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Plan => "plan",
            Resource::Executor => "executor",
            Resource::Plugin => "plugin",
            Resource::Credential => "credential",
            Resource::Blackout => "blackout",
            Resource::Inventory => "inventory",
            Resource::Undo => "undo",
            Resource::Calendar => "calendar",
        })
    }
}

/// A change to an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorChange {
    Reschedule,
    Cancel,
}

impl std::fmt::Display for ExecutorChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutorChange::Reschedule => "rescheduled",
            ExecutorChange::Cancel => "cancelled",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A value of the request is wrong; `field` is its JSON pointer in the request.
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{resource} {id} not found")]
    NotFound { resource: Resource, id: String },
    #[error("unknown {kind} ref {reference:?} (known: {})", known.join(", "))]
    UnknownRef { kind: PluginKind, reference: String, known: Vec<String>, field: String },
    #[error("{kind} ref {reference} has no version {version} (available: {})", available.join(", "))]
    NoSuchVersion { kind: PluginKind, reference: String, version: String, available: Vec<String>, field: String },
    #[error("{kind} plugin {id} is pending: an admin must grant it first")]
    PluginPending { kind: PluginKind, id: String, field: String },
    #[error("{kind} plugin {id} is disabled")]
    PluginDisabled { kind: PluginKind, id: String, field: String },
    #[error("the planner returned no run time")]
    NoRunTime,
    #[error("the planner returned {count} run times; a plan may have at most {max}")]
    TooManyRunTimes { count: usize, max: usize },
    /// The planner trapped, timed out or broke the contract: the plugin's fault.
    #[error("planner {plugin} failed: {reason}")]
    PlannerFailed { plugin: String, reason: String },
    #[error("executor {id} is {status}; only a pending executor can be {change}")]
    NotPending { id: String, status: ExecutorStatus, change: ExecutorChange },
    /// The executor exists but has no journal to show (yet, here, or any more).
    #[error("executor {id} has no journal here: {why}")]
    JournalMissing { id: String, why: String },
    #[error("{id} is built in: it cannot be changed or deleted")]
    BuiltinPlugin { id: String },
    #[error("{id} has no grant yet: granting it approves and enables it")]
    NoGrant { id: String },
    #[error(
        "{executors} executors that still have to run use {id}: delete their plans (or executors) first, or disable it"
    )]
    PluginInUse { id: String, executors: u64 },
    #[error(
        "{id} is already stored with other bytes (sha256 {stored}); a version is immutable: bump the version in describe()"
    )]
    VersionTaken { id: String, stored: String },
    #[error("the name {name} belongs to a built-in plugin; choose another name in describe()")]
    BuiltinName { name: String },
    #[error("ref {reference} is already used by {by}; choose another ref in describe()")]
    RefTaken { reference: String, by: String },
    #[error("the component is {size} bytes; this engine accepts at most {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("sha256 mismatch: expected {expected}, the upload's is {actual}; the file was changed or cut in transit")]
    DigestMismatch { expected: String, actual: String },
    /// The bytes are not a plugin this engine can load.
    #[error("{0}")]
    NotAPlugin(String),
    #[error(transparent)]
    InvalidGrant(#[from] cme_grant::GrantError),
    /// The upload's signature, or its absence, is refused ([registry] trusted_keys).
    #[error(transparent)]
    Signature(#[from] crate::signatures::SignatureError),
    #[error("a credential named {0} exists; delete it first")]
    CredentialExists(String),
    #[error("the engine is halted: nothing fires until it is resumed")]
    Halted,
    /// A blackout holds the plan now.
    #[error("{name} holds this plan now: nothing of it fires until the blackout ends")]
    InBlackout { name: String },
    /// A configured cap on stored work would be passed; nothing was changed.
    #[error("{0}; delete finished plans or raise the cap")]
    OverCap(#[from] crate::storage::OverCap),
    /// The engine is doing as much of this as it does at once (compiling an upload);
    /// nothing was changed and the same request may succeed a moment later.
    #[error("{0}")]
    Busy(String),
    /// Storage failed: nothing was changed, and the engine cannot serve this now.
    #[error("the database is unavailable: {0}")]
    Storage(#[from] StorageError),
}

impl From<crate::storage::InsertPlanError> for EngineError {
    fn from(e: crate::storage::InsertPlanError) -> Self {
        match e {
            crate::storage::InsertPlanError::OverCap(over) => EngineError::OverCap(over),
            crate::storage::InsertPlanError::Storage(e) => EngineError::Storage(e),
        }
    }
}

impl EngineError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        EngineError::Invalid { field: field.to_string(), message: message.into() }
    }

    pub fn not_found(resource: Resource, id: &str) -> Self {
        EngineError::NotFound { resource, id: id.to_string() }
    }

    /// The JSON pointer, in the request, of the value at fault.
    pub fn field(&self) -> Option<&str> {
        match self {
            EngineError::Invalid { field, .. }
            | EngineError::UnknownRef { field, .. }
            | EngineError::NoSuchVersion { field, .. }
            | EngineError::PluginPending { field, .. }
            | EngineError::PluginDisabled { field, .. } => Some(field),
            EngineError::NoRunTime | EngineError::TooManyRunTimes { .. } => Some("/planner/args"),
            EngineError::DigestMismatch { .. } => Some("/sha256"),
            _ => None,
        }
    }
}
