//! What operators run the engine with: liveness and readiness probes, and an access log
//! line per request that names the route and the token, never ids, queries or secrets.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn livez_and_readyz_answer_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { env: vec![("CME_TOKENS".into(), "admin:admin-secret".into())], ..Options::default() });
    let api = engine.client();
    let live = api.get("/livez").await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "alive");
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["database"], true);
    assert_eq!(ready.body["scheduler"], true);
}

#[tokio::test]
async fn every_request_leaves_one_access_log_line_naming_route_status_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "viewer:viewer-secret-1,operator:operator-secret-1";
    let options = Options { env: vec![("CME_TOKENS".into(), tokens.into())], args: vec!["--log-format".into(), "json".into()], ..Options::default() };
    let engine = Engine::start(dir.path(), Backend::Sqlite, options);
    let viewer = engine.client().with_token("viewer-secret-1");
    assert_eq!(viewer.get("/api/1/plans/?all=true&page=1").await.status, 200);
    assert_eq!(viewer.get("/api/1/plans/0123456789abcdef0123456789abcdef").await.status, 404);
    assert_eq!(engine.client().get("/api/1/plans/").await.status, 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = engine.stderr();
    let lines: Vec<serde_json::Value> =
        log.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter(|l| l["target"] == "cme::access").map(|l| l["fields"].clone()).collect();
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
