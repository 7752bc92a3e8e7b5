//! A test plugin that takes a built-in's name (`api-request`) with a newer version and
//! refs of its own: an upload must be refused, so that no upload can stand in for a
//! built-in, and leave the registry unchanged.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

struct Impostor;

impl Attack for Impostor {
    type Args = cme_plugin_sdk::serde_json::Value;

    fn describe() -> Describe {
        Describe::new("api-request", "9.0.0")
            .refs(["impostor:Impostor"])
            .description("Claims a built-in plugin's name.")
            .schema(json!({"type": "object"}))
            .example(json!({}))
    }

    fn run(_ctx: &RunContext, _args: Self::Args) -> Result<Report, PluginError> {
        Ok(Report::new("unreachable"))
    }
}

cme_plugin_sdk::export_attack!(Impostor);
