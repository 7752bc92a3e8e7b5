//! Amazon EC2 as a compute provider, over the engine's EC2 backend ([`crate::ec2`]): the
//! same client, credentials, paging and cap as the EC2 capability, so a stop through
//! `compute` and one through `ec2` are the same call.

use std::sync::Arc;

use super::{ComputeError, Node, NodeFilters, NodeState, Operation, Pending, Provider, ProviderKind, within_max_nodes};
use crate::ec2::{Ec2, Ec2Error, Filter, Instance};

/// EC2 in the given regions.
pub struct AwsCompute {
    ec2: Arc<Ec2>,
    regions: Vec<String>,
}

impl AwsCompute {
    /// Nodes are listed in each of `regions`; with none, a listing says how to give one.
    pub fn new(ec2: Arc<Ec2>, regions: Vec<String>) -> AwsCompute {
        AwsCompute { ec2, regions }
    }
}

/// EC2's state names for `state` (EC2 has no word for the others).
fn ec2_states(state: NodeState) -> &'static [&'static str] {
    match state {
        NodeState::Pending => &["pending"],
        NodeState::Running => &["running"],
        NodeState::Stopping => &["stopping", "shutting-down"],
        NodeState::Stopped => &["stopped"],
        NodeState::Terminated => &["terminated"],
        NodeState::Rebooting | NodeState::Suspended | NodeState::Error | NodeState::Unknown => &[],
    }
}

pub(crate) fn node_state(ec2_state: &str) -> NodeState {
    match ec2_state {
        "pending" => NodeState::Pending,
        "running" => NodeState::Running,
        "stopping" | "shutting-down" => NodeState::Stopping,
        "stopped" => NodeState::Stopped,
        "terminated" => NodeState::Terminated,
        _ => NodeState::Unknown,
    }
}

/// The EC2 filters that narrow a listing to `filters` (the cloud checks them again).
/// `None`: no EC2 instance can match (only states EC2 has no word for).
fn ec2_filters(filters: &NodeFilters) -> Option<Vec<Filter>> {
    let mut out: Vec<Filter> =
        filters.tags.iter().map(|(k, v)| Filter { name: format!("tag:{k}"), values: vec![v.clone()] }).collect();
    if !filters.zones.is_empty() {
        out.push(Filter { name: "availability-zone".into(), values: filters.zones.clone() });
    }
    if !filters.names.is_empty() {
        out.push(Filter { name: "tag:Name".into(), values: filters.names.clone() });
    }
    if !filters.states.is_empty() {
        let states: Vec<String> = filters.states.iter().flat_map(|s| ec2_states(*s)).map(|s| s.to_string()).collect();
        if states.is_empty() {
            return None;
        }
        out.push(Filter { name: "instance-state-name".into(), values: states });
    }
    Some(out)
}

fn node(region: &str, instance: Instance) -> Node {
    let tags: std::collections::BTreeMap<String, String> = instance.tags.into_iter().collect();
    Node {
        name: tags.get("Name").cloned().unwrap_or_else(|| instance.instance_id.clone()),
        id: instance.instance_id,
        state: node_state(&instance.state),
        provider_state: instance.state,
        provider: ProviderKind::Aws,
        region: Some(region.to_string()),
        zone: Some(instance.availability_zone).filter(|z| !z.is_empty()),
        tags,
        private_addresses: instance.private_ip.into_iter().collect(),
        public_addresses: instance.public_ip.into_iter().collect(),
        image: None,
        size: Some(instance.instance_type).filter(|t| !t.is_empty()),
    }
}

fn compute_error(error: Ec2Error) -> ComputeError {
    match error {
        Ec2Error::InvalidArgument(message) => ComputeError::InvalidArgument(message),
        Ec2Error::Upstream { operation, code, message } => {
            ComputeError::Upstream { provider: ProviderKind::Aws, operation, code, message }
        }
        Ec2Error::Unreachable { operation, reason } => {
            ComputeError::Unreachable { provider: ProviderKind::Aws, operation, reason }
        }
    }
}

impl Provider for AwsCompute {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    fn list_nodes<'a>(&'a self, filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        Box::pin(async move {
            if self.regions.is_empty() {
                return Err(ComputeError::InvalidArgument(
                    "the aws cloud has no region: set [ec2] regions (or AWS_REGION), or regions in [[clouds]]".into(),
                ));
            }
            let Some(ec2_filters) = ec2_filters(filters) else { return Ok(Vec::new()) };
            let mut nodes = Vec::new();
            for region in &self.regions {
                let instances = self.ec2.describe_instances(region, &ec2_filters).await.map_err(compute_error)?;
                nodes.extend(instances.into_iter().map(|instance| node(region, instance)));
                within_max_nodes(nodes.len())?;
            }
            Ok(nodes)
        })
    }

    fn read_node<'a>(&'a self, listed: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let region = listed.region.as_deref().unwrap_or_default();
            let by_id = [Filter { name: "instance-id".into(), values: vec![listed.id.clone()] }];
            let mut found = self.ec2.describe_instances(region, &by_id).await.map_err(compute_error)?;
            Ok(found.pop().map(|instance| node(region, instance)))
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, _deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            let region = node.region.as_deref().unwrap_or_default();
            let ids = std::slice::from_ref(&node.id);
            let answered = match operation {
                Operation::Stop => self.ec2.stop_instances(region, ids, false).await,
                Operation::Start => self.ec2.start_instances(region, ids).await,
                Operation::Reboot => self.ec2.reboot_instances(region, ids, false).await,
                Operation::Destroy => self.ec2.terminate_instances(region, ids, false).await,
            };
            answered.map(|_| ()).map_err(compute_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_filters_become_ec2_filters() {
        let filters = NodeFilters {
            tags: [("chaos".into(), "yes".into())].into(),
            zones: vec!["eu-west-1a".into()],
            states: vec![NodeState::Running, NodeState::Stopping],
            names: vec!["web-1".into()],
        };
        let names: Vec<(String, Vec<String>)> =
            ec2_filters(&filters).unwrap().into_iter().map(|f| (f.name, f.values)).collect();
        assert_eq!(
            names,
            [
                ("tag:chaos".to_string(), vec!["yes".to_string()]),
                ("availability-zone".into(), vec!["eu-west-1a".into()]),
                ("tag:Name".into(), vec!["web-1".into()]),
                ("instance-state-name".into(), vec!["running".into(), "stopping".into(), "shutting-down".into()]),
            ]
        );
        let only_suspended = NodeFilters { states: vec![NodeState::Suspended], ..Default::default() };
        assert!(ec2_filters(&only_suspended).is_none(), "no EC2 instance is ever suspended");
    }

    #[test]
    fn ec2_states_map_to_node_states() {
        for (word, state) in [
            ("pending", NodeState::Pending),
            ("running", NodeState::Running),
            ("shutting-down", NodeState::Stopping),
            ("stopped", NodeState::Stopped),
            ("terminated", NodeState::Terminated),
            ("hibernating", NodeState::Unknown),
        ] {
            assert_eq!(node_state(word), state, "{word}");
        }
    }
}
