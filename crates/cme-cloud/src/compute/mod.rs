//! Compute across clouds (`[[clouds]]`): one node model and one set of node operations
//! over each provider's API, so that a plan names a cloud and not a provider.
//!
//! A [`Cloud`] is one configured cloud: a [`Provider`] (the provider's own calls) behind
//! the operator's [`CloudFence`]. The cloud decides, not the provider: it re-checks every
//! node a provider lists against the filters and the fence (a provider's API filters are
//! a first cut only), acts only on nodes the same run listed, re-reads each right before
//! acting, counts a node already in the target state as done, and follows an operation
//! until the node reaches its state or the fence's timeout passes. A dry run lists and
//! re-reads and sends nothing that changes a node.

pub mod aws;
pub mod azure;
pub mod digitalocean;
pub mod gce;
mod node;
pub mod openstack;
pub mod rest;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use node::{Node, NodeFilters, NodeState, ProviderKind, split_tag};

/// The most nodes one listing returns, across every page; more is an error that asks for
/// narrower filters.
pub const MAX_NODES: usize = 10_000;

/// Refuses a listing of more than [`MAX_NODES`] (checked after each page: a huge account
/// is not read to its end).
pub(crate) fn within_max_nodes(count: usize) -> Result<(), ComputeError> {
    if count > MAX_NODES {
        return Err(ComputeError::InvalidArgument(format!("more than {MAX_NODES} nodes match; narrow the filters")));
    }
    Ok(())
}

/// What a provider call answers, later.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, ComputeError>> + Send + 'a>>;

/// An operation on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// EC2 StopInstances, GCE stop, Azure deallocate, Nova os-stop, DigitalOcean shutdown.
    Stop,
    /// What reverts a stop.
    Start,
    /// EC2 RebootInstances, GCE reset, Azure restart, Nova soft reboot, DigitalOcean reboot.
    Reboot,
    /// The node is deleted; what else goes with it depends on the provider.
    Destroy,
}

cme_model::text_enum!(Operation, "node operation", {
    Stop => "stop-node",
    Start => "start-node",
    Reboot => "reboot-node",
    Destroy => "destroy-node",
});

impl Operation {
    /// The state the node is in once the operation is done.
    pub fn target(self) -> NodeState {
        match self {
            Operation::Stop => NodeState::Stopped,
            Operation::Start | Operation::Reboot => NodeState::Running,
            Operation::Destroy => NodeState::Terminated,
        }
    }
}

/// Why a compute call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// A malformed argument, or filters that match too much; the text names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// Outside the cloud's fence or the run's own listing; the text names the rule.
    #[error("{0}")]
    Denied(String),
    /// The provider answered with an error: its code (kept for the run's result) and message.
    #[error("{provider} {operation} failed: {code}: {message}")]
    Upstream { provider: ProviderKind, operation: &'static str, code: String, message: String },
    /// No answer from the provider (network, TLS, a token that could not be had).
    #[error("{provider} {operation} failed: {reason}")]
    Unreachable { provider: ProviderKind, operation: &'static str, reason: String },
    /// The node did not reach the operation's state in time.
    #[error("{operation} of node {node} did not finish within {seconds} s: the node is {state}")]
    Timeout { operation: Operation, node: String, seconds: u64, state: NodeState },
    /// The node cannot take the operation in its state (a stop of a terminated node).
    #[error("{operation} of node {node}: the node is {state}")]
    WrongState { operation: Operation, node: String, state: NodeState },
}

/// A provider's own calls. Implementations map the provider's answers to [`Node`]s and
/// its errors to [`ComputeError`]s; the rules are the [`Cloud`]'s.
pub trait Provider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// Nodes matching `filters` as far as the provider's API filters (the cloud checks
    /// again), across every page, at most [`MAX_NODES`].
    fn list_nodes<'a>(&'a self, filters: &'a NodeFilters) -> Pending<'a, Vec<Node>>;

    /// `node` as it is now; `None` once it is gone.
    fn read_node<'a>(&'a self, node: &'a Node) -> Pending<'a, Option<Node>>;

    /// Asks for `operation` on `node` (just re-read by the cloud) and, where the provider
    /// answers with an asynchronous operation of its own, follows it until it ends or
    /// `deadline` passes. The cloud then follows the node's state.
    fn request<'a>(&'a self, node: &'a Node, operation: Operation, deadline: tokio::time::Instant) -> Pending<'a, ()>;

    /// Whether an operation the provider is still running holds the node, where its state
    /// does not show it (a DigitalOcean shutdown keeps the droplet `active` until it ends).
    /// A start waits for it. By default: never.
    fn busy<'a>(&'a self, _node: &'a Node) -> Pending<'a, bool> {
        Box::pin(async { Ok(false) })
    }

    /// The form of an id two ids are compared in (Azure's ARM ids are case-insensitive).
    fn id_key(&self, id: &str) -> String {
        id.to_string()
    }
}

/// What the operator allows on one cloud.
///
/// By default: no required tags, one node per run, 300 s for an operation to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFence {
    /// Only nodes carrying every one of these tags are listed or touched.
    pub required_tags: BTreeMap<String, String>,
    /// The most nodes one run may stop, reboot or destroy.
    pub max_nodes_per_run: u32,
    /// How long an operation may take, from the request until the node is in its state.
    pub operation_timeout: Duration,
}

impl Default for CloudFence {
    fn default() -> Self {
        CloudFence { required_tags: BTreeMap::new(), max_nodes_per_run: 1, operation_timeout: Duration::from_secs(300) }
    }
}

/// One configured cloud.
#[derive(Clone)]
pub struct Cloud {
    name: String,
    provider: Arc<dyn Provider>,
    fence: CloudFence,
    /// How often a node is read again while an operation is followed.
    poll: Duration,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud")
            .field("name", &self.name)
            .field("provider", &self.provider.kind())
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

/// What [`CloudRun::check`] found.
#[derive(Debug)]
pub enum Checked {
    /// Nothing to send: the node is already in the operation's state (or gone, for a destroy).
    Done(Acted),
    /// The operation may be sent: [`CloudRun::act`].
    Ready(Box<Ready>),
}

/// A checked operation, the node as re-read.
#[derive(Debug)]
pub struct Ready {
    operation: Operation,
    node: Node,
    deadline: tokio::time::Instant,
}

impl Ready {
    /// The node as re-read right before.
    pub fn node(&self) -> &Node {
        &self.node
    }
}

/// What an operation did to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub node_id: String,
    /// The state re-read right before acting.
    pub previous: NodeState,
    /// The state at the end (the target, or the previous one in a dry run).
    pub current: NodeState,
    /// The node was already in the target state: nothing was sent.
    pub already: bool,
    /// A dry run: nothing was sent.
    pub dry_run: bool,
}

impl Cloud {
    pub fn new(name: &str, provider: Arc<dyn Provider>, fence: CloudFence) -> Cloud {
        Cloud { name: name.to_string(), provider, fence, poll: Duration::from_secs(2) }
    }

    /// How often a followed node is read again (2 s by default; tests shorten it).
    pub fn with_poll(mut self, poll: Duration) -> Cloud {
        self.poll = poll;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn provider(&self) -> ProviderKind {
        self.provider.kind()
    }

    pub fn fence(&self) -> &CloudFence {
        &self.fence
    }

    /// A run's view of this cloud: what it listed, and how many nodes it acted on.
    pub fn run(&self, dry_run: bool) -> CloudRun {
        CloudRun {
            cloud: self.clone(),
            dry_run,
            required: self.fence.required_tags.clone(),
            restoring: false,
            listed: HashMap::new(),
            acted: 0,
        }
    }

    /// [`Cloud::run`] for a plugin whose grant requires `tags` besides the cloud's own;
    /// refused when the two require different values of one tag (no node could match).
    pub fn run_requiring(&self, dry_run: bool, tags: &BTreeMap<String, String>) -> Result<CloudRun, ComputeError> {
        let mut run = self.run(dry_run);
        for (key, value) in tags {
            match run.required.get(key) {
                Some(fenced) if fenced != value => {
                    return Err(ComputeError::Denied(format!(
                        "the grant requires tag {key}={value:?} where cloud {:?} requires {key}={fenced:?}",
                        self.name
                    )));
                }
                _ => run.required.insert(key.clone(), value.clone()),
            };
        }
        Ok(run)
    }

    /// Starts again the node `id` a stop took out (a revert: the node need not carry the
    /// required tags any more, and counts against nothing). Waits for a stopping node to
    /// be stopped; a running one counts as started.
    pub async fn start_again(
        &self,
        id: &str,
        region: Option<String>,
        zone: Option<String>,
    ) -> Result<Acted, ComputeError> {
        let mut run = self.run(false);
        run.restoring = true;
        let node = Node {
            id: id.to_string(),
            name: id.to_string(),
            state: NodeState::Unknown,
            provider_state: String::new(),
            provider: self.provider.kind(),
            region,
            zone,
            tags: BTreeMap::new(),
            private_addresses: Vec::new(),
            public_addresses: Vec::new(),
            image: None,
            size: None,
        };
        run.listed.insert(self.provider.id_key(id), node);
        run.operate(Operation::Start, id).await
    }
}

/// One run's use of a cloud. Operations take only nodes this run listed.
pub struct CloudRun {
    cloud: Cloud,
    dry_run: bool,
    /// The cloud's required tags and the grant's.
    required: BTreeMap<String, String>,
    /// A revert: no tag re-check.
    restoring: bool,
    /// By id key: the nodes this run listed.
    listed: HashMap<String, Node>,
    acted: u32,
}

impl CloudRun {
    /// The nodes matching `filters` and the fence's required tags.
    pub async fn list_nodes(&mut self, filters: &NodeFilters) -> Result<Vec<Node>, ComputeError> {
        let mut asked = filters.clone();
        for (key, value) in &self.required {
            match asked.tags.get(key) {
                Some(wanted) if wanted != value => return Ok(Vec::new()),
                _ => asked.tags.insert(key.clone(), value.clone()),
            };
        }
        let listed = self.cloud.provider.list_nodes(&asked).await?;
        within_max_nodes(listed.len())?;
        let nodes: Vec<Node> = listed.into_iter().filter(|node| asked.matches(node)).collect();
        for node in &nodes {
            self.listed.insert(self.cloud.provider.id_key(&node.id), node.clone());
        }
        Ok(nodes)
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// `operation` on the node `id` this run listed: [`CloudRun::check`], then
    /// [`CloudRun::act`].
    pub async fn operate(&mut self, operation: Operation, id: &str) -> Result<Acted, ComputeError> {
        match self.check(operation, id).await? {
            Checked::Done(acted) => Ok(acted),
            Checked::Ready(ready) => self.act(ready).await,
        }
    }

    /// Everything an operation checks before it acts, in this order: the node was listed
    /// by this run, the cloud's nodes per run are not spent (stops, reboots and destroys
    /// count; a start, a stop's revert, does not), the node re-read now (a start waits
    /// for a stopping node to be stopped) still carries the required tags and is in a
    /// state the operation takes. A node already in the operation's state is
    /// [`Checked::Done`]: nothing is to be sent (and nothing to revert).
    pub async fn check(&mut self, operation: Operation, id: &str) -> Result<Checked, ComputeError> {
        let key = self.cloud.provider.id_key(id);
        let Some(listed) = self.listed.get(&key).cloned() else {
            return Err(ComputeError::Denied(format!(
                "node {id} was not listed by this run on cloud {:?}: a run acts only on nodes it listed",
                self.cloud.name
            )));
        };
        let counted = operation != Operation::Start;
        if counted && self.acted >= self.cloud.fence.max_nodes_per_run {
            return Err(ComputeError::Denied(format!(
                "cloud {:?} allows {} node(s) per run (max_nodes_per_run)",
                self.cloud.name, self.cloud.fence.max_nodes_per_run
            )));
        }
        let deadline = tokio::time::Instant::now() + self.cloud.fence.operation_timeout;
        if operation == Operation::Start && !self.dry_run {
            // A stop still under way (a revert due early, on a halt) would leave the node
            // stopped after this start found it running.
            while self.cloud.provider.busy(&listed).await? {
                if tokio::time::Instant::now() + self.cloud.poll > deadline {
                    return Err(ComputeError::Timeout {
                        operation,
                        node: listed.id,
                        seconds: self.cloud.fence.operation_timeout.as_secs(),
                        state: NodeState::Stopping,
                    });
                }
                tokio::time::sleep(self.cloud.poll).await;
            }
        }
        let Some(mut node) = self.cloud.provider.read_node(&listed).await? else {
            return if operation == Operation::Destroy {
                Ok(Checked::Done(Acted {
                    node_id: listed.id,
                    previous: NodeState::Terminated,
                    current: NodeState::Terminated,
                    already: true,
                    dry_run: self.dry_run,
                }))
            } else {
                Err(ComputeError::WrongState { operation, node: listed.id, state: NodeState::Terminated })
            };
        };
        if !self.restoring && !node.has_tags(&self.required) {
            return Err(ComputeError::Denied(format!(
                "node {} no longer carries the required tags ({})",
                node.id,
                self.required.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
            )));
        }
        if operation == Operation::Start && node.state == NodeState::Stopping && !self.dry_run {
            node = self.follow(&node, NodeState::Stopped, operation, deadline).await?;
        }
        let previous = node.state;
        if previous == operation.target() && operation != Operation::Reboot {
            let acted = Acted { node_id: node.id, previous, current: previous, already: true, dry_run: self.dry_run };
            return Ok(Checked::Done(acted));
        }
        let allowed = match operation {
            Operation::Stop | Operation::Reboot => {
                matches!(previous, NodeState::Running | NodeState::Pending | NodeState::Rebooting)
                    || (operation == Operation::Stop && matches!(previous, NodeState::Stopping | NodeState::Suspended))
            }
            Operation::Start => matches!(previous, NodeState::Stopped | NodeState::Suspended | NodeState::Pending),
            Operation::Destroy => previous != NodeState::Terminated,
        };
        if !allowed {
            return Err(ComputeError::WrongState { operation, node: node.id, state: previous });
        }
        Ok(Checked::Ready(Box::new(Ready { operation, node, deadline })))
    }

    /// Sends a checked operation and follows the node to the operation's state (in a dry
    /// run, sends nothing). Counts it against the cloud's nodes per run.
    pub async fn act(&mut self, ready: Box<Ready>) -> Result<Acted, ComputeError> {
        let Ready { operation, node, deadline } = *ready;
        let previous = node.state;
        if operation != Operation::Start {
            self.acted += 1;
        }
        if self.dry_run {
            return Ok(Acted { node_id: node.id, previous, current: previous, already: false, dry_run: true });
        }
        if !(operation == Operation::Stop && previous == NodeState::Stopping) {
            self.cloud.provider.request(&node, operation, deadline).await?;
        }
        let current = match operation {
            // A reboot is done once the provider took it; the node may be running again
            // before the first read.
            Operation::Reboot => NodeState::Rebooting,
            _ => self.follow(&node, operation.target(), operation, deadline).await?.state,
        };
        Ok(Acted { node_id: node.id, previous, current, already: false, dry_run: false })
    }

    /// Reads `node` every poll interval until it is in `state` (a node gone counts as
    /// terminated) or `deadline` passes.
    async fn follow(
        &self,
        node: &Node,
        state: NodeState,
        operation: Operation,
        deadline: tokio::time::Instant,
    ) -> Result<Node, ComputeError> {
        let mut last = node.clone();
        loop {
            match self.cloud.provider.read_node(node).await? {
                None if state == NodeState::Terminated => {
                    return Ok(Node { state: NodeState::Terminated, provider_state: "gone".into(), ..last });
                }
                None => {
                    return Err(ComputeError::WrongState {
                        operation,
                        node: node.id.clone(),
                        state: NodeState::Terminated,
                    });
                }
                Some(now) if now.state == state => return Ok(now),
                Some(now) if now.state == NodeState::Terminated || now.state == NodeState::Error => {
                    return Err(ComputeError::WrongState { operation, node: node.id.clone(), state: now.state });
                }
                Some(now) => last = now,
            }
            if tokio::time::Instant::now() + self.cloud.poll > deadline {
                return Err(ComputeError::Timeout {
                    operation,
                    node: node.id.clone(),
                    seconds: self.cloud.fence.operation_timeout.as_secs(),
                    state: last.state,
                });
            }
            tokio::time::sleep(self.cloud.poll).await;
        }
    }
}

#[cfg(test)]
mod tests;
