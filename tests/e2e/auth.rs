//! Bearer tokens and roles.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn roles_decide_what_a_token_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "viewer:viewer-secret,operator:operator-secret,admin:admin-secret";
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), tokens.into())], ..Options::default() },
    );
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
    let actions: Vec<&str> =
        audit.body["_embedded"]["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["resume", "halt", "plan.create"]);
    // Health needs no token (for load balancers); tokens never appear in logs.
    assert_eq!(api.get("/healthz").await.status, 200);
    assert!(!engine.stderr().contains("admin-secret"));
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn named_hashed_tokens_are_audited_by_name_and_publishers_only_publish() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[tokens]]\nname = \"ci\"\nrole = \"publisher\"\nsha256 = \"{}\"\n\n[[tokens]]\nname = \"alice\"\nrole = \"operator\"\nsha256 = \"{}\"\n\n[[tokens]]\nname = \"root\"\nrole = \"admin\"\ntoken = \"plaintext-admin-secret\"\n",
        sha256_hex("ci-publisher-secret"),
        sha256_hex("alice-operator-secret")
    );
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    assert!(engine.stderr().contains("holds its secret in plaintext"), "a plaintext token is warned about");
    let api = engine.client();
    let ci = api.with_token("ci-publisher-secret");
    let alice = api.with_token("alice-operator-secret");
    let root = api.with_token("plaintext-admin-secret");

    let wasm = cme_plugins::test_plugins::PING.wasm.to_vec();
    let uploaded = ci.raw(reqwest::Method::POST, "/api/1/plugins/", Some(wasm.clone()), Some("application/wasm")).await;
    assert_eq!(uploaded.status, 201, "a publisher uploads: {:?}", uploaded.body);
    assert_eq!(uploaded.body["uploaded_by"], "ci");
    for (what, reply) in [
        ("grant", ci.put("/api/1/plugins/ping-attack@0.1.0/grant", &json!({})).await),
        ("enable", ci.raw(reqwest::Method::POST, "/api/1/plugins/ping-attack@0.1.0/enable", None, None).await),
        ("delete", ci.delete("/api/1/plugins/ping-attack@0.1.0").await),
        ("credentials", ci.get("/api/1/credentials/").await),
        ("plans", ci.post("/api/1/plans/", &api_plan("ci", "http://127.0.0.1:4505/", &in_seconds(3600))).await),
        ("halt", ci.post("/api/1/halt", &json!({})).await),
    ] {
        assert_eq!(reply.status, 403, "a publisher may not {what}: {:?}", reply.body);
    }
    assert_eq!(ci.get("/api/1/plugins/").await.status, 200, "but reads like a viewer");
    assert_eq!(
        alice.raw(reqwest::Method::POST, "/api/1/plugins/", Some(wasm), Some("application/wasm")).await.status,
        403,
        "operators do not publish"
    );
    assert_eq!(
        alice.post("/api/1/plans/", &api_plan("alice", "http://127.0.0.1:4505/", &in_seconds(3600))).await.status,
        201
    );

    let audit = root.get("/api/1/audit/").await.body;
    let actors: Vec<(String, String)> = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "allowed")
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap().to_string()))
        .collect();
    assert!(actors.contains(&("plugin.upload".into(), "ci".into())), "{actors:?}");
    assert!(actors.contains(&("plan.create".into(), "alice".into())), "{actors:?}");
    for secret in ["ci-publisher-secret", "alice-operator-secret", "plaintext-admin-secret"] {
        assert!(!engine.stderr().contains(secret), "{secret} leaked into the log");
    }
}
