//! # cme-grant: what an operator allows a plugin
//!
//! A [`Grant`] is the operator's side of a capability check: the runtime admits a host
//! call only when it fits both the plugin's declaration and its grant. This crate holds
//! the grant's data, its validation and the two matchers grants are made of
//! ([`UrlPattern`] for HTTP, CIDR networks for SSH), so that the engine (which stores
//! grants) and the runtime (which enforces them) share one type without sharing wasmtime.
//!
//! Invariant: pure data and code, no I/O; a `Grant` that passed [`Grant::validate`]
//! parses every pattern and network it names.

mod fences;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod budgets;

pub use budgets::{BudgetTake, Budgets, GroupBudget};
pub use fences::{Ec2Fence, Fences, HttpFence, OBSERVING_METHODS, ProbeFence, SshFence, is_observing};
// The URL-pattern rule lives in the SDK so that its mock host judges URLs as the engine does.
pub use cme_model::pattern::{PatternError, UrlPattern};

/// An operator's grant for one plugin version. Absent sections grant nothing.
/// What the plugin may do; absent sections grant nothing
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2: Option<Ec2Grant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshGrant>,
    #[serde(default)]
    pub scripts: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<ComputeGrant>,
}

/// The operations of the `compute` interface a grant may name.
pub const COMPUTE_OPERATIONS: [&str; 5] = ["list-nodes", "stop-node", "start-node", "reboot-node", "destroy-node"];

/// Compute (`[[clouds]]`): the clouds (empty: any configured one), the operations
/// (`list-nodes`, `stop-node`, `start-node`, `reboot-node`, `destroy-node`; listing is
/// implied by any other; default: listing only), tags every listed or touched node must
/// carry besides the cloud's own, and how many nodes one run may stop, reboot or destroy
/// (default 1; the cloud's `max_nodes_per_run` bounds it too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeGrant {
    #[serde(default)]
    pub clouds: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub required_tags: BTreeMap<String, String>,
    #[serde(default = "one")]
    #[schemars(range(max = u32::MAX))]
    pub max_nodes_per_run: u32,
}

impl ComputeGrant {
    /// Whether the grant allows `operation` on `cloud`.
    pub fn allows(&self, cloud: &str, operation: &str) -> bool {
        (self.clouds.is_empty() || self.clouds.iter().any(|c| c == cloud))
            && (operation == "list-nodes" || self.operations.iter().any(|o| o == operation))
    }
}

/// HTTP: URL patterns (see [`UrlPattern`]) and whether link-local / cloud metadata
/// addresses may be reached (default: no). `max_requests` caps requests per run
/// (default: only the runtime's host-call cap). `credentials` names the engine's
/// `[[http.credentials]]` the host may add to this plugin's matching requests (default:
/// none); the plugin never sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    /// URL patterns, e.g. https://api.example.com/*
    pub urls: Vec<String>,
    #[serde(default)]
    pub allow_link_local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub max_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
}

/// EC2: regions (empty: any), tags every touched instance must carry, whether
/// terminating is allowed, whether stopping, rebooting and isolating instances and their
/// subnets is (`disrupt`; the host reverts what it can), and how many instances one run
/// may terminate, stop or isolate (default 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ec2Grant {
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub required_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub terminate: bool,
    #[serde(default)]
    pub disrupt: bool,
    #[serde(default = "one")]
    #[schemars(range(max = u32::MAX))]
    pub max_terminations_per_run: u32,
}

/// SSH: sessions one run may open (default 1), the networks it may reach besides the
/// instances the same run described (`hosts`: CIDRs such as `10.1.0.0/16` or single
/// addresses; default none, so only described instances), and the inventories it may list
/// and reach the hosts of (`inventories`: names, or `"*"` for every one; default none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshGrant {
    #[serde(default = "one")]
    #[schemars(range(max = u32::MAX))]
    pub max_sessions: u32,
    /// CIDRs or addresses
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// inventories it may list and reach the hosts of ("*": every one)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)))]
    pub inventories: Vec<String>,
}

impl SshGrant {
    /// Whether the grant names the inventory called `name` (or every one, `"*"`).
    pub fn allows_inventory(&self, name: &str) -> bool {
        self.inventories.iter().any(|granted| granted == "*" || granted == name)
    }
}

fn one() -> u32 {
    1
}

/// Why a grant is not valid; the text names the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("invalid grant: {0}")]
    Shape(String),
    #[error("invalid grant: {0}")]
    UrlPattern(#[from] PatternError),
    #[error("invalid grant: ssh host {host:?}: {reason}")]
    SshHost { host: String, reason: String },
    #[error("invalid fence: {0}")]
    Fence(String),
    /// A request the operator's fences keep out (a region, clashing required tags).
    #[error("{0}")]
    OutsideFence(String),
    /// The `[budgets]` rules do not hold together.
    #[error("{0}")]
    Budget(String),
    #[error(
        "invalid grant: no HTTP credential {name:?} is configured on this engine ([[http.credentials]]; configured: {known})"
    )]
    UnknownCredential { name: String, known: String },
}

impl Grant {
    /// Parses a grant from JSON (unknown fields refused) and validates it.
    pub fn from_json(value: &serde_json::Value) -> Result<Grant, GrantError> {
        if !value.is_object() {
            // serde would take a list for a struct; a grant document is an object.
            return Err(GrantError::Shape("a grant is a JSON object".into()));
        }
        let grant: Grant = serde_json::from_value(value.clone()).map_err(|e| GrantError::Shape(e.to_string()))?;
        grant.validate()?;
        Ok(grant)
    }

    /// Checks that every HTTP credential the grant names is one of `known` (the engine's
    /// `[[http.credentials]]` names).
    pub fn check_credentials(&self, known: &[String]) -> Result<(), GrantError> {
        for name in self.http.iter().flat_map(|h| &h.credentials) {
            if !known.contains(name) {
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(GrantError::UnknownCredential { name: name.clone(), known });
            }
        }
        Ok(())
    }

    /// Checks that every URL pattern and SSH network parses.
    pub fn validate(&self) -> Result<(), GrantError> {
        if let Some(http) = &self.http {
            for url in &http.urls {
                UrlPattern::parse(url)?;
            }
        }
        if let Some(ssh) = &self.ssh {
            for host in &ssh.hosts {
                parse_network(host).map_err(|reason| GrantError::SshHost { host: host.clone(), reason })?;
            }
        }
        if let Some(compute) = &self.compute
            && let Some(unknown) = compute.operations.iter().find(|o| !COMPUTE_OPERATIONS.contains(&o.as_str()))
        {
            return Err(GrantError::Shape(format!(
                "compute operation {unknown:?} is not one of {}",
                COMPUTE_OPERATIONS.join(", ")
            )));
        }
        Ok(())
    }
}

impl SshGrant {
    /// Whether `address` lies in one of the granted networks.
    pub fn allows_host(&self, address: &str) -> bool {
        let Ok(ip) = address.parse::<std::net::IpAddr>() else { return false };
        self.hosts.iter().filter_map(|h| parse_network(h).ok()).any(|net| net.contains(&ip))
    }
}

/// `a.b.c.d/n`, `x::y/n` or a single address (all bits); the error says why not.
pub(crate) fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    if text.contains('/') {
        return text
            .parse::<ipnet::IpNet>()
            .map_err(|e| format!("{text:?}: {e}; the prefix must be 0-32 for IPv4, 0-128 for IPv6"));
    }
    let ip: std::net::IpAddr =
        text.parse().map_err(|e: std::net::AddrParseError| format!("{text:?} is not an IP address or CIDR ({e})"))?;
    Ok(ipnet::IpNet::from(ip))
}

impl Grant {
    /// The JSON Schema of a grant document (what `from_json` accepts before validation),
    /// derived from the types: for API descriptions.
    pub fn json_schema() -> serde_json::Value {
        cme_model::schema::schema_of::<Grant>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_networks_contain_their_addresses_only() {
        let grant = SshGrant {
            max_sessions: 1,
            hosts: vec!["10.1.0.0/16".into(), "192.168.5.7".into(), "fd00::/8".into()],
            inventories: vec![],
        };
        for (address, allowed) in [
            ("10.1.2.3", true),
            ("10.2.0.1", false),
            ("192.168.5.7", true),
            ("192.168.5.8", false),
            ("fd12::1", true),
            ("fe80::1", false),
            ("not-an-ip", false),
        ] {
            assert_eq!(grant.allows_host(address), allowed, "{address}");
        }
        let bad: Grant = serde_json::from_str(r#"{"ssh":{"hosts":["10.0.0.0/33"]}}"#).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("prefix"));
        let everything = SshGrant { max_sessions: 1, hosts: vec!["0.0.0.0/0".into()], inventories: vec![] };
        assert!(everything.allows_host("8.8.8.8"));
    }

    #[test]
    fn a_compute_grant_names_known_operations_and_defaults_to_one_node() {
        let grant =
            Grant::from_json(&serde_json::json!({"compute": {"clouds": ["prod"], "operations": ["stop-node"]}}))
                .unwrap();
        let compute = grant.compute.unwrap();
        assert_eq!(compute.max_nodes_per_run, 1);
        assert!(compute.allows("prod", "list-nodes") && compute.allows("prod", "stop-node"));
        assert!(!compute.allows("prod", "destroy-node") && !compute.allows("staging", "list-nodes"));
        let unknown = Grant::from_json(&serde_json::json!({"compute": {"operations": ["explode-node"]}})).unwrap_err();
        assert!(unknown.to_string().contains("explode-node"), "{unknown}");
        assert!(Grant::from_json(&serde_json::json!({"compute": {"regions": []}})).is_err(), "unknown fields refused");
    }

    #[test]
    fn grants_parse_from_json_and_reject_unknown_fields() {
        let grant =
            Grant::from_json(&serde_json::json!({"http": {"urls": ["https://api.example.com"]}, "scripts": true}))
                .unwrap();
        assert!(grant.scripts);
        assert!(Grant::from_json(&serde_json::json!({"htpp": {}})).unwrap_err().to_string().contains("unknown field"));
        let bad = Grant::from_json(&serde_json::json!({"http": {"urls": ["nope"]}})).unwrap_err();
        assert!(bad.to_string().contains("invalid URL pattern"), "{bad}");
    }

    #[test]
    fn the_derived_schema_accepts_what_a_grant_parses_from() {
        let validator = jsonschema::validator_for(&Grant::json_schema()).unwrap();
        let documents = serde_json::json!([
            {},
            {"scripts": true},
            {"scripts": "yes"},
            {"htpp": {}},
            {"http": {"urls": ["https://a/*"], "allow_link_local": true, "max_requests": 3, "credentials": ["gh"]}},
            {"http": {}},
            {"http": {"urls": "https://a/*"}},
            {"http": {"urls": [], "max_requests": -1}},
            {"http": {"urls": [], "max_requests": 4294967296u64}},
            {"http": {"urls": [], "max_requests": null}},
            {"http": {"urls": [], "extra": 1}},
            {"ec2": {}},
            {"ec2": {"regions": ["eu-west-1"], "required_tags": {"chaos": "yes"}, "terminate": true, "max_terminations_per_run": 2}},
            {"ec2": {"required_tags": {"chaos": 1}}},
            {"ec2": {"max_terminations_per_run": 1.5}},
            {"ssh": {}},
            {"ssh": {"max_sessions": 2, "hosts": ["10.0.0.0/8"], "inventories": ["web", "*"]}},
            {"ssh": {"inventories": [""]}},
            {"ssh": {"hosts": [1]}},
            {"http": null},
            []
        ]);
        for document in documents.as_array().unwrap() {
            let parses = document.is_object() && serde_json::from_value::<Grant>(document.clone()).is_ok();
            // The schema is stricter in two places: an inventory name is never empty, and
            // an optional section or field is left out, not sent as null.
            let empty_inventory = document.pointer("/ssh/inventories/0") == Some(&serde_json::json!(""));
            let null = document.to_string().contains("null");
            assert_eq!(validator.is_valid(document), parses && !empty_inventory && !null, "{document}");
        }
    }
}
