//! The EC2 backend against the moto EC2 server (`CME_TEST_MOTO_URL`, started by .ci/run).
//! Instances live in a 127.0.0.0/24 subnet so that their addresses are loopback ones;
//! nothing here ever connects to them.

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use cme_cloud::ec2::{Ec2, Ec2Config, Ec2Error, Filter};

pub(crate) fn moto_url() -> Option<String> {
    match std::env::var("CME_TEST_MOTO_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            cme_test_peers::missing_peer(
                "CME_TEST_MOTO_URL (a moto server; .ci/run starts one)",
                "pip install 'moto[server]'; moto_server -p PORT; CME_TEST_MOTO_URL=http://127.0.0.1:PORT",
            );
            None
        }
    }
}

pub(crate) async fn aws(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "cme-tests"))
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .load()
        .await
}

/// Launches `count` instances tagged `Test=<label>` (plus `tags`) in a loopback subnet.
pub(crate) async fn launch(url: &str, region: &str, label: &str, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
    let client = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&aws(url).await).region(Region::new(region.to_string())).build(),
    );
    let vpc = client.create_vpc().cidr_block("127.0.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = client.create_subnet().vpc_id(&vpc_id).cidr_block("127.0.0.0/24").send().await.unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Test").value(label).build());
    for (k, v) in tags {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    let run = client
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T2Micro)
        .min_count(count)
        .max_count(count)
        .subnet_id(subnet_id)
        .tag_specifications(spec.build())
        .send()
        .await
        .unwrap();
    run.instances().iter().map(|i| i.instance_id().unwrap().to_string()).collect()
}

/// A label no earlier run against the same (long-lived) moto has used.
pub(crate) fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn by(label: &str) -> Vec<Filter> {
    vec![
        Filter { name: "tag:Test".into(), values: vec![label.into()] },
        Filter { name: "instance-state-name".into(), values: vec!["running".into()] },
    ]
}

#[tokio::test]
async fn describe_returns_every_page_of_matching_instances_with_loopback_addresses() {
    let Some(url) = moto_url() else { return };
    let label = unique("describe");
    let launched = launch(&url, "us-east-1", &label, 7, &[("Chaos", "true")]).await;
    launch(&url, "us-east-1", &unique("describe-other"), 2, &[]).await;
    let ec2 = Ec2::new(aws(&url).await, Ec2Config { page_size: 5, ..Ec2Config::default() });
    let mut found = ec2.describe_instances("us-east-1", &by(&label)).await.unwrap();
    found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let mut ids: Vec<String> = found.iter().map(|i| i.instance_id.clone()).collect();
    let mut expected = launched.clone();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "all 7, across pages of 5, none of the others");
    for instance in &found {
        assert_eq!(instance.state, "running");
        assert!(instance.private_ip.as_deref().unwrap().starts_with("127.0.0."), "{instance:?}");
        assert!(instance.tags.contains(&("Chaos".into(), "true".into())));
        assert!(instance.availability_zone.starts_with("us-east-1"));
    }
    // Regions are separate.
    assert!(ec2.describe_instances("eu-west-1", &by(&label)).await.unwrap().is_empty());
    // A cap on the result protects against filters that match a whole fleet.
    let capped = Ec2::new(aws(&url).await, Ec2Config { max_instances: 3, ..Ec2Config::default() });
    assert!(
        matches!(capped.describe_instances("us-east-1", &by(&label)).await, Err(Ec2Error::InvalidArgument(m)) if m.contains("narrow the filters"))
    );
}

#[tokio::test]
async fn terminate_honours_dry_run_and_reports_aws_errors_by_code() {
    let Some(url) = moto_url() else { return };
    let label = unique("terminate");
    let ids = launch(&url, "us-west-2", &label, 2, &[]).await;
    let ec2 = Ec2::new(aws(&url).await, Ec2Config::default());

    let dry = ec2.terminate_instances("us-west-2", &ids[..1], true).await.unwrap();
    assert_eq!(dry[0].current_state, "dry-run");
    assert_eq!(ec2.describe_instances("us-west-2", &by(&label)).await.unwrap().len(), 2, "nothing was terminated");

    let done = ec2.terminate_instances("us-west-2", &ids[..1], false).await.unwrap();
    assert_eq!(done[0].instance_id, ids[0]);
    assert_eq!(done[0].previous_state, "running");
    assert!(matches!(done[0].current_state.as_str(), "shutting-down" | "terminated"), "{:?}", done[0]);
    let left = ec2.describe_instances("us-west-2", &by(&label)).await.unwrap();
    assert_eq!(left.iter().map(|i| i.instance_id.clone()).collect::<Vec<_>>(), vec![ids[1].clone()]);

    match ec2.terminate_instances("us-west-2", &["i-00000000000000000".to_string()], false).await {
        Err(Ec2Error::Upstream { code, .. }) => assert_eq!(code, "InvalidInstanceID.NotFound"),
        other => panic!("expected an AWS error, got {other:?}"),
    }
    assert!(matches!(ec2.describe_instances("../etc", &[]).await, Err(Ec2Error::InvalidArgument(_))));
}
