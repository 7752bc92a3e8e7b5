//! The node model every provider maps to, and the provider-neutral filters the cloud
//! re-checks on every node a provider lists.

use std::collections::BTreeMap;

/// A provider `cme` drives through `compute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Aws,
    Gce,
    Azure,
    OpenStack,
    DigitalOcean,
}

cme_model::text_enum!(ProviderKind, "cloud provider", {
    Aws => "aws",
    Gce => "gce",
    Azure => "azure",
    OpenStack => "openstack",
    DigitalOcean => "digitalocean",
});

/// A node's state in every provider's terms. The provider's own word stays in
/// [`Node::provider_state`] (GCE's `TERMINATED` is [`NodeState::Stopped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeState {
    Pending,
    Running,
    Stopping,
    Stopped,
    Rebooting,
    Terminated,
    Suspended,
    Error,
    Unknown,
}

cme_model::text_enum!(NodeState, "node state", {
    Pending => "pending",
    Running => "running",
    Stopping => "stopping",
    Stopped => "stopped",
    Rebooting => "rebooting",
    Terminated => "terminated",
    Suspended => "suspended",
    Error => "error",
    Unknown => "unknown",
});

/// One compute node (an EC2 instance, a GCE instance, an Azure VM, a Nova server, a droplet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The provider's own id: `i-…`, `projects/P/zones/Z/instances/N`, the ARM id, the
    /// Nova UUID, the droplet id.
    pub id: String,
    pub name: String,
    pub state: NodeState,
    /// The provider's word for the state, e.g. `TERMINATED`, `VM deallocated`, `SHUTOFF`, `off`.
    pub provider_state: String,
    pub provider: ProviderKind,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// GCE labels, Azure tags, Nova metadata, DigitalOcean tags (split at the first `:`;
    /// a tag without one has the value ""), EC2 tags.
    pub tags: BTreeMap<String, String>,
    pub private_addresses: Vec<String>,
    pub public_addresses: Vec<String>,
    pub image: Option<String>,
    pub size: Option<String>,
}

impl Node {
    /// Whether the node carries every one of `tags` with the same value.
    pub fn has_tags(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.iter().all(|(key, value)| self.tags.get(key) == Some(value))
    }
}

/// Which nodes a caller wants: every given criterion must hold (an empty one holds for
/// every node). Providers pass what their API can filter on; [`NodeFilters::matches`]
/// is the rule, applied by the cloud to whatever a provider answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFilters {
    /// Each key with exactly this value.
    pub tags: BTreeMap<String, String>,
    /// The node's zone is one of these.
    pub zones: Vec<String>,
    /// The node's state is one of these.
    pub states: Vec<NodeState>,
    /// The node's name is one of these.
    pub names: Vec<String>,
}

impl NodeFilters {
    pub fn matches(&self, node: &Node) -> bool {
        node.has_tags(&self.tags)
            && (self.zones.is_empty() || node.zone.as_ref().is_some_and(|z| self.zones.contains(z)))
            && (self.states.is_empty() || self.states.contains(&node.state))
            && (self.names.is_empty() || self.names.contains(&node.name))
    }
}

/// DigitalOcean's tags are plain strings; `key:value` is the convention for pairs.
pub fn split_tag(tag: &str) -> (String, String) {
    match tag.split_once(':') {
        Some((key, value)) => (key.to_string(), value.to_string()),
        None => (tag.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(zone: &str, state: NodeState, tags: &[(&str, &str)]) -> Node {
        Node {
            id: "n-1".into(),
            name: "web-1".into(),
            state,
            provider_state: state.as_str().into(),
            provider: ProviderKind::Aws,
            region: Some("eu-west-1".into()),
            zone: Some(zone.into()),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            private_addresses: vec![],
            public_addresses: vec![],
            image: None,
            size: None,
        }
    }

    #[test]
    fn every_criterion_must_hold_and_an_empty_one_holds_for_all() {
        let web = node("eu-west-1a", NodeState::Running, &[("chaos", "yes"), ("team", "web")]);
        assert!(NodeFilters::default().matches(&web));
        let tagged = NodeFilters { tags: [("chaos".into(), "yes".into())].into(), ..Default::default() };
        assert!(tagged.matches(&web));
        let other_value = NodeFilters { tags: [("chaos".into(), "no".into())].into(), ..Default::default() };
        assert!(!other_value.matches(&web));
        let zones = NodeFilters { zones: vec!["eu-west-1b".into()], ..tagged.clone() };
        assert!(!zones.matches(&web));
        let stopped = NodeFilters { states: vec![NodeState::Stopped], ..tagged.clone() };
        assert!(!stopped.matches(&web));
        let named = NodeFilters { names: vec!["web-1".into()], states: vec![NodeState::Running], ..tagged };
        assert!(named.matches(&web));
    }

    #[test]
    fn digitalocean_tags_split_at_the_first_colon() {
        assert_eq!(split_tag("env:prod"), ("env".into(), "prod".into()));
        assert_eq!(split_tag("url:http://x"), ("url".into(), "http://x".into()));
        assert_eq!(split_tag("chaos"), ("chaos".into(), String::new()));
    }

    #[test]
    fn states_and_providers_read_back_from_their_words() {
        for state in [NodeState::Pending, NodeState::Suspended, NodeState::Unknown] {
            assert_eq!(state.as_str().parse::<NodeState>().unwrap(), state);
        }
        assert_eq!("digitalocean".parse::<ProviderKind>().unwrap(), ProviderKind::DigitalOcean);
        assert!("vmware".parse::<ProviderKind>().unwrap_err().to_string().contains("aws, gce, azure"));
    }
}
