//! The plugin registry through the real binary: upload, grant, versions, hot-load on
//! another replica, refusals that change nothing, grants enforced on uploaded plugins.

use std::time::Duration;

use cme_plugins::test_plugins::{
    BAD_SCHEMA, COMMAND, DESCRIBE_HUGE, DESCRIBE_LOOP, HOSTILE, IMPOSTOR, PING, PING_V2, REF_THIEF,
};
use serde_json::{Value, json};

use crate::support::*;

async fn upload(api: &Api, wasm: &[u8]) -> Reply {
    api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(wasm.to_vec()), Some("application/wasm")).await
}

fn plan(attack_ref: &str, args: Value, date: &str) -> Value {
    json!({"name": "registry", "attack": {"ref": attack_ref, "args": args}, "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}}})
}

async fn plugin_ids(api: &Api) -> Vec<String> {
    let listed = api.get("/api/1/plugins/").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let mut ids: Vec<String> =
        listed.body["plugins"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

fn grant_to(sink: &Sink) -> Value {
    json!({"http": {"urls": [format!("http://{}/*", sink.addr)]}})
}

#[tokio::test]
async fn an_uploaded_plugin_waits_for_its_grant_then_runs_and_versions_resolve_as_pinned() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();

    let created = upload(&api, PING.wasm).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.location.as_deref(), Some("/api/1/plugins/ping-attack@0.1.0"));
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["kind"], "attack");
    assert_eq!(created.body["builtin"], false);
    assert_eq!(created.body["capabilities"], json!([{"kind": "http", "urls": ["*"]}]));
    assert!(created.body["compile_ms"].as_u64().is_some());
    assert_eq!(upload(&api, PING.wasm).await.status, 200, "the same bytes again are idempotent");

    // Pending: plans cannot use it yet.
    let refused =
        api.post("/api/1/plans/", &plan("ping:Ping", json!({"url": sink.url("/ping")}), &in_seconds(1))).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body["msg"].as_str().unwrap().contains("ping-attack@0.1.0 is pending"), "{:?}", refused.body);

    let granted = api.put("/api/1/plugins/ping-attack@0.1.0/grant", &grant_to(&sink)).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    assert_eq!(granted.body["status"], "enabled");
    let attacks = api.get("/api/1/attacks/").await.body;
    assert!(attacks["attacks"].as_array().unwrap().iter().any(|a| a["ref"] == "ping:Ping" && a["status"] == "enabled"));

    let done = api.run_once(json!({"ref": "ping:Ping", "args": {"url": sink.url("/ping")}}), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["plugin"], "ping-attack@0.1.0", "the executor names the version it ran");
    assert_eq!(sink.requests().len(), 1);

    // A second version: pending until granted, then the default; the first stays pinnable.
    assert_eq!(upload(&api, PING_V2.wasm).await.status, 201);
    let still_v1 =
        api.post("/api/1/plans/", &plan("ping:Ping", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert_eq!(still_v1.body["attack"]["plugin"], "ping-attack@0.1.0", "a pending version is not chosen");
    assert_eq!(api.put("/api/1/plugins/ping-attack@0.2.0/grant", &grant_to(&sink)).await.status, 200);
    let newest = api.post("/api/1/plans/", &plan("ping:Ping", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert_eq!(newest.body["attack"]["plugin"], "ping-attack@0.2.0");
    let pinned =
        api.post("/api/1/plans/", &plan("ping.Ping@0.1.0", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert_eq!(pinned.status, 201, "{:?}", pinned.body);
    assert_eq!(pinned.body["attack"]["plugin"], "ping-attack@0.1.0");
    let missing =
        api.post("/api/1/plans/", &plan("ping:Ping@9.9.9", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert_eq!(missing.status, 400);
    assert!(missing.body["msg"].as_str().unwrap().contains("available: 0.1.0, 0.2.0"), "{:?}", missing.body);

    // Disabled: not chosen, not pinnable, and its executors fail instead of running.
    let disabled = api.post("/api/1/plugins/ping-attack@0.2.0/disable", &json!({})).await;
    assert_eq!(disabled.body["status"], "disabled");
    let fallback =
        api.post("/api/1/plans/", &plan("ping:Ping", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert_eq!(fallback.body["attack"]["plugin"], "ping-attack@0.1.0");
    let refused =
        api.post("/api/1/plans/", &plan("ping:Ping@0.2.0", json!({"url": sink.url("/v")}), &in_seconds(3600))).await;
    assert!(refused.body["msg"].as_str().unwrap().contains("is disabled"), "{:?}", refused.body);

    // Deleting a version that pending executors use is refused; without them it goes.
    let in_use = api.delete("/api/1/plugins/ping-attack@0.1.0").await;
    assert_eq!(in_use.status, 409, "{:?}", in_use.body);
    let v2_users = newest.body["id"].as_str().unwrap();
    assert_eq!(api.delete(&format!("/api/1/plans/{v2_users}")).await.status, 200);
    assert_eq!(api.delete("/api/1/plugins/ping-attack@0.2.0").await.status, 200);
    assert!(!plugin_ids(&api).await.contains(&"ping-attack@0.2.0".to_string()));
    assert_eq!(api.delete("/api/1/plugins/api-request@0.1.0").await.status, 409, "built-ins cannot be deleted");

    let audit = api.get("/api/1/audit/").await.body;
    let actions: Vec<&str> =
        audit["_embedded"]["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["plugin.upload", "plugin.grant", "plugin.disable", "plugin.delete"] {
        assert!(actions.contains(&expected), "{expected} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn every_bad_upload_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = "viewer:viewer-secret,operator:operator-secret,admin:admin-secret";
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), tokens.into())], ..Options::default() },
    );
    let admin = engine.client().with_token("admin-secret");
    let before = plugin_ids(&admin).await;

    let random: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let oversize = vec![0u8; 21 << 20];
    let sha_of_something_else = "0".repeat(64);
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("random bytes", upload(&admin, &random).await, 400, "not a WebAssembly binary"),
        ("a core module", upload(&admin, &core_module).await, 400, "core WebAssembly module, not a component"),
        (
            "a component of another world",
            upload(&admin, COMMAND.wasm).await,
            400,
            "none of the `planner`, `attack` and `probe` worlds",
        ),
        (
            "a describe() that loops",
            upload(&admin, DESCRIBE_LOOP.wasm).await,
            400,
            "describe() failed: deadline of 1000 ms exceeded",
        ),
        ("a schema that does not compile", upload(&admin, BAD_SCHEMA.wasm).await, 400, "schema"),
        ("a describe() of 2 MiB", upload(&admin, DESCRIBE_HUGE.wasm).await, 400, "describe() answered with 2097"),
        (
            "a ref another plugin has",
            upload(&admin, REF_THIEF.wasm).await,
            409,
            "ref api_request:ApiRequest is already used by api-request@",
        ),
        (
            "a built-in's name",
            upload(&admin, IMPOSTOR.wasm).await,
            409,
            "the name api-request belongs to a built-in plugin",
        ),
        ("over the size cap", upload(&admin, &oversize).await, 413, "larger than 20971520 bytes"),
        (
            "a digest mismatch",
            admin
                .raw(
                    reqwest::Method::POST,
                    &format!("/api/1/plugins/?sha256={sha_of_something_else}"),
                    Some(PING.wasm.to_vec()),
                    Some("application/wasm"),
                )
                .await,
            400,
            "sha256 mismatch",
        ),
        ("a JSON body", admin.post("/api/1/plugins/", &json!({"wasm": "AGFzbQ=="})).await, 415, "application/wasm"),
        (
            "no token",
            engine
                .client()
                .raw(reqwest::Method::POST, "/api/1/plugins/", Some(PING.wasm.to_vec()), Some("application/wasm"))
                .await,
            401,
            "",
        ),
        ("a viewer's token", upload(&engine.client().with_token("viewer-secret"), PING.wasm).await, 403, ""),
        ("an operator's token", upload(&engine.client().with_token("operator-secret"), PING.wasm).await, 403, ""),
    ];
    for (what, reply, status, fragment) in cases {
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert!(reply.content_type.starts_with("application/problem+json"), "{what}: {}", reply.content_type);
        let message = reply.body["msg"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{what}: {message:?} lacks {fragment:?}");
    }
    assert_eq!(plugin_ids(&admin).await, before, "no refusal changed the registry");
    let audit = admin.get("/api/1/audit/").await.body;
    let refused = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plugin.upload" && e["decision"] == "denied")
        .count();
    assert_eq!(
        refused, 9,
        "every refusal that reaches the engine (not the 413 and 415 of the body reader) is audited: {audit}"
    );

    // Multipart, with the right digest, is accepted.
    let digest = sha256_hex(PING.wasm);
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(PING.wasm.to_vec()).file_name("ping.wasm"))
        .text("sha256", digest);
    let reply = reqwest::Client::new()
        .post(format!("{}/api/1/plugins/", engine.url))
        .bearer_auth("admin-secret")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    assert_eq!(admin.get("/healthz").await.status, 200);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn uploaded_plugins_get_only_their_grant_and_hostile_ones_fail_their_executors_alone() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some("run_deadline_seconds = 2\n".into()), ..Options::default() },
    );
    let api = engine.client();
    assert_eq!(upload(&api, HOSTILE.wasm).await.status, 201);
    let only_elsewhere = json!({"http": {"urls": ["http://127.0.0.1:1/only/*"]}});
    assert_eq!(api.put("/api/1/plugins/hostile@0.1.0/grant", &only_elsewhere).await.status, 200);

    let outside = api
        .run_once(
            json!({"ref": "hostile:Hostile", "args": {"mode": "http", "method": "GET", "url": sink.url("/x")}}),
            false,
        )
        .await;
    assert_eq!(outside["status"], "failed");
    assert!(outside["error"].as_str().unwrap().starts_with("denied"), "{outside}");
    assert!(sink.requests().is_empty());
    let audit = api.get("/api/1/audit/").await.body;
    assert!(
        audit["_embedded"]["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["run_id"] == outside["id"] && e["decision"] == "denied" && e["action"] == "http.send")
    );

    // Widening the grant takes effect at the next run.
    assert_eq!(api.put("/api/1/plugins/hostile@0.1.0/grant", &grant_to(&sink)).await.status, 200);
    let inside = api
        .run_once(
            json!({"ref": "hostile:Hostile", "args": {"mode": "http", "method": "GET", "url": sink.url("/x")}}),
            false,
        )
        .await;
    assert_eq!(inside["status"], "succeeded", "{inside}");

    for (mode, expected) in [("loop", "deadline of 2000 ms exceeded"), ("memory-bomb", "memory limit")] {
        let done = api.run_once(json!({"ref": "hostile:Hostile", "args": {"mode": mode}}), false).await;
        assert_eq!(done["status"], "failed");
        assert!(done["error"].as_str().unwrap().contains(expected), "{mode}: {done}");
    }
    let still_serving = api
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/after"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(still_serving["status"], "succeeded");
}

#[tokio::test]
async fn a_plugin_uploaded_on_one_replica_runs_on_another() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let sink = Sink::start(Duration::ZERO).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Engine::start(dir_a.path(), Backend::Postgres, Options::default());
    let b = Engine::start(
        dir_b.path(),
        Backend::Postgres,
        Options { database_url: Some(a.database_url.clone()), ..Options::default() },
    );
    let (api_a, api_b) = (a.client(), b.client());
    assert_eq!(upload(&api_a, PING.wasm).await.status, 201);
    assert_eq!(api_a.put("/api/1/plugins/ping-attack@0.1.0/grant", &grant_to(&sink)).await.status, 200);
    // A leaves: whatever fires now fires on B, which never saw the upload.
    assert!(a.stop().success());
    assert!(plugin_ids(&api_b).await.contains(&"ping-attack@0.1.0".to_string()));
    let done = api_b.run_once(json!({"ref": "ping:Ping", "args": {"url": sink.url("/replica")}}), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(sink.requests()[0].1, "/replica");
}
