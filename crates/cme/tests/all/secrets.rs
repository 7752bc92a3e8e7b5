//! Secrets in plan args are used but never shown: header values and URL user-info are
//! `***` in every document, audit row, error and log line.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn secret_headers_and_url_passwords_never_show() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some("secret_headers = [\"X-Vault-Token\"]\n".into()), ..Options::default() });
    let api = engine.client();
    let with_password = sink.url("/kill").replacen("http://", "http://chaos:hunter2-pw@", 1);
    let secrets = ["hunter2-pw", "Bearer topsecret-token", "k-123-apikey", "vault-s3cret", "metadata-pw"];
    let attack = json!({"ref": "api_request:ApiRequest", "args": {
        "endpoint": with_password, "method": "GET",
        "headers": {"Authorization": "Bearer topsecret-token", "X-Api-Key": "k-123-apikey", "X-Vault-Token": "vault-s3cret", "X-Visible": "shown"}}});
    let created = api.plan_once(attack, false).await;
    let plan_id = created.body["id"].as_str().unwrap().to_string();
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(sink.requests().len(), 1, "the attack used its secrets");
    // A refused call's error names the URL too.
    let refused = api.run_once(json!({"ref": "api_request:ApiRequest", "args": {"endpoint": "http://root:metadata-pw@169.254.169.254/", "method": "GET"}}), false).await;
    assert_eq!(refused["status"], "failed");

    let shown = [
        ("the creation answer", created.body.to_string()),
        ("the plan", api.get(&format!("/api/1/plans/{plan_id}")).await.body.to_string()),
        ("the plan list", api.get("/api/1/plans/?all=true").await.body.to_string()),
        ("the executor", api.get(&format!("/api/1/executors/{id}")).await.body.to_string()),
        ("the refused executor", refused.to_string()),
        ("the executor list", api.get("/api/1/executors/?executed=all").await.body.to_string()),
        ("the audit log", api.get("/api/1/audit/").await.body.to_string()),
        ("the engine's log", engine.stderr()),
    ];
    for (what, text) in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
        }
    }
    let plan = api.get(&format!("/api/1/plans/{plan_id}")).await.body;
    assert_eq!(plan["attack"]["args"]["headers"]["Authorization"], "***");
    assert_eq!(plan["attack"]["args"]["headers"]["X-Vault-Token"], "***");
    assert_eq!(plan["attack"]["args"]["headers"]["X-Visible"], "shown");
    assert!(plan["attack"]["args"]["endpoint"].as_str().unwrap().starts_with("http://***@127.0.0.1:"), "{plan}");
}
