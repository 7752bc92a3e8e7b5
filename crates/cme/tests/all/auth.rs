//! Bearer tokens and roles.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn roles_decide_what_a_token_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "viewer:viewer-secret,operator:operator-secret,admin:admin-secret";
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { env: vec![("CME_TOKENS".into(), tokens.into())], ..Options::default() });
    let api = engine.client();
    let plan = api_plan("auth", "http://127.0.0.1:4505/", &in_seconds(3600));

    let anonymous = api.get("/api/1/plans/").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.content_type, "application/problem+json");
    assert_eq!(api.with_token("wrong-token").get("/api/1/plans/").await.status, 401);

    let viewer = api.with_token("viewer-secret");
    assert_eq!(viewer.get("/api/1/plans/").await.status, 200);
    let refused = viewer.post("/api/1/plans/", &plan).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body["msg"].as_str().unwrap().contains("operator"));
    assert_eq!(viewer.get("/api/1/audit/").await.status, 403);

    let operator = api.with_token("operator-secret");
    assert_eq!(operator.post("/api/1/plans/", &plan).await.status, 201);
    assert_eq!(operator.post("/api/1/halt", &json!({})).await.status, 200);
    assert_eq!(operator.raw(reqwest::Method::POST, "/api/1/resume", None, None).await.status, 200);
    assert_eq!(operator.get("/api/1/audit/").await.status, 403);

    let admin = api.with_token("admin-secret");
    let audit = admin.get("/api/1/audit/").await;
    assert_eq!(audit.status, 200);
    let actions: Vec<&str> = audit.body["_embedded"]["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["resume", "halt", "plan.create"]);
    // Health needs no token (for load balancers); tokens never appear in logs.
    assert_eq!(api.get("/healthz").await.status, 200);
    assert!(!engine.stderr().contains("admin-secret"));
}
