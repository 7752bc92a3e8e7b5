//! The halt switch, failing closed. A halt cancels this engine's runs first and holds in
//! memory at once; storing it (so that other replicas and restarts see it) comes second
//! and is retried until it succeeds. Claims are conditioned on the stored switch in the
//! same statement, and a run claimed just before a halt does not start after it. Once
//! stored, the stored switch alone speaks: a resume on any replica lifts it everywhere.

use cme_model::Locked;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};

use crate::model::{AuditEvent, HaltState};
use crate::{Engine, EngineError};

/// How long a halt waits for storage before answering that it holds here only.
const PERSIST_WAIT: Duration = Duration::from_secs(2);
/// The longest pause between retries of storing a halt.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(30);

/// The halt switch as this engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    pub state: HaltState,
    /// False while a halt asked of this engine is not stored yet (other replicas do not
    /// know of it; this engine keeps retrying).
    pub persisted: bool,
}

impl Engine {
    /// Halts: running attacks are cancelled and nothing new starts here at once, whether
    /// or not the switch can be stored; executors falling due while halted are cancelled
    /// for good. The stored switch carries its audit event.
    pub async fn halt(self: &Arc<Self>, reason: Option<String>, by: &str) -> Result<Halt, EngineError> {
        let state = HaltState { halted: true, since: Some(Utc::now().trunc_subsecs(6)), reason: reason.clone() };
        *self.local_halt.locked() = Some(state.clone());
        self.stop_runs(&halted_because(reason.as_deref()));
        self.wake_scheduler();
        self.wake_undos();
        tracing::warn!(by, "engine halted");
        let audit = AuditEvent { reason, ..AuditEvent::action(by, "halt", "") };
        let persisted = self.persist_halt(&state, &audit).await;
        if !persisted {
            tracing::error!("the halt holds on this engine but could not be stored; retrying until it is");
            tokio::spawn(self.clone().retry_halt(state.clone(), audit));
        }
        Ok(Halt { state, persisted })
    }

    /// Lifts the halt. The stored switch must be written: a resume that other replicas
    /// cannot see would leave them halted and this engine not.
    pub async fn resume(&self, by: &str) -> Result<Halt, EngineError> {
        let state = HaltState::default();
        {
            let _one = self.halt_writes.lock().await;
            self.ports.halt.set_halt_state(&state, &AuditEvent::action(by, "resume", "")).await?;
            *self.local_halt.locked() = None;
        }
        self.wake_scheduler();
        tracing::warn!(by, "engine resumed");
        Ok(Halt { state, persisted: true })
    }

    /// The switch: this engine's own halt while it is not stored, else the stored one.
    pub async fn halt_state(&self) -> Result<Halt, EngineError> {
        let local = self.local_halt();
        match self.ports.halt.halt_state().await {
            Ok(stored) if stored.halted => Ok(Halt { state: stored, persisted: true }),
            Ok(stored) => Ok(match local {
                Some(state) => Halt { state, persisted: false },
                None => Halt { state: stored, persisted: true },
            }),
            Err(e) => match local {
                Some(state) => Ok(Halt { state, persisted: false }),
                None => Err(e.into()),
            },
        }
    }

    pub(crate) fn local_halt(&self) -> Option<HaltState> {
        self.local_halt.locked().clone()
    }

    /// Stores the halt if it is still the one asked for; false when storage did not
    /// answer in time.
    async fn persist_halt(&self, state: &HaltState, audit: &AuditEvent) -> bool {
        let _one = self.halt_writes.lock().await;
        if self.local_halt().as_ref() != Some(state) {
            return true; // resumed (or halted again) meanwhile: nothing of this to store
        }
        match tokio::time::timeout(PERSIST_WAIT, self.ports.halt.set_halt_state(state, audit)).await {
            Ok(Ok(())) => {
                // Stored: from now on the stored switch speaks for every replica, so that
                // a resume on another one lifts this halt here too.
                *self.local_halt.locked() = None;
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storing the halt failed");
                false
            }
            Err(_) => {
                tracing::error!(waited_ms = PERSIST_WAIT.as_millis() as u64, "storing the halt timed out");
                false
            }
        }
    }

    /// Acts on halts made by other replicas as soon as storage signals them.
    pub(crate) async fn follow_halts(self: Arc<Self>, mut signals: tokio::sync::watch::Receiver<u64>) {
        while signals.changed().await.is_ok() {
            match self.ports.halt.halt_state().await {
                Ok(stored) if stored.halted => {
                    if self.running() > 0 {
                        tracing::warn!("halted by another replica: cancelling running attacks");
                    }
                    self.stop_runs(&halted_because(stored.reason.as_deref()));
                    self.wake_undos();
                }
                Ok(_) => {}
                // Fail closed: the scheduler's next pass cannot read the switch either.
                Err(e) => tracing::error!(error = %e, "cannot read the halt switch after a signal"),
            }
            self.wake_scheduler();
        }
    }

    async fn retry_halt(self: Arc<Self>, state: HaltState, audit: AuditEvent) {
        let mut pause = Duration::from_millis(500);
        loop {
            tokio::time::sleep(pause).await;
            if self.persist_halt(&state, &audit).await {
                tracing::warn!("the halt is stored now");
                return;
            }
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }
}

/// What a run stopped by a halt says: `halted`, with the halt's reason when it has one.
pub(crate) fn halted_because(reason: Option<&str>) -> String {
    match reason {
        Some(reason) if !reason.trim().is_empty() => format!("halted: {reason}"),
        _ => "halted".to_string(),
    }
}
