//! Blast-radius budgets against moto: terminations per group and day counted over every
//! replica (two engines on one PostgreSQL), never fewer than `min_running` left, and the
//! refusal named in the executor and the audit log.

use serde_json::{Value, json};

use crate::peers::{Moto, label};
use crate::support::*;

fn terminate_one(region: &str, label: &str) -> Value {
    json!({"ref": "terminate_ec2_instance:TerminateEC2Instance", "args": {"region": region, "filters": {"tag:Test": label}, "count": 1}})
}

fn budget_config(region: &str, rule: &str) -> String {
    format!(
        "[ec2]\nregions = [\"{region}\"]\nmax_terminations_per_run = 5\n\n[[budgets.groups]]\nname = \"per-service\"\ntag = \"Service\"\n{rule}\n"
    )
}

async fn terminated(moto: &Moto, ids: &[String]) -> usize {
    let mut count = 0;
    for id in ids {
        if !moto.is_running(id).await {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread")]
async fn the_day_budget_of_a_group_holds_across_two_engines_on_one_postgresql() {
    let Some(moto) = Moto::connect("ap-south-1").await else { return };
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let label = label("budget-day");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(moto.launch(&[("Test", &label), ("Service", &label)], None, None).await.id);
    }
    let config = budget_config("ap-south-1", "max_terminations_per_day = 2");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = fresh_database(Backend::Postgres, dir_a.path());
    let options = || Options {
        env: moto.engine_env(),
        config: Some(config.clone()),
        database_url: Some(url.clone()),
        ..Options::default()
    };
    let a = Engine::start(dir_a.path(), Backend::Postgres, options());
    let b = Engine::start(dir_b.path(), Backend::Postgres, options());
    let (api_a, api_b) = (a.client(), b.client());

    assert_eq!(api_a.run_once(terminate_one("ap-south-1", &label), false).await["status"], "succeeded");
    assert_eq!(api_b.run_once(terminate_one("ap-south-1", &label), false).await["status"], "succeeded");
    for api in [&api_a, &api_b] {
        let refused = api.run_once(terminate_one("ap-south-1", &label), false).await;
        assert_eq!(refused["status"], "failed", "{refused}");
        let error = refused["error"].as_str().unwrap();
        assert!(
            error.contains("budget exhausted")
                && error.contains("per-service")
                && error.contains("2 terminations per 24 hours"),
            "{error}"
        );
    }
    assert_eq!(terminated(&moto, &ids).await, 2, "the third and fourth terminations never reached EC2");
    let audit = api_a.get("/api/1/audit/?size=200").await.body;
    let refusals = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "ec2.terminate-instances"
                && e["decision"] == "denied"
                && e["reason"].as_str().unwrap_or("").contains("per-service")
        })
        .count();
    assert_eq!(refusals, 2, "both refusals are audited: {audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_never_drops_below_its_min_running() {
    let Some(moto) = Moto::connect("ap-northeast-2").await else { return };
    let label = label("budget-min");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(moto.launch(&[("Test", &label), ("Service", &label)], None, None).await.id);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = budget_config("ap-northeast-2", "min_running = 2");
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: moto.engine_env(), config: Some(config), ..Options::default() },
    );
    let api = engine.client();
    let two = json!({"ref": "terminate_ec2_instance:TerminateEC2Instance", "args": {"region": "ap-northeast-2", "filters": {"tag:Test": label}, "count": 2}});
    let refused = api.run_once(two, false).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("fewer than min_running 2"), "{refused}");
    assert_eq!(api.run_once(terminate_one("ap-northeast-2", &label), false).await["status"], "succeeded");
    let last = api.run_once(terminate_one("ap-northeast-2", &label), false).await;
    assert_eq!(last["status"], "failed", "{last}");
    assert!(last["error"].as_str().unwrap().contains("would leave 1"), "{last}");
    assert_eq!(terminated(&moto, &ids).await, 1);
}

#[test]
fn a_budget_that_limits_nothing_stops_the_start() {
    let stderr = refused_start("[[budgets.groups]]\nname = \"web\"\ntag = \"Service\"\n");
    assert!(stderr.contains("[budgets]") && stderr.contains("limits nothing"), "{stderr}");
}

#[tokio::test]
async fn the_readmes_budget_configuration_starts_an_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(readme_block("toml", "[budgets]")), ..Options::default() },
    );
    assert_eq!(engine.client().get("/readyz").await.status, 200);
}
