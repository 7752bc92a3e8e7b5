//! DigitalOcean droplets as compute nodes, over API v2 as its official client (pydo)
//! describes it: `GET /v2/droplets` (filtered by one `tag_name`, paged by
//! `links.pages.next`), `GET /v2/droplets/{id}`, droplet actions (`shutdown`, `power_on`,
//! `reboot`) followed through `GET /v2/actions/{id}` until `completed` or `errored`, and
//! `DELETE /v2/droplets/{id}`. A droplet's tags are plain strings: `key:value` reads as
//! the pair, a tag without `:` as the key with an empty value. Statuses: `new` is pending,
//! `active` running, `off` stopped, `archive` terminated.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::rest::Rest;
use super::{
    ComputeError, Node, NodeFilters, NodeState, Operation, Pending, Provider, ProviderKind, split_tag, within_max_nodes,
};

/// DigitalOcean's API.
pub const DEFAULT_ENDPOINT: &str = "https://api.digitalocean.com";
/// Droplets per page asked for (the API's maximum).
const PAGE_SIZE: u32 = 200;

/// The droplets of one account, in the given regions (empty: every region).
pub struct DigitalOcean {
    rest: Rest,
    endpoint: Url,
    regions: Vec<String>,
    poll: Duration,
}

impl DigitalOcean {
    pub fn new(rest: Rest, endpoint: Option<&str>, regions: Vec<String>) -> Result<DigitalOcean, ComputeError> {
        let endpoint = Url::parse(endpoint.unwrap_or(DEFAULT_ENDPOINT))
            .map_err(|e| ComputeError::InvalidArgument(format!("endpoint: {e}")))?;
        Ok(DigitalOcean { rest, endpoint, regions, poll: Duration::from_secs(2) })
    }

    /// How often an action is read again while it runs (2 s by default; tests shorten it).
    pub fn with_poll(mut self, poll: Duration) -> DigitalOcean {
        self.poll = poll;
        self
    }

    fn url(&self, path: &str) -> Result<Url, ComputeError> {
        self.endpoint.join(path).map_err(|e| ComputeError::InvalidArgument(format!("{path}: {e}")))
    }

    /// A node id as a droplet id: digits only (it goes into a URL path).
    fn droplet_id(node: &Node) -> Result<u64, ComputeError> {
        node.id.parse().map_err(|_| ComputeError::InvalidArgument(format!("{:?} is not a droplet id", node.id)))
    }

    /// Follows a droplet action until it completes, errs, or `deadline` passes.
    async fn follow_action(
        &self,
        operation: &'static str,
        action: &Value,
        deadline: tokio::time::Instant,
    ) -> Result<(), ComputeError> {
        let id = action["id"].as_u64().ok_or_else(|| ComputeError::Upstream {
            provider: ProviderKind::DigitalOcean,
            operation,
            code: "no_action".into(),
            message: format!("the answer names no action: {action}"),
        })?;
        let url = self.url(&format!("v2/actions/{id}"))?;
        let mut status = action["status"].as_str().unwrap_or_default().to_string();
        loop {
            match status.as_str() {
                "completed" => return Ok(()),
                "errored" => {
                    return Err(ComputeError::Upstream {
                        provider: ProviderKind::DigitalOcean,
                        operation,
                        code: "action_errored".into(),
                        message: format!("action {id} ({}) errored", action["type"].as_str().unwrap_or("?")),
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(ComputeError::Upstream {
                    provider: ProviderKind::DigitalOcean,
                    operation,
                    code: "action_timeout".into(),
                    message: format!("action {id} is still {status} at the operation's timeout"),
                });
            }
            tokio::time::sleep(self.poll).await;
            let answer = self.rest.send(operation, Method::GET, &url, None, true, &[]).await?;
            status = answer.body["action"]["status"].as_str().unwrap_or_default().to_string();
        }
    }
}

fn node_state(status: &str) -> NodeState {
    match status {
        "new" => NodeState::Pending,
        "active" => NodeState::Running,
        "off" => NodeState::Stopped,
        "archive" => NodeState::Terminated,
        _ => NodeState::Unknown,
    }
}

/// A droplet as a node; None when the answer lacks its id.
fn node(droplet: &Value) -> Option<Node> {
    let id = droplet["id"].as_u64()?.to_string();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let addresses = |kind: &str| -> Vec<String> {
        droplet["networks"]["v4"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["type"] == kind)
            .filter_map(|n| text(&n["ip_address"]))
            .collect()
    };
    let status = text(&droplet["status"]).unwrap_or_default();
    let region = text(&droplet["region"]["slug"]);
    Some(Node {
        name: text(&droplet["name"]).unwrap_or_else(|| id.clone()),
        id,
        state: node_state(&status),
        provider_state: status,
        provider: ProviderKind::DigitalOcean,
        // A region has no zones: the region is the zone filters match.
        zone: region.clone(),
        region,
        tags: droplet["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).map(split_tag).collect(),
        private_addresses: addresses("private"),
        public_addresses: addresses("public"),
        image: text(&droplet["image"]["slug"]).or_else(|| text(&droplet["image"]["name"])),
        size: text(&droplet["size_slug"]),
    })
}

impl Provider for DigitalOcean {
    fn kind(&self) -> ProviderKind {
        ProviderKind::DigitalOcean
    }

    fn list_nodes<'a>(&'a self, filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        Box::pin(async move {
            let mut url = self.url("v2/droplets")?;
            url.query_pairs_mut().append_pair("per_page", &PAGE_SIZE.to_string());
            // The API filters by one tag; the cloud checks the others.
            if let Some((key, value)) = filters.tags.iter().next() {
                let tag = if value.is_empty() { key.clone() } else { format!("{key}:{value}") };
                url.query_pairs_mut().append_pair("tag_name", &tag);
            }
            let mut nodes = Vec::new();
            let mut next = Some(url);
            while let Some(page) = next.take() {
                let answer = self.rest.send("list droplets", Method::GET, &page, None, true, &[]).await?;
                for droplet in answer.body["droplets"].as_array().into_iter().flatten() {
                    if let Some(node) = node(droplet)
                        && (self.regions.is_empty() || node.region.as_ref().is_some_and(|r| self.regions.contains(r)))
                    {
                        nodes.push(node);
                    }
                }
                within_max_nodes(nodes.len())?;
                next = match answer.body["links"]["pages"]["next"].as_str() {
                    Some(link) => Some(
                        page.join(link)
                            .map_err(|e| ComputeError::InvalidArgument(format!("the next page's link: {e}")))?,
                    ),
                    None => None,
                };
            }
            Ok(nodes)
        })
    }

    fn read_node<'a>(&'a self, listed: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let url = self.url(&format!("v2/droplets/{}", Self::droplet_id(listed)?))?;
            let answer = self.rest.send("get droplet", Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            Ok(node(&answer.body["droplet"]))
        })
    }

    /// An action of the droplet still `in-progress` (the droplet's status does not show one).
    fn busy<'a>(&'a self, node: &'a Node) -> Pending<'a, bool> {
        Box::pin(async move {
            let mut url = self.url(&format!("v2/droplets/{}/actions", Self::droplet_id(node)?))?;
            url.query_pairs_mut().append_pair("per_page", "20");
            let answer =
                self.rest.send("list droplet actions", Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            Ok(answer.body["actions"].as_array().into_iter().flatten().any(|a| a["status"] == "in-progress"))
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            let id = Self::droplet_id(node)?;
            let kind = match operation {
                Operation::Destroy => {
                    let url = self.url(&format!("v2/droplets/{id}"))?;
                    // Deleting twice is the same as once: retried, and gone counts as done.
                    self.rest
                        .send("delete droplet", Method::DELETE, &url, None, true, &[StatusCode::NOT_FOUND])
                        .await?;
                    return Ok(());
                }
                Operation::Stop => "shutdown",
                Operation::Start => "power_on",
                Operation::Reboot => "reboot",
            };
            let url = self.url(&format!("v2/droplets/{id}/actions"))?;
            let body = json!({"type": kind});
            let answer = self.rest.send("droplet action", Method::POST, &url, Some(&body), false, &[]).await?;
            self.follow_action("droplet action", &answer.body["action"], deadline).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_droplet_reads_as_a_node() {
        let droplet = json!({
            "id": 3164444, "name": "web-1", "status": "off", "size_slug": "s-1vcpu-1gb",
            "region": {"slug": "ams3", "name": "Amsterdam 3"},
            "image": {"slug": "ubuntu-24-04-x64"},
            "tags": ["env:prod", "chaos", "url:http://x"],
            "networks": {"v4": [
                {"ip_address": "10.110.0.2", "type": "private"},
                {"ip_address": "203.0.113.7", "type": "public"}
            ]}
        });
        let node = node(&droplet).unwrap();
        assert_eq!((node.id.as_str(), node.name.as_str(), node.state), ("3164444", "web-1", NodeState::Stopped));
        assert_eq!(node.provider_state, "off");
        assert_eq!((node.region.as_deref(), node.zone.as_deref()), (Some("ams3"), Some("ams3")));
        assert_eq!(node.tags["env"], "prod");
        assert_eq!(node.tags["chaos"], "");
        assert_eq!(node.tags["url"], "http://x");
        assert_eq!(
            (node.private_addresses.as_slice(), node.public_addresses.as_slice()),
            (&["10.110.0.2".to_string()][..], &["203.0.113.7".to_string()][..])
        );
        assert_eq!((node.image.as_deref(), node.size.as_deref()), (Some("ubuntu-24-04-x64"), Some("s-1vcpu-1gb")));
        for (status, state) in [
            ("new", NodeState::Pending),
            ("active", NodeState::Running),
            ("archive", NodeState::Terminated),
            ("?", NodeState::Unknown),
        ] {
            assert_eq!(node_state(status), state);
        }
    }
}
