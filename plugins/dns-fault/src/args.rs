//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which names, where to, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the entries removed) is registered before they are written.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// the host names to break, e.g. api.example.com
    #[schemars(length(min = 1, max = 32), extend("uniqueItems" = true))]
    #[schemars(inner(regex(
        pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\\.?$"
    )))]
    pub names: Vec<String>,
    /// point them at this IPv4 or IPv6 address (default: the unspecified addresses 0.0.0.0
    /// and ::, so that connecting to them fails at once)
    #[schemars(regex(pattern = "^[0-9A-Fa-f.:]{2,45}$"))]
    pub redirect_to: Option<String>,
    /// when the entries are removed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// edit /etc/hosts through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}
