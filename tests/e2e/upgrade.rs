//! Databases written by the binary from before the migrations were split into one file
//! each (fixtures/upgrade/, made by its make.sh with commit 8f759ef's `cme`) open under
//! today's binary: every applied migration is still known by its recorded name, in the
//! same order, and what they hold reads back (credential, plans, blackout, inventory,
//! the halt).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures/upgrade")
}

/// The migrations the fixtures record, in order: names an upgrade must keep.
const RECORDED: [&str; 17] = [
    "m0001_initial",
    "m0002_credentials",
    "m0003_plugins",
    "m0004_executor_dry_run",
    "m0005_credential_scopes",
    "m0006_plan_pause",
    "m0007_continuous_chaos",
    "m0008_webhooks",
    "m0009_steady_state",
    "m0010_stop_conditions",
    "m0011_budget_ledger",
    "m0012_work_counts",
    "m0013_plugin_signer",
    "m0014_inventories_and_undos",
    "m0015_locked_work_counts",
    "m0016_admit_work",
    "m0017_blackout_order",
];

/// The migrations added since the fixtures were made, applied after the recorded ones.
const ADDED: [&str; 4] =
    ["m0018_blackout_description", "m0019_calendar_feeds", "m0020_experiments", "m0021_horizon_order"];

/// What a database made or upgraded today records.
fn today() -> Vec<&'static str> {
    RECORDED.iter().chain(ADDED.iter()).copied().collect()
}

/// The migration names a database records, in the order they were applied.
fn applied(backend: Backend, database_url: &str) -> Vec<String> {
    let query = "select version from seaql_migrations order by applied_at, version";
    let output = match backend {
        Backend::Sqlite => {
            let file = database_url.trim_start_matches("sqlite://").split('?').next().unwrap();
            Command::new("sqlite3").args([file, query]).output().expect("sqlite3 runs")
        }
        Backend::Postgres => {
            Command::new("psql").args([database_url, "-qAt", "-c", query]).output().expect("psql runs")
        }
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
}

/// The fixture for `backend`, loaded as a database in `dir` (with its credential key).
fn old_database(backend: Backend, dir: &Path) -> String {
    // The fixtures' key file is named so that .gitignore (which keeps engines' cme.key out)
    // lets it in; the engine reads cme.key from its directory.
    // A checkout makes it 0644; the engine refuses a key file others may read.
    std::fs::copy(fixtures().join("credential.key"), dir.join("cme.key")).unwrap();
    std::fs::set_permissions(dir.join("cme.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    match backend {
        Backend::Sqlite => {
            std::fs::copy(fixtures().join("before.sqlite"), dir.join("cme.db")).unwrap();
            format!("sqlite://{}?mode=rwc", dir.join("cme.db").display())
        }
        Backend::Postgres => {
            let url = fresh_database(backend, dir);
            let load = Command::new("psql")
                .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", "-f"])
                .arg(fixtures().join("before.postgres.sql"))
                .output()
                .expect("psql runs");
            assert!(load.status.success(), "loading the dump: {}", String::from_utf8_lossy(&load.stderr));
            url
        }
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.get(key)
        .or_else(|| list["_embedded"].get(key))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{key} in {list}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_written_before_the_migration_split_open_with_all_they_hold() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = old_database(backend, dir.path());
        assert_eq!(applied(backend, &database_url), RECORDED, "{backend:?}: the fixture records every migration");
        let engine = Engine::start(
            dir.path(),
            backend,
            Options { database_url: Some(database_url.clone()), ..Options::default() },
        );
        let api = engine.client();

        let mut plans = names(&api.get("/api/1/plans/").await.body, "plans");
        plans.sort();
        assert_eq!(plans, ["fixture plan", "fixture recurring"], "{backend:?}");
        let halt = api.get("/api/1/halt").await.body;
        assert_eq!(
            (halt["halted"].as_bool(), halt["reason"].as_str()),
            (Some(true), Some("fixture halt")),
            "{backend:?}: {halt}"
        );
        assert_eq!(names(&api.get("/api/1/blackouts/").await.body, "blackouts"), ["fixture freeze"], "{backend:?}");
        let credentials = api.get("/api/1/credentials/").await.body;
        assert_eq!(names(&credentials, "credentials"), ["chaos-key"], "{backend:?}");
        let inventory = api.get("/api/1/inventories/fixture-web").await;
        assert_eq!(inventory.status, 200, "{backend:?}: {:?}", inventory.body);
        assert_eq!(inventory.body["hosts"][0]["name"], "web-1", "{backend:?}: {:?}", inventory.body);
        // Every status: the recurring plan's first firing (made when the fixture was) has
        // passed by now, and is missed (the engine was down) or cancelled (it is halted).
        let executors = api.get("/api/1/executors/?executed=all").await.body;
        let executors =
            executors.get("executors").or_else(|| executors["_embedded"].get("executors")).and_then(Value::as_array);
        assert!(executors.is_some_and(|e| e.len() >= 2), "{backend:?}: {executors:?}");

        // Nothing was applied again (only the newer migrations, after the recorded ones),
        // and a database made today records the same names.
        assert_eq!(applied(backend, &database_url), today(), "{backend:?}");
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Engine::start(fresh_dir.path(), backend, Options::default());
        assert_eq!(applied(backend, &fresh.database_url), today(), "{backend:?}: a new database");
    }
}
