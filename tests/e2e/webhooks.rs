//! Events to webhooks: CloudEvents, signed, from an outbox that outlives a receiver's
//! outage and the engine's restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::support::*;

const SECRET: &str = "whsec-test-secret-4f1c";

fn webhook_config(receiver: std::net::SocketAddr) -> String {
    format!(
        r#"
[[webhooks]]
name = "ops"
url = "http://{receiver}/hooks/T0KEN-in-path"
events = ["*"]
secret = "{SECRET}"
max_backoff_seconds = 1
"#
    )
}

/// A port nothing listens on (yet).
fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn webhook_state(api: &Api) -> Value {
    let listed = api.get("/api/1/webhooks/").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let text = listed.body.to_string();
    assert!(!text.contains(SECRET) && !text.contains("T0KEN"), "a secret is shown: {text}");
    listed.body["_embedded"]["webhooks"][0].clone()
}

fn verify(signature: &str, body: &[u8]) {
    let (t, v1) = signature.split_once(',').unwrap_or_else(|| panic!("{signature}"));
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = hmac::Hmac::<sha2_next::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    assert_eq!(hex::encode(mac.finalize().into_bytes()), v1, "bad signature over {}", String::from_utf8_lossy(body));
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "signed {age} s ago");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_wait_out_a_receiver_outage_and_a_restart_then_arrive_signed() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let receiver = free_port();
        let config = webhook_config(receiver);
        let mut engine =
            Engine::start(dir.path(), backend, Options { config: Some(config.clone()), ..Options::default() });
        let api = engine.client();
        let target = Sink::start(Duration::ZERO).await;

        let created = api.post("/api/1/plans/", &api_plan("webhooked", &target.url("/attack"), &in_seconds(1))).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let plan_id = created.body["id"].as_str().unwrap().to_string();
        let executor_id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&executor_id, is_terminal).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(api.post("/api/1/halt", &json!({"reason": "game day over"})).await.status, 200);
        assert_eq!(api.post("/api/1/resume", &json!({})).await.status, 200);

        // The receiver is down: the events wait, and the failure shows.
        let deadline = Instant::now() + Duration::from_secs(20);
        let state = loop {
            let state = webhook_state(&api).await;
            if state["pending"].as_u64() >= Some(5) && state["last_error"].is_string() {
                break state;
            }
            assert!(Instant::now() < deadline, "{backend:?}: {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(state["delivered"], 0, "{state}");
        assert_eq!(state["url"], format!("http://{receiver}/***"));
        assert!(state["last_error"].as_str().unwrap().contains("cannot connect"), "{state}");

        // A restart while it is still down loses nothing ...
        assert!(engine.stop().success());
        let mut engine = Engine::start(
            dir.path(),
            backend,
            Options { config: Some(config), database_url: Some(engine.database_url.clone()), ..Options::default() },
        );
        let api = engine.client();
        assert!(webhook_state(&api).await["pending"].as_u64() >= Some(5));

        // ... and once it is back, everything arrives, signed.
        let sink = Sink::start_at(receiver, Duration::ZERO).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let state = loop {
            let state = webhook_state(&api).await;
            if state["pending"] == 0 && state["delivered"].as_u64() >= Some(5) {
                break state;
            }
            assert!(Instant::now() < deadline, "{backend:?}: {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(state["failed"], 0, "{state}");
        assert!(state["last_delivered"].is_string(), "{state}");

        let mut events: HashMap<String, Value> = HashMap::new();
        let received = sink.requests_with_header("cme-signature");
        let ((_, _, body), signature) = &received[0];
        assert!(
            readme_verifier_accepts(signature.as_deref().unwrap(), body),
            "the README's verifier accepts a real request"
        );
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(!readme_verifier_accepts(signature.as_deref().unwrap(), &tampered), "and refuses a changed body");
        for ((method, path, body), signature) in received {
            assert_eq!((method.as_str(), path.as_str()), ("POST", "/hooks/T0KEN-in-path"));
            verify(&signature.expect("every request is signed"), &body);
            let event: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(event["specversion"], "1.0", "{event}");
            assert_eq!(event["source"], "/cme");
            events.insert(event["type"].as_str().unwrap().to_string(), event);
        }
        for kind in [
            "cme.plan.created",
            "cme.executor.started",
            "cme.executor.succeeded",
            "cme.engine.halted",
            "cme.engine.resumed",
        ] {
            assert!(events.contains_key(kind), "{backend:?}: no {kind} among {:?}", events.keys());
        }
        assert_eq!(events["cme.plan.created"]["subject"], plan_id.as_str());
        let succeeded = &events["cme.executor.succeeded"];
        assert_eq!(succeeded["subject"], executor_id.as_str());
        assert_eq!(succeeded["data"]["plan_id"], plan_id.as_str());
        assert!(events["cme.executor.started"]["time"].as_str() <= succeeded["time"].as_str());
        assert_eq!(events["cme.engine.halted"]["data"]["reason"], "game day over");

        // The CLI shows the same state.
        let cli = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
            .args(["webhooks"])
            .env("CME_URL", &engine.url)
            .env_remove("CME_TOKEN")
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&cli.stdout);
        assert!(
            cli.status.success() && shown.contains("ops") && shown.contains("DELIVERED"),
            "{shown}{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        assert!(!shown.contains(SECRET) && !shown.contains("T0KEN"));
        assert!(engine.stop().success());
    }
}

/// Runs the README's Python signature check (python3) on a request.
fn readme_verifier_accepts(signature: &str, body: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let script = format!(
        "{}\nimport sys\nprint(verify(sys.argv[1].encode(), sys.argv[2], open(sys.argv[3], 'rb').read()))\n",
        readme_block("python", "def verify")
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(SECRET)
        .arg(signature)
        .arg(dir.path().join("body"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim() == "True"
}

#[tokio::test]
async fn the_readmes_webhook_configuration_starts_an_engine_that_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = readme_block("toml", "[[webhooks]]");
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options {
            config: Some(config),
            env: vec![("CME_WEBHOOK_SECRET".into(), "from-the-env".into())],
            ..Options::default()
        },
    );
    let listed = engine.client().get("/api/1/webhooks/").await;
    let names: Vec<&str> =
        listed.body["_embedded"]["webhooks"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["chatops", "audit-sink"]);
    assert!(!listed.body.to_string().contains("from-the-env"));
}

#[test]
fn a_webhook_for_an_unknown_event_stops_the_start_naming_it() {
    let stderr = refused_start("[[webhooks]]\nurl = \"http://127.0.0.1:9/\"\nevents = [\"executor.exploded\"]\n");
    assert!(stderr.contains("executor.exploded") && stderr.contains("executor.failed"), "{stderr}");
}
