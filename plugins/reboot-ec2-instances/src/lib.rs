//! `reboot_ec2_instances:RebootEC2Instances`: reboots random running EC2 instances
//! matching the filters (count / percent of them). Nothing to revert.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::{Action, act};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct RebootEc2Instances;

impl Attack for RebootEc2Instances {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("reboot-ec2-instances", env!("CARGO_PKG_VERSION"))
            .refs(["reboot_ec2_instances:RebootEC2Instances"])
            .description("Reboots random running EC2 instances matching the filters (count / percent of them).")
            .args_built::<Args>()
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}}))
            .capability(Capability::Ec2Disrupt(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let reboot = |region: &str, ids: &[String]| ec2::reboot_instances(region, ids);
        act(ctx, &args.target, &|_| Ok(Vec::new()), &Action { verb: "reboot", past: "rebooted", call: &reboot })
    }
}

cme_plugin_sdk::export_attack!(RebootEc2Instances);
