//! Host capabilities, one module per WIT interface. Every capability call goes the same
//! way: count it against the host-call cap, check declaration AND grant, audit the
//! decision, then act (or, in a dry run, record what would have been done).

mod budgets;
mod ec2;
mod http;
mod inventory;
mod legacy;
mod log;
mod scripts;
mod ssh;
mod undo;

pub(crate) use legacy::convert as convert_version;

use cme_model::Locked;
use std::sync::Arc;

use cme_cloud::http::{HttpClient, HttpConfig};
use cme_cloud::scripts::ScriptLibrary;
use cme_cloud::ssh::SshSession;

use crate::audit::Decision;
use crate::bindings::HostError;
use crate::credentials::SshBackend;
use crate::grant::{self, CapabilityUse, Fences, Grant};
use crate::info::Capability;
use crate::state::CallState;

/// The capability backends an engine has, shared by all runs (configure phase).
#[derive(Debug, Default)]
pub struct Backends {
    pub http: HttpConfig,
    pub scripts: ScriptLibrary,
    /// None: this engine has no EC2 configuration; calls answer `unavailable`.
    pub ec2: Option<Arc<cme_cloud::ec2::Ec2>>,
    /// None: this engine has no SSH configuration; calls answer `unavailable`.
    pub ssh: Option<SshBackend>,
    /// The operator's fences, intersected with every grant.
    pub fences: Fences,
    /// The engine's own API sockets, refused as HTTP targets.
    pub own_sockets: Vec<std::net::SocketAddr>,
    /// The operator's blast-radius budgets, and where they are charged.
    pub budgets: cme_grant::Budgets,
    pub ledger: Option<Arc<dyn crate::BudgetLedger>>,
    /// HTTP clients by egress rules: runs with the same declaration and grant share one
    /// client and its connection pool (building a TLS client costs milliseconds).
    http_clients: std::sync::Mutex<std::collections::HashMap<String, HttpClient>>,
}

impl Backends {
    pub fn new(http: HttpConfig, scripts: ScriptLibrary) -> Self {
        Backends {
            http,
            scripts,
            ec2: None,
            ssh: None,
            fences: Fences::default(),
            own_sockets: Vec::new(),
            budgets: Default::default(),
            ledger: None,
            http_clients: Default::default(),
        }
    }

    /// The client for these rules, built on first use.
    pub(crate) fn http_client(
        &self,
        declared: &[Capability],
        grant: &Grant,
    ) -> Result<HttpClient, cme_cloud::http::HttpError> {
        const MAX_CLIENTS: usize = 256;
        let key = serde_json::to_string(&(declared, &grant.http)).unwrap_or_default();
        let mut clients = self.http_clients.locked();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let rules = grant::http_rules(declared, grant, &self.fences, &self.own_sockets)
            .expect("admitted HTTP calls have an HTTP grant");
        let names = grant.http.as_ref().map(|h| h.credentials.as_slice()).unwrap_or_default();
        let credentials = cme_cloud::http::granted_credentials(&self.http.credentials, names)?;
        let client = HttpClient::new(&self.http, rules, credentials)?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// One run's capabilities (prepare phase): its declaration, grant and per-run clients.
pub(crate) struct Capabilities {
    pub declared: Vec<Capability>,
    pub grant: Grant,
    pub dry_run: bool,
    pub backends: Arc<Backends>,
    /// On whose behalf the run acts (credential lookups are checked against it).
    pub owner: crate::credentials::RunOwner,
    pub http_requests: u32,
    pub actions: Vec<String>,
    /// Instances this run obtained from describe-instances, by id, with their region:
    /// the only ones it may terminate.
    pub discovered: std::collections::HashMap<String, String>,
    pub terminated: u32,
    /// Addresses (private and public) of the instances this run described, and of the
    /// inventory hosts it listed, with what they are: the only hosts it may open SSH
    /// sessions to (besides granted networks).
    pub addresses: std::collections::HashMap<String, String>,
    /// Open SSH sessions by target, reused by later calls of the same run.
    pub ssh_sessions: std::collections::HashMap<String, Arc<SshSession>>,
    /// Targets this run used (dry or not): what the session budget counts.
    pub ssh_targets: std::collections::HashSet<String>,
    /// A probe's check: its HTTP requests only observe (see `http.rs`).
    pub probe: Option<ProbeMode>,
}

/// How a probe's check runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeMode {
    /// The engine or the plan runs dry: methods other than GET and HEAD are recorded, not sent.
    pub dry_run: bool,
}

impl Capabilities {
    pub fn new(
        declared: Vec<Capability>,
        grant: Grant,
        dry_run: bool,
        backends: Arc<Backends>,
        owner: crate::credentials::RunOwner,
    ) -> Self {
        Capabilities {
            declared,
            grant,
            dry_run,
            backends,
            owner,
            http_requests: 0,
            actions: Vec::new(),
            discovered: Default::default(),
            terminated: 0,
            addresses: Default::default(),
            ssh_sessions: Default::default(),
            ssh_targets: Default::default(),
            probe: None,
        }
    }
}

impl CallState {
    /// The common gate of every capability call: host-call cap, then declaration and
    /// grant. On refusal the call is audited and the plugin gets `denied`.
    pub(crate) fn admit(
        &mut self,
        call: &str,
        target: &str,
        using: CapabilityUse<'_>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        self.count_host_call()?;
        let verdict = match &self.caps {
            None => Err("no capabilities are available while describe() or a planner runs".to_string()),
            Some(caps) => grant::check(&caps.declared, &caps.grant, &caps.backends.fences, using).map_err(|d| d.0),
        };
        Ok(verdict.map_err(|reason| {
            self.audit(call, target.to_string(), Decision::Denied(reason.clone()), None);
            HostError::Denied(reason)
        }))
    }

    /// Answers `unavailable` for a capability this engine has no backend for (after the
    /// same checks as any call, so an undeclared call is still `denied`).
    pub(crate) fn unavailable(&mut self, call: &str, target: &str, what: &str) -> HostError {
        let reason = format!("{what} is not available on this engine");
        self.audit(call, target.to_string(), Decision::Unavailable(reason.clone()), None);
        HostError::Unavailable(reason)
    }
}

impl crate::bindings::wit_types::Host for CallState {}
