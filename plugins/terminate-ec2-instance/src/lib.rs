//! `terminate_ec2_instance:TerminateEC2Instance`: terminates a random running EC2
//! instance matching the plan's filters, as the original engine's attack did, plus
//! `count`/`percent` to terminate several (like AWS FIS COUNT(n) and PERCENT(n)).
//! No candidate fails the run with "no instance matched filters ...".

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::terminate;

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct TerminateEc2Instance;

impl Attack for TerminateEc2Instance {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("terminate-ec2-instance", env!("CARGO_PKG_VERSION"))
            .refs(["terminate_ec2_instance:TerminateEC2Instance"])
            .description(
                "Terminates one random running EC2 instance matching the filters (or count / percent of them).",
            )
            .args_built::<Args>()
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}}))
            .capability(Capability::Ec2Terminate(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        terminate(ctx, &args.target, &|_| Ok(Vec::new()))
    }
}

cme_plugin_sdk::export_attack!(TerminateEc2Instance);
