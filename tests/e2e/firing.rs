//! Executors firing on time, with results recorded; dry run; halt; restarts; replicas.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn an_executor_fires_against_a_local_server_and_its_result_is_recorded() {
    for backend in backends() {
        let sink = Sink::start(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();
        let created = api.post("/api/1/plans/", &api_plan("fire", &sink.url("/hit?x=1"), &in_seconds(2))).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&id, is_terminal).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["result"]["details"]["status"], 200);
        assert_eq!(done["attempts"], 1);
        assert!(done["started_at"].as_str().unwrap() >= done["next_run_time"].as_str().unwrap());
        let requests = sink.requests();
        assert_eq!(requests.len(), 1, "fired exactly once");
        assert_eq!(requests[0].0, "POST");
        assert_eq!(requests[0].1, "/hit?x=1");
        assert_eq!(requests[0].2, b"terminate=1");
        // The capability call is in the audit log.
        let audit = api.get("/api/1/audit/").await.body;
        let calls: Vec<&serde_json::Value> =
            audit["_embedded"]["audit"].as_array().unwrap().iter().filter(|e| e["source"] == "plugin").collect();
        assert_eq!(calls[0]["action"], "http.send");
        assert_eq!(calls[0]["run_id"], id.as_str());
        assert_eq!(calls[0]["decision"], "allowed");
    }
}

#[tokio::test]
async fn a_dry_run_plan_records_what_it_would_do_and_sends_nothing() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let mut plan = api_plan("dry", &sink.url("/kill"), &in_seconds(1));
    plan["dry_run"] = json!(true);
    let created = api.post("/api/1/plans/", &plan).await;
    assert_eq!(created.body["dry_run"], true);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "succeeded");
    assert!(done["result"]["summary"].as_str().unwrap().starts_with("dry run: would send POST"));
    assert_eq!(done["log"]["dry_run_actions"][0], format!("would send POST {} (11 body bytes)", sink.url("/kill")));
    assert!(sink.requests().is_empty());
}

#[tokio::test]
async fn an_engine_started_with_dry_run_runs_every_plan_dry() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { args: vec!["--dry-run".into()], ..Options::default() });
    let api = engine.client();
    let created = api.post("/api/1/plans/", &api_plan("leashed", &sink.url("/kill"), &in_seconds(1))).await;
    assert_eq!(created.body["dry_run"], true);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(api.wait_executor(&id, is_terminal).await["status"], "succeeded");
    assert!(sink.requests().is_empty());
}

#[tokio::test]
async fn a_plan_made_before_a_restart_with_dry_run_runs_dry() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut unleashed = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let created =
        unleashed.client().post("/api/1/plans/", &api_plan("made for real", &sink.url("/kill"), &in_seconds(3))).await;
    assert_eq!(created.body["dry_run"], false);
    assert!(unleashed.stop().success());
    // The operator restarts the engine leashed before the plan fires.
    let leashed = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options {
            args: vec!["--dry-run".into()],
            database_url: Some(unleashed.database_url.clone()),
            ..Options::default()
        },
    );
    let api = leashed.client();
    assert_eq!(api.get("/api/1/").await.body["dry_run"], true, "the entry document says the engine is leashed");
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["dry_run"], true, "{done}");
    assert_eq!(done["result"]["dry_run"], true, "{done}");
    assert!(done["result"]["summary"].as_str().unwrap().starts_with("dry run: would send POST"), "{done}");
    assert!(sink.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn halt_stops_firing_and_resume_does_not_revive_what_fell_due() {
    for backend in backends() {
        let sink = Sink::start(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();
        let halted = api.post("/api/1/halt", &json!({"reason": "game day over"})).await;
        assert_eq!(halted.status, 200);
        assert_eq!(halted.body["halted"], true);
        assert_eq!(api.get("/api/1/halt").await.body["reason"], "game day over");
        let created = api.post("/api/1/plans/", &api_plan("halted", &sink.url("/x"), &in_seconds(1))).await;
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&id, is_terminal).await;
        assert_eq!(done["status"], "cancelled");
        assert_eq!(done["error"], "cancelled: halted");
        let resumed = api.raw(reqwest::Method::POST, "/api/1/resume", None, None).await;
        assert_eq!(resumed.body["halted"], false);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(api.get(&format!("/api/1/executors/{id}")).await.body["status"], "cancelled");
        assert!(sink.requests().is_empty());
    }
}

#[tokio::test]
async fn halt_cancels_a_running_attack() {
    let sink = Sink::start(Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let created = api.post("/api/1/plans/", &api_plan("slow", &sink.url("/slow"), &in_seconds(1))).await;
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    sink.until_requests(1).await;
    api.post("/api/1/halt", &json!({})).await;
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["error"], "cancelled while running: halted");
    // The request it had sent is in the audit log, its effect unknown.
    let audit = api.get("/api/1/audit/").await.body;
    let call = audit["_embedded"]["audit"].as_array().unwrap().iter().find(|e| e["run_id"] == id.as_str()).cloned();
    let call = call.unwrap_or_else(|| panic!("the cancelled run's call is audited: {audit}"));
    assert_eq!(call["action"], "http.send");
    assert_eq!(call["outcome"], "unknown: the run ended while the call was in flight");
    assert!(done["log"].is_object(), "{done}");
}

#[tokio::test]
async fn a_halt_holds_at_once_while_the_database_is_locked() {
    use std::io::BufRead;
    let sink = Sink::start(Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let created = api.post("/api/1/plans/", &api_plan("slow", &sink.url("/slow"), &in_seconds(1))).await;
    let running = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let later = api.post("/api/1/plans/", &api_plan("later", &sink.url("/later"), &in_seconds(4))).await;
    let later = later.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    api.wait_executor(&running, |e| e["status"] == "running").await;

    // Another process takes the database's write lock and keeps it.
    let mut locker = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()")
        .arg(dir.path().join("cme.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufReader::new(locker.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let halt = api.post("/api/1/halt", &json!({"reason": "locked database"})).await;
    assert_eq!(halt.status, 200, "{:?}", halt.body);
    assert_eq!(halt.body["halted"], true);
    assert_eq!(halt.body["persisted"], false, "the answer says the halt holds here only");
    assert_eq!(api.get("/api/1/halt").await.body["halted"], true);
    tokio::time::sleep(Duration::from_secs(4)).await; // past the later executor's due time

    drop(locker.stdin.take());
    locker.wait().unwrap();
    let done = api.wait_executor(&running, is_terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["error"], "cancelled while running: halted: locked database");
    let skipped = api.wait_executor(&later, is_terminal).await;
    assert_eq!(skipped["status"], "cancelled", "nothing started while halted: {skipped}");
    let paths: Vec<String> = sink.requests().into_iter().map(|r| r.1).collect();
    assert_eq!(paths, ["/slow"], "only the attack that was running when the halt came");
    // The retried write stored the halt once the lock went.
    let mut stored = serde_json::Value::Null;
    for _ in 0..100 {
        stored = api.get("/api/1/halt").await.body;
        if stored["persisted"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stored["persisted"], true, "{stored}");
    assert_eq!(stored["reason"], "locked database");
}

#[tokio::test]
async fn pending_executors_fire_after_a_restart_and_late_ones_follow_the_misfire_policy() {
    for backend in backends() {
        let sink = Sink::start(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let mut first = Engine::start(dir.path(), backend, Options::default());
        let api = first.client();
        // Due in 3 s, default grace 60 s: fires late after the restart.
        let within = api.post("/api/1/plans/", &api_plan("within grace", &sink.url("/within"), &in_seconds(3))).await;
        // Due in 3 s with no grace: missed while the engine is down.
        let mut strict = api_plan("no grace", &sink.url("/strict"), &in_seconds(3));
        strict["grace_seconds"] = json!(0);
        let strict = api.post("/api/1/plans/", &strict).await;
        assert!(first.stop().success(), "SIGTERM exits 0");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let second = Engine::start(
            dir.path(),
            backend,
            Options { database_url: Some(first.database_url.clone()), ..Options::default() },
        );
        let api = second.client();
        let within_id = within.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let strict_id = strict.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(api.wait_executor(&within_id, is_terminal).await["status"], "succeeded");
        let missed = api.wait_executor(&strict_id, is_terminal).await;
        assert_eq!(missed["status"], "missed");
        assert!(missed["error"].as_str().unwrap().starts_with("missed: "));
        let targets: Vec<String> = sink.requests().into_iter().map(|r| r.1).collect();
        assert_eq!(targets, vec!["/within".to_string()]);
    }
}

#[tokio::test]
async fn a_non_loopback_bind_without_tokens_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(["serve", "--bind", "0.0.0.0:0", "--database-url", "sqlite::memory:"])
        .current_dir(dir.path())
        .env_remove("CME_TOKENS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to listen on 0.0.0.0:0 without API tokens"));
}

/// `cme serve` with this cache directory: whether it started, and what it said.
fn serve_with_cache(dir: &std::path::Path, cache: &std::path::Path) -> (bool, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &format!("sqlite://{}?mode=rwc", dir.join("c.db").display()),
        ])
        .arg("--cache-dir")
        .arg(cache)
        // The credential key file is created in the working directory: keep it out of the tree.
        .current_dir(dir)
        .env_remove("CME_TOKENS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let started = first.starts_with("cme listening");
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    (started, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn an_artifact_cache_others_can_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (started, stderr) = serve_with_cache(dir.path(), &open);
    assert!(!started, "a world-writable cache is refused");
    assert!(stderr.contains("writable by its group or others (mode 777)"), "{stderr}");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Only root can give a directory away; elsewhere that case cannot be set up.
    let given = std::process::Command::new("chown").arg("65534").arg(&foreign).status().is_ok_and(|s| s.success());
    if given {
        let (started, stderr) = serve_with_cache(dir.path(), &foreign);
        assert!(!started, "a cache owned by another user is refused");
        assert!(stderr.contains("is owned by uid 65534"), "{stderr}");
    }

    let private = dir.path().join("private");
    let (started, stderr) = serve_with_cache(dir.path(), &private);
    assert!(started, "a fresh private cache is fine: {stderr}");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700);
}
