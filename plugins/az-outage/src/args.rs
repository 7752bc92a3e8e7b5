//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::serde_json::{Map, Value};

/// Which zone, which instances in it, how, and for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Every mode's revert is registered by the host before the fault: always reverted.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    /// AWS region, e.g. eu-west-1
    #[schemars(length(min = 1))]
    pub region: String,
    /// EC2 describe-instances filters: name -> value or list of values, e.g. {"tag:Chaos": "true"}; only running instances count
    #[schemars(with = "cme_plugin_sdk::targets::Ec2Filters")]
    pub filters: Map<String, Value>,
    /// the availability zone, e.g. eu-west-1a (default: one of the matching instances' zones, at random)
    #[schemars(length(min = 1, max = 64))]
    pub zone: Option<String>,
    /// stop the zone's matching instances, isolate them (security groups swapped for an empty one), or give their subnets a deny-all network ACL (network_acl); default stop
    #[serde(default)]
    pub mode: Mode,
    /// how long the outage lasts before the host reverts it (an experiment's step may end it sooner)
    #[schemars(range(min = 1, max = 604_800))]
    pub duration_seconds: u32,
}

/// How the zone goes out.
#[derive(serde::Deserialize, schemars::JsonSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Stop,
    Isolate,
    NetworkAcl,
}
