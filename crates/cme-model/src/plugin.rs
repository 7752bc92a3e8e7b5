//! What a plugin is and what its calls answer, as engine and runtime both speak of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Planner, attack or probe: which world the component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Planner,
    Attack,
    Probe,
}

crate::text_enum!(PluginKind, "plugin kind", { Planner => "planner", Attack => "attack", Probe => "probe" });

/// A planner's answer for one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub instants: Vec<DateTime<Utc>>,
    /// The plan goes on after the window: ask again for the next one.
    pub recurring: bool,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub healthy: bool,
    /// One line for people.
    pub reason: String,
    /// What was measured (a JSON object).
    pub values: Value,
}
