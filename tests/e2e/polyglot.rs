//! Plugins in other languages, built from source here and run by the engine as any
//! other: `plugins/polyglot/python` (componentize-py, PyPI) and
//! `plugins/polyglot/javascript` (componentize-js, npm; built against the frozen
//! `cme:plugin@0.2.0`, so it also shows that older components keep running). Each is uploaded, granted,
//! planned, and its executor's result checked; a failing answer fails the executor with
//! the plugin's own message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Where built components go (kept between runs, beside the test build).
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("polyglot");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn home_tool(env: &str, under_home: &str, install: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(under_home));
    let candidates: Vec<PathBuf> = std::env::var_os(env).map(PathBuf::from).into_iter().chain(home).collect();
    tool(&candidates, install)
}

fn build(command: &mut Command) {
    let output = command.current_dir(repo()).output().expect("the build tool starts");
    assert!(
        output.status.success(),
        "{command:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Python attack, from `app.py` and the SDK's WIT.
fn python_attack() -> Option<Vec<u8>> {
    let componentize = home_tool(
        "CME_TEST_COMPONENTIZE_PY",
        ".cache/cme-venv/bin/componentize-py",
        "pip install componentize-py, see .ci/run",
    )?;
    let out = out_dir().join("py_http_check.wasm");
    build(
        Command::new(componentize)
            .args(["-d", "wit", "-w", "attack", "componentize", "app", "-p", "plugins/polyglot/python", "-o"])
            .arg(&out),
    );
    Some(std::fs::read(out).unwrap())
}

/// The JavaScript attack, from `attack.js` and the SDK's WIT. No WASI HTTP: the plugin
/// reaches the network only through the engine's `http` capability.
fn javascript_attack() -> Option<Vec<u8>> {
    let componentize = home_tool(
        "CME_TEST_COMPONENTIZE_JS",
        ".cache/cme-node/node_modules/.bin/componentize-js",
        "npm install @bytecodealliance/componentize-js, see .ci/run",
    )?;
    let out = out_dir().join("js_http_check.wasm");
    build(
        Command::new(componentize)
            .args([
                "plugins/polyglot/javascript/attack.js",
                // Built against the frozen 0.2.0 contract: what an older component looks
                // like to this engine (it must keep loading and running).
                "--wit",
                "wit/legacy/v0.2.0",
                "--world-name",
                "attack",
                "-d",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(&out),
    );
    Some(std::fs::read(out).unwrap())
}

async fn uploaded_granted_and_run(wasm: &[u8], id: &str, reference: &str, language: &str) {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();

    let uploaded =
        api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(wasm.to_vec()), Some("application/wasm")).await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);
    assert_eq!(uploaded.body["id"], id);
    assert_eq!(uploaded.body["kind"], "attack");
    assert_eq!(uploaded.body["capabilities"], json!([{"kind": "http", "urls": ["*"]}]));
    let granted = api.put(&format!("/api/1/plugins/{id}/grant"), &json!({"http": {"urls": [sink.url("/*")]}})).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);

    let done = api
        .run_once(json!({"ref": reference, "args": {"url": sink.url("/chaos"), "method": "POST", "body": "go"}}), false)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["summary"], format!("POST {} -> 200", sink.url("/chaos")));
    assert_eq!(done["result"]["details"]["language"], language, "{done}");
    let requests = sink.requests();
    assert!(
        requests.iter().any(|(method, path, body)| method == "POST" && path == "/chaos" && body == b"go"),
        "{requests:?}"
    );

    // The plugin's own failure, with its message.
    let failed =
        api.run_once(json!({"ref": reference, "args": {"url": sink.url("/chaos"), "expect_status": 204}}), false).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error"].to_string().contains("expected 204"), "{failed}");

    // Outside the grant: the capability refuses and the refusal reaches the executor.
    let denied = api.run_once(json!({"ref": reference, "args": {"url": "http://127.0.0.1:9/elsewhere"}}), false).await;
    assert_eq!(denied["status"], "failed", "{denied}");
    assert!(denied["error"].to_string().contains("denied"), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_attack_built_from_source_runs_in_a_plan() {
    let Some(wasm) = tokio::task::spawn_blocking(python_attack).await.unwrap() else { return };
    uploaded_granted_and_run(&wasm, "py-http-check@0.1.0", "py_http_check:PyHttpCheck", "python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_attack_built_from_source_runs_in_a_plan() {
    let Some(wasm) = tokio::task::spawn_blocking(javascript_attack).await.unwrap() else { return };
    uploaded_granted_and_run(&wasm, "js-http-check@0.1.0", "js_http_check:JsHttpCheck", "javascript").await;
}
