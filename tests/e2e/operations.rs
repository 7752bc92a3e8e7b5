//! What operators run the engine with: liveness and readiness probes, and an access log
//! line per request that names the route and the token, never ids, queries or secrets.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn livez_and_readyz_answer_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), "admin:admin-secret".into())], ..Options::default() },
    );
    let api = engine.client();
    let live = api.get("/livez").await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "alive");
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["database"], true);
    assert_eq!(ready.body["scheduler"], true);
}

/// The `Date` header is rendered by the response that finds it stale (the patched
/// actix-http, so that an idle engine never wakes): after the engine sat idle it still
/// tells the time of the answer, not of the last request.
#[tokio::test]
async fn the_date_header_is_current_after_the_engine_sat_idle() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let http = reqwest::Client::new();
    let date_of_an_answer = || async {
        let response = http.get(format!("{}/livez", engine.url)).send().await.unwrap();
        let date = response.headers()["date"].to_str().unwrap().to_string();
        let parsed = chrono::DateTime::parse_from_rfc2822(&date).unwrap_or_else(|e| panic!("{date:?}: {e}"));
        (parsed.with_timezone(&chrono::Utc), chrono::Utc::now())
    };
    let (first, _) = date_of_an_answer().await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (second, asked_at) = date_of_an_answer().await;
    assert!(second >= first + chrono::Duration::seconds(2), "idle 2.1 s, yet Date went from {first} to {second}");
    assert!((asked_at - second).num_milliseconds().abs() <= 1_500, "Date {second} at {asked_at}");
}

#[tokio::test]
async fn every_request_leaves_one_access_log_line_naming_route_status_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "viewer:viewer-secret-1,operator:operator-secret-1";
    let options = Options {
        env: vec![("CME_TOKENS".into(), tokens.into())],
        args: vec!["--log-format".into(), "json".into()],
        ..Options::default()
    };
    let engine = Engine::start(dir.path(), Backend::Sqlite, options);
    let viewer = engine.client().with_token("viewer-secret-1");
    assert_eq!(viewer.get("/api/1/plans/?all=true&page=1").await.status, 200);
    assert_eq!(viewer.get("/api/1/plans/0123456789abcdef0123456789abcdef").await.status, 404);
    assert_eq!(engine.client().get("/api/1/plans/").await.status, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = engine.stderr();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "cme::access")
        .map(|l| l["fields"].clone())
        .collect();
    let line = |route: &str, status: u64| lines.iter().find(|f| f["route"] == route && f["status"] == status).cloned();
    let listed = line("/api/1/plans/", 200).unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(listed["method"], "GET");
    assert_eq!(listed["token"], "viewer");
    assert!(listed["duration_us"].as_u64().is_some(), "{listed}");
    assert!(line("/api/1/plans/{id}", 404).is_some(), "the pattern, not the id: {lines:#?}");
    assert_eq!(line("/api/1/plans/", 401).unwrap_or_else(|| panic!("{lines:#?}"))["token"], "-");
    assert!(!log.contains("0123456789abcdef0123456789abcdef"), "no ids in the access log");
    assert!(!log.contains("viewer-secret-1") && !log.contains("all=true"), "no secrets, no query strings");
}

/// `promtool` from the Debian `prometheus` package.
fn promtool() -> Option<std::path::PathBuf> {
    system_tool(&["/usr/bin/promtool", "/usr/local/bin/promtool"], "apt-get install prometheus")
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_format_and_promtool_accepts_them() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), "operator:operator-secret-1".into())], ..Options::default() },
    );
    let api = engine.client().with_token("operator-secret-1");
    assert_eq!(engine.client().get("/metrics").await.status, 401, "metrics need a token like every other read");
    let done = api
        .run_once(
            serde_json::json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/m"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(done["status"], "succeeded");
    api.post("/api/1/halt", &serde_json::json!({"reason": "metrics test"})).await;

    let response = reqwest::Client::new()
        .get(format!("{}/metrics", api.base))
        .bearer_auth("operator-secret-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    for expected in [
        "cme_executors{status=\"succeeded\"} 1",
        "cme_executors{status=\"pending\"} 0",
        "cme_plans 1",
        "cme_halted 1",
        "cme_plugins{status=\"enabled\"}",
        "cme_runs_total{plugin=\"api-request@0.1.0\",status=\"succeeded\"} 1",
        "cme_firing_lateness_seconds_bucket{plugin=\"api-request@0.1.0\",le=\"0.005\"}",
        "cme_run_duration_seconds_count{plugin=\"api-request@0.1.0\"} 1",
        "cme_capability_calls_total{capability=\"http.send\",decision=\"allowed\"} 1",
        "cme_http_requests_total{route=\"/api/1/plans/\",status=\"201\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    if let Some(promtool) = promtool() {
        let path = dir.path().join("metrics.txt");
        std::fs::write(&path, &text).unwrap();
        let output = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some("metrics = false\n".into()), ..Options::default() },
    );
    let reply = engine.client().get("/metrics").await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    assert_eq!(engine.client().get("/readyz").await.status, 200);
}
