//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which file system, how much, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the file removed) is registered before the fill.
#[schemars(extend("x-cme-reversible" = true))]
#[schemars(extend("allOf" = [{"oneOf": [
    {"required": ["bytes"]},
    {"required": ["percent"]},
    {"required": ["leave_free_mib"]}
]}]))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// a directory on the file system to fill (absolute); the file is written there
    #[schemars(regex(pattern = "^/[A-Za-z0-9_./@+-]{0,255}$"))]
    pub path: String,
    /// write this many bytes
    #[schemars(range(min = 1))]
    pub bytes: Option<u64>,
    /// fill until the file system is this percent used
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,
    /// fill until only this many MiB are free
    #[schemars(range(min = 0))]
    pub leave_free_mib: Option<u64>,
    /// when the file is removed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// write and remove the file through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
