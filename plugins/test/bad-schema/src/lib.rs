//! A test plugin whose args schema does not compile: an upload must be refused with a
//! message naming the schema and leave the registry unchanged.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

struct BadSchema;

impl Attack for BadSchema {
    type Args = cme_plugin_sdk::serde_json::Value;

    fn describe() -> Describe {
        Describe::new("bad-schema", env!("CARGO_PKG_VERSION"))
            .refs(["bad_schema:BadSchema"])
            .description("Declares a schema that is not a JSON Schema.")
            .schema(json!({"type": "no-such-type"}))
            .example(json!({}))
    }

    fn run(_ctx: &RunContext, _args: Self::Args) -> Result<Report, PluginError> {
        Ok(Report::new("unreachable"))
    }
}

cme_plugin_sdk::export_attack!(BadSchema);
