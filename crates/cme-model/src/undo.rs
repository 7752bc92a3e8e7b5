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

/// What an undo does when it runs: a command over SSH (the undo's target), or what the
/// host does itself without the plugin (a compensating HTTP request, EC2 restored).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revert {
    /// `command` over SSH on `address:port` as `user`, with `credential`.
    #[default]
    Ssh,
    /// A compensating request, sent with the arming plugin's grant, the operator's fences
    /// and the credentials the host injects.
    Http {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Vec<u8>>,
    },
    /// Stopped instances started again.
    Ec2Start { region: String, instance_ids: Vec<String> },
    /// An isolated instance's security groups given back.
    Ec2Groups { region: String, instance_id: String, groups: Vec<String> },
    /// An isolated subnet's network ACL given back.
    Ec2Acl { region: String, subnet_id: String, network_acl_id: String },
    /// A node stopped through `compute` on a cloud other than `aws` started again (on
    /// `aws` a stop's revert is [`Revert::Ec2Start`], as `ec2.stop-instances` stores it).
    NodeStart {
        cloud: String,
        node_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
}

impl Revert {
    /// `ssh`, `http` or `ec2`: what lists call the kind of an undo.
    pub fn kind(&self) -> &'static str {
        match self {
            Revert::Ssh => "ssh",
            Revert::Http { .. } => "http",
            Revert::Ec2Start { .. } | Revert::Ec2Groups { .. } | Revert::Ec2Acl { .. } => "ec2",
            Revert::NodeStart { .. } => "compute",
        }
    }
}

/// An armed undo: `command` to run over SSH on the target, or (`revert`) what the host
/// restores itself, when due.
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
    /// The SSH command; for what the host restores itself, what it does, in words.
    pub command: String,
    /// What it does (SSH unless the host restores something itself).
    pub revert: Revert,
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
    /// `user@address:port`, as audit rows name the target (an HTTP revert's URL, an EC2
    /// revert's region and resources).
    pub fn target(&self) -> String {
        match &self.revert {
            Revert::Ssh => {
                let user = if self.user.is_empty() { "<credential user>" } else { &self.user };
                format!("{user}@{}:{} (credential {})", self.address, self.port, self.credential)
            }
            Revert::Http { method, url, .. } => format!("{method} {url}"),
            Revert::Ec2Start { region, instance_ids } => format!("ec2 {region}: {}", instance_ids.join(", ")),
            Revert::Ec2Groups { region, instance_id, .. } => format!("ec2 {region}: {instance_id}"),
            Revert::Ec2Acl { region, subnet_id, .. } => format!("ec2 {region}: {subnet_id}"),
            Revert::NodeStart { cloud, node_id, .. } => format!("cloud {cloud}: {node_id}"),
        }
    }
}

/// How an attempt at an undo ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoAttempt {
    /// The command ran: its exit code (None: killed) and the end of its output.
    Ran { exit_code: Option<i32>, output: String },
    /// It could not be run (no connection, no credential); tried again later.
    Unreachable(String),
    /// The operator's fences or the plugin's grant refuse it now: shown as failed and
    /// tried again, backing off, for as long as it is pending (never dropped: a fault
    /// stays on until a person lifts the fence or reverts it by hand).
    Refused(String),
}
