//! The engine's own disk fails under it: SQLite on a small tmpfs, mounted in a mount
//! namespace of the engine's own (`unshare --mount`; never the machine's disk), filled up
//! through `/proc/PID/root`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::*;

/// The engine, with its database on a tmpfs of `megabytes` mounted at `disk` in its own
/// mount namespace; None where this machine cannot (not root, no `unshare`).
fn engine_on_small_disk(dir: &std::path::Path, disk: &std::path::Path, megabytes: u32) -> Option<Engine> {
    let unshare = system_tool(&["/usr/bin/unshare"], "apt-get install util-linux")?;
    std::fs::create_dir_all(disk).unwrap();
    let script = format!("mount -t tmpfs -o size={megabytes}m cme-disk \"$0\" && exec \"$@\"");
    let under = [unshare.to_str().unwrap(), "--mount", "--propagation", "private", "--", "sh", "-c", &script];
    let options = Options {
        under: under.iter().map(|s| s.to_string()).chain([disk.display().to_string()]).collect(),
        database_url: Some(format!("sqlite://{}/cme.db?mode=rwc", disk.display())),
        ..Options::default()
    };
    Some(Engine::start(dir, Backend::Sqlite, options))
}

/// Fills the engine's disk (as its namespace sees it) until the kernel says it is full.
fn fill(engine: &Engine, disk: &std::path::Path) -> std::path::PathBuf {
    let filler = std::path::PathBuf::from(format!("/proc/{}/root{}/filler", engine.pid(), disk.display()));
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the engine's disk: {e}"),
        }
    }
    filler
}

async fn until_ready(api: &Api, ready: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = api.get("/readyz").await.status;
        if (status == 200) == ready {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_disk_full_keeps_what_was_stored_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let Some(engine) = engine_on_small_disk(dir.path(), &disk, 16) else { return };
    let api = engine.client();
    let kept = api.post("/api/1/plans/", &api_plan("kept", "http://127.0.0.1:9/", &in_seconds(3600))).await;
    assert_eq!(kept.status, 201, "{:?}", kept.body);
    until_ready(&api, true).await;

    let filler = fill(&engine, &disk);
    // Nothing else writes meanwhile: the probe sees it.
    until_ready(&api, false).await;
    let refused = reqwest::Client::new()
        .post(format!("{}/api/1/plans/", engine.url))
        .json(&api_plan("refused", "http://127.0.0.1:9/", &in_seconds(3600)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:cme:problem:storage-disk-full", "{problem}");
    assert_eq!(api.get("/livez").await.status, 200, "the engine keeps serving");

    std::fs::remove_file(&filler).unwrap();
    until_ready(&api, true).await;
    let after = api.post("/api/1/plans/", &api_plan("after", "http://127.0.0.1:9/", &in_seconds(3600))).await;
    assert_eq!(after.status, 201, "recovered by itself: {:?}", after.body);
    let plans = api.get("/api/1/plans/").await.body;
    let names: Vec<&str> = plans["plans"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"kept") && names.contains(&"after"), "{names:?}");
    assert!(!names.contains(&"refused"), "a refused write left nothing: {names:?}");
}

#[tokio::test]
async fn a_second_engine_on_a_live_sqlite_file_is_refused_and_the_first_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &first.database_url])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "a second engine started on the same SQLite file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another engine is serving the SQLite database"), "{stderr}");
    assert_eq!(first.client().get("/readyz").await.status, 200, "the first engine serves on");
}
