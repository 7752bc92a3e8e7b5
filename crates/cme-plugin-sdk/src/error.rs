//! The error a planner or attack returns, independent of the world's generated types.

use std::fmt;

/// Why `plan` or `run` did not succeed. Converted into the WIT `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The args do not make sense. Name the field: `"date: not an RFC 3339 date"`.
    InvalidArgs(String),
    /// A capability the plugin needed was refused by the host.
    Denied(String),
    /// The plugin ran but did not achieve its goal.
    Failed(String),
}

impl PluginError {
    /// `InvalidArgs` for `field`, formatted as `"field: reason"`.
    pub fn invalid(field: &str, reason: impl fmt::Display) -> Self {
        PluginError::InvalidArgs(format!("{field}: {reason}"))
    }

    /// `Failed` with the given message.
    pub fn failed(message: impl fmt::Display) -> Self {
        PluginError::Failed(message.to_string())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::InvalidArgs(m) => write!(f, "invalid args: {m}"),
            PluginError::Denied(m) => write!(f, "denied: {m}"),
            PluginError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for PluginError {}
