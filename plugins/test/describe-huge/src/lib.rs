//! A test plugin whose describe() answers with 2 MiB of description: an upload must be
//! refused for the size of its self-description and leave the registry unchanged.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

struct DescribeHuge;

impl Attack for DescribeHuge {
    type Args = cme_plugin_sdk::serde_json::Value;

    fn describe() -> Describe {
        Describe::new("describe-huge", env!("CARGO_PKG_VERSION"))
            .refs(["describe_huge:DescribeHuge"])
            .description("x".repeat(2 << 20))
            .schema(json!({"type": "object"}))
            .example(json!({}))
    }

    fn run(_ctx: &RunContext, _args: Self::Args) -> Result<Report, PluginError> {
        Ok(Report::new("unreachable"))
    }
}

cme_plugin_sdk::export_attack!(DescribeHuge);
