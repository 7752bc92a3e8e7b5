//! `terminate_random_node:TerminateRandomNode`: destroys random running nodes of any
//! configured cloud (count / percent of those matching the tags, zones and names). What
//! else goes with a node (disks, addresses, interfaces) is the provider's rule: see the
//! README's "Clouds". Nothing to revert.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, compute};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use node_attack::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct TerminateRandomNode;

impl Attack for TerminateRandomNode {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("terminate-random-node", env!("CARGO_PKG_VERSION"))
            .refs(["terminate_random_node:TerminateRandomNode"])
            .description("Destroys random running nodes of a configured cloud (AWS, GCE, Azure, OpenStack, DigitalOcean) matching the tags, zones and names.")
            .args_built::<Args>()
            .example(json!({"cloud": "aws", "tags": {"chaos": "yes"}, "count": 1}))
            .capability(Capability::Compute { clouds: vec![], operations: vec!["destroy-node".into()] })
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        act(ctx, &args.target, &Action { verb: "terminate", past: "terminated", call: &compute::destroy_node })
    }
}

cme_plugin_sdk::export_attack!(TerminateRandomNode);
