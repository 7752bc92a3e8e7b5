//! `az_outage:AzOutage`: one availability zone goes out for `duration_seconds`, the way AWS
//! FIS's AZ power interruption does: every running instance matching the filters in the
//! zone (named, or one of theirs at random) is stopped, or isolated (security groups
//! swapped for an empty one), or their subnets get a deny-all network ACL. The host
//! stores each revert before it acts and tags what it changed; the reverts run when the
//! duration ends, when an experiment's step ends or is aborted, on a halt, and when an
//! engine finds the run dead. The grant's `max_terminations_per_run` must cover the zone.

use std::collections::BTreeSet;

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2};
use cme_plugin_sdk::serde_json::Value;
use cme_plugin_sdk::targets::{choose, filters_from_json, running_only};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

mod args;

use args::{Args, Mode};

cme_plugin_sdk::built_args!(args::Args);

struct AzOutage;

impl Attack for AzOutage {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("az-outage", env!("CARGO_PKG_VERSION"))
            .refs(["az_outage:AzOutage"])
            .description("Takes one availability zone out for duration_seconds: its matching instances stopped or isolated, or their subnets cut off by a deny-all network ACL (the host reverts it).")
            .args_built::<Args>()
            .example(json!({"region": "eu-west-1", "filters": {"tag:Chaos": "true"}, "mode": "stop", "duration_seconds": 600}))
            .capability(Capability::Ec2Disrupt(vec![]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let filters = running_only("filters", filters_from_json("filters", &args.filters)?)?;
        let matching = ec2::describe_instances(&args.region, &filters)?;
        let zones: BTreeSet<String> = matching.iter().map(|i| i.availability_zone.clone()).collect();
        let zone = match &args.zone {
            Some(zone) => zone.clone(),
            None => choose(&mut ctx.rng(), zones.iter().cloned().collect(), 1).into_iter().next().ok_or_else(|| {
                PluginError::failed(format!(
                    "no instance matched filters {} in {} (only running instances count)",
                    Value::Object(args.filters.clone()),
                    args.region
                ))
            })?,
        };
        let in_zone: Vec<ec2::Instance> = matching.into_iter().filter(|i| i.availability_zone == zone).collect();
        if in_zone.is_empty() {
            return Err(PluginError::failed(format!(
                "no running instance matching filters {} is in {zone}",
                Value::Object(args.filters.clone())
            )));
        }
        let ids: Vec<String> = in_zone.iter().map(|i| i.instance_id.clone()).collect();
        let hold_ms = u64::from(args.duration_seconds) * 1000;
        info!("{zone} goes out ({:?} of {} instances) for {} s", ids, ids.len(), args.duration_seconds);
        let (what, affected): (&str, Vec<String>) = match args.mode {
            Mode::Stop => (
                "stopped",
                ec2::stop_instances(&args.region, &ids, hold_ms)?.into_iter().map(|t| t.instance_id).collect(),
            ),
            Mode::Isolate => (
                "isolated",
                ec2::isolate_instances(&args.region, &ids, hold_ms)?.into_iter().map(|t| t.instance_id).collect(),
            ),
            Mode::NetworkAcl => {
                let subnets: BTreeSet<String> = in_zone.iter().filter_map(|i| i.subnet_id.clone()).collect();
                if subnets.is_empty() {
                    return Err(PluginError::failed(format!("the instances in {zone} are in no subnet")));
                }
                let subnets: Vec<String> = subnets.into_iter().collect();
                ("cut off (deny-all network ACL)", ec2::isolate_subnets(&args.region, &subnets, hold_ms)?)
            }
        };
        let verb = if ctx.dry_run { format!("dry run: would leave {zone} out") } else { format!("{zone} is out") };
        let summary = format!("{verb}: {} {what} for {} s", affected.join(", "), args.duration_seconds);
        let mut report = Report::new(summary).details(json!({
            "region": args.region,
            "zone": zone,
            "zones": zones,
            "mode": match args.mode { Mode::Stop => "stop", Mode::Isolate => "isolate", Mode::NetworkAcl => "network_acl" },
            "instances": ids,
            "affected": affected,
            "duration_seconds": args.duration_seconds,
            "dry_run": ctx.dry_run,
        }));
        for target in affected {
            report = report.target(target);
        }
        Ok(report)
    }
}

cme_plugin_sdk::export_attack!(AzOutage);
