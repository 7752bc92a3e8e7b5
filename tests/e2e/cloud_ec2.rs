//! The terminate attacks through the real `cme` binary against moto: only allowed
//! instances end up terminated, exclusions hold, dry runs touch nothing, refusals are
//! audited and failures read clearly.

use serde_json::{Value, json};

use crate::peers::{Moto, label};
use crate::support::*;

fn engine_with(moto: &Moto, dir: &std::path::Path, config: &str) -> Engine {
    Engine::start(
        dir,
        Backend::Sqlite,
        Options { env: moto.engine_env(), config: Some(config.to_string()), ..Options::default() },
    )
}

fn terminate(region: &str, label: &str) -> Value {
    json!({"ref": "terminate_ec2_instance:TerminateEC2Instance", "args": {"region": region, "filters": {"tag:Test": label}}})
}

fn targets(executor: &Value) -> Vec<String> {
    executor["result"]["targets"]
        .as_array()
        .map(|t| t.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn only_instances_with_the_required_tag_are_ever_terminated() {
    let Some(moto) = Moto::connect("us-east-2").await else { return };
    let label = label("required-tag");
    let chaos_a = moto.launch(&[("Test", &label), ("Chaos", "true")], None, None).await;
    let chaos_b = moto.launch(&[("Test", &label), ("Chaos", "true")], None, None).await;
    let untagged = moto.launch(&[("Test", &label)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let engine =
        engine_with(&moto, dir.path(), "[ec2]\nregions = [\"us-east-2\"]\nrequired_tags = { Chaos = \"true\" }\n");
    let api = engine.client();

    let first = api.run_once(terminate("us-east-2", &label), false).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let first_target = targets(&first);
    assert_eq!(first_target.len(), 1);
    assert!([&chaos_a.id, &chaos_b.id].contains(&&first_target[0]), "{first_target:?}");
    assert!(!moto.is_running(&first_target[0]).await);
    assert!(first["result"]["summary"].as_str().unwrap().starts_with(&format!("terminated {}", first_target[0])));

    let second = api.run_once(terminate("us-east-2", &label), false).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_ne!(targets(&second), first_target, "a terminated instance is not a candidate again");

    // Only the untagged instance is left: it can never be a candidate.
    let third = api.run_once(terminate("us-east-2", &label), false).await;
    assert_eq!(third["status"], "failed", "{third}");
    let error = third["error"].as_str().unwrap();
    assert!(error.contains("no instance matched filters") && error.contains(&label), "{error}");
    assert!(moto.is_running(&untagged.id).await, "the untagged instance survives");
    assert!(!moto.is_running(&chaos_a.id).await && !moto.is_running(&chaos_b.id).await);

    // A region outside the grant is refused before EC2 is asked, and audited.
    let elsewhere = api.run_once(terminate("eu-west-3", &label), false).await;
    assert_eq!(elsewhere["status"], "failed");
    let error = elsewhere["error"].as_str().unwrap();
    assert!(error.contains("region eu-west-3 is outside the operator's [ec2] fence"), "{error}");
    let audit = api.get("/api/1/audit/").await.body;
    let denied: Vec<&Value> = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["run_id"] == elsewhere["id"] && e["decision"] == "denied")
        .collect();
    assert!(!denied.is_empty() && denied.iter().all(|e| e["action"] == "ec2.describe-instances"), "{audit}");
    assert!(!engine.stderr().contains("no [ec2] required_tags configured"));
}

#[tokio::test]
async fn exclusions_by_zone_and_by_tag_spare_their_instances() {
    let Some(moto) = Moto::connect("us-west-2").await else { return };
    let label = label("excluded");
    let zone_a = moto.launch(&[("Test", &label)], None, Some("us-west-2a")).await;
    let zone_b = moto.launch(&[("Test", &label)], None, Some("us-west-2b")).await;
    let keep = moto.launch(&[("Test", &label), ("Name", "keep")], None, Some("us-west-2b")).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&moto, dir.path(), "[ec2]\nmax_terminations_per_run = 10\n");
    assert!(
        engine.stderr().contains("no [ec2] required_tags configured"),
        "the engine warns that nothing fences the built-ins in"
    );
    let api = engine.client();

    // An EC2 filter as exclusion (the original could not exclude by zone): all but zone b.
    let by_zone = json!({"ref": "terminate_ec2_instance_not_excluded:TerminateEC2InstanceNotExcluded", "args": {
        "region": "us-west-2", "filters": {"tag:Test": label}, "excluded": {"availability-zone": "us-west-2b"}, "count": 5
    }});
    let done = api.run_once(by_zone, false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(targets(&done), vec![zone_a.id.clone()]);
    assert!(moto.is_running(&zone_b.id).await && moto.is_running(&keep.id).await);

    // A tag pair, through the ref the original's docs gave: everything but the kept one.
    let by_tag = json!({"ref": "terminate_ec2_instance:TerminateEC2InstanceNotExcluded", "args": {
        "region": "us-west-2", "filters": {"tag:Test": label}, "excluded": {"Name": "keep"}, "percent": 100
    }});
    let done = api.run_once(by_tag.clone(), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(targets(&done), vec![zone_b.id.clone()]);
    assert!(moto.is_running(&keep.id).await);

    let nothing_left = api.run_once(by_tag, false).await;
    assert_eq!(nothing_left["status"], "failed");
    assert!(nothing_left["error"].as_str().unwrap().contains("are excluded"), "{nothing_left}");
    assert!(moto.is_running(&keep.id).await);
}

#[tokio::test]
async fn a_dry_run_names_its_target_and_terminates_nothing() {
    let Some(moto) = Moto::connect("eu-west-2").await else { return };
    let label = label("dry");
    let instance = moto.launch(&[("Test", &label), ("Chaos", "true")], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&moto, dir.path(), "[ec2]\nrequired_tags = { Chaos = \"true\" }\n");
    let done = engine.client().run_once(terminate("eu-west-2", &label), true).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["result"]["summary"].as_str().unwrap(),
        format!("dry run: would terminate {} in eu-west-2 (1 of 1 candidates)", instance.id)
    );
    assert_eq!(targets(&done), vec![instance.id.clone()]);
    assert_eq!(done["result"]["details"]["terminated"][0]["current_state"], "dry-run");
    assert!(moto.is_running(&instance.id).await);
}

#[tokio::test]
async fn budgets_bad_args_and_aws_errors_fail_clearly_and_touch_nothing() {
    let Some(moto) = Moto::connect("eu-central-1").await else { return };
    let label = label("errors");
    let a = moto.launch(&[("Test", &label)], None, None).await;
    let b = moto.launch(&[("Test", &label)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&moto, dir.path(), "");
    let api = engine.client();

    // Two at once exceed the default budget of one termination per run.
    let mut two = terminate("eu-central-1", &label);
    two["args"]["count"] = json!(2);
    let done = api.run_once(two, false).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"], "failed: budget exhausted: the operator's [ec2] fence allows 1 terminations per run");

    // EC2 fails the describe (moto answers 500 to a filter it does not know).
    let mut unknown_filter = terminate("eu-central-1", &label);
    unknown_filter["args"]["filters"]["no-such-filter"] = json!("x");
    let done = api.run_once(unknown_filter, false).await;
    assert_eq!(done["status"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("upstream error: EC2 DescribeInstances failed"), "{error}");
    assert!(!error.contains("testing"), "no credentials in errors: {error}");

    // Args the schema refuses never make a plan.
    let refused = api
        .post("/api/1/plans/", &json!({
            "name": "bad", "attack": {"ref": "terminate_ec2_instance:TerminateEC2Instance", "args": {"filters": {}}},
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(60)}}
        }))
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body["msg"].as_str().unwrap().contains("region"), "{:?}", refused.body);
    let stopped_state = json!({"ref": "terminate_ec2_instance:TerminateEC2Instance", "args": {"region": "eu-central-1", "filters": {"instance-state-name": "stopped"}}});
    let done = api.run_once(stopped_state, false).await;
    assert!(done["error"].as_str().unwrap().contains("only running instances"), "{done}");

    assert!(moto.is_running(&a.id).await && moto.is_running(&b.id).await);
}
