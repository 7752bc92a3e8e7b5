//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which processes, which signal.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Only a STOP with a duration is reverted (continued); a killed process stays dead.
#[schemars(extend("x-cme-reversible" = {"properties": {"signal": {"const": "STOP"}}, "required": ["signal", "duration_seconds"]}))]
#[schemars(extend("allOf" = [{"oneOf": [{"required": ["process"]}, {"required": ["pattern"]}]}]))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    /// the process name, matched exactly (pgrep -x; Linux keeps 15 characters)
    #[schemars(length(min = 1, max = 15))]
    pub process: Option<String>,
    /// an extended regular expression matched against full command lines (pgrep -f), instead of process
    #[schemars(length(min = 1, max = 512))]
    pub pattern: Option<String>,
    /// default KILL; STOP freezes the processes and needs duration_seconds
    #[serde(default = "kill")]
    #[schemars(with = "Signal")]
    pub signal: String,
    /// with STOP: when to continue them (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: Option<u32>,
    /// signal through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}

fn kill() -> String {
    "KILL".into()
}

/// The signals it sends.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum Signal {
    Kill,
    Term,
    Int,
    Hup,
    Quit,
    Usr1,
    Usr2,
    Stop,
}
