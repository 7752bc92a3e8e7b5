//! Several engines on one PostgreSQL: each executor runs exactly once; a dead engine's
//! runs are failed by another's reaper, never re-run.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

fn postgres_or_skip() -> bool {
    // backends() has recorded the skip (or failed under CME_REQUIRE_PEERS=1).
    backends().contains(&Backend::Postgres)
}

#[tokio::test]
async fn two_engines_on_one_postgres_run_each_executor_exactly_once() {
    if !postgres_or_skip() {
        return;
    }
    let sink = Sink::start(Duration::ZERO).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Engine::start(dir_a.path(), Backend::Postgres, Options::default());
    let b = Engine::start(
        dir_b.path(),
        Backend::Postgres,
        Options { database_url: Some(a.database_url.clone()), ..Options::default() },
    );
    // 500 plans created through both engines (due in an hour), then all 500 executors
    // moved into the same 2-second window a few seconds ahead, straight in the database,
    // so that plan creation speed (a loaded CI machine) does not matter.
    let mut creations = tokio::task::JoinSet::new();
    for i in 0..500 {
        let api = if i % 2 == 0 { a.client() } else { b.client() };
        let plan = api_plan(&format!("p{i}"), &sink.url(&format!("/hit/{i}")), &in_seconds(3600));
        creations.spawn(async move { api.post("/api/1/plans/", &plan).await });
    }
    let mut some_executor = String::new();
    while let Some(created) = creations.join_next().await {
        let created = created.unwrap();
        assert_eq!(created.status, 201, "{:?}", created.body);
        some_executor = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    }
    let window = "UPDATE executors SET due_at_us = (extract(epoch from now()) * 1000000)::bigint + 4000000 + (random() * 2000000)::bigint";
    let status = std::process::Command::new("psql").arg(&a.database_url).args(["-q", "-c", window]).status().unwrap();
    assert!(status.success());
    // A reschedule through each engine wakes its scheduler (they would notice within a minute anyway).
    for engine in [&a, &b] {
        let moved = engine
            .client()
            .put(
                &format!("/api/1/executors/{some_executor}"),
                &serde_json::json!({"type": "date", "args": {"date": in_seconds(5)}}),
            )
            .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
    }
    let api = a.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let open = api.get("/api/1/executors/?size=1").await.body["_embedded"]["executors"].as_array().unwrap().len();
        if open == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "executors still pending");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut hits: HashMap<String, usize> = HashMap::new();
    for (_, target, _) in sink.requests() {
        *hits.entry(target).or_default() += 1;
    }
    assert_eq!(hits.len(), 500, "every executor ran");
    assert!(hits.values().all(|n| *n == 1), "none ran twice");
    let mut page = 1;
    let mut succeeded = 0;
    loop {
        let doc = api.get(&format!("/api/1/executors/?executed=true&size=1000&page={page}")).await.body;
        let items = doc["_embedded"]["executors"].as_array().unwrap().clone();
        succeeded += items.iter().filter(|e| e["status"] == "succeeded" && e["attempts"] == 1).count();
        if doc["_links"]["next"].is_null() {
            break;
        }
        page += 1;
    }
    assert_eq!(succeeded, 500);
}

#[tokio::test]
async fn a_killed_engines_runs_are_failed_by_another_engines_reaper() {
    if !postgres_or_skip() {
        return;
    }
    // The attack hangs on a slow server; the engine dies mid-run.
    let sink = Sink::start(Duration::from_secs(600)).await;
    let config = "run_deadline_seconds = 3\nlease_margin_seconds = 1\nreaper_interval_seconds = 1\n".to_string();
    let dir_a = tempfile::tempdir().unwrap();
    let mut a =
        Engine::start(dir_a.path(), Backend::Postgres, Options { config: Some(config.clone()), ..Options::default() });
    let api = a.client();
    let created = api.post("/api/1/plans/", &api_plan("doomed", &sink.url("/slow"), &in_seconds(1))).await;
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    // Kill it once the attack is under way (its request reached the server).
    sink.until_requests(1).await;
    a.kill9();

    let dir_b = tempfile::tempdir().unwrap();
    let b = Engine::start(
        dir_b.path(),
        Backend::Postgres,
        Options { config: Some(config), database_url: Some(a.database_url.clone()), ..Options::default() },
    );
    let done = b.client().wait_executor(&id, |e| e["executed"] == true).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().starts_with("outcome unknown"), "{done}");
    assert_eq!(done["attempts"], 1, "never re-run");
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test]
async fn a_halt_on_one_replica_cancels_the_runs_of_another() {
    if !postgres_or_skip() {
        return;
    }
    let sink = Sink::start(Duration::from_secs(60)).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let b = Engine::start(dir_b.path(), Backend::Postgres, Options::default());
    let mut running = Vec::new();
    for i in 0..3 {
        let created =
            b.client().post("/api/1/plans/", &api_plan(&format!("slow{i}"), &sink.url("/slow"), &in_seconds(1))).await;
        running.push(created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string());
    }
    sink.until_requests(running.len()).await;
    // A joins after B claimed them all: the runs are B's, the halt is A's.
    let a = Engine::start(
        dir_a.path(),
        Backend::Postgres,
        Options { database_url: Some(b.database_url.clone()), ..Options::default() },
    );
    let halted = a.client().post("/api/1/halt", &serde_json::json!({"reason": "from A"})).await;
    assert_eq!((halted.status, &halted.body["persisted"]), (200, &serde_json::json!(true)), "{:?}", halted.body);
    for id in &running {
        let done = b.client().wait_executor(id, is_terminal).await;
        assert_eq!(done["status"], "cancelled", "{done}");
        assert_eq!(done["error"], "cancelled while running: halted: from A", "the halt's reason crosses replicas");
    }
    assert_eq!(b.client().get("/api/1/halt").await.body["halted"], true);
}
