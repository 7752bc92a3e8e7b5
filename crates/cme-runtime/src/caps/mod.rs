//! Host capabilities as units, one per WIT interface, on the model of Spin's factors.
//!
//! A unit is one module that owns everything of its interface: the binding glue (the
//! generated `Host` trait, implemented for [`CallState`]), its grant rule
//! ([`Unit::check`]), what a built-in plugin is granted for a declaration
//! ([`Unit::grant_as_declared`]), the state one run keeps ([`Unit::RunState`]), its audit
//! calls (named `<interface>.<function>`) and the fences it applies. Every call goes the
//! same way: count it against the host-call cap, check declaration AND grant
//! ([`CallState::admit`]), audit the decision, then act (or, in a dry run, record what
//! would have been done).
//!
//! Adding an interface is its WIT, one unit module, and one line in [`units!`] below
//! (the world's generated `add_to_linker` links it, and refuses to compile until the
//! unit implements its `Host` trait). The operator's side of a granted interface (its
//! grant section and fence) lives in `cme-grant`, because the engine stores grants
//! without depending on this crate.

mod budgets;
mod legacy;
mod v0_2;
mod v0_3;

pub(crate) use legacy::convert as convert_version;

use std::sync::Arc;

use cme_cloud::http::{HttpClient, HttpConfig};
use cme_cloud::scripts::ScriptLibrary;

use crate::audit::Decision;
use crate::bindings::HostError;
use crate::credentials::SshBackend;
use crate::grant::{Denial, Fences, Grant};
use crate::info::Capability;
use crate::state::CallState;

/// One host interface as a unit.
pub(crate) trait Unit {
    /// The WIT interface the unit implements (`cme:plugin/<name>`).
    const INTERFACE: &'static str;
    /// What one run keeps of this interface (prepare phase), e.g. the requests it made.
    type RunState: Default + Send;
    /// One call's use of the interface, as the grant rule sees it (e.g. its region).
    type Use<'a>: Copy;
    /// The grant rule: whether the plugin declared this use AND the grant allows it,
    /// within the operator's fences. The text of a denial names what is missing.
    fn check(declared: &[Capability], grant: &Grant, fences: &Fences, using: Self::Use<'_>) -> Result<(), Denial>;
    /// Adds to `grant` what a built-in plugin is granted for its `declared` capabilities
    /// (default: nothing).
    fn grant_as_declared(_declared: &[Capability], _grant: &mut Grant) {}
}

/// The registry: one line per unit (`field: module::Unit`). It declares the unit's
/// module, gives each run a slot for the unit's state, lists the interfaces (a test
/// checks them against the WIT worlds) and builds the as-declared grant from every unit.
macro_rules! units {
    ($($field:ident: $module:ident :: $unit:ident),* $(,)?) => {
        $(mod $module;)*

        /// Each unit's state for one run.
        #[derive(Default)]
        #[allow(dead_code, reason = "a unit without state of its own has a `()` slot")]
        pub(crate) struct RunStates {
            $(pub $field: <$module::$unit as Unit>::RunState,)*
        }

        /// The interfaces the units implement, in registration order.
        #[cfg(test)]
        pub(crate) const INTERFACES: &[&str] = &[$(<$module::$unit as Unit>::INTERFACE,)*];

        /// The grant that allows exactly what a plugin declares, as each unit grants it.
        pub(crate) fn as_declared(declared: &[Capability]) -> Grant {
            let mut grant = Grant::default();
            $(<$module::$unit as Unit>::grant_as_declared(declared, &mut grant);)*
            grant
        }
    };
}

units! {
    log: log::Log,
    http: http::Http,
    ec2: ec2::Ec2,
    ssh: ssh::Ssh,
    inventory: inventory::Inventory,
    undo: undo::UndoUnit,
    scripts: scripts::Scripts,
    compute: compute::Compute,
}

/// The capability backends an engine has, shared by all runs (configure phase).
#[derive(Debug, Default)]
pub struct Backends {
    pub http: HttpConfig,
    pub scripts: ScriptLibrary,
    /// None: this engine has no EC2 configuration; calls answer `unavailable`.
    pub ec2: Option<Arc<cme_cloud::ec2::Ec2>>,
    /// None: this engine has no SSH configuration; calls answer `unavailable`.
    pub ssh: Option<SshBackend>,
    /// The clouds `compute` reaches (`[[clouds]]`).
    pub clouds: Vec<cme_cloud::compute::Cloud>,
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
            clouds: Vec::new(),
            fences: Fences::default(),
            own_sockets: Vec::new(),
            budgets: Default::default(),
            ledger: None,
            http_clients: Default::default(),
        }
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
    /// What a dry run would have done, in order.
    pub actions: Vec<String>,
    /// Addresses (private and public) of the instances this run described, and of the
    /// inventory hosts it listed, with what they are: the only hosts it may open SSH
    /// sessions to (besides granted networks).
    pub addresses: std::collections::HashMap<String, String>,
    /// A probe's check: its HTTP requests only observe (see `http.rs`).
    pub probe: Option<ProbeMode>,
    /// Each unit's own state for this run.
    pub units: RunStates,
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
            actions: Vec::new(),
            addresses: Default::default(),
            probe: None,
            units: RunStates::default(),
        }
    }
}

impl CallState {
    /// The common gate of every capability call: host-call cap, then declaration and
    /// grant. On refusal the call is audited and the plugin gets `denied`.
    pub(crate) fn admit<U: Unit>(
        &mut self,
        call: &str,
        target: &str,
        using: U::Use<'_>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        self.count_host_call()?;
        tracing::trace!(plugin = %self.plugin, interface = U::INTERFACE, call, target = %cme_secrets::text_of(target), "capability call");
        let verdict = match &self.caps {
            None => Err("no capabilities are available while describe() or a planner runs".to_string()),
            Some(caps) => U::check(&caps.declared, &caps.grant, &caps.backends.fences, using).map_err(|d| d.0),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::grant::{Ec2Grant, HttpGrant, SshGrant};
    use ec2::{Ec2, Ec2Use};

    /// One call as a unit's rule sees it.
    #[derive(Debug, Clone, Copy)]
    enum CapabilityUse {
        Http,
        Ec2Describe { region: &'static str },
        Ec2Terminate { region: &'static str },
        Ssh,
        Inventory { name: &'static str },
        Scripts,
    }

    /// The rule of the unit the call belongs to.
    fn check(declared: &[Capability], grant: &Grant, fences: &Fences, call: CapabilityUse) -> Result<(), Denial> {
        match call {
            CapabilityUse::Http => http::Http::check(declared, grant, fences, ()),
            CapabilityUse::Ec2Describe { region } => Ec2::check(declared, grant, fences, Ec2Use::Describe { region }),
            CapabilityUse::Ec2Terminate { region } => Ec2::check(declared, grant, fences, Ec2Use::Terminate { region }),
            CapabilityUse::Ssh => ssh::Ssh::check(declared, grant, fences, ()),
            CapabilityUse::Inventory { name } => inventory::Inventory::check(declared, grant, fences, name),
            CapabilityUse::Scripts => scripts::Scripts::check(declared, grant, fences, ()),
        }
    }

    fn ec2(regions: &[&str], terminate: bool) -> Grant {
        Grant {
            ec2: Some(Ec2Grant {
                regions: regions.iter().map(|r| r.to_string()).collect(),
                required_tags: BTreeMap::new(),
                terminate,
                disrupt: false,
                max_terminations_per_run: 1,
            }),
            ..Grant::default()
        }
    }

    #[test]
    fn calls_need_declaration_and_grant() {
        let http = || vec![Capability::Http { urls: vec!["*".into()] }];
        let describe_eu = || vec![Capability::Ec2Describe { regions: vec!["eu-west-1".into()] }];
        let terminate_any = || vec![Capability::Ec2Terminate { regions: vec![] }];
        let http_grant =
            Grant { http: Some(HttpGrant { urls: vec!["*".into()], ..Default::default() }), ..Grant::default() };
        type Case = (&'static str, Vec<Capability>, Grant, CapabilityUse, Result<(), &'static str>);
        let cases: Vec<Case> = vec![
            ("http declared and granted", http(), http_grant.clone(), CapabilityUse::Http, Ok(())),
            (
                "http granted, not declared",
                vec![],
                http_grant.clone(),
                CapabilityUse::Http,
                Err("not among the capabilities"),
            ),
            ("http declared, not granted", http(), Grant::default(), CapabilityUse::Http, Err("http is not granted")),
            (
                "describe in declared and granted region",
                describe_eu(),
                ec2(&["eu-west-1"], false),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Ok(()),
            ),
            (
                "describe in an undeclared region",
                describe_eu(),
                ec2(&[], false),
                CapabilityUse::Ec2Describe { region: "us-east-1" },
                Err("region us-east-1 is not among"),
            ),
            (
                "describe in an ungranted region",
                describe_eu(),
                ec2(&["us-east-1"], false),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Err("granted regions"),
            ),
            (
                "describe with empty region lists means any",
                vec![Capability::Ec2Describe { regions: vec![] }],
                ec2(&[], false),
                CapabilityUse::Ec2Describe { region: "ap-south-1" },
                Ok(()),
            ),
            (
                "terminate declared but grant is describe-only",
                terminate_any(),
                ec2(&[], false),
                CapabilityUse::Ec2Terminate { region: "us-east-1" },
                Err("terminate-instances is not granted"),
            ),
            (
                "terminate declared and granted",
                terminate_any(),
                ec2(&[], true),
                CapabilityUse::Ec2Terminate { region: "us-east-1" },
                Ok(()),
            ),
            (
                "a terminate declaration covers describe",
                terminate_any(),
                ec2(&[], true),
                CapabilityUse::Ec2Describe { region: "us-east-1" },
                Ok(()),
            ),
            (
                "a describe declaration does not cover terminate",
                describe_eu(),
                ec2(&[], true),
                CapabilityUse::Ec2Terminate { region: "eu-west-1" },
                Err("not among"),
            ),
            (
                "ec2 declared, not granted",
                describe_eu(),
                Grant::default(),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Err("is not granted"),
            ),
            (
                "ssh declared, not granted",
                vec![Capability::Ssh],
                Grant::default(),
                CapabilityUse::Ssh,
                Err("ssh is not granted"),
            ),
            (
                "ssh granted, not declared",
                vec![],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }),
                    ..Grant::default()
                },
                CapabilityUse::Ssh,
                Err("not among"),
            ),
            (
                "ssh declared and granted",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }),
                    ..Grant::default()
                },
                CapabilityUse::Ssh,
                Ok(()),
            ),
            (
                "inventory not named by the grant",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["db".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Err("inventory web is not granted"),
            ),
            (
                "inventory named by the grant",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["web".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Ok(()),
            ),
            (
                "every inventory granted",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["*".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Ok(()),
            ),
            (
                "inventory without ssh declared",
                vec![],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["*".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Err("not among"),
            ),
            (
                "scripts declared, not granted",
                vec![Capability::Scripts],
                Grant::default(),
                CapabilityUse::Scripts,
                Err("scripts is not granted"),
            ),
            (
                "scripts declared and granted",
                vec![Capability::Scripts],
                Grant { scripts: true, ..Grant::default() },
                CapabilityUse::Scripts,
                Ok(()),
            ),
        ];
        for (name, declared, grant, call, expected) in cases {
            let got = check(&declared, &grant, &Fences::default(), call);
            match (expected, got) {
                (Ok(()), Ok(())) => {}
                (Err(fragment), Err(Denial(message))) => {
                    assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}")
                }
                (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn as_declared_grants_what_is_declared_and_no_link_local() {
        let declared = vec![
            Capability::Http { urls: vec!["*".into()] },
            Capability::Ec2Terminate { regions: vec!["eu-west-1".into()] },
            Capability::Scripts,
        ];
        let grant = as_declared(&declared);
        assert_eq!(grant.http.as_ref().unwrap().urls, vec!["*".to_string()]);
        assert!(!grant.http.as_ref().unwrap().allow_link_local);
        let ec2 = grant.ec2.as_ref().unwrap();
        assert!(ec2.terminate);
        assert_eq!(ec2.max_terminations_per_run, 1);
        assert_eq!(ec2.regions, vec!["eu-west-1".to_string()]);
        assert!(grant.scripts);
        assert!(grant.ssh.is_none());
        assert!(check(&declared, &grant, &Fences::default(), CapabilityUse::Ssh).is_err());
    }

    #[test]
    fn the_units_are_the_interfaces_the_worlds_import() {
        let wit = include_str!("../../../../wit/cme-plugin.wit");
        let mut imported: Vec<String> = wit
            .lines()
            .filter_map(|line| line.trim().strip_prefix("import ")?.strip_suffix(';'))
            .filter(|name| *name != "types")
            .map(|name| format!("cme:plugin/{name}"))
            .collect();
        imported.sort();
        imported.dedup();
        let mut units: Vec<String> = INTERFACES.iter().map(|s| s.to_string()).collect();
        units.sort();
        assert_eq!(units, imported, "every imported interface has exactly one unit in units!, and no other");
    }
}
