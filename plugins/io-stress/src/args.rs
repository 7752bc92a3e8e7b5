//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, how many writers, how much each, where, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the workers killed, their files removed) is registered before they start.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// how many writers (default 1)
    #[schemars(range(min = 1, max = 64))]
    pub workers: Option<u32>,
    /// how many bytes each writer writes, over and over (default 256 MiB)
    #[schemars(range(min = 1_048_576, max = 1_099_511_627_776u64))]
    pub bytes: Option<u64>,
    /// a directory on the file system to load (absolute; default /var/tmp)
    #[schemars(regex(pattern = "^/[A-Za-z0-9_./@+-]{0,255}$"))]
    pub path: Option<String>,
    /// when the workers are killed and their files removed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run the workers through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
