//! The cloud's rules over an in-memory provider: what is listed, what may be touched,
//! and how operations are followed. The providers themselves are tested against their
//! servers (tests/all, tests/e2e).

use std::sync::Mutex;

use cme_model::Locked;

use super::*;

/// Nodes in memory. A stop leaves a node `stopping` for `slow_reads` reads.
struct Memory {
    nodes: Mutex<Vec<Node>>,
    requests: Mutex<Vec<(Operation, String)>>,
    slow_reads: Mutex<u32>,
    slow: u32,
    /// Answers of `busy` still true (a stop the provider runs without showing it).
    busy: Mutex<u32>,
}

impl Memory {
    fn with(nodes: Vec<Node>, slow: u32) -> Arc<Memory> {
        Arc::new(Memory {
            nodes: Mutex::new(nodes),
            requests: Mutex::default(),
            slow_reads: Mutex::new(0),
            slow,
            busy: Mutex::new(0),
        })
    }

    fn requests(&self) -> Vec<(Operation, String)> {
        self.requests.locked().clone()
    }

    fn set_state(&self, id: &str, state: NodeState) {
        self.nodes.locked().iter_mut().filter(|n| n.id == id).for_each(|n| n.state = state);
    }
}

impl Provider for Memory {
    fn kind(&self) -> ProviderKind {
        ProviderKind::DigitalOcean
    }

    fn list_nodes<'a>(&'a self, _filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        // Filters nothing: the cloud's check is the rule.
        Box::pin(async move { Ok(self.nodes.locked().clone()) })
    }

    fn read_node<'a>(&'a self, node: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let mut nodes = self.nodes.locked();
            let Some(found) = nodes.iter_mut().find(|n| n.id == node.id) else { return Ok(None) };
            if found.state == NodeState::Stopping {
                let mut reads = self.slow_reads.locked();
                *reads += 1;
                if *reads > self.slow {
                    found.state = NodeState::Stopped;
                }
            }
            Ok(Some(found.clone()))
        })
    }

    fn busy<'a>(&'a self, _node: &'a Node) -> Pending<'a, bool> {
        Box::pin(async move {
            let mut busy = self.busy.locked();
            if *busy == 0 {
                return Ok(false);
            }
            *busy -= 1;
            if *busy == 0 {
                // The stop it ran ends: the node is stopped now.
                self.nodes.locked().iter_mut().for_each(|n| n.state = NodeState::Stopped);
            }
            Ok(true)
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, _deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            self.requests.locked().push((operation, node.id.clone()));
            let mut nodes = self.nodes.locked();
            let index = nodes.iter().position(|n| n.id == node.id).expect("a listed node");
            match operation {
                Operation::Stop => {
                    *self.slow_reads.locked() = 0;
                    nodes[index].state = NodeState::Stopping;
                }
                Operation::Start | Operation::Reboot => nodes[index].state = NodeState::Running,
                Operation::Destroy => {
                    nodes.remove(index);
                }
            }
            Ok(())
        })
    }
}

fn node(id: &str, state: NodeState, tags: &[(&str, &str)]) -> Node {
    Node {
        id: id.into(),
        name: id.into(),
        state,
        provider_state: state.as_str().into(),
        provider: ProviderKind::DigitalOcean,
        region: Some("ams3".into()),
        zone: Some("ams3".into()),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        private_addresses: vec![],
        public_addresses: vec![],
        image: None,
        size: None,
    }
}

fn cloud(memory: &Arc<Memory>, fence: CloudFence) -> Cloud {
    Cloud::new("do", memory.clone(), fence).with_poll(Duration::from_millis(1))
}

fn chaos_fence(max: u32) -> CloudFence {
    CloudFence { required_tags: [("chaos".into(), "yes".into())].into(), max_nodes_per_run: max, ..Default::default() }
}

#[tokio::test]
async fn only_nodes_with_the_fences_tags_are_listed_whatever_the_provider_answers() {
    let memory = Memory::with(
        vec![
            node("1", NodeState::Running, &[("chaos", "yes")]),
            node("2", NodeState::Running, &[("chaos", "no")]),
            node("3", NodeState::Running, &[]),
        ],
        0,
    );
    let mut run = cloud(&memory, chaos_fence(1)).run(false);
    let listed = run.list_nodes(&NodeFilters::default()).await.unwrap();
    assert_eq!(listed.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["1"]);
    // A filter that contradicts the fence lists nothing.
    let contradicting = NodeFilters { tags: [("chaos".into(), "no".into())].into(), ..Default::default() };
    assert!(run.list_nodes(&contradicting).await.unwrap().is_empty());
    // Nor may an unlisted node be touched.
    let denied = run.operate(Operation::Stop, "2").await.unwrap_err();
    assert!(matches!(&denied, ComputeError::Denied(m) if m.contains("not listed by this run")), "{denied}");
    assert!(memory.requests().is_empty());
}

#[tokio::test]
async fn a_stop_is_followed_until_stopped_and_the_run_may_stop_only_its_quota() {
    let memory = Memory::with(
        vec![node("1", NodeState::Running, &[("chaos", "yes")]), node("2", NodeState::Running, &[("chaos", "yes")])],
        3,
    );
    let mut run = cloud(&memory, chaos_fence(1)).run(false);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    let acted = run.operate(Operation::Stop, "1").await.unwrap();
    assert_eq!((acted.previous, acted.current, acted.already), (NodeState::Running, NodeState::Stopped, false));
    let over = run.operate(Operation::Stop, "2").await.unwrap_err();
    assert!(matches!(&over, ComputeError::Denied(m) if m.contains("max_nodes_per_run")), "{over}");
    // The revert is not counted, and a node already running counts as started.
    let started = run.operate(Operation::Start, "1").await.unwrap();
    assert_eq!((started.previous, started.current), (NodeState::Stopped, NodeState::Running));
    let again = run.operate(Operation::Start, "1").await.unwrap();
    assert!(again.already);
    assert_eq!(memory.requests(), [(Operation::Stop, "1".to_string()), (Operation::Start, "1".to_string())]);
}

#[tokio::test]
async fn a_node_already_stopped_or_gone_counts_as_done_and_sends_nothing() {
    let memory = Memory::with(
        vec![node("1", NodeState::Stopped, &[("chaos", "yes")]), node("2", NodeState::Running, &[("chaos", "yes")])],
        0,
    );
    let mut run = cloud(&memory, chaos_fence(5)).run(false);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    assert!(run.operate(Operation::Stop, "1").await.unwrap().already);
    memory.nodes.locked().retain(|n| n.id != "2");
    let destroyed = run.operate(Operation::Destroy, "2").await.unwrap();
    assert!(destroyed.already && destroyed.current == NodeState::Terminated);
    assert!(memory.requests().is_empty());
}

#[tokio::test]
async fn a_node_that_lost_its_tags_or_ended_since_the_listing_is_not_touched() {
    let memory = Memory::with(
        vec![node("1", NodeState::Running, &[("chaos", "yes")]), node("2", NodeState::Running, &[("chaos", "yes")])],
        0,
    );
    let mut run = cloud(&memory, chaos_fence(5)).run(false);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    memory.nodes.locked()[0].tags.clear();
    let untagged = run.operate(Operation::Reboot, "1").await.unwrap_err();
    assert!(matches!(&untagged, ComputeError::Denied(m) if m.contains("required tags")), "{untagged}");
    memory.set_state("2", NodeState::Terminated);
    let ended = run.operate(Operation::Stop, "2").await.unwrap_err();
    assert!(matches!(ended, ComputeError::WrongState { state: NodeState::Terminated, .. }), "{ended}");
    assert!(memory.requests().is_empty());
}

#[tokio::test]
async fn a_dry_run_lists_and_checks_and_sends_nothing() {
    let memory = Memory::with(vec![node("1", NodeState::Running, &[("chaos", "yes")])], 0);
    let mut run = cloud(&memory, chaos_fence(1)).run(true);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    let acted = run.operate(Operation::Destroy, "1").await.unwrap();
    assert!(acted.dry_run && acted.current == NodeState::Running);
    assert!(memory.requests().is_empty());
    assert_eq!(memory.nodes.locked().len(), 1);
}

#[tokio::test]
async fn a_start_waits_for_a_stopping_node_and_a_slow_stop_times_out_naming_its_state() {
    let memory = Memory::with(vec![node("1", NodeState::Stopping, &[("chaos", "yes")])], 2);
    let mut run = cloud(&memory, chaos_fence(1)).run(false);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    let started = run.operate(Operation::Start, "1").await.unwrap();
    assert_eq!((started.previous, started.current), (NodeState::Stopped, NodeState::Running));
    assert_eq!(memory.requests(), [(Operation::Start, "1".to_string())], "started once it was stopped");

    let slow = Memory::with(vec![node("1", NodeState::Running, &[])], u32::MAX);
    let fence = CloudFence { operation_timeout: Duration::from_millis(30), ..Default::default() };
    let mut run = cloud(&slow, fence).run(false);
    run.list_nodes(&NodeFilters::default()).await.unwrap();
    let timed_out = run.operate(Operation::Stop, "1").await.unwrap_err();
    assert!(matches!(timed_out, ComputeError::Timeout { state: NodeState::Stopping, .. }), "{timed_out}");
}

#[tokio::test]
async fn a_grants_tags_narrow_the_cloud_and_a_clash_is_refused() {
    let memory = Memory::with(
        vec![
            node("1", NodeState::Running, &[("chaos", "yes"), ("team", "web")]),
            node("2", NodeState::Running, &[("chaos", "yes"), ("team", "db")]),
        ],
        0,
    );
    let cloud = cloud(&memory, chaos_fence(1));
    let mut run = cloud.run_requiring(false, &[("team".to_string(), "web".to_string())].into()).unwrap();
    let listed = run.list_nodes(&NodeFilters::default()).await.unwrap();
    assert_eq!(listed.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["1"]);
    let clash = cloud.run_requiring(false, &[("chaos".to_string(), "no".to_string())].into()).err().unwrap();
    assert!(matches!(&clash, ComputeError::Denied(m) if m.contains("chaos")), "{clash}");
}

#[tokio::test]
async fn a_revert_starts_a_stopped_node_it_never_listed_even_without_its_tags() {
    let memory = Memory::with(vec![node("1", NodeState::Stopping, &[])], 1);
    let cloud = cloud(&memory, chaos_fence(1));
    let started = cloud.start_again("1", Some("ams3".into()), None).await.unwrap();
    assert_eq!((started.previous, started.current), (NodeState::Stopped, NodeState::Running));
    assert!(cloud.start_again("1", None, None).await.unwrap().already);
    assert_eq!(memory.requests(), [(Operation::Start, "1".to_string())]);
}

#[tokio::test]
async fn a_start_waits_for_a_stop_the_provider_still_runs_though_the_node_looks_running() {
    let memory = Memory::with(vec![node("1", NodeState::Running, &[])], 0);
    *memory.busy.locked() = 3;
    let cloud = cloud(&memory, CloudFence::default());
    let started = cloud.start_again("1", None, None).await.unwrap();
    assert_eq!((started.previous, started.current, started.already), (NodeState::Stopped, NodeState::Running, false));
    assert_eq!(memory.requests(), [(Operation::Start, "1".to_string())], "started once the stop had ended");
}
