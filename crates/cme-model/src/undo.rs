//! Undos: what an attack armed to reverse its fault, as the runtime stores it before the
//! attack acts and as the engine's keeper runs it.

use chrono::{DateTime, Utc};

use crate::Actor;

/// Where an undo stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoState {
    /// Waiting for its time (or for its next attempt).
    Pending,
    /// Ran and its command exited 0.
    Done,
    /// Ran and its command failed, or could not be run `MAX_ATTEMPTS` times.
    Failed,
}

impl UndoState {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoState::Pending => "pending",
            UndoState::Done => "done",
            UndoState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<UndoState> {
        match text {
            "pending" => Some(UndoState::Pending),
            "done" => Some(UndoState::Done),
            "failed" => Some(UndoState::Failed),
            _ => None,
        }
    }
}

/// An armed undo: `command` to run over SSH on the target, when due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub id: String,
    /// The executor whose run armed it, and its plan.
    pub run_id: String,
    pub plan_id: String,
    /// The experiment step whose fault it reverts (None: a one-attack run's).
    pub step: Option<String>,
    /// `name@version` of the plugin.
    pub plugin: String,
    pub address: String,
    pub port: u16,
    /// Empty: the credential's own user.
    pub user: String,
    pub credential: String,
    pub command: String,
    /// Who created the plan: the credential is used on their behalf, as the run did.
    pub plan_created_by: Option<Actor>,
    pub armed: DateTime<Utc>,
    /// When it runs (its next attempt's time, after a failed one).
    pub due: DateTime<Utc>,
    pub state: UndoState,
    pub attempts: u32,
    /// How the last attempt ended.
    pub outcome: Option<String>,
    pub finished: Option<DateTime<Utc>>,
}

impl Undo {
    /// `user@address:port`, as audit rows name the target.
    pub fn target(&self) -> String {
        let user = if self.user.is_empty() { "<credential user>" } else { &self.user };
        format!("{user}@{}:{} (credential {})", self.address, self.port, self.credential)
    }
}

/// How an attempt at an undo ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoAttempt {
    /// The command ran: its exit code (None: killed) and the end of its output.
    Ran { exit_code: Option<i32>, output: String },
    /// It could not be run (no connection, no credential); tried again later.
    Unreachable(String),
}
