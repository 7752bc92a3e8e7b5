//! `stop_ec2_instances:StopEC2Instances`: stops random running EC2 instances matching the
//! filters (count / percent of them) for `duration_seconds`. The host stores their revert
//! (start them again) before it stops them and tags each with it; the revert runs when the
//! duration ends, when an experiment's step ends or is aborted, on a halt, and when an
//! engine finds the run dead. Reverting needs a live replica (no timer on the instance).

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct StopEc2Instances;

impl Attack for StopEc2Instances {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("stop-ec2-instances", env!("CARGO_PKG_VERSION"))
            .refs(["stop_ec2_instances:StopEC2Instances"])
            .description("Stops random running EC2 instances matching the filters for duration_seconds, then starts them again (the host reverts it).")
            .args_built::<Args>()
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}, "duration_seconds": 300}))
            .capability(Capability::Ec2Disrupt(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let hold_ms = u64::from(args.duration_seconds) * 1000;
        let stop = move |region: &str, ids: &[String]| ec2::stop_instances(region, ids, hold_ms);
        act(ctx, &args.target, &|_| Ok(Vec::new()), &Action { verb: "stop", past: "stopped", call: &stop })
    }
}

cme_plugin_sdk::export_attack!(StopEc2Instances);
