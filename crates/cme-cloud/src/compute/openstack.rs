//! OpenStack Nova servers as compute nodes, over the Compute API v2.1: the endpoint is
//! the `compute` service of the Keystone token's catalog (the cloud's region and
//! interface) unless the cloud names one; `GET servers/detail` paged by `limit` and
//! `marker` (the `next` link of `servers_links`), `GET servers/{id}`, the server actions
//! `os-stop`, `os-start` and a `SOFT` reboot, and `DELETE servers/{id}`. Nova answers an
//! action at once (202); the cloud then follows the server's status. A server's
//! metadata is its tags; fixed addresses are private and floating ones public.
//! Statuses: `ACTIVE` is running, `SHUTOFF` stopped, `BUILD` pending, `REBOOT` and
//! `HARD_REBOOT` rebooting, a `powering-off` task stopping.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use url::Url;

use super::rest::Rest;
use super::{ComputeError, Node, NodeFilters, NodeState, Operation, Pending, Provider, ProviderKind, within_max_nodes};
use crate::http::HttpCredential;

/// Servers per page asked for (Nova's default `max_limit` is 1000).
const PAGE_SIZE: u32 = 1000;

/// The servers of one project (the credential's) in one region.
pub struct OpenStack {
    rest: Rest,
    credential: Arc<HttpCredential>,
    region: String,
    interface: String,
    /// The operator's Nova URL, over the catalog's.
    endpoint: Option<Url>,
}

impl OpenStack {
    /// `interface`: public (the default), internal or admin.
    pub fn new(
        rest: Rest,
        credential: Arc<HttpCredential>,
        region: &str,
        interface: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<OpenStack, ComputeError> {
        let endpoint = endpoint
            .map(|e| Url::parse(&with_slash(e)).map_err(|e| ComputeError::InvalidArgument(format!("endpoint: {e}"))))
            .transpose()?;
        Ok(OpenStack {
            rest,
            credential,
            region: region.to_string(),
            interface: interface.unwrap_or("public").to_string(),
            endpoint,
        })
    }

    /// Nova's URL: the operator's, else the catalog's `compute` endpoint of the region and
    /// interface.
    async fn nova(&self) -> Result<Url, ComputeError> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(endpoint.clone());
        }
        let catalog = match self.credential.openstack_catalog().await {
            Some(Ok(catalog)) => catalog,
            Some(Err(e)) => {
                return Err(ComputeError::Unreachable {
                    provider: ProviderKind::OpenStack,
                    operation: "keystone token",
                    reason: e.to_string(),
                });
            }
            None => {
                return Err(ComputeError::InvalidArgument(format!(
                    "credential {:?} is not a Keystone credential, so it has no catalog",
                    self.credential.name()
                )));
            }
        };
        catalog_url(&catalog, &self.region, &self.interface)
    }

    async fn url(&self, path: &str) -> Result<Url, ComputeError> {
        self.nova().await?.join(path).map_err(|e| ComputeError::InvalidArgument(format!("{path}: {e}")))
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') { url.to_string() } else { format!("{url}/") }
}

/// The `compute` service's URL for `region` and `interface` in a Keystone v3 catalog.
fn catalog_url(catalog: &Value, region: &str, interface: &str) -> Result<Url, ComputeError> {
    let endpoint = catalog
        .as_array()
        .into_iter()
        .flatten()
        .filter(|service| service["type"] == "compute")
        .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
        .find(|e| e["interface"] == interface && (e["region_id"] == region || e["region"] == region));
    let url = endpoint.and_then(|e| e["url"].as_str()).ok_or_else(|| {
        ComputeError::InvalidArgument(format!(
            "the Keystone catalog has no {interface} compute endpoint in region {region:?}"
        ))
    })?;
    Url::parse(&with_slash(url))
        .map_err(|e| ComputeError::InvalidArgument(format!("the catalog's compute URL {url:?}: {e}")))
}

/// A server id: a UUID's characters only (it goes into a URL path).
fn server_id(node: &Node) -> Result<&str, ComputeError> {
    let fits = !node.id.is_empty() && node.id.len() <= 64 && node.id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if fits {
        Ok(&node.id)
    } else {
        Err(ComputeError::InvalidArgument(format!("{:?} is not a Nova server id", node.id)))
    }
}

pub(crate) fn node_state(status: &str, task: Option<&str>) -> NodeState {
    match (status, task) {
        (_, Some("powering-off")) => NodeState::Stopping,
        (_, Some("deleting")) => NodeState::Terminated,
        ("ACTIVE", _) => NodeState::Running,
        ("BUILD" | "REBUILD" | "MIGRATING" | "RESIZE" | "VERIFY_RESIZE", _) => NodeState::Pending,
        ("SHUTOFF", _) => NodeState::Stopped,
        ("REBOOT" | "HARD_REBOOT", _) => NodeState::Rebooting,
        ("SUSPENDED" | "PAUSED" | "SHELVED" | "SHELVED_OFFLOADED", _) => NodeState::Suspended,
        ("DELETED" | "SOFT_DELETED", _) => NodeState::Terminated,
        ("ERROR", _) => NodeState::Error,
        _ => NodeState::Unknown,
    }
}

/// A server as a node of `region`; None when it lacks an id.
fn node(region: &str, server: &Value) -> Option<Node> {
    let id = server["id"].as_str()?.to_string();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let status = text(&server["status"]).unwrap_or_default();
    let addresses = |kind: &str| -> Vec<String> {
        server["addresses"]
            .as_object()
            .into_iter()
            .flat_map(|networks| networks.values())
            .flat_map(|list| list.as_array().cloned().unwrap_or_default())
            .filter(|a| a["OS-EXT-IPS:type"].as_str().unwrap_or("fixed") == kind)
            .filter_map(|a| text(&a["addr"]))
            .collect()
    };
    Some(Node {
        name: text(&server["name"]).unwrap_or_else(|| id.clone()),
        state: node_state(&status, server["OS-EXT-STS:task_state"].as_str()),
        provider_state: status,
        provider: ProviderKind::OpenStack,
        region: Some(region.to_string()),
        zone: text(&server["OS-EXT-AZ:availability_zone"]),
        tags: server["metadata"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        private_addresses: addresses("fixed"),
        public_addresses: addresses("floating"),
        image: text(&server["image"]["id"]),
        size: text(&server["flavor"]["original_name"]).or_else(|| text(&server["flavor"]["id"])),
        id,
    })
}

impl Provider for OpenStack {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenStack
    }

    fn list_nodes<'a>(&'a self, filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        Box::pin(async move {
            let mut first = self.url("servers/detail").await?;
            first.query_pairs_mut().append_pair("limit", &PAGE_SIZE.to_string());
            // Nova filters names by regular expression: one exact name is asked as such.
            if let [name] = filters.names.as_slice() {
                first.query_pairs_mut().append_pair("name", &format!("^{}$", regex_escape(name)));
            }
            let mut nodes = Vec::new();
            let mut next = Some(first);
            while let Some(page) = next.take() {
                let answer = self.rest.send("list servers", Method::GET, &page, None, true, &[]).await?;
                let servers = answer.body["servers"].as_array().cloned().unwrap_or_default();
                nodes.extend(servers.iter().filter_map(|s| node(&self.region, s)));
                within_max_nodes(nodes.len())?;
                let link = answer.body["servers_links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["rel"] == "next")
                    .and_then(|l| l["href"].as_str());
                // An empty page ends the listing whatever its links say.
                if let Some(link) = link.filter(|_| !servers.is_empty()) {
                    next = Some(
                        page.join(link)
                            .map_err(|e| ComputeError::InvalidArgument(format!("the next page's link: {e}")))?,
                    );
                }
            }
            Ok(nodes)
        })
    }

    fn read_node<'a>(&'a self, listed: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let url = self.url(&format!("servers/{}", server_id(listed)?)).await?;
            let answer = self.rest.send("show server", Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            Ok(node(&self.region, &answer.body["server"]))
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, _deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            let id = server_id(node)?;
            if operation == Operation::Destroy {
                let url = self.url(&format!("servers/{id}")).await?;
                // Deleting twice is the same as once: retried, and gone counts as done.
                self.rest.send("delete server", Method::DELETE, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
                return Ok(());
            }
            let (call, body) = match operation {
                Operation::Stop => ("os-stop", json!({"os-stop": null})),
                Operation::Start => ("os-start", json!({"os-start": null})),
                _ => ("reboot", json!({"reboot": {"type": "SOFT"}})),
            };
            let url = self.url(&format!("servers/{id}/action")).await?;
            // Not retried: a second stop of a stopping server is a conflict.
            self.rest.send(call, Method::POST, &url, Some(&body), false, &[]).await?;
            Ok(())
        })
    }
}

/// `text` with the regular-expression metacharacters escaped.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_reads_as_a_node() {
        let server = json!({
            "id": "9e1f6b5e-5b8c-4b7e-9d1a-3c2f1e0d9a8b", "name": "web-1", "status": "ACTIVE",
            "OS-EXT-STS:task_state": null, "OS-EXT-AZ:availability_zone": "nova",
            "metadata": {"chaos": "yes"},
            "flavor": {"original_name": "m1.small"}, "image": {"id": "img-1"},
            "addresses": {"private": [
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "172.24.4.10", "version": 4, "OS-EXT-IPS:type": "floating"}
            ]}
        });
        let node = node("RegionOne", &server).unwrap();
        assert_eq!(
            (node.state, node.zone.as_deref(), node.region.as_deref()),
            (NodeState::Running, Some("nova"), Some("RegionOne"))
        );
        assert_eq!(
            (node.private_addresses[0].as_str(), node.public_addresses[0].as_str()),
            ("10.0.0.5", "172.24.4.10")
        );
        assert_eq!((node.size.as_deref(), node.tags["chaos"].as_str()), (Some("m1.small"), "yes"));
        assert_eq!(node_state("ACTIVE", Some("powering-off")), NodeState::Stopping);
        assert_eq!(node_state("SHUTOFF", None), NodeState::Stopped);
        assert_eq!(node_state("HARD_REBOOT", None), NodeState::Rebooting);
    }

    #[test]
    fn the_catalog_gives_the_compute_endpoint_of_the_region_and_interface() {
        let catalog = json!([
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": "https://k/v3"}]},
            {"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne", "url": "https://nova.internal/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "https://nova2/v2.1"},
                {"interface": "public", "region_id": "RegionOne", "url": "https://nova/v2.1"}
            ]}
        ]);
        assert_eq!(catalog_url(&catalog, "RegionOne", "public").unwrap().as_str(), "https://nova/v2.1/");
        assert_eq!(catalog_url(&catalog, "RegionOne", "internal").unwrap().as_str(), "https://nova.internal/v2.1/");
        let missing = catalog_url(&catalog, "RegionThree", "public").unwrap_err().to_string();
        assert!(missing.contains("RegionThree"), "{missing}");
    }

    #[test]
    fn ids_and_names_cannot_change_the_url() {
        let mut node = node("R", &json!({"id": "x"})).unwrap();
        for bad in ["../servers", "a/b", "", "1?x=1"] {
            node.id = bad.to_string();
            assert!(server_id(&node).is_err(), "{bad:?}");
        }
        assert_eq!(regex_escape("web.1(a)"), "web\\.1\\(a\\)");
    }
}
