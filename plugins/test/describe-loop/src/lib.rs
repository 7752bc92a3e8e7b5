//! A test plugin whose describe() never returns: an upload must be refused after the
//! describe deadline (1 s) and leave the registry unchanged.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError};

struct DescribeLoop;

impl Attack for DescribeLoop {
    type Args = cme_plugin_sdk::serde_json::Value;

    fn describe() -> Describe {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn run(_ctx: &RunContext, _args: Self::Args) -> Result<Report, PluginError> {
        Ok(Report::new("unreachable"))
    }
}

cme_plugin_sdk::export_attack!(DescribeLoop);
