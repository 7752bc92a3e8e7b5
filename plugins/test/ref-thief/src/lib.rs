//! A test plugin that claims the built-in api-request's ref: an upload must be refused
//! (refs are unique across plugins) and leave the registry unchanged.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

struct RefThief;

impl Attack for RefThief {
    type Args = cme_plugin_sdk::serde_json::Value;

    fn describe() -> Describe {
        Describe::new("ref-thief", env!("CARGO_PKG_VERSION"))
            .refs(["api_request:ApiRequest"])
            .description("Claims a ref another plugin answers to.")
            .schema(json!({"type": "object"}))
            .example(json!({}))
    }

    fn run(_ctx: &RunContext, _args: Self::Args) -> Result<Report, PluginError> {
        Ok(Report::new("unreachable"))
    }
}

cme_plugin_sdk::export_attack!(RefThief);
