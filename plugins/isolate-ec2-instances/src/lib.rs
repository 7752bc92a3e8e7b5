//! `isolate_ec2_instances:IsolateEC2Instances`: cuts random running EC2 instances matching
//! the filters (count / percent of them) off the network for `duration_seconds`: their
//! security groups are swapped for an empty one of their VPC (`cme-isolation`). The host
//! stores each instance's groups as its revert and tags the instance with them before the
//! swap; the revert runs when the duration ends, when an experiment's step ends or is
//! aborted, on a halt, and when an engine finds the run dead.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct IsolateEc2Instances;

impl Attack for IsolateEc2Instances {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("isolate-ec2-instances", env!("CARGO_PKG_VERSION"))
            .refs(["isolate_ec2_instances:IsolateEC2Instances"])
            .description("Swaps the security groups of random running EC2 instances matching the filters for an empty one for duration_seconds (the host gives them back).")
            .args_built::<Args>()
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}, "duration_seconds": 300}))
            .capability(Capability::Ec2Disrupt(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let hold_ms = u64::from(args.duration_seconds) * 1000;
        let isolate = move |region: &str, ids: &[String]| ec2::isolate_instances(region, ids, hold_ms);
        act(ctx, &args.target, &|_| Ok(Vec::new()), &Action { verb: "isolate", past: "isolated", call: &isolate })
    }
}

cme_plugin_sdk::export_attack!(IsolateEc2Instances);
