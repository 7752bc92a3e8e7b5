//! `reboot_random_node:RebootRandomNode`: reboots random running nodes of any configured
//! cloud (count / percent of those matching the tags, zones and names): EC2
//! RebootInstances, GCE reset, Azure restart, OpenStack soft reboot, DigitalOcean reboot.
//! Nothing to revert.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, compute};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use node_attack::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct RebootRandomNode;

impl Attack for RebootRandomNode {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("reboot-random-node", env!("CARGO_PKG_VERSION"))
            .refs(["reboot_random_node:RebootRandomNode"])
            .description("Reboots random running nodes of a configured cloud (AWS, GCE, Azure, OpenStack, DigitalOcean) matching the tags, zones and names.")
            .args_built::<Args>()
            .example(json!({"cloud": "aws", "tags": {"chaos": "yes"}, "count": 1}))
            .capability(Capability::Compute { clouds: vec![], operations: vec!["reboot-node".into()] })
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        act(ctx, &args.target, &Action { verb: "reboot", past: "rebooted", call: &compute::reboot_node })
    }
}

cme_plugin_sdk::export_attack!(RebootRandomNode);
