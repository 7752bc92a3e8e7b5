//! The OpenAPI document, checked by a real tool: schemathesis (PyPI) drives the running
//! binary from it (examples, coverage, fuzzing and stateful sequences through the
//! document's links) and checks every answer against it.

use crate::support::*;

/// The schemathesis CLI: `CME_TEST_SCHEMATHESIS`, or the CI venv's.
fn schemathesis() -> Option<std::path::PathBuf> {
    let venv =
        std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache/cme-venv/bin/schemathesis"));
    let candidates: Vec<std::path::PathBuf> =
        std::env::var_os("CME_TEST_SCHEMATHESIS").map(std::path::PathBuf::from).into_iter().chain(venv).collect();
    tool(&candidates, "pip install schemathesis, see .ci/run")
}

#[tokio::test]
async fn the_document_describes_every_route_and_is_served_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), "admin:admin-secret".into())], ..Options::default() },
    );
    let document = engine.client().get("/api/1/openapi.json").await;
    assert_eq!(document.status, 200);
    assert_eq!(document.body["openapi"], "3.1.0");
    let paths = document.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/1/plans/", "post"),
        ("/api/1/executors/{id}", "put"),
        ("/api/1/plugins/{id}/grant", "put"),
        ("/api/1/webhooks/", "get"),
        ("/api/1/calendars/", "post"),
        ("/metrics", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    // What the document says is what the router does: an undocumented method is 405.
    let api = engine.client().with_token("admin-secret");
    assert_eq!(api.raw(reqwest::Method::PATCH, "/api/1/plans/", None, None).await.status, 405);
    assert!(paths["/api/1/plans/"].get("patch").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_allow() {
    let Some(schemathesis) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), "admin:admin-secret".into())], ..Options::default() },
    );
    let output = std::process::Command::new(schemathesis)
        .arg("run")
        .arg(format!("{}/api/1/openapi.json", engine.url))
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
        .args(["--header", "Authorization: Bearer admin-secret"])
        .args(["--max-examples", "40", "--seed", "20261202", "--no-color"])
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis failed:\n{stdout}\n{}\nengine log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        engine.stderr()
    );
    assert!(stdout.contains("passed") && !stdout.contains(" failed"), "{stdout}");
}
