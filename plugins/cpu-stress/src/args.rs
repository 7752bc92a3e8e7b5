//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, how hard, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the workers killed) is registered before they start.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// how many CPUs to load, one worker each (default: every online CPU)
    #[schemars(range(min = 1, max = 1024))]
    pub cores: Option<u32>,
    /// how busy each worker keeps its CPU (default 100)
    #[schemars(range(min = 1, max = 100))]
    pub load_percent: Option<u32>,
    /// when the workers are killed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run the workers through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
