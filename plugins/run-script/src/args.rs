//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which script, with which arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// a script of the engine's library, e.g. s_burncpu.sh or script_attacks/s_burncpu.sh
    #[schemars(length(min = 1))]
    pub local_script: String,
    /// absolute path to upload it to (default /tmp/cme-<script name>)
    #[schemars(regex(pattern = "^/"))]
    pub remote_script: Option<String>,
    /// arguments passed to the script
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub args: Vec<String>,
    /// how long the script may run (default 300; the run's deadline caps it)
    #[schemars(range(min = 1, max = 86_400))]
    pub timeout_seconds: Option<u32>,
}
