//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, how much, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the worker killed) is registered before it starts.
#[schemars(extend("x-cme-reversible" = true))]
#[schemars(extend("allOf" = [{"oneOf": [{"required": ["mib"]}, {"required": ["percent"]}]}]))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// take this many MiB
    #[schemars(range(min = 1, max = 16_777_216))]
    pub mib: Option<u64>,
    /// take this percent of MemTotal
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,
    /// when the memory is given back (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run the worker through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
