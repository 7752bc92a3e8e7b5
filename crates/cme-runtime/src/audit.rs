//! Audit events: one per capability call, allowed or not, in the one shape the engine
//! stores and shows (`cme_model::AuditEvent`, source `plugin`).

use serde::{Deserialize, Serialize};

pub use cme_model::audit::{AuditDecision, AuditEvent, AuditSource};

/// What the host decided about a capability call: how a capability's code says it (the
/// reason travels with the refusal), before it becomes an event's decision and reason.
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

impl Decision {
    /// The event's decision and reason.
    pub fn into_parts(self) -> (AuditDecision, Option<String>) {
        match self {
            Decision::Allowed => (AuditDecision::Allowed, None),
            Decision::Denied(reason) => (AuditDecision::Denied, Some(reason)),
            Decision::Unavailable(reason) => (AuditDecision::Unavailable, Some(reason)),
        }
    }
}
