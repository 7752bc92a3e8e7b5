//! The API over a real engine (in-memory SQLite, the engine's fake plugin host): how
//! engine outcomes become statuses and documents. No wasm, no child process.

use std::sync::Arc;

use actix_web::test;
use serde_json::{Value, json};

use cme_api::{ApiState, Auth};
use cme_engine::testing::{FakeHost, builtins, bytes, component};
use cme_engine::{Engine, EngineConfig, Upload};
use cme_store::{Store, StoreConfig};

async fn engine() -> Arc<Engine> {
    let store = Arc::new(Store::connect(&StoreConfig::in_memory()).await.unwrap());
    let host = Arc::new(FakeHost::default());
    Engine::new(store, host.clone(), builtins(&host).await, EngineConfig::default())
}

macro_rules! app {
    ($engine:expr) => {
        test::init_service(cme_api::app(ApiState::new(
            $engine.clone(),
            Auth::default(),
            cme_api::HostPolicy::default(),
            cme_secrets::Redactor::default(),
        )))
        .await
    };
}

/// Status, content type and JSON body of a request (sent to `localhost`, as a client
/// always names a host).
async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
) -> (u16, String, Value) {
    let response = test::call_service(app, req.insert_header(("host", "localhost")).to_request()).await;
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = test::read_body(response).await;
    (status, content_type, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn plan(attack_ref: &str, planner_args: Value) -> Value {
    json!({"name": "p", "attack": {"ref": attack_ref, "args": {}}, "planner": {"ref": "exact_planner:ExactPlanner", "args": planner_args}})
}

fn post(path: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post().uri(path).set_json(body)
}

#[actix_web::test]
async fn a_trapping_planner_is_a_server_fault_not_a_bad_request() {
    let engine = engine().await;
    let app = app!(engine);
    let (status, content_type, body) =
        call(&app, post("/api/1/plans/", &plan("noop:Noop", json!({"fail": "trap"})))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert!(body["msg"].as_str().unwrap().contains("planner exact-planner@0.1.0 failed: plugin trapped"), "{body}");
    assert!(body["pointer"].is_null(), "a fault does not blame the request: {body}");
}

#[actix_web::test]
async fn engine_refusals_become_statuses_with_pointers_and_route_hints() {
    let engine = engine().await;
    let app = app!(engine);
    let (status, _, body) = call(&app, post("/api/1/plans/", &plan("nope:Nope", json!({"in_ms": [60_000]})))).await;
    assert_eq!((status, body["pointer"].as_str()), (400, Some("/attack/ref")), "{body}");
    assert!(body["msg"].as_str().unwrap().contains("unknown attack ref \"nope:Nope\" (known: noop:Noop)"), "{body}");

    let (status, _, body) = call(&app, post("/api/1/plans/", &plan("noop:Noop", json!({"fail": "invalid"})))).await;
    assert_eq!((status, body["pointer"].as_str()), (400, Some("/planner/args/date")), "{body}");

    engine
        .upload_plugin(
            Upload {
                wasm: bytes(&component("ping", "0.1.0", "attack", &["ping:Ping"])),
                expected_sha256: None,
                signature: None,
            },
            "admin",
        )
        .await
        .unwrap();
    let (status, _, body) = call(&app, post("/api/1/plans/", &plan("ping:Ping", json!({"in_ms": [60_000]})))).await;
    assert_eq!(status, 400);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .ends_with("is pending: an admin must grant it first (PUT /api/1/plugins/ping@0.1.0/grant)"),
        "{body}"
    );
    let (status, _, body) = call(&app, test::TestRequest::post().uri("/api/1/plugins/ping@0.1.0/enable")).await;
    assert_eq!(status, 409);
    assert!(
        body["msg"].as_str().unwrap().contains("PUT /api/1/plugins/ping@0.1.0/grant approves and enables it"),
        "{body}"
    );
    let (status, _, body) = call(&app, test::TestRequest::delete().uri("/api/1/plugins/noop@0.1.0")).await;
    assert_eq!(status, 409);
    assert!(body["msg"].as_str().unwrap().contains("configure its limits under [ec2] and [ssh]"), "{body}");

    let (status, _, created) = call(&app, post("/api/1/plans/", &plan("noop:Noop", json!({"in_ms": [60_000]})))).await;
    assert_eq!(status, 201, "{created}");
    let executor = created["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(call(&app, test::TestRequest::delete().uri(&format!("/api/1/executors/{executor}"))).await.0, 200);
    let (status, content_type, body) =
        call(&app, test::TestRequest::delete().uri(&format!("/api/1/executors/{executor}"))).await;
    assert_eq!((status, content_type.as_str()), (409, "application/problem+json"));
    assert!(body["msg"].as_str().unwrap().contains("is cancelled; only a pending executor can be cancelled"), "{body}");
    assert_eq!(call(&app, test::TestRequest::get().uri("/api/1/plans/nope")).await.0, 404);
}

#[actix_web::test]
async fn absurd_pages_are_refused_before_any_query() {
    let engine = engine().await;
    let app = app!(engine);
    for uri in [
        "/api/1/executors/?page=99999999999999999&size=1000",
        "/api/1/plans/?page=18446744073709551615",
        "/api/1/audit/?page=0",
        "/api/1/plans/?size=1001",
        "/api/1/plans/?page=x",
    ] {
        let (status, content_type, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!((status, content_type.as_str()), (400, "application/problem+json"), "{uri}: {body}");
        assert!(body["msg"].as_str().unwrap().starts_with("query parameter"), "{uri}: {body}");
    }
    assert_eq!(
        call(&app, test::TestRequest::get().uri("/api/1/plans/?page=1000000&size=1000")).await.0,
        200,
        "far but possible: an empty page"
    );
}

#[actix_web::test]
async fn an_executor_log_has_one_shape_even_when_nothing_ran() {
    let engine = engine().await;
    let app = app!(engine);
    let (_, _, created) = call(&app, post("/api/1/plans/", &plan("noop:Noop", json!({"in_ms": [60_000]})))).await;
    let executor = created["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    call(&app, test::TestRequest::delete().uri(&format!("/api/1/executors/{executor}"))).await;
    let (_, _, doc) = call(&app, test::TestRequest::get().uri(&format!("/api/1/executors/{executor}"))).await;
    assert_eq!(
        doc["log"],
        json!({"lines": [], "stdout": "", "stderr": "", "dry_run_actions": [], "elapsed_ms": 0}),
        "{doc}"
    );
    assert_eq!(doc["plugin"], "noop@0.1.0");
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["executed"], true);
}

#[actix_web::test]
async fn operator_actions_are_audited_by_the_engine() {
    let engine = engine().await;
    let app = app!(engine);
    let (_, _, created) = call(&app, post("/api/1/plans/", &plan("noop:Noop", json!({"in_ms": [60_000]})))).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(call(&app, test::TestRequest::delete().uri(&format!("/api/1/plans/{id}"))).await.0, 200);
    assert_eq!(call(&app, post("/api/1/halt", &json!({"reason": "drill"}))).await.0, 200);
    assert_eq!(call(&app, test::TestRequest::post().uri("/api/1/resume")).await.0, 200);
    let (_, _, audit) = call(&app, test::TestRequest::get().uri("/api/1/audit/")).await;
    let actions: Vec<&str> =
        audit["_embedded"]["audit"].as_array().unwrap().iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["plan.create", "plan.delete", "halt", "resume"]);
    assert!(
        audit["_embedded"]["audit"].as_array().unwrap().iter().all(|e| e["actor"] == "admin" && e["source"] == "api")
    );
}

/// Fuzz target: plan bodies. Valid bodies with fields replaced by arbitrary JSON, and
/// arbitrary JSON, are posted to the real router over a real engine; every answer is a
/// 2xx or a problem document with a 4xx status (never a 5xx: no body is the engine's
/// fault), and the engine keeps serving. `PROPTEST_CASES` sets how many (default 256).
#[actix_web::test]
async fn plan_bodies_are_accepted_or_refused_with_a_problem_document() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    let engine = engine().await;
    let app = app!(engine);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,30}".prop_map(Value::from),
        Just(Value::from("2030-01-01T10:00:00Z")),
        Just(Value::from("exact_planner:ExactPlanner")),
    ];
    let json = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    static FIELDS: [&str; 11] = [
        "name",
        "attack",
        "planner",
        "dry_run",
        "timezone",
        "seed",
        "misfire",
        "overlap",
        "steady_state",
        "stop_conditions",
        "grace_seconds",
    ];
    let later = cme_test_peers::Dates::like(2030).at("2030-01-01T10:00:00Z");
    let body =
        (json.clone(), proptest::sample::select(&FIELDS[..]), any::<bool>()).prop_map(|(value, field, whole)| {
            if whole {
                return value;
            }
            let mut body = plan("api_request:ApiRequest", json!({"date": later}));
            body[field] = value;
            body
        });
    let cases: u32 = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    let mut runner = proptest::test_runner::TestRunner::default();
    for _ in 0..cases {
        let body = body.new_tree(&mut runner).unwrap().current();
        let (status, content_type, answer) = call(&app, post("/api/1/plans/", &body)).await;
        assert!(status < 500, "{body} -> {status} {answer}");
        if status >= 400 {
            assert_eq!(content_type, "application/problem+json", "{body} -> {answer}");
            assert!(answer["msg"].as_str().is_some_and(|m| !m.is_empty()), "{body} -> {answer}");
        }
    }
    assert_eq!(call(&app, test::TestRequest::get().uri("/livez")).await.0, 200, "still serving");
}

/// A panic anywhere below a handler is a 500 problem document, and the engine answers
/// the next request as before.
#[actix_web::test]
async fn a_panicking_handler_is_a_500_not_a_dead_worker() {
    let engine = engine().await;
    let app = app!(engine);
    let later = cme_test_peers::Dates::like(2030).at("2030-01-01T10:00:00Z");
    let mut body = plan("noop:Noop", json!({"date": later}));
    body["attack"]["args"] = json!({"panic": true});
    // The middleware answers with an error that the server (not the test harness's
    // `call_service`) turns into its response.
    let failed =
        test::try_call_service(&app, post("/api/1/plans/", &body).insert_header(("host", "localhost")).to_request())
            .await;
    let response = failed.expect_err("the panic is answered as an error").error_response();
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let answer: Value =
        serde_json::from_slice(&actix_web::body::to_bytes(response.into_body()).await.unwrap()).unwrap();
    assert_eq!((status, content_type.as_str()), (500, "application/problem+json"), "{answer}");
    assert!(answer["msg"].as_str().unwrap().contains("failed on this request"), "{answer}");
    assert_eq!(call(&app, test::TestRequest::get().uri("/api/1/plans/")).await.0, 200, "still serving");
}
