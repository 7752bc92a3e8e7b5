//! `stop_random_node:StopRandomNode`: stops random running nodes of any configured cloud
//! (count / percent of those matching the tags, zones and names) for `duration_seconds`:
//! EC2 StopInstances, GCE stop, Azure deallocate, OpenStack os-stop, DigitalOcean
//! shutdown. The host stores each node's revert (start it again) before it stops it; the
//! revert runs when the duration ends, when an experiment's step ends or is aborted, on a
//! halt, and when an engine finds the run dead.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, compute};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use node_attack::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct StopRandomNode;

impl Attack for StopRandomNode {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("stop-random-node", env!("CARGO_PKG_VERSION"))
            .refs(["stop_random_node:StopRandomNode"])
            .description("Stops random running nodes of a configured cloud (AWS, GCE, Azure, OpenStack, DigitalOcean) for duration_seconds, then starts them again (the host reverts it).")
            .args_built::<Args>()
            .example(json!({"cloud": "aws", "tags": {"chaos": "yes"}, "count": 1, "duration_seconds": 300}))
            .capability(Capability::Compute { clouds: vec![], operations: vec!["stop-node".into()] })
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let hold_ms = u64::from(args.duration_seconds) * 1000;
        let stop = move |cloud: &str, id: &str| compute::stop_node(cloud, id, hold_ms);
        act(ctx, &args.target, &Action { verb: "stop", past: "stopped", call: &stop })
    }
}

cme_plugin_sdk::export_attack!(StopRandomNode);
