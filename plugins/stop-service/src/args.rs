//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which unit, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the start) is registered before the stop: an experiment may hold and revert it.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// the systemd unit, e.g. nginx or nginx.service
    #[schemars(regex(pattern = "^[A-Za-z0-9@._:-]{1,200}$"))]
    pub service: String,
    /// when to start it again (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run systemctl through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
