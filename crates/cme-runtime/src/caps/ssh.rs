//! `cme:plugin/ssh` over `cme_cloud::ssh`. A target must be an address the same run
//! obtained from `ec2.describe-instances` or `inventory.hosts` under its grant, or lie in a network the grant
//! names explicitly (`ssh.hosts`); the key is looked up by
//! credential name host-side and never reaches the plugin. One session per target is
//! opened per run and reused by later calls; distinct targets count against the grant's
//! session budget. In a dry run nothing is sent: the call is checked, recorded and
//! answered as if it succeeded (exec: exit code 0, no output).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cme_cloud::ssh::{SshError, SshSession, Target as CloudTarget};

use super::Unit;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::ssh::{ExecOutput, Host, Target};
use crate::grant::{Denial, Fences, Grant, SshGrant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `ssh` unit.
pub(crate) struct Ssh;

/// What one run keeps: its open sessions by target (reused by later calls) and the
/// targets it used, dry or not (what the session budget counts).
#[derive(Default)]
pub(crate) struct SshRun {
    sessions: HashMap<String, Arc<SshSession>>,
    targets: HashSet<String>,
}

impl Unit for Ssh {
    const INTERFACE: &'static str = "cme:plugin/ssh";
    type RunState = SshRun;
    type Use<'a> = ();

    /// Declared and granted; which addresses is [`CallState::ssh_session`]'s part.
    fn check(declared: &[Capability], grant: &Grant, _fences: &Fences, _: ()) -> Result<(), Denial> {
        if !declared.iter().any(|c| matches!(c, Capability::Ssh)) {
            return Err(not_declared("ssh"));
        }
        if grant.ssh.is_none() {
            return Err(not_granted("ssh"));
        }
        Ok(())
    }

    /// One session per run; a built-in may list any inventory (which hosts a plan aims
    /// at is the plan's args).
    fn grant_as_declared(declared: &[Capability], grant: &mut Grant) {
        if declared.contains(&Capability::Ssh) {
            grant.ssh = Some(SshGrant { max_sessions: 1, hosts: Vec::new(), inventories: vec!["*".into()] });
        }
    }
}

impl Host for CallState {
    async fn upload(
        &mut self,
        target: Target,
        remote_path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), HostError>> {
        const CALL: &str = "ssh.upload";
        let label = format!("{}:{remote_path}", label(&target));
        let session = match self.ssh_session(CALL, &label, &target).await? {
            Ok(Some(session)) => session,
            Ok(None) => {
                let action = format!("would upload {} bytes to {label} with mode {mode:o}", contents.len());
                self.record_ssh_dry_run(CALL, label, action);
                return Ok(Ok(()));
            }
            Err(refused) => return Ok(Err(refused)),
        };
        let timeout = self.remaining();
        self.begin(CALL, &label);
        Ok(match session.upload(&remote_path, &contents, mode, timeout).await {
            Ok(()) => {
                self.audit(CALL, label, Decision::Allowed, Some(format!("{} bytes written", contents.len())));
                Ok(())
            }
            Err(e) => Err(self.ssh_failed(CALL, label, e)),
        })
    }

    async fn exec(
        &mut self,
        target: Target,
        command: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<ExecOutput, HostError>> {
        const CALL: &str = "ssh.exec";
        let label = format!("{}: {command}", label(&target));
        let session = match self.ssh_session(CALL, &label, &target).await? {
            Ok(Some(session)) => session,
            Ok(None) => {
                self.record_ssh_dry_run(CALL, label.clone(), format!("would run on {label}"));
                return Ok(Ok(ExecOutput {
                    exit_code: Some(0),
                    stdout: String::new(),
                    stderr: String::new(),
                    truncated: false,
                }));
            }
            Err(refused) => return Ok(Err(refused)),
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(self.remaining());
        self.begin(CALL, &label);
        Ok(match session.exec(&command, None, timeout).await {
            Ok(output) => {
                self.audit(CALL, label, Decision::Allowed, Some(format!("exit {:?}", output.exit_code)));
                Ok(ExecOutput {
                    exit_code: output.exit_code,
                    stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                    truncated: output.truncated,
                })
            }
            Err(e) => Err(self.ssh_failed(CALL, label, e)),
        })
    }
}

pub(super) fn label(target: &Target) -> String {
    let user = if target.user.is_empty() { "<credential user>" } else { &target.user };
    format!("{user}@{}:{} (credential {})", target.address, target.port, target.credential)
}

impl CallState {
    /// Admits the call, binds the target to this run's discovery and returns its session
    /// (opened on first use). `Ok(None)` in a dry run, where nothing is opened.
    pub(super) async fn ssh_session(
        &mut self,
        call: &str,
        label: &str,
        target: &Target,
    ) -> wasmtime::Result<Result<Option<Arc<SshSession>>, HostError>> {
        if let Err(denied) = self.admit::<Ssh>(call, label, ())? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(backend) = caps.backends.ssh.clone() else {
            return Ok(Err(self.unavailable(call, label, "ssh")));
        };
        let granted_network = caps.grant.ssh.as_ref().is_some_and(|g| g.allows_host(&target.address));
        if !caps.addresses.contains_key(&target.address) && !granted_network {
            let reason = format!(
                "address {} was not returned by this run's ec2.describe-instances or inventory.hosts and is in no granted ssh network",
                target.address
            );
            return Ok(Err(self.deny(call, label, reason)));
        }
        if target.port == 0 {
            return Ok(Err(HostError::InvalidArgument("port must be 1-65535".into())));
        }
        let key = session_key(target);
        if let Some(session) = caps.units.ssh.sessions.get(&key) {
            return Ok(Ok(Some(session.clone())));
        }
        if caps.dry_run && caps.units.ssh.targets.contains(&key) {
            // Already checked (credential included) by this dry run's first call.
            return Ok(Ok(None));
        }
        let granted = caps.grant.ssh.as_ref().map_or(0, |g| g.max_sessions);
        let (budget, by) =
            crate::grant::Fences::budget(granted, caps.backends.fences.ssh.max_sessions_per_run, "[ssh]");
        if !caps.units.ssh.targets.contains(&key) && caps.units.ssh.targets.len() >= budget as usize {
            let reason = format!("{by} allows {budget} SSH sessions per run");
            self.audit(call, label.to_string(), Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        if target.credential.is_empty() {
            let host = caps.addresses.get(&target.address).cloned().unwrap_or_else(|| target.address.clone());
            let reason = format!(
                "{host} has no SSH credential: give it one (cme_credential in the inventory, ?credential= on import, or credential in its JSON)"
            );
            self.audit(call, label.to_string(), Decision::Allowed, Some(reason.clone()));
            return Ok(Err(HostError::InvalidArgument(reason)));
        }
        let credential = match backend.store.ssh_credential(&target.credential, &caps.owner).await {
            Ok(Some(credential)) => credential,
            Ok(None) => {
                let reason = format!("no credential named {:?} is stored on this engine", target.credential);
                self.audit(call, label.to_string(), Decision::Allowed, Some(reason.clone()));
                return Ok(Err(HostError::InvalidArgument(reason)));
            }
            Err(crate::credentials::SshStoreError::Denied(reason)) => {
                self.audit(call, label.to_string(), Decision::Denied(reason.clone()), None);
                return Ok(Err(HostError::Denied(reason)));
            }
            Err(crate::credentials::SshStoreError::Unavailable(reason)) => {
                self.audit(call, label.to_string(), Decision::Unavailable(reason.clone()), None);
                return Ok(Err(HostError::Unavailable(reason)));
            }
        };
        let caps = self.caps.as_mut().expect("admitted");
        caps.units.ssh.targets.insert(key.clone());
        if caps.dry_run {
            return Ok(Ok(None));
        }
        let user = if target.user.is_empty() { credential.user } else { target.user.clone() };
        let cloud_target = CloudTarget { host: target.address.clone(), port: target.port, user };
        let mut config = backend.config.clone();
        config.connect_timeout = config.connect_timeout.min(self.remaining());
        match SshSession::connect(&config, &cloud_target, &credential.key).await {
            Ok(session) => {
                let session = Arc::new(session);
                self.caps.as_mut().expect("admitted").units.ssh.sessions.insert(key, session.clone());
                Ok(Ok(Some(session)))
            }
            Err(e) => Ok(Err(self.ssh_failed(call, label.to_string(), e))),
        }
    }

    fn deny(&mut self, call: &str, label: &str, reason: String) -> HostError {
        self.audit(call, label.to_string(), Decision::Denied(reason.clone()), None);
        HostError::Denied(reason)
    }

    pub(super) fn record_ssh_dry_run(&mut self, call: &str, label: String, action: String) {
        self.caps.as_mut().expect("admitted").actions.push(action);
        self.audit(call, label, Decision::Allowed, Some("dry run: not sent".into()));
    }

    /// Time left before the run's deadline (at least a millisecond, so a timeout fires
    /// rather than panics).
    pub(super) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
    }

    fn ssh_failed(&mut self, call: &str, label: String, error: SshError) -> HostError {
        let message = error.to_string();
        let refused_by_policy = matches!(error, SshError::HostKeyUnknown { .. } | SshError::HostKeyChanged { .. });
        let decision = if refused_by_policy { Decision::Denied(message.clone()) } else { Decision::Allowed };
        self.audit(call, label, decision, Some(message.clone()));
        match error {
            SshError::HostKeyUnknown { .. } | SshError::HostKeyChanged { .. } => HostError::Denied(message),
            SshError::Timeout(_) => HostError::Timeout(message),
            SshError::InvalidArgument(_) => HostError::InvalidArgument(message),
            SshError::InvalidKey(_) => HostError::Unavailable(message),
            SshError::Connect { .. } | SshError::Auth { .. } | SshError::Session(_) => HostError::Upstream(message),
        }
    }
}

/// Sessions are shared by calls to the same address, port, user and credential.
fn session_key(target: &Target) -> String {
    format!("{}\0{}\0{}\0{}", target.address, target.port, target.user, target.credential)
}
