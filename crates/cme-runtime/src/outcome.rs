//! What a call leaves behind: its result, its log, its audit trail.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::AuditEvent;
use crate::error::CallError;

pub use cme_model::{LogLevel, LogLine};

/// What an attack reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    pub summary: String,
    pub targets: Vec<String>,
    /// A JSON object.
    pub details: Value,
}

/// Everything a call produced besides its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub log: Vec<LogLine>,
    pub audit: Vec<AuditEvent>,
    /// What the plugin wrote to stdout and stderr (lossy UTF-8, capped).
    pub stdout: String,
    pub stderr: String,
    /// In a dry run, what the capabilities would have done, in order.
    pub dry_run_actions: Vec<String>,
    pub elapsed: Duration,
}

/// The result of an attack run and its record.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub result: Result<AttackReport, CallError>,
    pub record: CallRecord,
}

/// The result of a planner call and its record.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    pub result: Result<Planned, CallError>,
    pub record: CallRecord,
}

pub use cme_model::Planned;

/// The result of a probe call and its record.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    pub result: Result<Verdict, CallError>,
    pub record: CallRecord,
}

pub use cme_model::Verdict;
