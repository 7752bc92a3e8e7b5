//! Undos: what an attack armed to reverse its fault (a stopped service started again,
//! a netem qdisc removed, a stopped process continued). The runtime stores an undo before
//! the attack acts (and leaves a timer on the target as a last resort); the engine keeps
//! them: each runs when it is due, every pending one runs at once while the engine is
//! halted, and every pending one runs when the engine starts (a restart ends the faults
//! it cannot vouch for). An undo that cannot reach its target is tried again, backing off,
//! up to [`MAX_ATTEMPTS`]; every attempt is audited.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::model::AuditEvent;
use crate::{Engine, EngineError, Resource};

/// Attempts before an undo is given up as failed.
pub const MAX_ATTEMPTS: u32 = 5;
/// How the outcome of an attempt a fence refused begins: the undo stays pending (retried,
/// never dropped), and is shown as failed.
pub(crate) const REFUSED: &str = "failed: refused";
/// Undos run at once.
const PARALLEL: usize = 8;

/// Whether an undo's run still runs somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunLife {
    /// Running under a lease not expired (on this replica or another).
    Live,
    /// Ended, reaped, or its lease expired.
    Over,
    /// Not looked up.
    Unknown,
}

pub use cme_model::undo::{Revert, Undo, UndoAttempt, UndoState};

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
                    let runs = self.runs_of(&pending, starting, now).await;
                    // Halted, an undo not tried yet is due now; one being retried keeps its
                    // back-off (else an unreachable target would be tried in a loop). At
                    // start, every undo whose run is not live on another replica is due; an
                    // experiment step's undo is due once its run is over (reaped, or ended
                    // without reverting it).
                    let (due, later): (Vec<Undo>, Vec<Undo>) = pending.into_iter().partition(|u| {
                        let live = runs.get(&u.run_id).copied().unwrap_or(RunLife::Unknown);
                        (starting && live != RunLife::Live)
                            || (halted && u.attempts == 0)
                            || u.due <= now
                            || (u.step.is_some() && u.attempts == 0 && live == RunLife::Over)
                    });
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

    /// Whether the runs of pending undos are live (a replica holds an unexpired lease) or
    /// over: every run at start, else the runs of experiment steps' undos (the ones whose
    /// revert waits for their run). A run that cannot be read counts as live now (its
    /// undo waits for its due time, a halt or the next pass) and is logged.
    async fn runs_of(
        &self,
        pending: &[Undo],
        starting: bool,
        now: chrono::DateTime<Utc>,
    ) -> std::collections::HashMap<String, RunLife> {
        let mut runs = std::collections::HashMap::new();
        for undo in pending.iter().filter(|u| starting || u.step.is_some()) {
            if runs.contains_key(&undo.run_id) {
                continue;
            }
            let life = match self.ports.executors.executor(&undo.run_id).await {
                Ok(Some(run)) if run.status == crate::ExecutorStatus::Running => match run.lease {
                    Some(lease) if lease.expires > now => RunLife::Live,
                    _ => RunLife::Over,
                },
                Ok(_) => RunLife::Over,
                Err(error) => {
                    tracing::warn!(run_id = %undo.run_id, %error, "cannot read an undo's run; its undo waits");
                    RunLife::Live
                }
            };
            runs.insert(undo.run_id.clone(), life);
        }
        runs
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
                engine.run_undo(undo, why).await.1
            });
        }
        let mut recorded = true;
        while let Some(done) = tasks.join_next().await {
            recorded &= done.unwrap_or(false);
        }
        recorded
    }

    /// Runs one undo and records the attempt: the undo as it now stands, and false when
    /// the record could not be stored.
    pub(crate) async fn run_undo(&self, mut undo: Undo, why: &str) -> (Undo, bool) {
        let grant = match undo.revert {
            crate::undo::Revert::Http { .. } => self.grant_of(&undo.plugin).await,
            _ => None,
        };
        let attempt = self.host.run_undo(&undo, grant.as_ref()).await;
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
            // Never given up: the fault stays until the fence allows its revert or a
            // person reverts it; shown as failed meanwhile.
            UndoAttempt::Refused(reason) => {
                let pause = Duration::from_secs(15 << undo.attempts.min(6));
                undo.due = now + pause;
                undo.outcome = Some(format!(
                    "{REFUSED} ({reason}); attempt {} of as many as it takes, again in {} s",
                    undo.attempts,
                    pause.as_secs()
                ));
                audit.outcome = undo.outcome.clone();
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
        let stored = match self.ports.ssh.update_undo(&undo, &audit).await {
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
        };
        (undo, stored)
    }
}
