//! `terminate_ec2_instance:TerminateEC2Instance`: terminates a random running EC2
//! instance matching the plan's filters, as the original engine's attack did, plus
//! `count`/`percent` to terminate several (like AWS FIS COUNT(n) and PERCENT(n)).
//! No candidate fails the run with "no instance matched filters ...".

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::{TargetArgs, schema_properties, terminate};

struct TerminateEc2Instance;

impl Attack for TerminateEc2Instance {
    type Args = TargetArgs;

    fn describe() -> Describe {
        Describe::new("terminate-ec2-instance", env!("CARGO_PKG_VERSION"))
            .refs(["terminate_ec2_instance:TerminateEC2Instance"])
            .description(
                "Terminates one random running EC2 instance matching the filters (or count / percent of them).",
            )
            .schema(json!({
                "type": "object",
                "required": ["region", "filters"],
                "properties": schema_properties(),
                "additionalProperties": false
            }))
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}}))
            .capability(Capability::Ec2Terminate(vec![]))
    }

    fn run(ctx: &RunContext, args: TargetArgs) -> Result<Report, PluginError> {
        terminate(ctx, &args, &|_| Ok(Vec::new()))
    }
}

cme_plugin_sdk::export_attack!(TerminateEc2Instance);
