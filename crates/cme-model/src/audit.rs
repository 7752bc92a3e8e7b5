//! Audit events: what was done to or by the engine (a plugin's capability call, an
//! operator's action), one shape from the runtime that records a call to the API that
//! shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::text_enum;

/// Who or what an audit event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSource {
    /// A capability call of a plugin.
    Plugin,
    /// An operator's action through the API or CLI.
    Api,
}

/// Whether the audited thing was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    Allowed,
    Denied,
    /// The capability has no backend on this engine.
    Unavailable,
}

text_enum!(AuditSource, "audit source", { Plugin => "plugin", Api => "api" });
text_enum!(AuditDecision, "audit decision", { Allowed => "allowed", Denied => "denied", Unavailable => "unavailable" });

/// Something done to or by the engine: a capability call of a plugin, or an operator's
/// action. One shape from where it happens to where it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub source: AuditSource,
    /// The executor, for plugin calls.
    pub run_id: Option<String>,
    /// `name@version` for plugin calls; the caller's role for operator actions.
    pub actor: String,
    /// `http.send`, `plan.create`, ...
    pub action: String,
    pub target: String,
    pub decision: AuditDecision,
    pub reason: Option<String>,
    pub dry_run: bool,
    /// How an allowed call ended ("200", "timeout: ...").
    pub outcome: Option<String>,
}

impl AuditEvent {
    /// An operator's action, allowed, now.
    pub fn action(actor: &str, action: &str, target: impl Into<String>) -> AuditEvent {
        AuditEvent {
            at: Utc::now(),
            source: AuditSource::Api,
            run_id: None,
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.into(),
            decision: AuditDecision::Allowed,
            reason: None,
            dry_run: false,
            outcome: None,
        }
    }

    /// The same action, refused for `reason`.
    pub fn denied(mut self, reason: impl Into<String>) -> AuditEvent {
        self.decision = AuditDecision::Denied;
        self.reason = Some(reason.into());
        self
    }
}
