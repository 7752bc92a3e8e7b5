//! A mock host: run a plugin's `run`, `plan` or `check` under `cargo test`, on the build
//! machine, with capability calls answered from fixtures and recorded.
//!
//! The mock applies the host's rules that a plugin author can get wrong: args are checked
//! against the plugin's schema before the call (as the engine checks a plan), a call
//! outside what [`Describe`] declared (or outside the grant you give the mock) is
//! [`HostError::Denied`], URLs are judged by the engine's own pattern rule, only
//! instances this run described can be terminated or reached over SSH, and a dry run
//! sends nothing. What it does not model: budgets, fences, egress rules and time limits;
//! `cme plugins run FILE.wasm` runs the built component with the real host for those.
//!
//! ```
//! # #[cfg(feature = "attack")] {
//! use cme_plugin_sdk::attack::{Attack, Report, RunContext};
//! use cme_plugin_sdk::testing::{Call, MockHost};
//! use cme_plugin_sdk::{Capability, Describe, PluginError, http, json};
//!
//! struct Ping;
//! impl Attack for Ping {
//!     type Args = serde_json::Value;
//!     fn describe() -> Describe {
//!         Describe::new("ping", "1.0.0").capability(Capability::Http(vec!["http://svc/*".into()]))
//!     }
//!     fn run(_: &RunContext, args: Self::Args) -> Result<Report, PluginError> {
//!         let url = args["url"].as_str().unwrap_or_default().to_string();
//!         let answer = http::send(&http::Request { method: "GET".into(), url: url.clone(), headers: vec![], body: None, timeout_ms: None })?;
//!         Ok(Report::new(format!("{url} -> {}", answer.status)))
//!     }
//! }
//!
//! let host = MockHost::new().http_answer("GET", "http://svc/health", 503, "down");
//! let outcome = host.run::<Ping>(json!({"url": "http://svc/health"}));
//! assert_eq!(outcome.result.unwrap().summary, "http://svc/health -> 503");
//! assert!(matches!(&outcome.calls[0], Call::Http { url, denied: None, .. } if url == "http://svc/health"));
//!
//! // Not declared: denied, as the engine would.
//! let outcome = host.run::<Ping>(json!({"url": "http://elsewhere/"}));
//! assert!(matches!(outcome.result, Err(PluginError::Denied(_))));
//! # }
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::compute::{Acted, Node, NodeFilters, NodeState};
use crate::ec2::{Filter, Instance, Terminated};
use crate::http::{Request, Response};
use crate::inventory::InventoryHost;
use crate::log::Level;
use crate::pattern::UrlPattern;
use crate::ssh::{ExecOutput, Target};
use crate::{Capability, Describe, HostError, KeyValue, PluginError};

type HttpHandler = Rc<dyn Fn(&Request) -> Result<Response, HostError>>;
type SshHandler = Rc<dyn Fn(&Target, &str) -> Result<ExecOutput, HostError>>;

/// Fixtures and settings for calls to a plugin; cheap to clone, reusable across calls.
///
/// By default: now is 2030-01-01T00:00:00Z, not a dry run, the run id is `test-run`, the
/// plan's zone is UTC with seed 0 and a 7-day window from now, everything the plugin
/// declares is granted, and no fixture is set (an HTTP request without an answer gets
/// `HostError::Upstream`, EC2 regions are empty, scripts unknown, SSH commands exit 0).
#[derive(Clone)]
pub struct MockHost {
    now: DateTime<Utc>,
    dry_run: bool,
    run_id: String,
    timezone: Tz,
    seed: u64,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    grant: Option<Vec<Capability>>,
    http_answers: Vec<(String, String, Result<Response, HostError>)>,
    http_handler: Option<HttpHandler>,
    instances: BTreeMap<String, Vec<Instance>>,
    scripts: BTreeMap<String, Vec<u8>>,
    ssh_handler: Option<SshHandler>,
    inventories: BTreeMap<String, Vec<InventoryHost>>,
    nodes: BTreeMap<String, Vec<Node>>,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost {
            now: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("a valid date"),
            dry_run: false,
            run_id: "test-run".into(),
            timezone: chrono_tz::UTC,
            seed: 0,
            window: None,
            grant: None,
            http_answers: Vec::new(),
            http_handler: None,
            instances: BTreeMap::new(),
            scripts: BTreeMap::new(),
            ssh_handler: None,
            inventories: BTreeMap::new(),
            nodes: BTreeMap::new(),
        }
    }
}

/// One capability call the plugin made, in order. `denied` holds the refusal's text when
/// the mock refused it (the plugin received `HostError::Denied`).
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `http::send`.
    Http {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// The request's body as lossy UTF-8, empty without one.
        body: String,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `ec2::describe_instances`.
    Ec2Describe {
        /// The region asked.
        region: String,
        /// The filters, as given.
        filters: Vec<Filter>,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `ec2::terminate_instances`.
    Ec2Terminate {
        /// The region asked.
        region: String,
        /// The instances to terminate.
        instance_ids: Vec<String>,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `ec2::stop_instances`, `reboot_instances`, `isolate_instances` or `isolate_subnets`.
    Ec2Disrupt {
        /// `stop`, `reboot`, `isolate` or `isolate-subnets`.
        operation: String,
        /// The region asked.
        region: String,
        /// The instances (or subnets).
        ids: Vec<String>,
        /// How long at most before the host reverts it.
        hold_ms: u64,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `undo::arm_http`.
    UndoArmHttp {
        /// The request's method.
        method: String,
        /// The request's URL.
        url: String,
        /// After how long.
        after_ms: u64,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `ssh::upload`.
    SshUpload {
        /// The target's address.
        address: String,
        /// Where the file was written.
        remote_path: String,
        /// How many bytes.
        bytes: usize,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `ssh::exec`.
    SshExec {
        /// The target's address.
        address: String,
        /// The command.
        command: String,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `inventory::hosts`.
    InventoryHosts {
        /// The inventory asked.
        name: String,
        /// The tags asked, as `key=value`.
        tags: Vec<String>,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `undo::arm`.
    UndoArm {
        /// The target's address.
        address: String,
        /// The undo command.
        command: String,
        /// After how long.
        after_ms: u64,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `compute::list_nodes`.
    ComputeList {
        /// The cloud asked.
        cloud: String,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `compute::stop_node`, `start_node`, `reboot_node` or `destroy_node`.
    ComputeOperate {
        /// `stop-node`, `start-node`, `reboot-node` or `destroy-node`.
        operation: String,
        /// The cloud.
        cloud: String,
        /// The node's id.
        node_id: String,
        /// A stop's longest hold before the host starts the node again (0 otherwise).
        hold_ms: u64,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
    /// `scripts::read`.
    ScriptRead {
        /// The script's name.
        name: String,
        /// Why it was refused, if it was.
        denied: Option<String>,
    },
}

impl Call {
    /// Why the call was refused, or None when it was allowed.
    pub fn denied(&self) -> Option<&str> {
        match self {
            Call::Http { denied, .. }
            | Call::Ec2Describe { denied, .. }
            | Call::Ec2Terminate { denied, .. }
            | Call::Ec2Disrupt { denied, .. }
            | Call::UndoArmHttp { denied, .. }
            | Call::SshUpload { denied, .. }
            | Call::SshExec { denied, .. }
            | Call::InventoryHosts { denied, .. }
            | Call::UndoArm { denied, .. }
            | Call::ComputeList { denied, .. }
            | Call::ComputeOperate { denied, .. }
            | Call::ScriptRead { denied, .. } => denied.as_deref(),
        }
    }
}

/// What a call to the plugin gave: its result, the capability calls it made and the
/// lines it logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// What `run`, `plan` or `check` returned (or the args' refusal, before the call).
    pub result: Result<T, PluginError>,
    /// Every capability call, in order.
    pub calls: Vec<Call>,
    /// Every log line, in order.
    pub log: Vec<(Level, String)>,
}

impl MockHost {
    /// A host with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine's current time as the plugin sees it.
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// Runs attacks as dry runs: nothing is sent, terminated or executed.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The run's id (an attack's random picks are seeded from it).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = run_id.into();
        self
    }

    /// A planner's zone, seed and window (`from`, `until`).
    pub fn plan_context(mut self, timezone: Tz, seed: u64, window: (DateTime<Utc>, DateTime<Utc>)) -> Self {
        self.timezone = timezone;
        self.seed = seed;
        self.window = Some(window);
        self
    }

    /// What the operator granted; a call must fit both this and the declaration. Without
    /// it, everything declared is granted.
    pub fn grant(mut self, capabilities: Vec<Capability>) -> Self {
        self.grant = Some(capabilities);
        self
    }

    /// Answers `method url` (exact URL) with `status` and `body`.
    pub fn http_answer(self, method: &str, url: &str, status: u16, body: &str) -> Self {
        let response = Response {
            status,
            headers: vec![KeyValue { key: "content-type".into(), value: "text/plain".into() }],
            body: body.as_bytes().to_vec(),
            body_truncated: false,
            final_url: url.into(),
            elapsed_ms: 1,
        };
        self.http_result(method, url, Ok(response))
    }

    /// Answers `method url` with a host error, e.g. `HostError::Timeout("10000".into())`.
    pub fn http_error(self, method: &str, url: &str, error: HostError) -> Self {
        self.http_result(method, url, Err(error))
    }

    fn http_result(mut self, method: &str, url: &str, result: Result<Response, HostError>) -> Self {
        self.http_answers.push((method.to_ascii_uppercase(), url.to_string(), result));
        self
    }

    /// Answers every HTTP request without a fixture.
    pub fn http_handler(mut self, handler: impl Fn(&Request) -> Result<Response, HostError> + 'static) -> Self {
        self.http_handler = Some(Rc::new(handler));
        self
    }

    /// The instances `ec2::describe_instances` sees in `region`. Filters on
    /// `instance-state-name`, `instance-id`, `instance-type`, `availability-zone` and
    /// `tag:KEY` apply (values may end in `*`); other filters are ignored.
    pub fn instances(mut self, region: &str, instances: Vec<Instance>) -> Self {
        self.instances.insert(region.to_string(), instances);
        self
    }

    /// The nodes `compute::list_nodes` sees on `cloud` (see [`node`]). Every filter
    /// applies, as the host applies them.
    pub fn nodes(mut self, cloud: &str, nodes: Vec<Node>) -> Self {
        self.nodes.insert(cloud.to_string(), nodes);
        self
    }

    /// A script in the library.
    pub fn script(mut self, name: &str, contents: &[u8]) -> Self {
        self.scripts.insert(name.to_string(), contents.to_vec());
        self
    }

    /// Stores an inventory for `inventory::hosts` (see [`inventory_host`]).
    pub fn inventory(mut self, name: &str, hosts: Vec<InventoryHost>) -> Self {
        self.inventories.insert(name.into(), hosts);
        self
    }

    /// Answers `ssh::exec` (by default: exit code 0, no output).
    pub fn ssh_handler(mut self, handler: impl Fn(&Target, &str) -> Result<ExecOutput, HostError> + 'static) -> Self {
        self.ssh_handler = Some(Rc::new(handler));
        self
    }

    /// Runs an attack with `args`, as the engine would run one executor of a plan.
    #[cfg(any(feature = "attack", doc, test))]
    pub fn run<A: crate::attack::Attack>(&self, args: Value) -> Outcome<crate::attack::Report> {
        let ctx = crate::attack::RunContext {
            run_id: self.run_id.clone(),
            now: self.now,
            dry_run: self.dry_run,
            time_left: std::time::Duration::from_secs(60),
        };
        self.call(A::describe(), &args, |json| crate::attack::run_json::<A>(&ctx, json))
    }

    /// Asks a planner for its schedule, as the engine does when a plan is created.
    #[cfg(any(feature = "planner", doc, test))]
    pub fn plan<P: crate::planner::Planner>(&self, args: Value) -> Outcome<crate::planner::Schedule> {
        let (from, until) = self.window.unwrap_or((self.now, self.now + chrono::Duration::days(7)));
        let ctx = crate::planner::PlanContext {
            now: self.now,
            timezone: self.timezone,
            seed: self.seed,
            window: crate::planner::Window { from, until },
        };
        self.call(P::describe(), &args, |json| crate::planner::plan_json::<P>(&ctx, json))
    }

    /// Asks a probe whether the system is healthy (probes are never dry runs).
    #[cfg(any(feature = "probe", doc, test))]
    pub fn check<P: crate::probe::Probe>(&self, args: Value) -> Outcome<crate::probe::Verdict> {
        let ctx = crate::probe::ProbeContext {
            check_id: self.run_id.clone(),
            now: self.now,
            time_left: std::time::Duration::from_secs(60),
        };
        let host = MockHost { dry_run: false, ..self.clone() };
        host.call(P::describe(), &args, |json| crate::probe::check_json::<P>(&ctx, json))
    }

    #[cfg_attr(not(any(feature = "attack", feature = "planner", feature = "probe", doc, test)), allow(dead_code))]
    fn call<T>(&self, describe: Describe, args: &Value, f: impl FnOnce(&str) -> Result<T, PluginError>) -> Outcome<T> {
        if let Err(refusal) = validate_args(&describe, args) {
            return Outcome { result: Err(PluginError::InvalidArgs(refusal)), calls: Vec::new(), log: Vec::new() };
        }
        let session = Session {
            host: self.clone(),
            declared: describe.capabilities,
            calls: Vec::new(),
            log: Vec::new(),
            described: HashSet::new(),
        };
        let previous = SESSION.with(|s| s.borrow_mut().replace(session));
        assert!(previous.is_none(), "a plugin called through MockHost called MockHost again");
        // The session is taken back even if the plugin panics, so a failing test does not
        // poison the next one on this thread.
        struct Restore;
        impl Drop for Restore {
            fn drop(&mut self) {
                SESSION.with(|s| s.borrow_mut().take());
            }
        }
        let restore = Restore;
        let result = f(&args.to_string());
        let session = SESSION.with(|s| s.borrow_mut().take()).expect("the session set above");
        drop(restore);
        Outcome { result, calls: session.calls, log: session.log }
    }
}

/// A running node for [`MockHost::nodes`]: `id` (also its name), a zone, tags and one
/// private address.
pub fn node(id: &str, zone: &str, tags: &[(&str, &str)], private_address: &str) -> Node {
    Node {
        id: id.into(),
        name: id.into(),
        state: NodeState::Running,
        provider_state: "running".into(),
        provider: "mock".into(),
        region: Some(zone.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim_end_matches('-').into()),
        zone: Some(zone.into()),
        tags: tags.iter().map(|(k, v)| KeyValue { key: (*k).into(), value: (*v).into() }).collect(),
        private_addresses: vec![private_address.into()],
        public_addresses: vec![],
        image: None,
        size: None,
    }
}

/// Checks what the engine checks when a plugin is uploaded: a kebab-case name, a semver
/// version, a schema that compiles and an example that validates against it. Call it
/// from a test so a bad description fails `cargo test`, not the upload.
pub fn validate_describe(describe: &Describe) -> Result<(), String> {
    if !crate::is_plugin_name(&describe.name) {
        return Err(format!("name {:?} is not kebab-case (e.g. kill-pod)", describe.name));
    }
    let parts: Vec<&str> = describe.version.split(['-', '+']).next().unwrap_or_default().split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return Err(format!("version {:?} is not semver (e.g. 1.0.0)", describe.version));
    }
    if describe.refs.is_empty() {
        return Err("refs is empty: a plugin needs at least one ref, e.g. my_attack:MyAttack".into());
    }
    for r in &describe.refs {
        if r.trim().is_empty() {
            return Err("a ref is empty".into());
        }
    }
    validate_args(describe, &describe.example)
        .map_err(|e| format!("the example does not validate against the schema: {e}"))
}

/// The args against the schema, with the engine's wording (`/path: reason`).
fn validate_args(describe: &Describe, args: &Value) -> Result<(), String> {
    let validator =
        jsonschema::validator_for(&describe.schema).map_err(|e| format!("the args schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(args)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

pub(crate) struct Session {
    host: MockHost,
    declared: Vec<Capability>,
    calls: Vec<Call>,
    log: Vec<(Level, String)>,
    /// (region, instance id) and addresses this run obtained from describe.
    described: HashSet<String>,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Runs a capability call against the session of the plugin call in progress.
pub(crate) fn call<T>(f: impl FnOnce(&mut Session) -> T) -> T {
    SESSION.with(|s| {
        let mut guard = s.borrow_mut();
        let session = guard.as_mut().unwrap_or_else(|| {
            panic!("a capability was called outside a plugin call: call the plugin through cme_plugin_sdk::testing::MockHost (run, plan or check)")
        });
        f(session)
    })
}

/// A log line: kept by the session in progress, and always printed (cargo test shows it
/// for a failing test).
pub(crate) fn log(level: Level, message: &str) {
    eprintln!("[{level:?}] {message}");
    SESSION.with(|s| {
        if let Some(session) = s.borrow_mut().as_mut() {
            session.log.push((level, message.to_string()));
        }
    });
}

impl Session {
    /// Both the declaration and the grant (when one is given) must allow it.
    fn allowed(&self, fits: impl Fn(&Capability) -> bool, what: &str) -> Result<(), String> {
        if !self.declared.iter().any(&fits) {
            return Err(format!("{what} is not declared in describe()"));
        }
        if let Some(grant) = &self.host.grant
            && !grant.iter().any(&fits)
        {
            return Err(format!("{what} is not granted"));
        }
        Ok(())
    }

    /// Whether the plugin may send `request` (declared and granted URL patterns).
    fn http_allowed(&self, request: &Request) -> Result<url::Url, HostError> {
        let url = url::Url::parse(&request.url).map_err(|e| HostError::InvalidArgument(format!("url: {e}")))?;
        self.allowed(|c| matches!(c, Capability::Http(patterns) if patterns.iter().any(|p| UrlPattern::parse(p).is_ok_and(|p| p.matches(&url)))), &format!("HTTP to {url}"))
            .map_err(HostError::Denied)?;
        Ok(url)
    }

    pub(crate) fn http_send(&mut self, request: &Request) -> Result<Response, HostError> {
        let verdict = self.http_allowed(request);
        self.calls.push(Call::Http {
            method: request.method.clone(),
            url: request.url.clone(),
            body: request.body.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            denied: denied_text(&verdict),
        });
        verdict?;
        if self.host.dry_run {
            return Ok(Response {
                status: 0,
                headers: vec![],
                body: vec![],
                body_truncated: false,
                final_url: request.url.clone(),
                elapsed_ms: 0,
            });
        }
        let fixture = self
            .host
            .http_answers
            .iter()
            .find(|(m, u, _)| m.eq_ignore_ascii_case(&request.method) && u == &request.url);
        match (fixture, &self.host.http_handler) {
            (Some((_, _, answer)), _) => answer.clone(),
            (None, Some(handler)) => handler(request),
            (None, None) => Err(HostError::Upstream(format!(
                "the mock host has no answer for {} {}: add one with http_answer or http_handler",
                request.method, request.url
            ))),
        }
    }

    /// Whether `compute` `operation` on `cloud` is declared (and granted).
    fn compute_allowed(&self, cloud: &str, operation: &str) -> Result<(), HostError> {
        let fits = |c: &Capability| {
            matches!(c, Capability::Compute { clouds, operations }
                if (clouds.is_empty() || clouds.iter().any(|c| c == cloud))
                    && (operation == "list-nodes" || operations.iter().any(|o| o == operation)))
        };
        self.allowed(fits, &format!("compute {operation} on cloud {cloud}")).map_err(HostError::Denied)
    }

    pub(crate) fn compute_clouds(&mut self) -> Vec<String> {
        let clouds: Vec<String> = self.host.nodes.keys().cloned().collect();
        clouds.into_iter().filter(|cloud| self.compute_allowed(cloud, "list-nodes").is_ok()).collect()
    }

    pub(crate) fn compute_list(&mut self, cloud: &str, filters: &NodeFilters) -> Result<Vec<Node>, HostError> {
        let verdict = self.compute_allowed(cloud, "list-nodes");
        self.calls.push(Call::ComputeList { cloud: cloud.into(), denied: denied_text(&verdict) });
        verdict?;
        let Some(nodes) = self.host.nodes.get(cloud) else {
            return Err(HostError::Unavailable(format!(
                "cloud {cloud:?} is not configured (the mock host has no nodes for it)"
            )));
        };
        let found: Vec<Node> = nodes
            .iter()
            .filter(|n| filters.tags.iter().all(|t| n.tags.iter().any(|h| h.key == t.key && h.value == t.value)))
            .filter(|n| filters.zones.is_empty() || n.zone.as_ref().is_some_and(|z| filters.zones.contains(z)))
            .filter(|n| filters.states.is_empty() || filters.states.contains(&n.state))
            .filter(|n| filters.names.is_empty() || filters.names.contains(&n.name))
            .cloned()
            .collect();
        for node in &found {
            self.described.insert(format!("{cloud}/{}", node.id));
            self.described.extend(node.private_addresses.iter().chain(&node.public_addresses).cloned());
        }
        Ok(found)
    }

    pub(crate) fn compute_operate(
        &mut self,
        operation: &str,
        cloud: &str,
        node_id: &str,
        hold_ms: u64,
    ) -> Result<Acted, HostError> {
        let mut verdict = self.compute_allowed(cloud, operation);
        if verdict.is_ok() && !self.described.contains(&format!("{cloud}/{node_id}")) {
            verdict = Err(HostError::Denied(format!("node {node_id} was not listed by this run on cloud {cloud}")));
        }
        self.calls.push(Call::ComputeOperate {
            operation: operation.into(),
            cloud: cloud.into(),
            node_id: node_id.into(),
            hold_ms,
            denied: denied_text(&verdict),
        });
        verdict?;
        let previous = self
            .host
            .nodes
            .get(cloud)
            .and_then(|nodes| nodes.iter().find(|n| n.id == node_id))
            .map_or(NodeState::Unknown, |n| n.state);
        let target = match operation {
            "stop-node" => NodeState::Stopped,
            "destroy-node" => NodeState::Terminated,
            "reboot-node" => NodeState::Rebooting,
            _ => NodeState::Running,
        };
        let already = previous == target;
        let current = if self.host.dry_run { previous } else { target };
        Ok(Acted {
            node_id: node_id.into(),
            previous_state: previous,
            current_state: current,
            already,
            dry_run: self.host.dry_run,
        })
    }

    pub(crate) fn ec2_describe(&mut self, region: &str, filters: &[Filter]) -> Result<Vec<Instance>, HostError> {
        let verdict = self
            .allowed(|c| matches!(c, Capability::Ec2Describe(regions) if regions.is_empty() || regions.iter().any(|r| r == region)), &format!("describing EC2 instances in {region}"))
            .map_err(HostError::Denied);
        self.calls.push(Call::Ec2Describe {
            region: region.into(),
            filters: filters.to_vec(),
            denied: denied_text(&verdict),
        });
        verdict?;
        let found: Vec<Instance> = self
            .host
            .instances
            .get(region)
            .into_iter()
            .flatten()
            .filter(|i| filters.iter().all(|f| filter_matches(f, i)))
            .cloned()
            .collect();
        for instance in &found {
            self.described.insert(format!("{region}/{}", instance.instance_id));
            self.described.extend(instance.private_ip.clone());
            self.described.extend(instance.public_ip.clone());
        }
        Ok(found)
    }

    pub(crate) fn ec2_terminate(&mut self, region: &str, ids: &[String]) -> Result<Vec<Terminated>, HostError> {
        let mut verdict = self
            .allowed(|c| matches!(c, Capability::Ec2Terminate(regions) if regions.is_empty() || regions.iter().any(|r| r == region)), &format!("terminating EC2 instances in {region}"))
            .map_err(HostError::Denied);
        if verdict.is_ok()
            && let Some(unseen) = ids.iter().find(|id| !self.described.contains(&format!("{region}/{id}")))
        {
            verdict = Err(HostError::Denied(format!("{unseen} was not described by this run in {region}")));
        }
        self.calls.push(Call::Ec2Terminate {
            region: region.into(),
            instance_ids: ids.to_vec(),
            denied: denied_text(&verdict),
        });
        verdict?;
        let current = if self.host.dry_run { "dry-run" } else { "shutting-down" };
        Ok(ids
            .iter()
            .map(|id| {
                let previous = self
                    .host
                    .instances
                    .get(region)
                    .and_then(|all| all.iter().find(|i| &i.instance_id == id))
                    .map(|i| i.state.clone())
                    .unwrap_or_default();
                Terminated { instance_id: id.clone(), previous_state: previous, current_state: current.into() }
            })
            .collect())
    }

    pub(crate) fn ec2_disrupt(
        &mut self,
        operation: &str,
        region: &str,
        ids: &[String],
        hold_ms: u64,
    ) -> Result<Vec<Terminated>, HostError> {
        let mut verdict = self
            .allowed(|c| matches!(c, Capability::Ec2Disrupt(regions) if regions.is_empty() || regions.iter().any(|r| r == region)), &format!("disrupting EC2 in {region}"))
            .map_err(HostError::Denied);
        if verdict.is_ok()
            && operation != "isolate-subnets"
            && let Some(unseen) = ids.iter().find(|id| !self.described.contains(&format!("{region}/{id}")))
        {
            verdict = Err(HostError::Denied(format!("{unseen} was not described by this run in {region}")));
        }
        self.calls.push(Call::Ec2Disrupt {
            operation: operation.into(),
            region: region.into(),
            ids: ids.to_vec(),
            hold_ms,
            denied: denied_text(&verdict),
        });
        verdict?;
        let current = match (self.host.dry_run, operation) {
            (true, _) => "dry-run",
            (false, "stop") => "stopping",
            (false, "reboot") => "rebooting",
            (false, _) => "isolated",
        };
        Ok(ids
            .iter()
            .map(|id| Terminated {
                instance_id: id.clone(),
                previous_state: "running".into(),
                current_state: current.into(),
            })
            .collect())
    }

    pub(crate) fn undo_arm_http(&mut self, request: &Request, after_ms: u64) -> Result<String, HostError> {
        let verdict = self.http_allowed(request);
        self.calls.push(Call::UndoArmHttp {
            method: request.method.clone(),
            url: request.url.clone(),
            after_ms,
            denied: denied_text(&verdict),
        });
        verdict?;
        Ok(if self.host.dry_run { "dry-run".into() } else { format!("undo-{}", self.calls.len()) })
    }

    fn ssh_allowed(&self, target: &Target) -> Result<(), HostError> {
        self.allowed(|c| matches!(c, Capability::Ssh), &format!("SSH to {}", target.address))
            .map_err(HostError::Denied)?;
        if !self.described.contains(&target.address) {
            return Err(HostError::Denied(format!("{} is not an address this run described", target.address)));
        }
        Ok(())
    }

    pub(crate) fn ssh_upload(
        &mut self,
        target: &Target,
        remote_path: &str,
        contents: &[u8],
        _mode: u32,
    ) -> Result<(), HostError> {
        let verdict = self.ssh_allowed(target);
        self.calls.push(Call::SshUpload {
            address: target.address.clone(),
            remote_path: remote_path.into(),
            bytes: contents.len(),
            denied: denied_text(&verdict),
        });
        verdict
    }

    pub(crate) fn ssh_exec(
        &mut self,
        target: &Target,
        command: &str,
        _timeout_ms: u32,
    ) -> Result<ExecOutput, HostError> {
        let verdict = self.ssh_allowed(target);
        self.calls.push(Call::SshExec {
            address: target.address.clone(),
            command: command.into(),
            denied: denied_text(&verdict),
        });
        verdict?;
        match (&self.host.ssh_handler, self.host.dry_run) {
            (Some(handler), false) => handler(target, command),
            _ => Ok(ExecOutput { exit_code: Some(0), stdout: String::new(), stderr: String::new(), truncated: false }),
        }
    }

    pub(crate) fn inventory_hosts(&mut self, name: &str, tags: &[KeyValue]) -> Result<Vec<InventoryHost>, HostError> {
        let verdict = self
            .allowed(|c| matches!(c, Capability::Ssh), &format!("listing inventory {name} (it takes ssh)"))
            .map_err(HostError::Denied);
        self.calls.push(Call::InventoryHosts {
            name: name.into(),
            tags: tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect(),
            denied: denied_text(&verdict),
        });
        verdict?;
        let Some(hosts) = self.host.inventories.get(name) else {
            return Err(HostError::InvalidArgument(format!("no inventory named {name:?} is stored on this engine")));
        };
        let found: Vec<InventoryHost> =
            hosts.iter().filter(|h| tags.iter().all(|want| h.tags.contains(want))).cloned().collect();
        self.described.extend(found.iter().map(|h| h.address.clone()));
        Ok(found)
    }

    pub(crate) fn undo_arm(&mut self, target: &Target, command: &str, after_ms: u64) -> Result<String, HostError> {
        let verdict = self.ssh_allowed(target);
        self.calls.push(Call::UndoArm {
            address: target.address.clone(),
            command: command.into(),
            after_ms,
            denied: denied_text(&verdict),
        });
        verdict?;
        Ok(if self.host.dry_run { "dry-run".into() } else { format!("undo-{}", self.calls.len()) })
    }

    pub(crate) fn script_read(&mut self, name: &str) -> Result<Vec<u8>, HostError> {
        let verdict = self
            .allowed(|c| matches!(c, Capability::Scripts), &format!("reading script {name}"))
            .map_err(HostError::Denied);
        self.calls.push(Call::ScriptRead { name: name.into(), denied: denied_text(&verdict) });
        verdict?;
        let bare = name.strip_prefix("script_attacks/").unwrap_or(name);
        self.host
            .scripts
            .get(bare)
            .cloned()
            .ok_or_else(|| HostError::InvalidArgument(format!("name: no script called {name:?} in the library")))
    }
}

fn denied_text<T>(verdict: &Result<T, HostError>) -> Option<String> {
    match verdict {
        Err(HostError::Denied(why)) => Some(why.clone()),
        _ => None,
    }
}

/// EC2 filter semantics for the fields a mock instance has: any value may match, `*` at
/// the end of a value is a prefix.
fn filter_matches(filter: &Filter, instance: &Instance) -> bool {
    let field = match filter.name.as_str() {
        "instance-state-name" => Some(instance.state.clone()),
        "instance-id" => Some(instance.instance_id.clone()),
        "instance-type" => Some(instance.instance_type.clone()),
        "availability-zone" => Some(instance.availability_zone.clone()),
        name => match name.strip_prefix("tag:") {
            Some(key) => instance.tags.iter().find(|t| t.key == key).map(|t| t.value.clone()),
            None => return true,
        },
    };
    let Some(field) = field else { return false };
    filter.values.iter().any(|v| match v.strip_suffix('*') {
        Some(prefix) => field.starts_with(prefix),
        None => &field == v,
    })
}

/// An inventory host for fixtures: `inventory_host("web-1", "10.0.0.1", &[("zone", "a")])`,
/// port 22, the credential's own user, credential `fleet`.
pub fn inventory_host(name: &str, address: &str, tags: &[(&str, &str)]) -> InventoryHost {
    let mut tags: Vec<KeyValue> =
        tags.iter().map(|(k, v)| KeyValue { key: k.to_string(), value: v.to_string() }).collect();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    InventoryHost {
        name: name.into(),
        address: address.into(),
        port: 22,
        user: String::new(),
        credential: "fleet".into(),
        tags,
    }
}

/// A running instance for fixtures: `instance("i-1", "10.0.0.1", &[("Chaos", "true")])`,
/// type `t3.micro`, zone `eu-west-1a`, no public IP, in `subnet-1` of `vpc-1` with group `sg-1`.
pub fn instance(id: &str, private_ip: &str, tags: &[(&str, &str)]) -> Instance {
    Instance {
        instance_id: id.into(),
        state: "running".into(),
        instance_type: "t3.micro".into(),
        availability_zone: "eu-west-1a".into(),
        private_ip: Some(private_ip.into()),
        public_ip: None,
        tags: tags.iter().map(|(k, v)| KeyValue { key: (*k).into(), value: (*v).into() }).collect(),
        subnet_id: Some("subnet-1".into()),
        vpc_id: Some("vpc-1".into()),
        security_groups: vec!["sg-1".into()],
    }
}

#[cfg(test)]
mod tests;
