//! `terminate_ec2_instance_not_excluded:TerminateEC2InstanceNotExcluded` (also under the
//! ref the original's docs gave, `terminate_ec2_instance:TerminateEC2InstanceNotExcluded`):
//! like terminate-ec2-instance, but instances matching `excluded` survive.
//!
//! `excluded` is an object, or a list of objects of which any may match. In an object,
//! keys that are EC2 filter names (`availability-zone`, `instance-type`, `tag:Team`, ...)
//! are EC2 filters and other keys are tag pairs (the original's form, `{"Name": "db"}`);
//! an instance is excluded when it matches all of one object's entries. Unlike the
//! original, `{"availability-zone": "eu-west-1a"}` really excludes that zone.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2};
use cme_plugin_sdk::targets::filters_from_json;
use cme_plugin_sdk::{Capability, Describe, PluginError, json};
use ec2_terminate::terminate;

mod args;

use args::{Args, Excluded};

cme_plugin_sdk::built_args!(args::Args);

/// The describe-instances filter names for instances (AWS EC2 API reference) that make
/// sense for exclusion; any other key without a `tag:` prefix is a tag pair.
const EC2_FILTER_NAMES: &[&str] = &[
    "affinity",
    "architecture",
    "availability-zone",
    "capacity-reservation-id",
    "dns-name",
    "host-id",
    "hypervisor",
    "iam-instance-profile.arn",
    "image-id",
    "instance-id",
    "instance-lifecycle",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "ip-address",
    "key-name",
    "launch-index",
    "launch-time",
    "network-interface.vpc-id",
    "owner-id",
    "placement-group-name",
    "platform",
    "private-dns-name",
    "private-ip-address",
    "reservation-id",
    "root-device-type",
    "spot-instance-request-id",
    "subnet-id",
    "tag-key",
    "tenancy",
    "vpc-id",
];

struct TerminateEc2InstanceNotExcluded;

impl Attack for TerminateEc2InstanceNotExcluded {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("terminate-ec2-instance-not-excluded", env!("CARGO_PKG_VERSION"))
            .refs([
                "terminate_ec2_instance_not_excluded:TerminateEC2InstanceNotExcluded",
                "terminate_ec2_instance:TerminateEC2InstanceNotExcluded",
            ])
            .description("Terminates a random running EC2 instance matching the filters, sparing those matching the exclusions (EC2 filters such as availability-zone, or tag pairs).")
            .args_built::<Args>()
            .example(json!({
                "region": "eu-west-1",
                "filters": {"tag:Chaos": "true"},
                "excluded": {"availability-zone": "eu-west-1a"}
            }))
            .capability(Capability::Ec2Terminate(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let exclusions = match args.excluded {
            Excluded::One(object) => vec![object],
            Excluded::AnyOf(list) => list,
        };
        let region = args.target.region.clone();
        terminate(ctx, &args.target, &|base: &[ec2::Filter]| {
            let mut spared = Vec::new();
            for (index, exclusion) in exclusions.iter().enumerate() {
                let mut filters = base.to_vec();
                for filter in filters_from_json(&format!("excluded[{index}]"), exclusion)? {
                    let is_filter = filter.name.starts_with("tag:") || EC2_FILTER_NAMES.contains(&filter.name.as_str());
                    let name = if is_filter { filter.name } else { format!("tag:{}", filter.name) };
                    filters.retain(|f| f.name != name);
                    filters.push(ec2::Filter { name, values: filter.values });
                }
                spared.extend(ec2::describe_instances(&region, &filters)?.into_iter().map(|i| i.instance_id));
            }
            Ok(spared)
        })
    }
}

cme_plugin_sdk::export_attack!(TerminateEc2InstanceNotExcluded);
