//! Google Compute Engine instances as compute nodes, over the Compute Engine API v1 as its
//! discovery document (shipped in google-api-python-client) describes it:
//! `instances.list` per zone of the cloud (`filter` on one label, paged by
//! `nextPageToken`), `instances.get`, `instances.stop`/`start`/`reset`/`delete` (each with
//! a fresh `requestId`, which makes a retry of the same request safe), and the zone
//! `Operation` each answers, followed through `zoneOperations.get` until `DONE`; an
//! `error` in a `DONE` operation (on a 200) is the operation's failure. A node's id is
//! `projects/P/zones/Z/instances/N`; labels are its tags; `TERMINATED` (GCE's word for a
//! stopped instance) is stopped.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::rest::Rest;
use super::{ComputeError, Node, NodeFilters, NodeState, Operation, Pending, Provider, ProviderKind, within_max_nodes};

/// Compute Engine's API.
pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";
/// Instances per page asked for (the API's maximum).
const PAGE_SIZE: u32 = 500;

/// The instances of one project in the given zones.
pub struct Gce {
    rest: Rest,
    endpoint: Url,
    project: String,
    zones: Vec<String>,
    poll: Duration,
}

/// A GCE name: lowercase letters, digits and `-` (project ids, zones, instance names).
fn gce_name(what: &str, name: &str) -> Result<(), ComputeError> {
    let fits = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if fits { Ok(()) } else { Err(ComputeError::InvalidArgument(format!("{what} {name:?} is not a GCE name"))) }
}

impl Gce {
    pub fn new(rest: Rest, endpoint: Option<&str>, project: &str, zones: Vec<String>) -> Result<Gce, ComputeError> {
        let mut endpoint = endpoint.unwrap_or(DEFAULT_ENDPOINT).to_string();
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        let endpoint = Url::parse(&endpoint).map_err(|e| ComputeError::InvalidArgument(format!("endpoint: {e}")))?;
        gce_name("project", project)?;
        for zone in &zones {
            gce_name("zone", zone)?;
        }
        Ok(Gce { rest, endpoint, project: project.to_string(), zones, poll: Duration::from_secs(2) })
    }

    /// How often an operation is read again while it runs (2 s by default; tests shorten it).
    pub fn with_poll(mut self, poll: Duration) -> Gce {
        self.poll = poll;
        self
    }

    fn url(&self, path: &str) -> Result<Url, ComputeError> {
        self.endpoint
            .join(&format!("projects/{}/{path}", self.project))
            .map_err(|e| ComputeError::InvalidArgument(format!("{path}: {e}")))
    }

    /// The zone and instance name of a node id `projects/P/zones/Z/instances/N` of this
    /// project.
    fn place(&self, node: &Node) -> Result<(String, String), ComputeError> {
        let parts: Vec<&str> = node.id.split('/').collect();
        match parts.as_slice() {
            ["projects", project, "zones", zone, "instances", name] if *project == self.project => {
                gce_name("zone", zone)?;
                gce_name("instance", name)?;
                Ok((zone.to_string(), name.to_string()))
            }
            _ => Err(ComputeError::InvalidArgument(format!(
                "{:?} is not an instance of project {} (projects/P/zones/Z/instances/N)",
                node.id, self.project
            ))),
        }
    }

    /// Follows a zone operation until it is `DONE`; its `error` is the operation's failure.
    async fn follow_operation(
        &self,
        operation: &'static str,
        zone: &str,
        mut answer: Value,
        deadline: tokio::time::Instant,
    ) -> Result<(), ComputeError> {
        let name = answer["name"].as_str().unwrap_or_default().to_string();
        // Operation names are letters, digits and `-` (they go into a URL path).
        if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ComputeError::Upstream {
                provider: ProviderKind::Gce,
                operation,
                code: "no_operation".into(),
                message: format!("the answer names no operation: {answer}"),
            });
        }
        let url = self.url(&format!("zones/{zone}/operations/{name}"))?;
        loop {
            if answer["status"] == "DONE" {
                if let Some(error) = answer["error"]["errors"].as_array().and_then(|errors| errors.first()) {
                    return Err(ComputeError::Upstream {
                        provider: ProviderKind::Gce,
                        operation,
                        code: error["code"].as_str().unwrap_or("OPERATION_ERROR").to_string(),
                        message: error["message"].as_str().unwrap_or("the operation failed").to_string(),
                    });
                }
                return Ok(());
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(ComputeError::Upstream {
                    provider: ProviderKind::Gce,
                    operation,
                    code: "operation_timeout".into(),
                    message: format!("operation {name} is still {} at the operation's timeout", answer["status"]),
                });
            }
            tokio::time::sleep(self.poll).await;
            answer = self.rest.send(operation, Method::GET, &url, None, true, &[]).await?.body;
        }
    }
}

pub(crate) fn node_state(status: &str) -> NodeState {
    match status {
        "PROVISIONING" | "STAGING" => NodeState::Pending,
        "RUNNING" => NodeState::Running,
        "STOPPING" | "SUSPENDING" => NodeState::Stopping,
        // GCE's TERMINATED is an instance stopped, which can be started again.
        "STOPPED" | "TERMINATED" => NodeState::Stopped,
        "SUSPENDED" => NodeState::Suspended,
        "REPAIRING" => NodeState::Error,
        _ => NodeState::Unknown,
    }
}

/// The last segment of a resource URL (`.../machineTypes/e2-small` is `e2-small`).
fn last_segment(url: &Value) -> Option<String> {
    url.as_str().and_then(|u| u.rsplit('/').next()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// An instance of `project` in `zone` as a node; None when it lacks a name.
fn node(project: &str, zone: &str, instance: &Value) -> Option<Node> {
    let name = instance["name"].as_str()?.to_string();
    let status = instance["status"].as_str().unwrap_or_default().to_string();
    let interfaces = instance["networkInterfaces"].as_array().cloned().unwrap_or_default();
    let region = zone.rsplit_once('-').map(|(region, _)| region.to_string());
    Some(Node {
        id: format!("projects/{project}/zones/{zone}/instances/{name}"),
        state: node_state(&status),
        provider_state: status,
        provider: ProviderKind::Gce,
        region,
        zone: Some(zone.to_string()),
        tags: instance["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        private_addresses: interfaces.iter().filter_map(|n| n["networkIP"].as_str().map(str::to_string)).collect(),
        public_addresses: interfaces
            .iter()
            .flat_map(|n| n["accessConfigs"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["natIP"].as_str().map(str::to_string))
            .collect(),
        image: None,
        size: last_segment(&instance["machineType"]),
        name,
    })
}

impl Provider for Gce {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gce
    }

    fn list_nodes<'a>(&'a self, filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        Box::pin(async move {
            let mut nodes = Vec::new();
            for zone in self.zones.iter().filter(|z| filters.zones.is_empty() || filters.zones.contains(z)) {
                let mut first = self.url(&format!("zones/{zone}/instances"))?;
                first.query_pairs_mut().append_pair("maxResults", &PAGE_SIZE.to_string());
                // The API filters by one label (the cloud checks the others); a value with a
                // quote cannot be a label value, so it is never asked.
                if let Some((key, value)) = filters.tags.iter().find(|(_, v)| !v.contains('"')) {
                    first.query_pairs_mut().append_pair("filter", &format!("labels.{key} = \"{value}\""));
                }
                let mut page_token: Option<String> = None;
                loop {
                    let mut url = first.clone();
                    if let Some(token) = &page_token {
                        url.query_pairs_mut().append_pair("pageToken", token);
                    }
                    let answer = self.rest.send("instances.list", Method::GET, &url, None, true, &[]).await?;
                    nodes.extend(
                        answer.body["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| node(&self.project, zone, i)),
                    );
                    within_max_nodes(nodes.len())?;
                    match answer.body["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                        Some(token) => page_token = Some(token.to_string()),
                        None => break,
                    }
                }
            }
            Ok(nodes)
        })
    }

    fn read_node<'a>(&'a self, listed: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let (zone, name) = self.place(listed)?;
            let url = self.url(&format!("zones/{zone}/instances/{name}"))?;
            let answer =
                self.rest.send("instances.get", Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            Ok(node(&self.project, &zone, &answer.body))
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            let (zone, name) = self.place(node)?;
            let (method, path, call) = match operation {
                Operation::Stop => (Method::POST, format!("zones/{zone}/instances/{name}/stop"), "instances.stop"),
                Operation::Start => (Method::POST, format!("zones/{zone}/instances/{name}/start"), "instances.start"),
                Operation::Reboot => (Method::POST, format!("zones/{zone}/instances/{name}/reset"), "instances.reset"),
                Operation::Destroy => (Method::DELETE, format!("zones/{zone}/instances/{name}"), "instances.delete"),
            };
            let mut url = self.url(&path)?;
            // The same requestId on a retry: GCE runs the request once.
            url.query_pairs_mut().append_pair("requestId", &uuid::Uuid::new_v4().to_string());
            let answer = self.rest.send(call, method, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return if operation == Operation::Destroy {
                    Ok(())
                } else {
                    Err(ComputeError::WrongState { operation, node: node.id.clone(), state: NodeState::Terminated })
                };
            }
            self.follow_operation(call, &zone, answer.body, deadline).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_instance_reads_as_a_node_and_terminated_is_stopped() {
        let instance = json!({
            "id": "4567890123456789012", "name": "web-1", "status": "TERMINATED",
            "zone": "https://compute.googleapis.com/compute/v1/projects/p1/zones/europe-west1-b",
            "machineType": "https://compute.googleapis.com/compute/v1/projects/p1/zones/europe-west1-b/machineTypes/e2-small",
            "labels": {"chaos": "yes", "team": "web"},
            "networkInterfaces": [{"networkIP": "10.132.0.2", "accessConfigs": [{"natIP": "34.76.0.1"}]}]
        });
        let node = node("p1", "europe-west1-b", &instance).unwrap();
        assert_eq!(node.id, "projects/p1/zones/europe-west1-b/instances/web-1");
        assert_eq!((node.state, node.provider_state.as_str()), (NodeState::Stopped, "TERMINATED"));
        assert_eq!((node.region.as_deref(), node.zone.as_deref()), (Some("europe-west1"), Some("europe-west1-b")));
        assert_eq!(node.tags["team"], "web");
        assert_eq!(
            (node.private_addresses[0].as_str(), node.public_addresses[0].as_str()),
            ("10.132.0.2", "34.76.0.1")
        );
        assert_eq!(node.size.as_deref(), Some("e2-small"));
        for (status, state) in
            [("STAGING", NodeState::Pending), ("STOPPING", NodeState::Stopping), ("SUSPENDED", NodeState::Suspended)]
        {
            assert_eq!(node_state(status), state);
        }
    }

    #[test]
    fn names_that_are_not_gce_names_never_reach_a_url() {
        for bad in ["", "a/b", "../x", "Upper", "a?b"] {
            assert!(gce_name("zone", bad).is_err(), "{bad:?}");
        }
        assert!(gce_name("zone", "europe-west1-b").is_ok());
    }
}
