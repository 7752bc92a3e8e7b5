//! The ec2 capability against moto (`CME_TEST_MOTO_URL`): required tags, discovery
//! binding, the termination budget, dry run.

use std::sync::Arc;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use cme_cloud::ec2::{Ec2, Ec2Config};
use cme_runtime::grant::Ec2Grant;
use cme_runtime::{AuditDecision, CallError, Grant};
use serde_json::json;

use crate::support::*;

const REGION: &str = "ap-southeast-2";

async fn aws(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "cme-tests"))
        .region(Region::new(REGION))
        .endpoint_url(url)
        .load()
        .await
}

async fn launch(url: &str, tags: &[(&str, &str)]) -> String {
    let client = aws_sdk_ec2::Client::new(&aws(url).await);
    let mut spec =
        aws_sdk_ec2::types::TagSpecification::builder().resource_type(aws_sdk_ec2::types::ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    let run = client
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .unwrap();
    run.instances()[0].instance_id().unwrap().to_string()
}

async fn state(url: &str, id: &str) -> String {
    let ec2 = Ec2::new(aws(url).await, Ec2Config::default());
    let found = ec2
        .describe_instances(REGION, &[cme_cloud::ec2::Filter { name: "instance-id".into(), values: vec![id.into()] }])
        .await
        .unwrap();
    found[0].state.clone()
}

#[tokio::test]
async fn terminate_is_bound_to_discovery_tags_and_budget() {
    let Ok(url) = std::env::var("CME_TEST_MOTO_URL") else {
        cme_test_peers::missing_peer(
            "CME_TEST_MOTO_URL (a moto server; .ci/run starts one)",
            "pip install 'moto[server]'; moto_server -p PORT; CME_TEST_MOTO_URL=http://127.0.0.1:PORT",
        );
        return;
    };
    let label = format!(
        "rt-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let chaos_a = launch(&url, &[("Test", &label), ("Chaos", "true")]).await;
    let chaos_b = launch(&url, &[("Test", &label), ("Chaos", "true")]).await;
    let spared = launch(&url, &[("Test", &label)]).await;
    let ec2 = Arc::new(Ec2::new(aws(&url).await, Ec2Config::default()));
    let runtime = runtime_with(|config| config.ec2 = Some(ec2.clone()));
    let plugin = hostile(&runtime).await;
    let grant = Grant {
        ec2: Some(Ec2Grant {
            regions: vec![REGION.into()],
            required_tags: [("Chaos".to_string(), "true".to_string())].into(),
            terminate: true,
            disrupt: false,
            max_terminations_per_run: 1,
        }),
        ..Grant::default()
    };
    let attack = |terminate: Vec<&str>| json!({"mode": "ec2-terminate", "region": REGION, "tag_key": "Test", "tag_value": label, "terminate": terminate});

    // The untagged instance is never described, so it cannot be terminated.
    let outcome = run_hostile(&runtime, &plugin, attack(vec![&spared]), grant.clone()).await;
    match outcome.result {
        Err(CallError::Denied(m)) => assert!(m.contains("was not returned by this run's describe-instances"), "{m}"),
        other => panic!("expected denied, got {other:?}"),
    }
    assert_eq!(state(&url, &spared).await, "running");

    // Two at once exceed the budget of one.
    match run_hostile(&runtime, &plugin, attack(vec![&chaos_a, &chaos_b]), grant.clone()).await.result {
        Err(CallError::Failed(m)) => assert_eq!(m, "budget exhausted: the grant allows 1 terminations per run"),
        other => panic!("expected the budget to stop it, got {other:?}"),
    }

    // A dry run asks EC2 (DryRun) and terminates nothing.
    let mut dry = run_request(attack(vec![&chaos_a]), grant.clone());
    dry.dry_run = true;
    let outcome = runtime.run(&plugin, dry).await;
    assert_eq!(outcome.result.unwrap().summary, format!("{chaos_a}=dry-run"));
    assert_eq!(
        outcome.record.dry_run_actions,
        vec![format!("would terminate {chaos_a} in {REGION} (EC2 DryRun succeeded)")]
    );
    assert_eq!(state(&url, &chaos_a).await, "running");

    // A described, tagged instance is terminated, and audited.
    let outcome = run_hostile(&runtime, &plugin, attack(vec![&chaos_a]), grant.clone()).await;
    let report = outcome.result.expect("terminated");
    assert_eq!(report.details["described"].as_array().unwrap().len(), 2, "only the tagged ones were described");
    assert!(matches!(state(&url, &chaos_a).await.as_str(), "shutting-down" | "terminated"));
    assert!(
        outcome
            .record
            .audit
            .iter()
            .any(|a| a.action == "ec2.terminate-instances" && a.decision == AuditDecision::Allowed)
    );
    assert_eq!(state(&url, &chaos_b).await, "running");
}
