//! Audit events: one per capability call, allowed or not.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the host decided about a capability call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    /// Declared, granted and within the egress rules: performed (or recorded, in a dry run).
    Allowed,
    /// Refused; the reason names the rule.
    Denied(String),
    /// This engine has no backend for the capability.
    Unavailable(String),
}

/// One capability call by one plugin in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    /// The run (executor) id; empty for `describe` and `plan`.
    pub run_id: String,
    /// `name@version` of the plugin.
    pub plugin: String,
    /// `interface.function`, e.g. `http.send`.
    pub call: String,
    /// What the call was aimed at: a URL, a region, an address, a script name.
    pub target: String,
    #[serde(flatten)]
    pub decision: Decision,
    /// True when the call was only recorded, not performed.
    pub dry_run: bool,
    /// How an allowed call ended: "200", "timeout: ...".
    pub outcome: Option<String>,
}
