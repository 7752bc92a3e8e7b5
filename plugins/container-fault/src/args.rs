//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which containers, what to do to them, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the containers started or unpaused) is registered before they are touched;
// a restart has none.
#[schemars(extend("x-cme-reversible" = {"properties": {"action": {"enum": ["kill", "stop", "pause"]}}, "required": ["action", "duration_seconds"]}))]
#[schemars(extend("allOf" = [
    {"oneOf": [{"required": ["name"]}, {"required": ["label"]}, {"required": ["image"]}]},
    {"if": {"properties": {"action": {"const": "restart"}}}, "then": {"not": {"required": ["duration_seconds"]}}, "else": {"required": ["duration_seconds"]}}
]))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// what to do: kill, stop or pause (undone after duration_seconds: started or unpaused),
    /// or restart (nothing to undo)
    #[schemars(with = "Action")]
    pub action: String,
    /// the containers named exactly this
    #[schemars(regex(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"))]
    pub name: Option<String>,
    /// the containers carrying this label: key or key=value
    #[schemars(regex(pattern = "^[A-Za-z0-9_.-]{1,128}(=[A-Za-z0-9_.:/@-]{0,256})?$"))]
    pub label: Option<String>,
    /// the containers started from this image (e.g. nginx or nginx:1.27)
    #[schemars(regex(pattern = "^[a-z0-9][A-Za-z0-9_./:@-]{0,255}$"))]
    pub image: Option<String>,
    /// act on at most this many of the matching running containers on each host, chosen at
    /// random (default 1)
    #[schemars(range(min = 1, max = 100))]
    pub containers: Option<u32>,
    /// docker or podman (default: docker where installed, else podman)
    #[schemars(with = "Option<Runtime>")]
    pub runtime: Option<String>,
    /// kill, stop, pause: when the containers are started or unpaused again (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: Option<u32>,
    /// run docker or podman through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}

/// What it does to the containers.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Action {
    Kill,
    Stop,
    Pause,
    Restart,
}

/// The container runtimes it drives.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Runtime {
    Docker,
    Podman,
}
