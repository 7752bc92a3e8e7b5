//! Undos: what an attack armed to reverse its fault (a stopped service started again,
//! a netem qdisc removed, a stopped process continued). The runtime stores an undo before
//! the attack acts (and leaves a timer on the target as a last resort); the engine keeps
//! them: each runs when it is due, every pending one runs at once while the engine is
//! halted, and every pending one runs when the engine starts (a restart ends the faults
//! it cannot vouch for). An undo that cannot reach its target is tried again, backing off,
//! up to [`MAX_ATTEMPTS`]; every attempt is audited.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Actor, AuditEvent};
use crate::{Engine, EngineError, Resource};

/// Attempts before an undo is given up as failed.
pub const MAX_ATTEMPTS: u32 = 5;
/// Undos run at once.
const PARALLEL: usize = 8;

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

impl Engine {
    /// Undos: the pending ones, soonest first, then the latest finished ones, up to `limit`.
    pub async fn undos(&self, limit: u64) -> Result<Vec<Undo>, EngineError> {
        let mut undos = self.ports.ssh.undos(true, limit).await?;
        let room = limit.saturating_sub(undos.len() as u64);
        if room > 0 {
            undos.extend(
                self.ports
                    .ssh
                    .undos(false, room + undos.len() as u64)
                    .await?
                    .into_iter()
                    .filter(|u| u.state != UndoState::Pending)
                    .take(room as usize),
            );
        }
        Ok(undos)
    }

    pub async fn undo(&self, id: &str) -> Result<Undo, EngineError> {
        self.ports.ssh.undo(id).await?.ok_or_else(|| EngineError::not_found(Resource::Undo, id))
    }

    /// Keeps the undos: runs every pending one at start, then each when it is due, and
    /// every pending one at once while halted. Sleeps until the next is due or one is
    /// armed (never polls).
    pub(crate) async fn keep_undos(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut starting = true;
        loop {
            let next = match self.ports.ssh.undos(true, 10_000).await {
                Ok(pending) => {
                    let halted = self.local_halt().is_some()
                        || self.ports.halt.halt_state().await.map(|h| h.halted).unwrap_or(true);
                    let now = Utc::now();
                    // Halted, an undo not tried yet is due now; one being retried keeps its
                    // back-off (else an unreachable target would be tried in a loop).
                    let (due, later): (Vec<Undo>, Vec<Undo>) =
                        pending.into_iter().partition(|u| starting || (halted && u.attempts == 0) || u.due <= now);
                    if !due.is_empty() {
                        let why = if starting {
                            "engine started"
                        } else if halted {
                            "halted"
                        } else {
                            "due"
                        };
                        let recorded = self.run_undos(due, why).await;
                        starting = false;
                        if recorded {
                            continue; // new ones may have been armed meanwhile
                        }
                        // An outcome could not be stored: its undo is still pending and due;
                        // wait before trying again rather than loop on the database.
                        Some(Duration::from_secs(5))
                    } else {
                        starting = false;
                        later.iter().map(|u| u.due).min().map(|at| (at - now).to_std().unwrap_or_default())
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the undos; trying again in 5 s");
                    Some(Duration::from_secs(5))
                }
            };
            let sleep = next.unwrap_or(Duration::from_secs(24 * 3600));
            tokio::select! {
                _ = self.config.undo_armed.notified() => {}
                _ = self.undo_wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Wakes the undo keeper (a halt: every pending undo runs now).
    pub(crate) fn wake_undos(&self) {
        self.undo_wake.notify_one();
    }

    /// Runs the undos, a few at a time; false when an outcome could not be stored.
    async fn run_undos(self: &Arc<Self>, undos: Vec<Undo>, why: &'static str) -> bool {
        let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut tasks = tokio::task::JoinSet::new();
        for undo in undos {
            let engine = self.clone();
            let limit = limit.clone();
            tasks.spawn(async move {
                let _slot = limit.acquire_owned().await;
                engine.run_undo(undo, why).await
            });
        }
        let mut recorded = true;
        while let Some(done) = tasks.join_next().await {
            recorded &= done.unwrap_or(false);
        }
        recorded
    }

    /// Runs one undo and records the attempt; false when the record could not be stored.
    async fn run_undo(&self, mut undo: Undo, why: &str) -> bool {
        let attempt = self.host.run_undo(&undo).await;
        undo.attempts += 1;
        let now = Utc::now();
        let mut audit = AuditEvent::action("engine", "undo.run", format!("{}: {}", undo.target(), undo.command));
        audit.run_id = Some(undo.run_id.clone());
        audit.reason = Some(format!("{why}; undo {} armed by {}", undo.id, undo.plugin));
        match attempt {
            UndoAttempt::Ran { exit_code, output } => {
                let code = exit_code.map_or("killed".to_string(), |c| format!("exit {c}"));
                let outcome = if output.is_empty() { code } else { format!("{code}: {output}") };
                undo.state = if exit_code == Some(0) { UndoState::Done } else { UndoState::Failed };
                undo.finished = Some(now);
                undo.outcome = Some(outcome.clone());
                audit.outcome = Some(outcome);
            }
            UndoAttempt::Unreachable(reason) => {
                if undo.attempts >= MAX_ATTEMPTS {
                    undo.state = UndoState::Failed;
                    undo.finished = Some(now);
                    undo.outcome = Some(format!("given up after {} attempts: {reason}", undo.attempts));
                } else {
                    let pause = Duration::from_secs(15 << undo.attempts.min(6));
                    undo.due = now + pause;
                    undo.outcome =
                        Some(format!("attempt {} failed, again in {} s: {reason}", undo.attempts, pause.as_secs()));
                }
                audit.outcome = undo.outcome.clone();
            }
        }
        match self.ports.ssh.update_undo(&undo, &audit).await {
            Ok(true) => {
                match undo.state {
                    UndoState::Done => tracing::info!(undo_id = %undo.id, target = %undo.target(), why, "undo done"),
                    UndoState::Failed => {
                        tracing::error!(undo_id = %undo.id, target = %undo.target(), outcome = ?undo.outcome, "undo failed")
                    }
                    UndoState::Pending => {
                        tracing::warn!(undo_id = %undo.id, target = %undo.target(), outcome = ?undo.outcome, "undo not run yet")
                    }
                }
                true
            }
            Ok(false) => {
                tracing::info!(undo_id = %undo.id, "undo already finished elsewhere");
                true
            }
            Err(e) => {
                tracing::error!(undo_id = %undo.id, error = %e, "recording an undo failed; it runs again (undos are safe to repeat)");
                false
            }
        }
    }
}
