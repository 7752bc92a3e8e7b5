//! `cme:plugin/compute` over `cme_cloud::compute`: the clouds of `[[clouds]]`. A call must
//! be declared (`compute` with the cloud and operation) and granted (`compute.clouds`,
//! `compute.operations`); the grant's required tags join the cloud's on every listing and
//! re-check; operations take only nodes the run listed and count against the grant's
//! `max_nodes_per_run` over all clouds (and each cloud's own), and stops and destroys
//! against the operator's blast-radius budgets. A stop's revert (start it again) is
//! stored in the run's ledger before the node is stopped: on `aws` as the same record
//! `ec2.stop-instances` stores, elsewhere as a node start on that cloud. A node already
//! in the operation's state is done and arms nothing. Without the cloud: `unavailable`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cme_cloud::compute::{
    Acted as CloudActed, Checked, Cloud, CloudRun, ComputeError, Node as CloudNode, NodeFilters as CloudFilters,
    NodeState as CloudState, Operation, ProviderKind,
};
use cme_model::undo::Revert;

use super::Unit;
use super::budgets::RunningCount;
use super::undo::MAX_HOLD;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::compute::{Acted, Host, Node, NodeFilters, NodeState};
use crate::bindings::wit_types::KeyValue;
use crate::grant::{Denial, Fences, Grant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `compute` unit.
pub(crate) struct Compute;

/// What one run keeps: its view of each cloud it listed, and how many nodes it took out
/// over all of them (what the grant's `max_nodes_per_run` counts).
#[derive(Default)]
pub(crate) struct ComputeRun {
    clouds: HashMap<String, CloudRun>,
    acted: u32,
}

/// One compute call as the grant rule sees it: the cloud and the operation's name
/// (`list-nodes`, `stop-node`, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComputeUse<'a> {
    pub cloud: &'a str,
    pub operation: &'a str,
}

impl Unit for Compute {
    const INTERFACE: &'static str = "cme:plugin/compute";
    type RunState = ComputeRun;
    type Use<'a> = ComputeUse<'a>;

    /// The cloud and operation must be declared (any declaration on the cloud covers
    /// listing) and granted.
    fn check(declared: &[Capability], grant: &Grant, _fences: &Fences, using: ComputeUse<'_>) -> Result<(), Denial> {
        let ComputeUse { cloud, operation } = using;
        let what = format!("compute {operation} on cloud {cloud:?}");
        let declared_here = declared.iter().any(|c| match c {
            Capability::Compute { clouds, operations } => {
                (clouds.is_empty() || clouds.iter().any(|c| c == cloud))
                    && (operation == "list-nodes" || operations.iter().any(|o| o == operation))
            }
            _ => false,
        });
        if !declared_here {
            return Err(not_declared(&what));
        }
        let Some(compute) = &grant.compute else { return Err(not_granted("compute")) };
        if !compute.allows(cloud, operation) {
            return Err(Denial(format!(
                "{what} is not granted (granted clouds: {:?}, operations: {:?})",
                compute.clouds, compute.operations
            )));
        }
        Ok(())
    }

    /// The declared clouds and operations, one node per run.
    fn grant_as_declared(declared: &[Capability], grant: &mut Grant) {
        for capability in declared {
            if let Capability::Compute { clouds, operations } = capability {
                let compute = grant.compute.get_or_insert_with(|| cme_grant::ComputeGrant {
                    clouds: Vec::new(),
                    operations: Vec::new(),
                    required_tags: BTreeMap::new(),
                    max_nodes_per_run: 1,
                });
                compute.clouds.extend(clouds.iter().cloned());
                compute.operations.extend(operations.iter().cloned());
            }
        }
    }
}

impl Host for CallState {
    async fn clouds(&mut self) -> wasmtime::Result<Vec<String>> {
        self.count_host_call()?;
        let Some(caps) = self.caps.as_ref() else { return Ok(Vec::new()) };
        Ok(caps
            .backends
            .clouds
            .iter()
            .map(|cloud| cloud.name().to_string())
            .filter(|name| {
                let using = ComputeUse { cloud: name, operation: "list-nodes" };
                Compute::check(&caps.declared, &caps.grant, &caps.backends.fences, using).is_ok()
            })
            .collect())
    }

    async fn list_nodes(
        &mut self,
        cloud: String,
        filters: NodeFilters,
    ) -> wasmtime::Result<Result<Vec<Node>, HostError>> {
        const CALL: &str = "compute.list-nodes";
        if let Err(denied) = self.admit::<Compute>(CALL, &cloud, ComputeUse { cloud: &cloud, operation: "list-nodes" })? {
            return Ok(Err(denied));
        }
        let run = match self.cloud_run(CALL, &cloud) {
            Ok(run) => run,
            Err(refused) => return Ok(Err(refused)),
        };
        let filters = CloudFilters {
            tags: filters.tags.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            zones: filters.zones,
            states: filters.states.into_iter().map(cloud_state).collect(),
            names: filters.names,
        };
        let listed = run.list_nodes(&filters).await;
        match listed {
            Ok(nodes) => {
                let caps = self.caps.as_mut().expect("admitted");
                for node in &nodes {
                    for address in node.private_addresses.iter().chain(&node.public_addresses) {
                        caps.addresses.insert(address.clone(), format!("{cloud}:{}", node.id));
                    }
                }
                self.audit(CALL, cloud, Decision::Allowed, Some(format!("{} nodes", nodes.len())));
                Ok(Ok(nodes.into_iter().map(wit_node).collect()))
            }
            Err(error) => Ok(Err(self.compute_failed(CALL, cloud, error))),
        }
    }

    async fn stop_node(
        &mut self,
        cloud: String,
        node_id: String,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Acted, HostError>> {
        self.operate(Operation::Stop, cloud, node_id, hold_ms).await
    }

    async fn start_node(&mut self, cloud: String, node_id: String) -> wasmtime::Result<Result<Acted, HostError>> {
        self.operate(Operation::Start, cloud, node_id, 0).await
    }

    async fn reboot_node(&mut self, cloud: String, node_id: String) -> wasmtime::Result<Result<Acted, HostError>> {
        self.operate(Operation::Reboot, cloud, node_id, 0).await
    }

    async fn destroy_node(&mut self, cloud: String, node_id: String) -> wasmtime::Result<Result<Acted, HostError>> {
        self.operate(Operation::Destroy, cloud, node_id, 0).await
    }
}

impl CallState {
    /// The run's view of `cloud`, made at its first use with the grant's required tags.
    fn cloud_run(&mut self, call: &str, cloud: &str) -> Result<&mut CloudRun, HostError> {
        let caps = self.caps.as_ref().expect("admitted");
        if !caps.units.compute.clouds.contains_key(cloud) {
            let Some(configured) = caps.backends.clouds.iter().find(|c| c.name() == cloud).cloned() else {
                let known: Vec<&str> = caps.backends.clouds.iter().map(Cloud::name).collect();
                let reason = format!("cloud {cloud:?} (configured: {})", if known.is_empty() { "none".into() } else { known.join(", ") });
                return Err(self.unavailable(call, cloud, &reason));
            };
            let granted = caps.grant.compute.as_ref().map(|g| g.required_tags.clone()).unwrap_or_default();
            let dry_run = caps.dry_run;
            match configured.run_requiring(dry_run, &granted) {
                Ok(run) => {
                    self.caps.as_mut().expect("admitted").units.compute.clouds.insert(cloud.to_string(), run);
                }
                Err(error) => return Err(self.compute_failed(call, cloud.to_string(), error)),
            }
        }
        Ok(self.caps.as_mut().expect("admitted").units.compute.clouds.get_mut(cloud).expect("made above"))
    }

    /// An operation on a node the run listed: admitted, within the grant's nodes per run,
    /// checked by the cloud, charged to the budgets, its revert armed, then made.
    async fn operate(
        &mut self,
        operation: Operation,
        cloud: String,
        node_id: String,
        hold_ms: u64,
    ) -> wasmtime::Result<Result<Acted, HostError>> {
        let call = match operation {
            Operation::Stop => "compute.stop-node",
            Operation::Start => "compute.start-node",
            Operation::Reboot => "compute.reboot-node",
            Operation::Destroy => "compute.destroy-node",
        };
        let target = format!("{cloud}: {node_id}");
        let using = ComputeUse { cloud: &cloud, operation: operation.as_str() };
        if let Err(denied) = self.admit::<Compute>(call, &target, using)? {
            return Ok(Err(denied));
        }
        if Duration::from_millis(hold_ms) > MAX_HOLD {
            return Ok(Err(HostError::InvalidArgument("hold-ms must be at most 7 days".into())));
        }
        let counted = operation != Operation::Start;
        let caps = self.caps.as_ref().expect("admitted");
        let granted = caps.grant.compute.as_ref().map_or(0, |g| g.max_nodes_per_run);
        if counted && caps.units.compute.acted >= granted {
            let reason = format!("the grant allows {granted} node(s) per run (compute.max_nodes_per_run)");
            self.audit(call, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        let dry_run = caps.dry_run;
        let run = match self.cloud_run(call, &cloud) {
            Ok(run) => run,
            Err(refused) => return Ok(Err(refused)),
        };
        let configured = run.cloud().clone();
        let provider = configured.provider();
        let checked = run.check(operation, &node_id).await;
        let ready = match checked {
            Ok(Checked::Done(acted)) => {
                self.audit(call, target, Decision::Allowed, Some(format!("already {}", acted.current)));
                return Ok(Ok(wit_acted(acted)));
            }
            Ok(Checked::Ready(ready)) => ready,
            Err(error) => return Ok(Err(self.compute_failed(call, target, error))),
        };
        let node = ready.node().clone();
        if matches!(operation, Operation::Stop | Operation::Destroy)
            && let Err(reason) = self.charge_nodes(&configured, &node, dry_run).await
        {
            self.audit(call, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        let mut armed = None;
        if dry_run {
            self.caps.as_mut().expect("admitted").actions.push(format!(
                "would {} {node_id} on cloud {cloud}{}",
                operation.as_str().trim_end_matches("-node"),
                if operation == Operation::Stop { " (and start it again)" } else { "" }
            ));
        } else if operation == Operation::Stop {
            let revert = match provider {
                ProviderKind::Aws => Revert::Ec2Start {
                    region: node.region.clone().unwrap_or_default(),
                    instance_ids: vec![node.id.clone()],
                },
                _ => Revert::NodeStart {
                    cloud: cloud.clone(),
                    node_id: node.id.clone(),
                    region: node.region.clone(),
                    zone: node.zone.clone(),
                },
            };
            let words = format!("start {} on cloud {cloud}", node.id);
            // Not due before the stop is in place (or abandoned at the operation's
            // timeout): a revert that ran while the stop was still under way would find
            // the node running and leave it stopped. The hold counts from the stop's end.
            let timeout = configured.fence().operation_timeout;
            let until_in_place = hold_ms.saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            match self.arm_revert(call, &target, revert, words, until_in_place).await {
                Ok(undo) => armed = Some((undo, hold_ms)),
                Err(refused) => return Ok(Err(refused)),
            }
            // On aws, tagged as `ec2.stop-instances` tags what it stops.
            let ec2 = self.caps.as_ref().and_then(|c| c.backends.ec2.clone());
            if let (ProviderKind::Aws, Some(ec2), Some(region)) = (provider, ec2, node.region.as_deref()) {
                self.tag_revert(&ec2, region, &node.id, "start it".into()).await;
            }
        }
        self.begin(call, &target);
        let caps = self.caps.as_mut().expect("admitted");
        if counted {
            caps.units.compute.acted += 1;
        }
        let run = caps.units.compute.clouds.get_mut(&cloud).expect("listed above");
        let acted = run.act(ready).await;
        if let (Ok(_), Some((undo, hold_ms))) = (&acted, armed) {
            self.hold_from_now(undo, hold_ms).await;
        }
        match acted {
            Ok(acted) => {
                let outcome = if acted.dry_run {
                    "not changed: dry run".to_string()
                } else {
                    format!("{} -> {}", acted.previous, acted.current)
                };
                self.audit(call, target, Decision::Allowed, Some(outcome));
                Ok(Ok(wit_acted(acted)))
            }
            Err(error) => Ok(Err(self.compute_failed(call, target, error))),
        }
    }

    /// Moves a stop's revert to `hold_ms` from now, the stop being in place (best effort:
    /// it stays due at the later time it was armed with).
    async fn hold_from_now(&mut self, mut undo: cme_model::undo::Undo, hold_ms: u64) {
        let Some(store) = self.caps.as_ref().and_then(|c| c.backends.ssh.as_ref()).map(|ssh| ssh.store.clone()) else {
            return;
        };
        undo.due = chrono::Utc::now() + Duration::from_millis(hold_ms);
        if let Err(error) = store.reschedule_undo(&undo).await {
            tracing::warn!(undo = %undo.id, %error, "cannot move the revert to the end of the hold; it runs later");
        }
    }

    /// Taking `node` out, charged to the operator's budgets: its group (by the rule's tag,
    /// in its region, on this cloud: no group spans two clouds; on `aws` the groups are
    /// those of the EC2 faults) keeps `min_running` running nodes, counted by listing.
    async fn charge_nodes(&mut self, cloud: &Cloud, node: &CloudNode, dry_run: bool) -> Result<(), String> {
        let region = node.region.clone().or_else(|| node.zone.clone()).unwrap_or_default();
        let place = if cloud.provider() == ProviderKind::Aws { region } else { format!("{}/{region}", cloud.name()) };
        let tags: Vec<(String, String)> = node.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        super::budgets::charge(self.charge(dry_run), &place, &[tags], &Running(cloud.clone())).await
    }

    fn compute_failed(&mut self, call: &str, target: String, error: ComputeError) -> HostError {
        let message = error.to_string();
        match error {
            ComputeError::Denied(reason) => {
                self.audit(call, target, Decision::Denied(reason.clone()), None);
                HostError::Denied(reason)
            }
            ComputeError::InvalidArgument(m) => {
                self.audit(call, target, Decision::Allowed, Some(message));
                HostError::InvalidArgument(m)
            }
            ComputeError::Timeout { .. } => {
                self.audit(call, target, Decision::Allowed, Some(message.clone()));
                HostError::Timeout(message)
            }
            ComputeError::Upstream { .. } | ComputeError::Unreachable { .. } | ComputeError::WrongState { .. } => {
                self.audit(call, target, Decision::Allowed, Some(message.clone()));
                HostError::Upstream(message)
            }
        }
    }
}

/// Running nodes of a cloud, counted by listing them (within its required tags).
struct Running(Cloud);

impl RunningCount for Running {
    fn running<'a>(&'a self, tag: &'a str, value: &'a str) -> Pin<Box<dyn Future<Output = Result<usize, String>> + Send + 'a>> {
        Box::pin(async move {
            let filters = CloudFilters {
                tags: [(tag.to_string(), value.to_string())].into(),
                states: vec![CloudState::Running],
                ..Default::default()
            };
            self.0.run(false).list_nodes(&filters).await.map(|nodes| nodes.len()).map_err(|e| e.to_string())
        })
    }
}

fn cloud_state(state: NodeState) -> CloudState {
    match state {
        NodeState::Pending => CloudState::Pending,
        NodeState::Running => CloudState::Running,
        NodeState::Stopping => CloudState::Stopping,
        NodeState::Stopped => CloudState::Stopped,
        NodeState::Rebooting => CloudState::Rebooting,
        NodeState::Terminated => CloudState::Terminated,
        NodeState::Suspended => CloudState::Suspended,
        NodeState::Error => CloudState::Error,
        NodeState::Unknown => CloudState::Unknown,
    }
}

fn wit_state(state: CloudState) -> NodeState {
    match state {
        CloudState::Pending => NodeState::Pending,
        CloudState::Running => NodeState::Running,
        CloudState::Stopping => NodeState::Stopping,
        CloudState::Stopped => NodeState::Stopped,
        CloudState::Rebooting => NodeState::Rebooting,
        CloudState::Terminated => NodeState::Terminated,
        CloudState::Suspended => NodeState::Suspended,
        CloudState::Error => NodeState::Error,
        CloudState::Unknown => NodeState::Unknown,
    }
}

fn wit_node(node: CloudNode) -> Node {
    Node {
        id: node.id,
        name: node.name,
        state: wit_state(node.state),
        provider_state: node.provider_state,
        provider: node.provider.as_str().to_string(),
        region: node.region,
        zone: node.zone,
        tags: node.tags.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
        private_addresses: node.private_addresses,
        public_addresses: node.public_addresses,
        image: node.image,
        size: node.size,
    }
}

fn wit_acted(acted: CloudActed) -> Acted {
    Acted {
        node_id: acted.node_id,
        previous_state: wit_state(acted.previous),
        current_state: wit_state(acted.current),
        already: acted.already,
        dry_run: acted.dry_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cme_grant::ComputeGrant;

    fn declared(clouds: &[&str], operations: &[&str]) -> Vec<Capability> {
        vec![Capability::Compute {
            clouds: clouds.iter().map(|c| c.to_string()).collect(),
            operations: operations.iter().map(|o| o.to_string()).collect(),
        }]
    }

    fn granted(clouds: &[&str], operations: &[&str]) -> Grant {
        Grant {
            compute: Some(ComputeGrant {
                clouds: clouds.iter().map(|c| c.to_string()).collect(),
                operations: operations.iter().map(|o| o.to_string()).collect(),
                required_tags: BTreeMap::new(),
                max_nodes_per_run: 1,
            }),
            ..Grant::default()
        }
    }

    fn check(declared: &[Capability], grant: &Grant, cloud: &str, operation: &str) -> Result<(), String> {
        Compute::check(declared, grant, &Fences::default(), ComputeUse { cloud, operation }).map_err(|d| d.0)
    }

    #[test]
    fn an_undeclared_cloud_or_operation_is_denied_whatever_the_grant() {
        let grant = granted(&[], &["stop-node", "destroy-node"]);
        let on_prod = declared(&["prod"], &["stop-node"]);
        assert!(check(&on_prod, &grant, "staging", "list-nodes").unwrap_err().contains("not among the capabilities"));
        assert!(check(&on_prod, &grant, "prod", "destroy-node").unwrap_err().contains("not among the capabilities"));
        assert!(check(&[Capability::Ssh], &grant, "prod", "list-nodes").unwrap_err().contains("not among"));
    }

    #[test]
    fn a_declared_use_the_grant_does_not_name_is_denied() {
        let any = declared(&[], &["stop-node", "reboot-node"]);
        assert!(check(&any, &Grant::default(), "prod", "list-nodes").unwrap_err().contains("compute is not granted"));
        let listing_only = granted(&["prod"], &[]);
        assert!(check(&any, &listing_only, "prod", "list-nodes").is_ok(), "listing needs no operation");
        assert!(check(&any, &listing_only, "prod", "stop-node").unwrap_err().contains("is not granted"));
        let other_cloud = granted(&["staging"], &["stop-node"]);
        assert!(check(&any, &other_cloud, "prod", "stop-node").unwrap_err().contains("granted clouds"));
        assert!(check(&any, &granted(&[], &["stop-node"]), "prod", "stop-node").is_ok(), "an empty list is any cloud");
    }

    #[test]
    fn a_built_in_is_granted_what_it_declares_and_no_more() {
        let mut grant = Grant::default();
        Compute::grant_as_declared(&declared(&[], &["stop-node"]), &mut grant);
        let compute = grant.compute.as_ref().unwrap();
        assert_eq!((compute.clouds.len(), compute.operations.as_slice()), (0, &["stop-node".to_string()][..]));
        assert!(check(&declared(&[], &["stop-node"]), &grant, "any", "stop-node").is_ok());
        assert!(check(&declared(&[], &["stop-node", "destroy-node"]), &grant, "any", "destroy-node").is_err());
    }
}
