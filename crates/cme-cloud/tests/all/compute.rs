//! The aws compute provider against the moto EC2 server: the neutral node model, the
//! cloud's fence, and operations followed to their state.

use std::sync::Arc;
use std::time::Duration;

use cme_cloud::compute::aws::AwsCompute;
use cme_cloud::compute::{Cloud, CloudFence, ComputeError, NodeFilters, NodeState, Operation, ProviderKind};
use cme_cloud::ec2::{Ec2, Ec2Config};

use crate::ec2::{aws, launch, moto_url, unique};

async fn cloud(url: &str, regions: &[&str], fence: CloudFence) -> Cloud {
    let ec2 = Arc::new(Ec2::new(aws(url).await, Ec2Config::default()));
    let provider = AwsCompute::new(ec2, regions.iter().map(|r| r.to_string()).collect());
    Cloud::new("aws", Arc::new(provider), fence).with_poll(Duration::from_millis(50))
}

fn test_tag(label: &str) -> NodeFilters {
    NodeFilters { tags: [("Test".into(), label.into())].into(), ..Default::default() }
}

#[tokio::test]
async fn aws_nodes_are_listed_in_every_region_of_the_cloud_and_fenced_by_its_tags() {
    let Some(url) = moto_url() else { return };
    let label = unique("compute-list");
    let chaos = launch(&url, "eu-west-1", &label, 2, &[("chaos", "yes"), ("Name", "web")]).await;
    let west = launch(&url, "us-west-2", &label, 1, &[("chaos", "yes")]).await;
    launch(&url, "eu-west-1", &label, 1, &[("chaos", "no")]).await;
    let fence = CloudFence { required_tags: [("chaos".into(), "yes".into())].into(), ..Default::default() };
    let cloud = cloud(&url, &["eu-west-1", "us-west-2"], fence).await;
    let mut run = cloud.run(false);
    let nodes = run.list_nodes(&test_tag(&label)).await.unwrap();
    let mut ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = chaos.iter().chain(&west).cloned().collect();
    expected.sort();
    assert_eq!(ids, expected, "the chaos-tagged nodes of both regions, not the other");
    let web = nodes.iter().find(|n| n.id == chaos[0]).unwrap();
    assert_eq!((web.name.as_str(), web.provider, web.state), ("web", ProviderKind::Aws, NodeState::Running));
    assert_eq!(web.region.as_deref(), Some("eu-west-1"));
    assert!(web.zone.as_deref().unwrap().starts_with("eu-west-1"));
    assert!(web.private_addresses[0].starts_with("127.0.0."), "{web:?}");
    assert_eq!(web.size.as_deref(), Some("t2.micro"));
    // Neutral filters: by zone, state and name.
    let zone = web.zone.clone().unwrap();
    let narrowed = NodeFilters {
        zones: vec![zone],
        states: vec![NodeState::Running],
        names: vec!["web".into()],
        ..test_tag(&label)
    };
    assert_eq!(run.list_nodes(&narrowed).await.unwrap().len(), 2);
    let stopped = NodeFilters { states: vec![NodeState::Stopped], ..test_tag(&label) };
    assert!(run.list_nodes(&stopped).await.unwrap().is_empty());
}

#[tokio::test]
async fn aws_stop_start_reboot_and_destroy_reach_their_states() {
    let Some(url) = moto_url() else { return };
    let label = unique("compute-ops");
    let ids = launch(&url, "eu-central-1", &label, 2, &[]).await;
    let fence = CloudFence { max_nodes_per_run: 3, ..Default::default() };
    let cloud = cloud(&url, &["eu-central-1"], fence).await;

    let mut dry = cloud.run(true);
    dry.list_nodes(&test_tag(&label)).await.unwrap();
    assert!(dry.operate(Operation::Destroy, &ids[0]).await.unwrap().dry_run);
    let mut run = cloud.run(false);
    assert!(run.list_nodes(&test_tag(&label)).await.unwrap().iter().all(|n| n.state == NodeState::Running));

    let stopped = run.operate(Operation::Stop, &ids[0]).await.unwrap();
    assert_eq!((stopped.previous, stopped.current), (NodeState::Running, NodeState::Stopped));
    assert!(run.operate(Operation::Stop, &ids[0]).await.unwrap().already, "a stopped node counts as stopped");
    let rebooting_a_stopped_one = run.operate(Operation::Reboot, &ids[0]).await.unwrap_err();
    assert!(matches!(rebooting_a_stopped_one, ComputeError::WrongState { state: NodeState::Stopped, .. }));
    let started = run.operate(Operation::Start, &ids[0]).await.unwrap();
    assert_eq!(started.current, NodeState::Running);
    assert_eq!(run.operate(Operation::Reboot, &ids[0]).await.unwrap().current, NodeState::Rebooting);
    let destroyed = run.operate(Operation::Destroy, &ids[1]).await.unwrap();
    assert_eq!(destroyed.current, NodeState::Terminated);
    let over = run.operate(Operation::Destroy, &ids[0]).await.unwrap_err();
    assert!(matches!(&over, ComputeError::Denied(m) if m.contains("max_nodes_per_run")), "{over}");

    let mut after = cloud.run(false);
    let nodes = after.list_nodes(&test_tag(&label)).await.unwrap();
    let state = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.state);
    assert_eq!((state(&ids[0]), state(&ids[1])), (Some(NodeState::Running), Some(NodeState::Terminated)));
}
