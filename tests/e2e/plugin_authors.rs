//! A plugin author's path, as docs/writing-plugins.md walks it, outside this repository:
//! the SDK as published (`cargo package`), `cme plugins new`, `cargo test` against the
//! SDK's mock host, a component build, `cme plugins check` and `run` here, then push, grant
//! and a plan on a running engine, down to a succeeded executor.

use cme_model::Locked;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Builds are kept between runs under the test build's own target directory, so CI on the
/// same machine stays incremental; the projects themselves live in temporary directories.
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-authors")
}

fn run(command: &mut Command) -> String {
    let output =
        command.env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS").output().expect("the command starts");
    let (out, err) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "{command:?} failed:\n{out}\n{err}");
    out + &err
}

fn cargo(dir: &Path, args: &[&str]) -> String {
    run(Command::new(env!("CARGO")).args(args).current_dir(dir).env("CARGO_TARGET_DIR", build_dir().join("target")))
}

fn cme(args: &[&str]) -> (bool, String) {
    cme_at("http://127.0.0.1:9", args)
}

/// The CLI against the engine at `url`.
fn cme_at(url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(args)
        .env("CME_URL", url)
        .env_remove("CME_TOKEN")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

/// The SDK crate exactly as `cargo package` would publish it, unpacked outside the
/// repository: if it needed anything of the checkout (the WIT, the example), the projects
/// below would not build. Packaged once per test process.
fn published_sdk() -> PathBuf {
    static SDK: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut sdk = SDK.locked();
    if let Some(path) = sdk.as_ref() {
        return path.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let package_target = build_dir().join("package-target");
    run(Command::new(env!("CARGO"))
        .args(["package", "-p", "cme-plugin-sdk", "--allow-dirty", "--no-verify", "--quiet"])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &package_target));
    let version = env!("CARGO_PKG_VERSION");
    let unpacked = build_dir().join("sdk");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("xzf")
        .arg(package_target.join(format!("package/cme-plugin-sdk-{version}.crate")))
        .arg("-C")
        .arg(&unpacked));
    let path = unpacked.join(format!("cme-plugin-sdk-{version}"));
    assert!(path.join("wit/cme-plugin.wit").is_file(), "the published crate carries its contract");
    *sdk = Some(path.clone());
    path
}

/// `cme plugins new`, then the project's own tests and a component build; returns the component.
fn new_project(projects: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let dir = projects.join(name);
    let sdk = published_sdk();
    let (ok, out) = cme(&[
        "plugins",
        "new",
        name,
        "--kind",
        kind,
        "--dir",
        dir.to_str().unwrap(),
        "--sdk-path",
        sdk.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("cargo test"), "it says what to do next: {out}");
    for file in ["Cargo.toml", "rust-toolchain.toml", "src/lib.rs", "grant.json", "plan.json"] {
        assert!(dir.join(file).is_file(), "{file} is written");
    }
    let tests = cargo(&dir, &["test"]);
    assert!(tests.contains("test result: ok") && !tests.contains(" 0 passed"), "the template's tests ran: {tests}");
    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2", "--quiet"]);
    let wasm = build_dir().join("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    (dir, wasm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_author_goes_from_cme_plugins_new_to_a_succeeded_executor() {
    let projects = tempfile::tempdir().unwrap();
    let sink = Sink::start(Duration::ZERO).await;
    let (dir, wasm) = tokio::task::spawn_blocking({
        let projects = projects.path().to_path_buf();
        move || new_project(&projects, "guide-attack", "attack")
    })
    .await
    .unwrap();
    let wasm = wasm.to_str().unwrap().to_string();

    // Checked offline as an upload would be, then run here with the real http capability.
    let (ok, out) = cme(&["plugins", "check", &wasm]);
    assert!(ok && out.contains("ok: guide-attack@0.1.0 (attack), refs guide_attack:GuideAttack"), "{out}");
    // The author points the files at the real service, as the guide says.
    std::fs::write(dir.join("grant.json"), json!({"http": {"urls": [sink.url("/*")]}}).to_string()).unwrap();
    let grant = format!("@{}", dir.join("grant.json").display());
    let args = json!({"url": sink.url("/health")}).to_string();
    let (ok, out) =
        tokio::task::spawn_blocking(move || cme(&["plugins", "run", &wasm, "--args", &args, "--grant", &grant]))
            .await
            .unwrap();
    assert!(ok && out.contains(&format!("GET {} -> 200", sink.url("/health"))), "{out}");
    assert_eq!(sink.requests().len(), 1, "the local run's request was real");

    // Pushed, granted and planned on a running engine, with the project's own files.
    let engine_dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(engine_dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.as_str();
    let wasm = build_dir().join("target/wasm32-wasip2/release/guide_attack.wasm");
    let (ok, out) = cme_at(url, &["plugins", "push", wasm.to_str().unwrap()]);
    assert!(ok && out.contains("guide-attack@0.1.0"), "{out}");
    let (ok, out) =
        cme_at(url, &["plugins", "grant", "guide-attack@0.1.0", "-f", dir.join("grant.json").to_str().unwrap()]);
    assert!(ok, "{out}");
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    plan["attack"]["args"]["url"] = json!(sink.url("/from-the-engine"));
    plan["planner"]["args"]["date"] = json!(in_seconds(2));
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    let (ok, out) = cme_at(url, &["plans", "create", "-f", dir.join("plan.json").to_str().unwrap()]);
    assert!(ok, "{out}");
    let plan_id = out.split_whitespace().nth(2).unwrap().to_string();

    let api = engine.client();
    let plan = api.get(&format!("/api/1/plans/{plan_id}")).await.body;
    let executor = plan["_embedded"]["executors"][0]["id"].as_str().expect("one executor").to_string();
    let done = api.wait_executor(&executor, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["summary"], format!("GET {} -> 200", sink.url("/from-the-engine")), "{done}");
    assert!(sink.requests().iter().any(|(method, path, _)| method == "GET" && path == "/from-the-engine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_planner_and_probe_projects_pass_their_tests_and_the_uploads_checks() {
    let projects = tempfile::tempdir().unwrap();
    for (name, kind) in [("guide-planner", "planner"), ("guide-probe", "probe")] {
        let root = projects.path().to_path_buf();
        let (_, wasm) = tokio::task::spawn_blocking(move || new_project(&root, name, kind)).await.unwrap();
        let (ok, out) = cme(&["plugins", "check", wasm.to_str().unwrap()]);
        assert!(ok && out.contains(&format!("({kind})")), "{out}");
    }
    // An existing project is never overwritten, and a name that is not kebab-case is refused.
    let existing = projects.path().join("guide-probe");
    let (ok, out) = cme(&["plugins", "new", "guide-probe", "--kind", "probe", "--dir", existing.to_str().unwrap()]);
    assert!(!ok && out.contains("is not empty"), "{out}");
    let (ok, out) = cme(&[
        "plugins",
        "new",
        "Guide_Probe",
        "--kind",
        "probe",
        "--dir",
        projects.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("kebab-case"), "{out}");
}
