//! The reversible EC2 faults through the real binary against moto: instances stopped,
//! isolated (security groups swapped for an empty one) and a zone's subnets cut off by a
//! deny-all network ACL, each reverted by the host from its ledger (started again, groups
//! and ACL given back) when an experiment's step ends or the run is aborted; what a fault
//! changed is tagged with what restores it; budgets count stopped instances; a dry run
//! changes nothing.

use serde_json::{Value, json};

use crate::peers::{Moto, label};
use crate::support::*;

fn engine_with(moto: &Moto, dir: &std::path::Path) -> Engine {
    Engine::start(
        dir,
        Backend::Sqlite,
        Options {
            env: moto.engine_env(),
            config: Some("[ec2]\nmax_terminations_per_run = 10\n".to_string()),
            ..Options::default()
        },
    )
}

async fn run_plan(api: &Api, body: Value) -> (Value, Value) {
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    let journal = api.get(&format!("/api/1/executors/{id}/journal")).await.body;
    (done, journal)
}

fn planner() -> Value {
    json!({"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}})
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_and_isolated_instances_are_restored_when_their_steps_end() {
    let Some(moto) = Moto::connect("eu-west-3").await else { return };
    let label = label("reversible");
    let subnet = moto.subnet_in("eu-west-3a", 31).await;
    let stopped = moto.launch(&[("Test", &label), ("Role", "worker")], Some(&subnet), None).await;
    let isolated = moto.launch(&[("Test", &label), ("Role", "api")], Some(&subnet), None).await;
    let own = moto.give_group(&isolated.id, &subnet, &format!("api-{label}")).await;
    let groups_before = moto.groups(&isolated.id).await;
    assert_eq!(groups_before, [own]);
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&moto, dir.path());
    let api = engine.client();

    let filters = |role: &str| json!({"tag:Test": label, "tag:Role": role});
    let (done, journal) = run_plan(&api, json!({
        "name": "workers and api go away for a while",
        "planner": planner(),
        "steps": [
            {"name": "stop workers", "duration_seconds": 2, "attack": {"ref": "stop_ec2_instances:StopEC2Instances", "args": {"region": "eu-west-3", "filters": filters("worker"), "duration_seconds": 600}}},
            {"name": "isolate api", "duration_seconds": 2, "attack": {"ref": "isolate_ec2_instances:IsolateEC2Instances", "args": {"region": "eu-west-3", "filters": filters("api"), "duration_seconds": 600}}},
        ],
    })).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert_eq!(journal["outcome"], "held", "{journal}");
    let summary = |name: &str| {
        journal["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["summary"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(summary("stop workers").starts_with(&format!("stopped {}", stopped.id)), "{journal}");
    assert!(summary("isolate api").starts_with(&format!("isolated {}", isolated.id)), "{journal}");
    let kinds: Vec<&str> =
        journal["reverts"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["done", "done"], "{journal}");
    assert_eq!(moto.state(&stopped.id).await, "running", "started again by its revert");
    assert_eq!(moto.groups(&isolated.id).await, groups_before, "its security groups given back");
    // What was changed says what restores it.
    assert!(moto.tag(&stopped.id, "cme:revert").await.unwrap().contains("start it"));
    assert!(moto.tag(&isolated.id, "cme:revert").await.unwrap().contains(&groups_before.join(",")));
    let undos = api.get("/api/1/undos/").await.body;
    let ec2: Vec<&Value> = undos["undos"].as_array().unwrap().iter().filter(|u| u["kind"] == "ec2").collect();
    assert_eq!(ec2.len(), 2, "{undos}");
    assert!(ec2.iter().all(|u| u["state"] == "done"), "{undos}");
    let audit = api.get("/api/1/audit/?size=200").await.body.to_string();
    assert!(audit.contains("ec2.stop-instances") && audit.contains("ec2.isolate-instances"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_az_outage_cuts_a_zones_subnets_off_and_an_abort_gives_their_acl_back() {
    let Some(moto) = Moto::connect("eu-south-1").await else { return };
    let label = label("az-outage");
    let in_a = moto.subnet_in("eu-south-1a", 41).await;
    let in_b = moto.subnet_in("eu-south-1b", 42).await;
    let _a = moto.launch(&[("Test", &label)], Some(&in_a), None).await;
    let b = moto.launch(&[("Test", &label)], Some(&in_b), None).await;
    let acl_a = moto.acl_of(&in_a).await;
    let acl_b = moto.acl_of(&in_b).await;
    let service = Service::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&moto, dir.path());
    let api = engine.client();

    let (done, journal) = run_plan(&api, json!({
        "name": "zone a goes dark",
        "planner": planner(),
        "steps": [
            {"name": "zone a out", "attack": {"ref": "az_outage:AzOutage", "args": {"region": "eu-south-1", "filters": {"tag:Test": label}, "zone": "eu-south-1a", "mode": "network_acl", "duration_seconds": 600}}},
            {"name": "still serving", "after": ["zone a out"], "verify": [{"ref": "http_probe:HttpProbe", "args": {"url": service.url("/health"), "expect_status": 200}}]},
        ],
    })).await;
    assert_eq!(done["outcome"], "refuted", "{done}\n{}", engine.stderr());
    let reverts = journal["reverts"].as_array().unwrap();
    assert_eq!(reverts.len(), 1, "{journal}");
    assert_eq!(reverts[0]["state"], "done", "{journal}");
    assert!(reverts[0]["why"].as_str().unwrap().starts_with("aborted"), "{journal}");
    assert_eq!(moto.acl_of(&in_a).await, acl_a, "zone a's subnet has its own ACL again");
    assert_eq!(moto.acl_of(&in_b).await, acl_b, "zone b was never touched");
    assert_eq!(moto.state(&b.id).await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_stops_nothing_and_the_budget_counts_stopped_instances() {
    let Some(moto) = Moto::connect("eu-north-1").await else { return };
    let label = label("stop-budget");
    let one = moto.launch(&[("Test", &label)], None, None).await;
    let two = moto.launch(&[("Test", &label)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options {
            env: moto.engine_env(),
            config: Some("[ec2]\nmax_terminations_per_run = 1\n".to_string()),
            ..Options::default()
        },
    );
    let api = engine.client();
    let stop = |count: u32| json!({"ref": "stop_ec2_instances:StopEC2Instances", "args": {"region": "eu-north-1", "filters": {"tag:Test": label}, "count": count, "duration_seconds": 60}});
    let dry = api.run_once(stop(1), true).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert!(dry["result"]["summary"].as_str().unwrap().starts_with("dry run: would stop"), "{dry}");
    assert!(moto.is_running(&one.id).await && moto.is_running(&two.id).await, "a dry run stops nothing");
    assert!(api.get("/api/1/undos/").await.body["undos"].as_array().unwrap().is_empty(), "and arms nothing");

    let over = api.run_once(stop(2), false).await;
    assert_eq!(over["status"], "failed", "{over}");
    assert!(over["error"].as_str().unwrap().contains("allows 1 instances taken out"), "{over}");
    assert!(moto.is_running(&one.id).await && moto.is_running(&two.id).await, "refused before anything changed");

    // A one-attack stop is reverted when its duration ends (here: at once, by a halt).
    let once = api.run_once(stop(1), false).await;
    assert_eq!(once["status"], "succeeded", "{once}");
    let target = once["result"]["targets"][0].as_str().unwrap().to_string();
    assert_eq!(moto.state(&target).await, "stopped");
    assert_eq!(api.post("/api/1/halt", &json!({"reason": "enough"})).await.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while moto.state(&target).await != "running" {
        assert!(std::time::Instant::now() < deadline, "the halt started it again");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
