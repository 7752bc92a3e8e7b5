//! The flow the node attacks share (terminate, stop, reboot a random node on any
//! configured cloud): list the cloud's running nodes matching the plan's tags, zones and
//! names, pick `count`/`percent` of them at random (as the EC2 attacks pick instances)
//! and act on each in turn. The host re-reads each node right before acting, counts it
//! against the run's and the cloud's nodes per run, and registers a stop's revert first.
//! A plan moves from one cloud to another by changing only `cloud`.

use std::collections::BTreeMap;

use cme_plugin_sdk::attack::{Report, RunContext, compute};
use cme_plugin_sdk::targets::{Selection, choose};
use cme_plugin_sdk::{HostError, KeyValue, PluginError, info, json};

/// The args every node attack takes (each flattens them into its own `Args`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct NodeTargetArgs {
    /// the cloud, by the name the operator gave it in [[clouds]] (e.g. "aws", "prod-gce")
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub cloud: String,
    /// tags every chosen node carries (GCE labels, Azure tags, OpenStack metadata, DigitalOcean key:value tags)
    #[serde(default)]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: BTreeMap<String, String>,
    /// only nodes in these zones (default: any)
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub zones: Vec<String>,
    /// only nodes with these names (default: any)
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub names: Vec<String>,
    /// act on this many of the matching nodes (default 1)
    #[schemars(range(min = 1, max = 1000))]
    pub count: Option<u32>,
    /// act on this percentage of the matching nodes, rounded up (instead of count)
    #[schemars(range(min = 1, max = 100))]
    pub percent: Option<u32>,
}

/// The host call an attack makes on each chosen node (cloud, node id).
pub type Call<'a> = &'a dyn Fn(&str, &str) -> Result<compute::Acted, HostError>;

/// What an attack does to the chosen nodes: its words, and the host call.
pub struct Action<'a> {
    /// e.g. "terminate": the summary says "terminated" / "would terminate".
    pub verb: &'a str,
    pub past: &'a str,
    pub call: Call<'a>,
}

/// Runs `action` on `count`/`percent` of the running nodes matching the args.
pub fn act(ctx: &RunContext, args: &NodeTargetArgs, action: &Action) -> Result<Report, PluginError> {
    let selection = Selection::from_args(args.count, args.percent)?;
    let filters = compute::NodeFilters {
        tags: args.tags.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect(),
        zones: args.zones.clone(),
        states: vec![compute::NodeState::Running],
        names: args.names.clone(),
    };
    let candidates = compute::list_nodes(&args.cloud, &filters)?;
    if candidates.is_empty() {
        return Err(PluginError::failed(format!(
            "no running node on cloud {} matched tags {:?}, zones {:?}, names {:?}",
            args.cloud, args.tags, args.zones, args.names
        )));
    }
    let n = selection.size(candidates.len());
    let chosen = choose(&mut ctx.rng(), candidates.clone(), n);
    let ids: Vec<String> = chosen.iter().map(|node| node.id.clone()).collect();
    info!(
        "{}: {} of {} candidates on cloud {}: {}",
        action.verb,
        ids.len(),
        candidates.len(),
        args.cloud,
        ids.join(", ")
    );
    let mut done = Vec::with_capacity(ids.len());
    for id in &ids {
        match (action.call)(&args.cloud, id) {
            Ok(acted) => done.push(acted),
            // The first: the host's own refusal, as it is (a denial stays one).
            Err(error) if done.is_empty() => return Err(error.into()),
            Err(error) => {
                let finished: Vec<&str> = done.iter().map(|a| a.node_id.as_str()).collect();
                return Err(PluginError::failed(format!(
                    "{} {id} on cloud {} failed: {}{}",
                    action.verb,
                    args.cloud,
                    PluginError::from(error),
                    if finished.is_empty() {
                        String::new()
                    } else {
                        format!(" (already {}: {})", action.past, finished.join(", "))
                    }
                )));
            }
        }
    }
    let verb = if ctx.dry_run { format!("dry run: would {}", action.verb) } else { action.past.to_string() };
    let already = done.iter().filter(|a| a.already).count();
    let summary = format!(
        "{verb} {} on cloud {} ({} of {} candidates{})",
        ids.join(", "),
        args.cloud,
        ids.len(),
        candidates.len(),
        if already > 0 { format!(", {already} already so") } else { String::new() }
    );
    let node = |id: &str| candidates.iter().find(|n| n.id == id);
    let details = json!({
        "cloud": args.cloud,
        "provider": candidates.first().map(|n| n.provider.clone()),
        "candidates": candidates.iter().map(|n| &n.id).collect::<Vec<_>>(),
        action.past: done.iter().map(|a| json!({
            "node_id": a.node_id,
            "name": node(&a.node_id).map(|n| n.name.clone()),
            "zone": node(&a.node_id).and_then(|n| n.zone.clone()),
            "previous_state": compute::state_word(a.previous_state),
            "current_state": compute::state_word(a.current_state),
            "already": a.already,
        })).collect::<Vec<_>>(),
        "dry_run": ctx.dry_run,
    });
    let mut report = Report::new(summary).details(details);
    for id in ids {
        report = report.target(id);
    }
    Ok(report)
}
