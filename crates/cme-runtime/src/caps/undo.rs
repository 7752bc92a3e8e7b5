//! `cme:plugin/undo`: an attack's undo, stored before the attack acts. The target is
//! checked as any SSH call's (the run must be allowed to reach it, with that credential);
//! the undo is stored through the SSH backend's store (no store, or a store that fails: the
//! call fails and the attack must not act), then a timer is left on the target that runs
//! the undo should the engine be gone when it is due. The engine runs it when it is due,
//! when it is halted, and when it starts again.

use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::Unit;
use super::ssh::Ssh;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ssh::Target;
use crate::bindings::attack::cme::plugin::http::Request;
use crate::bindings::attack::cme::plugin::undo::Host;
use cme_cloud::http::Request as CloudRequest;
use super::http::Http;
use crate::grant::{Denial, Fences, Grant};
use crate::info::Capability;
use crate::state::CallState;
use cme_model::undo::{Revert, Undo, UndoState};

/// The `undo` unit. Arming an undo reaches its target over SSH, so its rule is the
/// `ssh` unit's (the target is checked as any SSH call's).
pub(crate) struct UndoUnit;

impl Unit for UndoUnit {
    const INTERFACE: &'static str = "cme:plugin/undo";
    type RunState = ();
    type Use<'a> = ();

    fn check(declared: &[Capability], grant: &Grant, fences: &Fences, _: ()) -> Result<(), Denial> {
        Ssh::check(declared, grant, fences, ())
    }
}

/// The longest an undo may wait: a fault is meant to be short.
const MAX_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest undo command.
const MAX_COMMAND_BYTES: usize = 4096;
/// How long after the undo is due the target's timer runs it: the engine, when it is
/// there, runs it first and stops the timer.
const TIMER_GRACE_SECONDS: u64 = 30;

impl Host for CallState {
    async fn arm(
        &mut self,
        target: Target,
        command: String,
        after_ms: u64,
    ) -> wasmtime::Result<Result<String, HostError>> {
        const CALL: &str = "undo.arm";
        let after = Duration::from_millis(after_ms);
        let label = format!("{}: {command} in {} s", super::ssh::label(&target), after.as_secs());
        if command.trim().is_empty() || command.len() > MAX_COMMAND_BYTES {
            return Ok(Err(HostError::InvalidArgument(format!("command must have 1 to {MAX_COMMAND_BYTES} bytes"))));
        }
        if after > MAX_AFTER {
            return Ok(Err(HostError::InvalidArgument(format!(
                "after-ms must be at most {} ms (7 days)",
                MAX_AFTER.as_millis()
            ))));
        }
        let session = match self.ssh_session(CALL, &label, &target).await? {
            Ok(Some(session)) => session,
            Ok(None) => {
                self.record_ssh_dry_run(CALL, label.clone(), format!("would arm the undo {label}"));
                return Ok(Ok("dry-run".into()));
            }
            Err(refused) => return Ok(Err(refused)),
        };
        let caps = self.caps.as_ref().expect("admitted");
        let store = caps.backends.ssh.as_ref().expect("a session was opened").store.clone();
        let undo = self.new_undo(
            Revert::Ssh,
            (target.address.clone(), target.port, target.user.clone(), target.credential.clone()),
            command.clone(),
            after,
        );
        if let Err(refused) = self.store_undo(&store, CALL, &label, &undo).await {
            return Ok(Err(refused));
        }
        let timer = cme_cloud::ssh::undo::timer(&undo.id, &command, after.as_secs() + TIMER_GRACE_SECONDS);
        self.begin(CALL, &label);
        let outcome = match session.exec(&timer, None, self.remaining()).await {
            Ok(output) if output.exit_code == Some(0) => {
                format!("armed {} (due {}; the target's timer is set)", undo.id, undo.due.to_rfc3339())
            }
            Ok(output) => format!(
                "armed {} (due {}); the target's timer was not set: exit {:?}",
                undo.id,
                undo.due.to_rfc3339(),
                output.exit_code
            ),
            Err(e) => format!("armed {} (due {}); the target's timer was not set: {e}", undo.id, undo.due.to_rfc3339()),
        };
        self.audit(CALL, label, Decision::Allowed, Some(outcome));
        Ok(Ok(undo.id))
    }

    async fn arm_http(&mut self, request: Request, after_ms: u64) -> wasmtime::Result<Result<String, HostError>> {
        const CALL: &str = "undo.arm-http";
        let label = format!("{} {}", request.method.to_ascii_uppercase(), request.url);
        if let Err(denied) = self.admit::<Http>(CALL, &label, ())? {
            return Ok(Err(denied));
        }
        let after = Duration::from_millis(after_ms);
        if after > MAX_AFTER {
            return Ok(Err(HostError::InvalidArgument(format!(
                "after-ms must be at most {} ms (7 days)",
                MAX_AFTER.as_millis()
            ))));
        }
        if request.body.as_ref().is_some_and(|b| b.len() > MAX_HTTP_BODY_BYTES) || request.headers.len() > 32 {
            return Ok(Err(HostError::InvalidArgument(format!(
                "a compensating request has at most 32 headers and {MAX_HTTP_BODY_BYTES} body bytes"
            ))));
        }
        let cloud = CloudRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect(),
            body: request.body.clone(),
            timeout: None,
        };
        // It must be a request this run may send now (egress rules, fences); it is checked
        // again when it is made.
        let checked = self.prepare_http_client().and_then(|client| client.check(&cloud).map(|_| ()));
        if let Err(error) = checked {
            let reason = error.to_string();
            self.audit(CALL, label, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::Denied(reason)));
        }
        let caps = self.caps.as_ref().expect("admitted");
        if caps.dry_run {
            self.caps.as_mut().expect("admitted").actions.push(format!("would arm the compensating request {label}"));
            self.audit(CALL, label, Decision::Allowed, Some("not armed: dry run".into()));
            return Ok(Ok("dry-run".into()));
        }
        let Some(store) = caps.backends.ssh.as_ref().map(|ssh| ssh.store.clone()) else {
            let reason = "this engine has no revert ledger (the undo store), so the fault must not be made".to_string();
            self.audit(CALL, label, Decision::Unavailable(reason.clone()), None);
            return Ok(Err(HostError::Unavailable(reason)));
        };
        let revert = Revert::Http { method: cloud.method, url: cloud.url, headers: cloud.headers, body: cloud.body };
        let undo = self.new_undo(revert, (String::new(), 0, String::new(), String::new()), label.clone(), after);
        if let Err(refused) = self.store_undo(&store, CALL, &label, &undo).await {
            return Ok(Err(refused));
        }
        self.audit(CALL, label, Decision::Allowed, Some(format!("armed {} (due {})", undo.id, undo.due.to_rfc3339())));
        Ok(Ok(undo.id))
    }
}

impl CallState {
    /// An undo of this run (and step) doing `revert`, due after `after`; `target` is the
    /// SSH target's (address, port, user, credential), empty for what the host restores
    /// itself; `command` what it does, in words for those.
    pub(crate) fn new_undo(
        &self,
        revert: Revert,
        target: (String, u16, String, String),
        command: String,
        after: Duration,
    ) -> Undo {
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let (address, port, user, credential) = target;
        let now = Utc::now();
        Undo {
            id: undo_id(&self.run_id, self.host_calls),
            run_id: self.run_id.clone(),
            plan_id: caps.owner.plan.clone(),
            step: self.step.clone(),
            plugin: self.plugin.clone(),
            address,
            port,
            user,
            credential,
            command,
            revert,
            plan_created_by: caps.owner.created_by.clone(),
            armed: now,
            due: now + after,
            state: UndoState::Pending,
            attempts: 0,
            outcome: None,
            finished: None,
        }
    }

    /// Stores a revert in the run's ledger, due after `hold_ms` (sooner when the
    /// experiment's step ends or the run is aborted); an error means the fault must not be
    /// made.
    pub(crate) async fn arm_revert(
        &mut self,
        call: &str,
        target: &str,
        revert: Revert,
        words: String,
        hold_ms: u64,
    ) -> Result<Undo, HostError> {
        let caps = self.caps.as_ref().expect("admitted");
        let Some(store) = caps.backends.ssh.as_ref().map(|ssh| ssh.store.clone()) else {
            let reason = "this engine has no revert ledger (the undo store), so the fault must not be made".to_string();
            self.audit(call, target.to_string(), Decision::Unavailable(reason.clone()), None);
            return Err(HostError::Unavailable(reason));
        };
        // Where it acts, as lists show an undo's address: the region, or the cloud.
        let region = match &revert {
            Revert::Ec2Start { region, .. } | Revert::Ec2Groups { region, .. } | Revert::Ec2Acl { region, .. } => {
                region.clone()
            }
            Revert::NodeStart { cloud, .. } => cloud.clone(),
            Revert::Ssh | Revert::Http { .. } => String::new(),
        };
        let undo = self.new_undo(revert, (region, 0, String::new(), String::new()), words, Duration::from_millis(hold_ms));
        self.store_undo(&store, call, target, &undo).await?;
        self.audit("undo.arm", undo.target(), Decision::Allowed, Some(format!("armed {}: {}", undo.id, undo.command)));
        Ok(undo)
    }

    /// Stores an undo before its fault is made; a refusal (audited) means the fault
    /// must not be made.
    pub(crate) async fn store_undo(
        &mut self,
        store: &std::sync::Arc<dyn crate::SshStore>,
        call: &str,
        label: &str,
        undo: &Undo,
    ) -> Result<(), HostError> {
        if let Err(error) = store.arm_undo(undo).await {
            let reason = format!("the undo could not be stored, so the fault must not be made: {error}");
            self.audit(call, label.to_string(), Decision::Unavailable(reason.clone()), None);
            return Err(HostError::Unavailable(reason));
        }
        Ok(())
    }
}

/// The longest a fault the host reverts may be held before its revert is due.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest body a compensating request may carry.
const MAX_HTTP_BODY_BYTES: usize = 16 << 10;

/// A fresh id: unique per run and call, and safe in a file name.
pub(crate) fn undo_id(run_id: &str, call: u32) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let digest = Sha256::digest(format!("{run_id}\0{call}\0{nanos}"));
    hex::encode(&digest[..12])
}
