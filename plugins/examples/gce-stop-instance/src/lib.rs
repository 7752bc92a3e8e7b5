//! `gce_stop_instance:GceStopInstance`: stops one random RUNNING Google Compute Engine
//! instance whose labels match, through the GCE REST API (v1). The plugin holds no Google
//! credential: the operator binds a service account to the API's URLs
//! (`[[http.credentials]] kind = "gcp-service-account"`) and grants it to this plugin
//! (`"http": {"urls": [...], "credentials": ["gce"]}`); the host adds the OAuth token to
//! each request and scrubs it from every answer.

use std::collections::BTreeMap;

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Capability, Describe, PluginError, http, info, json, serde_json, targets};
use schemars::JsonSchema;
use serde::Deserialize;

/// The attack's args.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The Google Cloud project id.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"))]
    pub project: String,
    /// The zone, e.g. europe-west1-b.
    #[schemars(regex(pattern = r"^[a-z]+-[a-z]+[0-9]+-[a-z]$"))]
    pub zone: String,
    /// Labels every candidate carries, e.g. {"chaos": "true"}.
    #[schemars(length(min = 1))]
    pub labels: BTreeMap<String, String>,
    /// The API's base URL (another endpoint for a private Google access or a test server).
    #[serde(default = "default_endpoint")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
}

fn default_endpoint() -> String {
    "https://compute.googleapis.com".into()
}

/// The plugin.
pub struct GceStopInstance;

#[derive(Deserialize)]
struct InstanceList {
    #[serde(default)]
    items: Vec<Instance>,
}

#[derive(Deserialize)]
struct Instance {
    name: String,
    status: String,
}

impl Attack for GceStopInstance {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("gce-stop-instance", env!("CARGO_PKG_VERSION"))
            .refs(["gce_stop_instance:GceStopInstance"])
            .description("Stops one random running Google Compute Engine instance whose labels match (GCE REST API; the host adds the token).")
            .args::<Args>()
            .example(json!({"project": "my-project-123", "zone": "europe-west1-b", "labels": {"chaos": "true"}}))
            // Any host and port: the endpoint is an arg; the operator grants the real one.
            .capability(Capability::Http(vec!["*://*:*/compute/v1/*".into()]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let base = format!(
            "{}/compute/v1/projects/{}/zones/{}/instances",
            args.endpoint.trim_end_matches('/'),
            args.project,
            args.zone
        );
        // GCE's list filter: labels.KEY = "VALUE" AND ... (quoted: values may hold spaces).
        let filter = args.labels.iter().map(|(k, v)| format!("labels.{k} = \"{v}\"")).collect::<Vec<_>>().join(" AND ");
        let list = send("GET", &format!("{base}?filter={}", encode(&filter)))?;
        let listed: InstanceList = serde_json::from_slice(&list.body)
            .map_err(|e| PluginError::failed(format!("the instance list is not GCE's JSON: {e}")))?;
        let running: Vec<String> = listed.items.into_iter().filter(|i| i.status == "RUNNING").map(|i| i.name).collect();
        info!("{} running instances match {filter}", running.len());
        let Some(victim) = targets::choose(&mut ctx.rng(), running, 1).pop() else {
            return Err(PluginError::failed(format!(
                "no running instance in {}/{} matches {filter}",
                args.project, args.zone
            )));
        };
        let stopped = send("POST", &format!("{base}/{victim}/stop"))?;
        let operation: serde_json::Value = serde_json::from_slice(&stopped.body).unwrap_or_default();
        let summary = if ctx.dry_run { format!("would stop {victim}") } else { format!("stopping {victim}") };
        Ok(Report::new(summary)
            .target(victim)
            .details(json!({"operation": operation["name"], "status": stopped.status})))
    }
}

/// One API call; any answer but 2xx (or a dry run's 0) fails the attack with GCE's status.
fn send(method: &str, url: &str) -> Result<http::Response, PluginError> {
    let response = http::send(&http::Request {
        method: method.into(),
        url: url.into(),
        headers: vec![],
        body: None,
        timeout_ms: Some(10_000),
    })?;
    if response.status != 0 && !(200..300).contains(&response.status) {
        let excerpt = String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned();
        return Err(PluginError::failed(format!("{method} {url} -> {}: {excerpt}", response.status)));
    }
    Ok(response)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

cme_plugin_sdk::export_attack!(GceStopInstance);
