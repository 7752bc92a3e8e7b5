//! Inventories and the SSH fault attacks through the real `cme` binary, against a real
//! OpenSSH sshd on 127.0.0.1: an inventory imported from Ansible YAML, run-script and
//! kill-process aimed at it, a process frozen (STOP) and continued by its undo when due,
//! when the engine is halted and when it restarts after kill -9, and network-fault's
//! refusal on this kernel (no netem) with its undo still run. stop-service is checked for
//! its refusal only: this machine runs no systemd.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cme_test_peers::sshd::{self, Sshd, current_user, ed25519 as keygen, free_port};

use crate::support::*;

pub(crate) struct Rig {
    pub(crate) dir: tempfile::TempDir,
    client_key: PathBuf,
    port: u16,
    _sshd: Sshd,
}

impl Rig {
    pub(crate) fn start() -> Option<Rig> {
        if !sshd::available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_key");
        let client_key = keygen(dir.path(), "client_key");
        let port = free_port();
        let sshd = Sshd::start(dir.path(), &["127.0.0.1"], port, &host_key, &[&client_key]);
        Some(Rig { dir, client_key, port, _sshd: sshd })
    }

    /// The sshd's port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn engine(&self, database_url: Option<String>) -> Engine {
        self.engine_with("", Vec::new(), database_url)
    }

    /// An engine with `extra` configuration and environment.
    pub(crate) fn engine_with(&self, extra: &str, env: Vec<(String, String)>, database_url: Option<String>) -> Engine {
        self.engine_on(Backend::Sqlite, "engine", extra, env, database_url)
    }

    /// An engine on `backend` whose files live in `home` (a directory of the rig's).
    pub(crate) fn engine_on(
        &self,
        backend: Backend,
        home: &str,
        extra: &str,
        env: Vec<(String, String)>,
        database_url: Option<String>,
    ) -> Engine {
        let home = self.dir.path().join(home);
        std::fs::create_dir_all(&home).unwrap();
        let config = format!(
            "{extra}\n[ssh]\nknown_hosts = \"{}\"\nhost_key_policy = \"accept-new\"\n",
            self.dir.path().join("known_hosts").display()
        );
        Engine::start(&home, backend, Options { config: Some(config), env, database_url, ..Options::default() })
    }

    /// Stores the credential and imports the inventory: group `web` (zone a) and `db`.
    pub(crate) async fn prepare(&self, api: &Api) {
        let key = std::fs::read_to_string(&self.client_key).unwrap();
        let created = api
            .post("/api/1/credentials/", &json!({"name": "fleet", "user": current_user(), "private_key": key}))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let yaml = format!(
            "all:\n  vars:\n    cme_credential: fleet\n    ansible_port: {port}\n  children:\n    web:\n      vars:\n        zone: a\n      hosts:\n        web-1:\n          ansible_host: 127.0.0.1\n    db:\n      hosts:\n        db-1:\n          ansible_host: 127.0.0.1\n          zone: b\n",
            port = self.port
        );
        let imported = api
            .raw(reqwest::Method::POST, "/api/1/inventories/", Some(yaml.into_bytes()), Some("application/yaml"))
            .await;
        assert_eq!(imported.status, 201, "{:?}", imported.body);
    }
}

/// A process called `name` (a copy of sleep), sleeping for ten minutes.
pub(crate) fn victim(dir: &std::path::Path, name: &str) -> Child {
    let path = dir.join(name);
    std::fs::copy("/bin/sleep", &path).unwrap();
    Command::new(&path).arg("600").spawn().unwrap()
}

/// The process's state letter (`S` sleeping, `T` stopped), or None once it is gone.
pub(crate) fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

pub(crate) async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn stop_attack(process: &str, seconds: u32) -> Value {
    json!({"ref": "kill_process:KillProcess", "args": {"target": {"inventory": "web", "tags": {"zone": "a"}}, "process": process, "signal": "STOP", "duration_seconds": seconds}})
}

pub(crate) async fn undo_of(api: &Api, executor_id: &str) -> Value {
    let undos = api.get("/api/1/undos/").await;
    assert_eq!(undos.status, 200, "{:?}", undos.body);
    undos.body["undos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["executor_id"] == executor_id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_inventory_imported_from_yaml_aims_run_script_and_kill_process_at_its_hosts() {
    let Some(rig) = Rig::start() else { return };
    let engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;

    // Every group with hosts became an inventory; group vars reached the hosts.
    let list = api.get("/api/1/inventories/").await;
    let names: Vec<&str> =
        list.body["inventories"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["all", "db", "web"]);
    let web = api.get("/api/1/inventories/web").await.body;
    assert_eq!(
        web["hosts"][0],
        json!({"name": "web-1", "address": "127.0.0.1", "port": rig.port, "user": "", "credential": "fleet", "tags": {"zone": "a"}})
    );
    let audit = api.get("/api/1/audit/").await.body.to_string();
    assert!(audit.contains("inventory.import"), "{audit}");

    // Bad inventories change nothing and say what is wrong.
    let unknown = api
        .put(
            "/api/1/inventories/web",
            &json!({"hosts": [{"name": "x", "address": "10.0.0.1", "credential": "nobody"}]}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body["detail"].as_str().unwrap().contains("no credential named \"nobody\""), "{:?}", unknown.body);
    let broken = api
        .raw(reqwest::Method::POST, "/api/1/inventories/", Some(b"all: [unclosed".to_vec()), Some("application/yaml"))
        .await;
    assert_eq!(broken.status, 400, "{:?}", broken.body);
    assert_eq!(api.get("/api/1/inventories/web").await.body["hosts"], web["hosts"]);

    // run-script by inventory and tags.
    let marker = rig.dir.path().join("marker");
    let script = json!({"ref": "run_script:RunScript", "args": {
        "target": {"inventory": "web", "tags": {"zone": "a"}},
        "local_script": "script_attacks/s_empty.sh",
        "remote_script": rig.dir.path().join("uploaded.sh").display().to_string(),
        "args": [marker.to_str().unwrap()],
    }});
    let done = api.run_once(script.clone(), false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert!(marker.exists(), "the script ran on the inventory's host");
    assert_eq!(done["result"]["details"]["hosts"][0]["name"], "web-1");
    // count and percent pick that many of the matching hosts (both groups' hosts share one
    // sshd, so the [ssh] fence's one session per run covers them).
    let mut two = script.clone();
    two["args"]["target"] = json!({"inventory": "all"});
    two["args"]["count"] = json!(2);
    let done = api.run_once(two.clone(), false).await;
    let mut ran: Vec<&str> =
        done["result"]["details"]["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    ran.sort();
    assert_eq!(ran, ["db-1", "web-1"], "{done}");
    two["args"].as_object_mut().unwrap().remove("count");
    two["args"]["percent"] = json!(50);
    let done = api.run_once(two, false).await;
    assert_eq!(done["result"]["details"]["hosts"].as_array().unwrap().len(), 1, "{done}");
    let mut nothing = script.clone();
    nothing["args"]["target"]["tags"]["zone"] = json!("z");
    let done = api.run_once(nothing, false).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().contains("no host matched: inventory web with tags zone=z"), "{done}");
    // Both forms at once are refused when the plan is made.
    let mut both = script.clone();
    both["args"]["region"] = json!("eu-west-1");
    let refused = api.post("/api/1/plans/", &json!({"name": "both", "attack": both, "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(60)}}})).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);

    // kill-process: STOP freezes the process; its undo (CONT) runs when due.
    let mut frozen = victim(rig.dir.path(), "cmevictim1");
    let done = api.run_once(stop_attack("cmevictim1", 2), false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert_eq!(done["result"]["details"]["hosts"][0]["output"], frozen.id().to_string());
    assert_eq!(state(frozen.id()), Some('T'), "the process is stopped");
    let executor = done["id"].as_str().unwrap().to_string();
    let undo = undo_of(&api, &executor).await;
    assert_eq!(undo["command"], format!("kill -CONT {} 2>/dev/null; true", frozen.id()));
    wait_for("the undo to run when due", async || undo_of(&api, &executor).await["state"] == "done").await;
    assert_eq!(state(frozen.id()), Some('S'), "the undo continued it");
    let undo = undo_of(&api, &executor).await;
    assert!(
        !std::path::Path::new(&format!("/tmp/cme-undo-{}.pid", undo["id"].as_str().unwrap())).exists(),
        "the target's timer was stopped"
    );
    let audit = api.get("/api/1/audit/").await.body.to_string();
    assert!(audit.contains("undo.arm") && audit.contains("undo.run"), "{audit}");

    // A dry run freezes nothing and arms nothing.
    let done = api.run_once(stop_attack("cmevictim1", 2), true).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["result"]["summary"].as_str().unwrap().starts_with("dry run: would send STOP"), "{done}");
    assert_eq!(state(frozen.id()), Some('S'));
    assert!(undo_of(&api, done["id"].as_str().unwrap()).await.is_null());

    // KILL ends it; a name nothing has fails the run.
    let kill =
        json!({"ref": "kill_process:KillProcess", "args": {"target": {"inventory": "web"}, "process": "cmevictim1"}});
    let done = api.run_once(kill.clone(), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let status = frozen.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    let done = api.run_once(kill, false).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().contains("no processes named cmevictim1"), "{done}");

    // By a pattern over whole command lines (the shell running pgrep does not match itself).
    let mut patterned = victim(rig.dir.path(), "cmevictim4");
    let by_pattern = json!({"ref": "kill_process:KillProcess", "args": {"target": {"inventory": "web"}, "pattern": "cmevictim4 6[0-9]+$", "signal": "TERM"}});
    let done = api.run_once(by_pattern, false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["result"]["details"]["hosts"][0]["output"],
        patterned.id().to_string(),
        "only the victim was signalled"
    );
    let status = patterned.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15));
}

#[tokio::test]
async fn a_fault_is_undone_when_the_engine_halts_and_when_it_restarts() {
    let Some(rig) = Rig::start() else { return };
    let mut engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;

    // Halted: the pending undo runs at once, long before it is due.
    let first = victim(rig.dir.path(), "cmevictim2");
    let done = api.run_once(stop_attack("cmevictim2", 600), false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert_eq!(state(first.id()), Some('T'));
    let executor = done["id"].as_str().unwrap().to_string();
    assert_eq!(undo_of(&api, &executor).await["state"], "pending");
    assert_eq!(api.post("/api/1/halt", &json!({"reason": "game day over"})).await.status, 200);
    wait_for("the undo to run on halt", async || undo_of(&api, &executor).await["state"] == "done").await;
    assert_eq!(state(first.id()), Some('S'));
    assert_eq!(api.post("/api/1/resume", &json!({})).await.status, 200);

    // Killed with the fault on: the restarted engine undoes it as it starts.
    let second = victim(rig.dir.path(), "cmevictim3");
    let done = api.run_once(stop_attack("cmevictim3", 600), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(state(second.id()), Some('T'));
    let executor = done["id"].as_str().unwrap().to_string();
    let database_url = engine.database_url.clone();
    engine.kill9();
    let engine = rig.engine(Some(database_url));
    let api = engine.client();
    wait_for("the undo to run at start", async || undo_of(&api, &executor).await["state"] == "done").await;
    assert_eq!(state(second.id()), Some('S'), "{}", engine.stderr());
    for mut child in [first, second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test]
async fn network_fault_refuses_a_kernel_without_netem_and_its_undo_still_runs() {
    let Some(rig) = Rig::start() else { return };
    let engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;
    let qdisc =
        || String::from_utf8(Command::new("tc").args(["qdisc", "show", "dev", "lo"]).output().unwrap().stdout).unwrap();
    let before = qdisc();

    let latency = json!({"ref": "network_fault:NetworkFault", "args": {"target": {"inventory": "db"}, "fault": "latency", "interface": "lo", "latency_ms": 100, "duration_seconds": 600}});
    let done = api.run_once(latency.clone(), false).await;
    let executor = done["id"].as_str().unwrap().to_string();
    if before.contains("netem") || done["status"] == "succeeded" {
        // A kernel with netem: the fault is on, and the halt below takes it off.
        assert_eq!(done["status"], "succeeded", "{done}");
    } else {
        assert_eq!(done["status"], "failed", "{done}");
        let error = done["error"].as_str().unwrap();
        assert!(error.contains("the kernel lacks netem") && error.contains("db-1"), "{error}");
    }
    // The undo was armed before the fault was tried; halting runs it (and it succeeds
    // whether or not a qdisc is there to remove).
    let undo = undo_of(&api, &executor).await;
    assert_eq!(undo["state"], "pending", "{undo}");
    assert!(undo["command"].as_str().unwrap().contains("tc qdisc del dev lo root"), "{undo}");
    assert_eq!(api.post("/api/1/halt", &json!({})).await.status, 200);
    wait_for("the undo to run on halt", async || undo_of(&api, &executor).await["state"] == "done").await;
    assert_eq!(undo_of(&api, &executor).await["outcome"], "exit 0");
    assert_eq!(qdisc(), before, "the interface is as it was");
    assert_eq!(api.post("/api/1/resume", &json!({})).await.status, 200);

    // An interface that does not exist is refused before anything is armed.
    let mut missing = latency.clone();
    missing["args"]["interface"] = json!("nosuch0");
    let done = api.run_once(missing, false).await;
    assert!(done["error"].as_str().unwrap().contains("there is no interface nosuch0"), "{done}");
    assert!(undo_of(&api, done["id"].as_str().unwrap()).await.is_null());
    // A blackhole of the SSH port itself could not be undone: refused.
    let ssh_port = json!({"ref": "network_fault:NetworkFault", "args": {"target": {"inventory": "db"}, "fault": "blackhole", "ports": [rig.port], "duration_seconds": 60}});
    let done = api.run_once(ssh_port, false).await;
    assert!(done["error"].as_str().unwrap().contains("is the SSH port"), "{done}");

    // stop-service: this machine runs no systemd, which is said before anything changes.
    let stop = json!({"ref": "stop_service:StopService", "args": {"target": {"inventory": "db"}, "service": "cron", "duration_seconds": 60}});
    let done = api.run_once(stop, false).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("cron is not active here")
            || done["error"].as_str().unwrap().contains("does not run systemd"),
        "{done}"
    );
    assert!(undo_of(&api, done["id"].as_str().unwrap()).await.is_null());
}

/// The canary test's SSH half: a secret the engine knows (here a host-held credential's)
/// planted in script args, a process pattern (the target of a fault and its undo) and an
/// inventory's variables shows in no answer, undo listing or log line at trace level.
#[tokio::test]
async fn a_known_secret_in_script_args_fault_targets_and_undos_shows_nowhere() {
    const CANARY: &str = "c4n4ryssh7q";
    let Some(rig) = Rig::start() else { return };
    let extra = format!(
        "[[http.credentials]]\nname = \"vault\"\nurls = [\"http://127.0.0.1:9/*\"]\nkind = \"bearer\"\nsecret = \"{CANARY}\"\n"
    );
    let engine = rig.engine_with(&extra, vec![("RUST_LOG".into(), "trace".into())], None);
    let api = engine.client();
    rig.prepare(&api).await;
    let marker = rig.dir.path().join("marker");
    let script = json!({"ref": "run_script:RunScript", "args": {
        "target": {"inventory": "web"},
        "local_script": "script_attacks/s_empty.sh",
        "remote_script": rig.dir.path().join("uploaded.sh").display().to_string(),
        "args": [marker.to_str().unwrap(), format!("--token={CANARY}")],
    }});
    let ran = api.run_once(script, false).await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    let name = format!("v{CANARY}");
    let mut frozen = victim(rig.dir.path(), &name);
    let stopped = api.run_once(stop_attack(&name, 1), false).await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}\n{}", engine.stderr());
    let executor = stopped["id"].as_str().unwrap().to_string();
    wait_for("the undo to run", async || undo_of(&api, &executor).await["state"] == "done").await;
    let _ = frozen.kill();
    let _ = frozen.wait();
    let shown = [
        (
            "the script's executor",
            api.get(&format!("/api/1/executors/{}", ran["id"].as_str().unwrap())).await.body.to_string(),
        ),
        ("the fault's executor", api.get(&format!("/api/1/executors/{executor}")).await.body.to_string()),
        ("the fault's journal", api.get(&format!("/api/1/executors/{executor}/journal")).await.body.to_string()),
        (
            "the fault's JUnit",
            api.get(&format!("/api/1/executors/{executor}/journal?format=junit")).await.body.to_string(),
        ),
        ("the plans", api.get("/api/1/plans/?all=true").await.body.to_string()),
        ("the undos", api.get("/api/1/undos/").await.body.to_string()),
        ("the audit log", api.get("/api/1/audit/?size=1000").await.body.to_string()),
        ("the engine's log", engine.stderr()),
    ];
    for (what, text) in shown {
        assert!(
            !text.contains(CANARY),
            "{what} shows the canary: {}",
            text.lines().filter(|l| l.contains(CANARY)).take(2).collect::<Vec<_>>().join("\n")
        );
    }
}
