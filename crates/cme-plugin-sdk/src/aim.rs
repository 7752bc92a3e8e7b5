//! Aiming an SSH attack, the way the built-in ones do: at EC2 instances matching filters
//! (`region`, `filters`, `ssh`, as the original engine's `run_script` plans carry them),
//! at the hosts of an inventory matching tags (`"target": {"inventory": "web", "tags":
//! {"zone": "a"}}`), or at the running nodes of a configured cloud (`"target": {"cloud":
//! "prod-gce", "tags": {...}, "zones": [...], "ssh": {"credential": "fleet"}}`, listed
//! through `compute` and so bounded by the cloud's required tags), picking one, `count`
//! or `percent` of them at random. Put an [`Aim`]
//! in the args with `#[serde(flatten)]`: its schema (derived, with the rule that exactly
//! one form is given) joins the args'.
//!
//! ```
//! use cme_plugin_sdk::aim::Aim;
//! use cme_plugin_sdk::json;
//! let aim: Aim = serde_json::from_value(json!({"target": {"inventory": "web", "tags": {"zone": "a"}}})).unwrap();
//! assert_eq!(aim.describe(), "inventory web with tags zone=a");
//! let aim: Aim = serde_json::from_value(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}, "ssh": {"credential": "fleet"}})).unwrap();
//! assert!(aim.describe().starts_with("instances in eu-west-1"));
//! let aim: Aim = serde_json::from_value(json!({"target": {"cloud": "lab", "zones": ["nova"], "ssh": {"credential": "fleet", "address": "public"}}})).unwrap();
//! assert_eq!(aim.describe(), "running nodes of cloud lab in zones nova");
//! ```

use std::collections::BTreeMap;

use rand_core::RngCore;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::PluginError;
use crate::targets::{Selection, choose, filters_from_json, running_only};
use crate::{KeyValue, compute, ec2, inventory, ssh};

/// Where an SSH attack acts: exactly one of the two forms (EC2, or a `target`). (The `description`s are what
/// plan writers read in the schema.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(extend("oneOf" = [
    {"required": ["target"], "not": {"anyOf": [{"required": ["region"]}, {"required": ["filters"]}, {"required": ["ssh"]}]}},
    {"required": ["region", "filters", "ssh"], "not": {"required": ["target"]}}
]))]
pub struct Aim {
    /// The EC2 form: the region,
    #[serde(default)]
    #[schemars(length(min = 1), description = "the EC2 form: AWS region, e.g. eu-west-1")]
    pub region: Option<String>,
    /// its describe-instances filters (only running instances count),
    #[serde(default)]
    #[schemars(
        with = "crate::targets::Ec2Filters",
        description = "the EC2 form: describe-instances filters, name -> value or list of values; only running instances are considered"
    )]
    pub filters: Option<Map<String, Value>>,
    /// and how to log in.
    #[serde(default)]
    #[schemars(description = "the EC2 form: how to log in")]
    pub ssh: Option<Login>,
    /// The inventory form or the cloud form.
    #[serde(default)]
    #[schemars(
        description = "hosts of an inventory (/api/1/inventories/) carrying every tag, or running nodes of a cloud ([[clouds]]) carrying every tag in the given zones"
    )]
    pub target: Option<Target>,
    /// How many hosts: `count` of them (default 1) ...
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000), description = "act on this many of the matching hosts (default 1)")]
    pub count: Option<u32>,
    /// ... or `percent` of them, rounded up.
    #[serde(default)]
    #[schemars(
        range(min = 1, max = 100),
        description = "act on this percentage of the matching hosts, rounded up (instead of count)"
    )]
    pub percent: Option<u32>,
}

/// How to log in to an EC2 instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Login {
    /// Login user; empty: the credential's own.
    #[serde(default)]
    #[schemars(description = "login user (default: the credential's user)")]
    pub user: String,
    /// A credential stored in the engine.
    #[schemars(length(min = 1), description = "name of a credential stored in the engine (POST /api/1/credentials)")]
    pub credential: String,
    /// Default 22.
    #[schemars(range(min = 1, max = 65535), description = "default 22")]
    pub port: Option<u16>,
    /// `private` (default) or `public`: which of the instance's addresses.
    #[serde(default)]
    #[schemars(
        with = "Option<AddressKind>",
        description = "which address of the instance to connect to (default private)"
    )]
    pub address: Option<String>,
}

/// The words [`Login::address`] takes.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum AddressKind {
    Private,
    Public,
}

/// An inventory's hosts or a cloud's nodes: `cloud` tells them apart.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// Hosts of an inventory.
    Inventory(InventoryTarget),
    /// Running nodes of a configured cloud.
    Cloud(CloudTarget),
}

/// `if cloud then the cloud form else the inventory form`, rather than the `anyOf` an
/// untagged enum derives: a mistake in either form is reported at its own field
/// (`/target/inventory`), not as "matches neither" at `/target`.
impl JsonSchema for Target {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Target".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let cloud = generator.subschema_for::<CloudTarget>();
        let inventory = generator.subschema_for::<InventoryTarget>();
        schemars::json_schema!({
            "type": "object",
            "if": {"required": ["cloud"]},
            "then": cloud,
            "else": inventory,
        })
    }
}

/// `{"cloud": "lab", "tags": {"team": "web"}, "zones": ["nova"], "ssh": {"credential": "fleet"}}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudTarget {
    /// The cloud's name in the engine's `[[clouds]]`.
    #[schemars(length(min = 1), description = "a cloud configured on the engine ([[clouds]])")]
    pub cloud: String,
    /// Tags every chosen node carries.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Zones the nodes are in (empty: any).
    #[serde(default)]
    pub zones: Vec<String>,
    /// How to log in to the nodes.
    pub ssh: Login,
}

/// `{"inventory": "web", "tags": {"zone": "a"}}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryTarget {
    /// The inventory's name.
    #[schemars(length(min = 1))]
    pub inventory: String,
    /// Tags every chosen host carries.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One chosen host: what to call it in reports, and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct SshHost {
    /// The instance id, the inventory host's name, or the node's id.
    pub name: String,
    /// Where it is reached.
    pub target: ssh::Target,
}

impl Aim {
    /// What it aims at, for people: `inventory web with tags zone=a`.
    pub fn describe(&self) -> String {
        let tags = |tags: &BTreeMap<String, String>| {
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if tags.is_empty() { String::new() } else { format!(" with tags {}", tags.join(", ")) }
        };
        match (&self.target, &self.region) {
            (Some(Target::Inventory(target)), _) => format!("inventory {}{}", target.inventory, tags(&target.tags)),
            (Some(Target::Cloud(target)), _) => {
                let zones = if target.zones.is_empty() {
                    String::new()
                } else {
                    format!(" in zones {}", target.zones.join(", "))
                };
                format!("running nodes of cloud {}{}{zones}", target.cloud, tags(&target.tags))
            }
            (None, region) => format!(
                "instances in {} matching {} (running)",
                region.as_deref().unwrap_or("?"),
                Value::Object(self.filters.clone().unwrap_or_default())
            ),
        }
    }

    /// Lists the candidates (describe-instances or the inventory) and picks `count` or
    /// `percent` of them at random; none matching is the attack's failure, saying what
    /// was looked for.
    pub fn hosts(&self, rng: &mut impl RngCore) -> Result<Vec<SshHost>, PluginError> {
        let selection = Selection::from_args(self.count, self.percent)?;
        let candidates = match (&self.target, &self.region, &self.filters, &self.ssh) {
            (Some(Target::Cloud(target)), None, None, None) => {
                let public = address_is_public(&target.ssh)?;
                let filters = compute::NodeFilters {
                    tags: target
                        .tags
                        .iter()
                        .map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() })
                        .collect(),
                    zones: target.zones.clone(),
                    states: vec![compute::NodeState::Running],
                    names: Vec::new(),
                };
                let mut hosts = Vec::new();
                for node in compute::list_nodes(&target.cloud, &filters)? {
                    let addresses = if public { &node.public_addresses } else { &node.private_addresses };
                    let Some(address) = addresses.first() else { continue };
                    let target = ssh::Target {
                        address: address.clone(),
                        port: target.ssh.port.unwrap_or(22),
                        user: target.ssh.user.clone(),
                        credential: target.ssh.credential.clone(),
                    };
                    hosts.push(SshHost { name: node.id, target });
                }
                hosts
            }
            (Some(Target::Inventory(target)), None, None, None) => {
                let tags: Vec<(&str, &str)> = target.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                inventory::hosts(&target.inventory, &tags)?
                    .into_iter()
                    .map(|h| SshHost {
                        name: h.name,
                        target: ssh::Target {
                            address: h.address,
                            port: h.port,
                            user: h.user,
                            credential: h.credential,
                        },
                    })
                    .collect::<Vec<_>>()
            }
            (None, Some(region), Some(filters), Some(login)) => {
                let public = address_is_public(login)?;
                let filters = running_only("filters", filters_from_json("filters", filters)?)?;
                let mut hosts = Vec::new();
                for instance in ec2::describe_instances(region, &filters)? {
                    let address = if public { instance.public_ip } else { instance.private_ip };
                    let Some(address) = address else { continue };
                    let target = ssh::Target {
                        address,
                        port: login.port.unwrap_or(22),
                        user: login.user.clone(),
                        credential: login.credential.clone(),
                    };
                    hosts.push(SshHost { name: instance.instance_id, target });
                }
                hosts
            }
            _ => {
                return Err(PluginError::invalid(
                    "target",
                    "aim either at an inventory or a cloud (target) or at EC2 instances (region, filters and ssh), not both",
                ));
            }
        };
        if candidates.is_empty() {
            return Err(PluginError::failed(format!(
                "no host matched: {} (instances and nodes without the chosen address are skipped)",
                self.describe()
            )));
        }
        let n = selection.size(candidates.len());
        Ok(choose(rng, candidates, n))
    }
}

/// Whether `login` asks for the public address (`address`: private, the default, or public).
fn address_is_public(login: &Login) -> Result<bool, PluginError> {
    match login.address.as_deref() {
        None | Some("private") => Ok(false),
        Some("public") => Ok(true),
        Some(other) => Err(PluginError::invalid("ssh.address", format!("private or public, not {other:?}"))),
    }
}
