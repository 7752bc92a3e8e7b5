//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, how far, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the clock stepped back, time sync resumed) is registered before the step.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// how far to step the clock, in seconds (negative: into the past; not 0)
    #[schemars(range(min = -31_536_000, max = 31_536_000), extend("not" = {"const": 0}))]
    pub offset_seconds: i64,
    /// when the clock is stepped back and time sync resumed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run date, chronyc and timedatectl through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
