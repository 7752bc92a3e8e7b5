//! The flow the EC2 instance attacks share (terminate, stop, reboot, isolate): describe
//! the running instances matching the plan's filters, drop the excluded ones, pick
//! `count`/`percent` of the rest at random and act on them in one call (the host
//! re-checks them against the grant, and registers the revert of a stop or an isolation
//! before it acts).

use cme_plugin_sdk::attack::{Report, RunContext, ec2};
use cme_plugin_sdk::serde_json::{Map, Value};
use cme_plugin_sdk::targets::{Selection, choose, filters_from_json, running_only};
use cme_plugin_sdk::{PluginError, info, json, warn};

/// The args both plugins take (each flattens them into its own `Args`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct TargetArgs {
    /// AWS region, e.g. eu-west-1
    #[schemars(length(min = 1))]
    pub region: String,
    /// EC2 describe-instances filters: name -> value or list of values, e.g. {"tag:Chaos": "true"}; only running instances are considered
    #[schemars(with = "cme_plugin_sdk::targets::Ec2Filters")]
    pub filters: Map<String, Value>,
    /// act on this many of the matching instances (default 1)
    #[schemars(range(min = 1, max = 1000))]
    pub count: Option<u32>,
    /// act on this percentage of the matching instances, rounded up (instead of count)
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,
}

/// Lists, for the attack's filters, the ids of the instances that must survive.
pub type Excluded<'a> = &'a dyn Fn(&[ec2::Filter]) -> Result<Vec<String>, PluginError>;

/// The host call an attack makes on the chosen instances (region, ids).
pub type Call<'a> = &'a dyn Fn(&str, &[String]) -> Result<Vec<ec2::Terminated>, cme_plugin_sdk::HostError>;

/// What an attack does to the chosen instances: its words, and the host call.
pub struct Action<'a> {
    /// e.g. "terminate", "stop": the summary says "terminated"/"would terminate".
    pub verb: &'a str,
    pub past: &'a str,
    pub call: Call<'a>,
}

/// Runs the attack: `excluded` lists the ids that must survive.
pub fn terminate(ctx: &RunContext, args: &TargetArgs, excluded: Excluded) -> Result<Report, PluginError> {
    act(ctx, args, excluded, &Action { verb: "terminate", past: "terminated", call: &ec2::terminate_instances })
}

/// Runs `action` on `count`/`percent` of the running instances matching the filters,
/// but the `excluded` ones.
pub fn act(ctx: &RunContext, args: &TargetArgs, excluded: Excluded, action: &Action) -> Result<Report, PluginError> {
    let selection = Selection::from_args(args.count, args.percent)?;
    let filters = running_only("filters", filters_from_json("filters", &args.filters)?)?;
    let matching = ec2::describe_instances(&args.region, &filters)?;
    if matching.is_empty() {
        return Err(PluginError::failed(format!(
            "no instance matched filters {} in {} (only running instances count)",
            Value::Object(args.filters.clone()),
            args.region
        )));
    }
    let spared = excluded(&filters)?;
    let candidates: Vec<ec2::Instance> =
        matching.iter().filter(|i| !spared.contains(&i.instance_id)).cloned().collect();
    if candidates.is_empty() {
        return Err(PluginError::failed(format!(
            "all {} instances matching filters {} in {} are excluded",
            matching.len(),
            Value::Object(args.filters.clone()),
            args.region
        )));
    }
    let n = selection.size(candidates.len());
    let chosen = choose(&mut ctx.rng(), candidates.clone(), n);
    let ids: Vec<String> = chosen.iter().map(|i| i.instance_id.clone()).collect();
    info!("{}: {} of {} candidates in {}: {}", action.verb, ids.len(), candidates.len(), args.region, ids.join(", "));
    let done = (action.call)(&args.region, &ids)?;
    if done.len() != ids.len() {
        warn!("EC2 reported {} of {} instances", done.len(), ids.len());
    }
    let verb = if ctx.dry_run { format!("dry run: would {}", action.verb) } else { action.past.to_string() };
    let summary =
        format!("{verb} {} in {} ({} of {} candidates)", ids.join(", "), args.region, ids.len(), candidates.len());
    let details = json!({
        "region": args.region,
        "matching": matching.len(),
        "excluded": spared.len(),
        "candidates": candidates.iter().map(|i| &i.instance_id).collect::<Vec<_>>(),
        action.past: done.iter().map(|t| json!({
            "instance_id": t.instance_id,
            "previous_state": t.previous_state,
            "current_state": t.current_state,
        })).collect::<Vec<_>>(),
        "dry_run": ctx.dry_run,
    });
    let mut report = Report::new(summary).details(details);
    for id in ids {
        report = report.target(id);
    }
    Ok(report)
}
