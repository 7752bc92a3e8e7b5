//! Experiments through the real binary: faults made over a real sshd (processes frozen
//! by kill-process, continued by their reverts), verified by http-probe against local
//! HTTP services, run with `cme experiments run --wait` (its exit codes), read back as a
//! journal in JSON and as JUnit XML parsed by junitparser, and reverted after `kill -9`.

use std::process::{Child, Command};

use serde_json::{Value, json};

use crate::inventories::{Rig, state, victim, wait_for};
use crate::support::*;

/// A step freezing the processes called `process` on the inventory's `web` hosts; the
/// plugin's own undo is due in `undo_seconds` (the step reverts it sooner).
fn freeze(name: &str, after: &[&str], process: &str, hold_seconds: Option<u64>) -> Value {
    let mut step = json!({
        "name": name,
        "after": after,
        "attack": {"ref": "kill_process:KillProcess", "args": {
            "target": {"inventory": "web"}, "process": process, "signal": "STOP", "duration_seconds": 600,
        }},
    });
    if let Some(seconds) = hold_seconds {
        step["duration_seconds"] = json!(seconds);
    }
    step
}

fn verify(name: &str, after: &[&str], url: &str) -> Value {
    json!({"name": name, "after": after, "verify": [{"ref": "http_probe:HttpProbe", "args": {"url": url, "expect_status": 200}}]})
}

/// `cme experiments run -f FILE --wait`: its exit code and output.
fn cme_experiment(url: &str, body: &Value) -> (Option<i32>, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body.to_string()).unwrap();
    crate::cli::cme_exit(url, &["experiments", "run", "-f", file.path().to_str().unwrap(), "--wait"])
}

/// The run id the CLI printed.
fn run_id(stdout: &str) -> String {
    let line = stdout.lines().find(|l| l.contains(": run ") && l.ends_with(" started")).expect(stdout);
    line.split(": run ").nth(1).unwrap().trim_end_matches(" started").to_string()
}

/// junitparser's reading of a JUnit document: per suite (tests, failures, errors,
/// skipped), and the names of the failed test cases.
fn junit_counts(xml: &str) -> Option<Value> {
    let python = std::env::var("CME_TEST_PYTHON").ok().map(std::path::PathBuf::from);
    let python = tool(&python.into_iter().collect::<Vec<_>>(), "pip install junitparser (set CME_TEST_PYTHON)")?;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    failed = [case.name for case in suite if any(isinstance(r, Failure) for r in case.result)]
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures, "errors": suite.errors, "skipped": suite.skipped, "failed": failed})
print(json.dumps(suites))
"#;
    let output = Command::new(python).args(["-c", script, file.path().to_str().unwrap()]).output().unwrap();
    assert!(output.status.success(), "junitparser: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// `step` to start after `before`.
fn flagged_after(step: &Value, before: &str) -> Value {
    let mut step = step.clone();
    step["after"] = json!([before]);
    step
}

fn end(children: Vec<Child>) {
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_experiment_of_three_lanes_holds_and_every_fault_is_reverted() {
    let Some(rig) = Rig::start() else { return };
    let engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;
    let service = Service::start(200).await;
    let victims = vec![
        victim(rig.dir.path(), "cmelanea"),
        victim(rig.dir.path(), "cmelaneb"),
        victim(rig.dir.path(), "cmelanec"),
    ];
    let experiment = json!({
        "name": "checkout survives three frozen workers",
        "deadline_seconds": 120,
        "steps": [
            freeze("freeze a", &[], "cmelanea", Some(3)),
            freeze("freeze b", &[], "cmelaneb", Some(3)),
            {"name": "settle", "wait_seconds": 1},
            verify("still serving", &["settle"], &service.url("/health")),
            freeze("freeze c", &["still serving"], "cmelanec", Some(1)),
            verify("recovered", &["freeze a", "freeze b", "freeze c"], &service.url("/health")),
        ],
    });
    let (code, stdout, stderr) = cme_experiment(&engine.url, &experiment);
    assert_eq!(code, Some(0), "held: exit 0\n{stdout}\n{stderr}\n{}", engine.stderr());
    for line in ["step freeze a started", "step still serving succeeded", "revert of freeze c on", "outcome held"] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
    for child in &victims {
        assert_eq!(state(child.id()), Some('S'), "every frozen worker was continued");
    }
    let id = run_id(&stdout);
    let journal = api.get(&format!("/api/1/executors/{id}/journal")).await;
    assert_eq!(journal.status, 200, "{:?}", journal.body);
    let journal = journal.body;
    assert_eq!(journal["outcome"], "held", "{journal}");
    assert_eq!(journal["live"], false);
    let steps = journal["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{journal}");
    let at = |name: &str, field: &str| {
        steps.iter().find(|s| s["name"] == name).unwrap()[field].as_str().unwrap().to_string()
    };
    assert!(at("still serving", "started") < at("freeze a", "ended"), "verified while a and b were frozen");
    assert!(
        at("recovered", "started") >= at("freeze a", "ended") && at("recovered", "started") >= at("freeze c", "ended")
    );
    let phases: Vec<&str> =
        journal["readings"].as_array().unwrap().iter().map(|r| r["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["during", "after"], "{journal}");
    let reverts = journal["reverts"].as_array().unwrap();
    assert_eq!(reverts.len(), 3, "{journal}");
    assert!(reverts.iter().all(|r| r["state"] == "done" && r["why"] == "step ended"), "{journal}");
    let executor = api.get(&format!("/api/1/executors/{id}")).await.body;
    assert_eq!(executor["outcome"], "held");
    assert_eq!(executor["status"], "succeeded");
    assert_eq!(executor["_links"]["journal"]["href"], format!("/api/1/executors/{id}/journal"));

    let junit = api.raw(reqwest::Method::GET, &format!("/api/1/executors/{id}/journal?format=junit"), None, None).await;
    assert_eq!(junit.status, 200);
    if let Some(suites) = junit_counts(junit.body.as_str().expect("XML text")) {
        assert_eq!(suites[0]["tests"], 6, "{suites}");
        assert_eq!(suites[0]["failures"], 0, "{suites}");
        assert_eq!(suites[1]["tests"], 3, "the reverts: {suites}");
        assert_eq!(suites[1]["failures"], 0, "{suites}");
    }
    end(victims);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refuted_verify_aborts_and_reverts_every_fault_in_reverse_order() {
    let Some(rig) = Rig::start() else { return };
    let engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;
    let service = Service::start(503).await;
    let victims = vec![victim(rig.dir.path(), "cmerefa"), victim(rig.dir.path(), "cmerefb")];
    let experiment = json!({
        "name": "checkout survives two frozen workers",
        "steps": [
            freeze("freeze a", &[], "cmerefa", None),
            freeze("freeze b", &["freeze a"], "cmerefb", None),
            verify("checkout up", &["freeze b"], &service.url("/checkout")),
            freeze("never", &["checkout up"], "cmerefa", Some(5)),
        ],
    });
    let (code, stdout, stderr) = cme_experiment(&engine.url, &experiment);
    assert_eq!(code, Some(1), "refuted: exit 1\n{stdout}\n{stderr}");
    assert!(stdout.contains("outcome refuted"), "{stdout}");
    for child in &victims {
        assert_eq!(state(child.id()), Some('S'), "reverted although the hypothesis failed");
    }
    let id = run_id(&stdout);
    let journal = api.get(&format!("/api/1/executors/{id}/journal")).await.body;
    assert_eq!(journal["outcome"], "refuted", "{journal}");
    assert!(journal["aborted"].as_str().unwrap().contains("503"), "{journal}");
    let reverted: Vec<&str> =
        journal["reverts"].as_array().unwrap().iter().map(|r| r["step"].as_str().unwrap()).collect();
    assert_eq!(reverted, ["freeze b", "freeze a"], "newest first: {journal}");
    let status =
        |name: &str| journal["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["status"].clone();
    assert_eq!(status("checkout up"), "failed");
    assert_eq!(status("never"), "not_run");
    assert_eq!(journal["readings"][0]["phase"], "during");

    let junit = api.raw(reqwest::Method::GET, &format!("/api/1/executors/{id}/journal?format=junit"), None, None).await;
    if let Some(suites) = junit_counts(junit.body.as_str().expect("XML text")) {
        assert_eq!(suites[0]["tests"], 4, "{suites}");
        assert_eq!(suites[0]["failures"], 1, "{suites}");
        assert_eq!(suites[0]["skipped"], 1, "{suites}");
        assert_eq!(suites[0]["failed"], json!(["checkout up"]), "{suites}");
        assert_eq!(suites[1]["tests"], 2, "{suites}");
    }
    end(victims);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_held_by_an_engine_killed_mid_step_is_reverted_by_the_next_engine() {
    let Some(rig) = Rig::start() else { return };
    // Short leases: the killed engine's run is known dead seconds after.
    let quick = "run_deadline_seconds = 4\nlease_margin_seconds = 1\nreaper_interval_seconds = 1\n";
    let mut engine = rig.engine_with(quick, Vec::new(), None);
    let api = engine.client();
    rig.prepare(&api).await;
    let frozen = victim(rig.dir.path(), "cmekilled");
    let plan = json!({
        "name": "held across a crash",
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "steps": [freeze("freeze", &[], "cmekilled", Some(600))],
    });
    let created = api.post("/api/1/plans/", &plan).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    wait_for("the fault", async || state(frozen.id()) == Some('T')).await;
    // The journal streams while the run is in flight here.
    let live = api.get(&format!("/api/1/executors/{id}/journal")).await.body;
    assert_eq!(live["live"], true, "{live}");
    assert_eq!(live["steps"][0]["status"], "running", "{live}");
    let database_url = engine.database_url.clone();
    engine.kill9();
    assert_eq!(state(frozen.id()), Some('T'), "still frozen: nothing reverted it yet");
    let engine = rig.engine_with(quick, Vec::new(), Some(database_url));
    let api = engine.client();
    wait_for("the revert after the crash", async || state(frozen.id()) == Some('S')).await;
    let executor = api.wait_executor(&id, is_terminal).await;
    assert_eq!(executor["status"], "failed", "reaped: {executor}");
    let undos = api.get("/api/1/undos/").await.body;
    let undo = undos["undos"].as_array().unwrap().iter().find(|u| u["executor_id"] == id.as_str()).unwrap().clone();
    assert_eq!(undo["state"], "done", "{undo}");
    assert_eq!(undo["step"], "freeze", "{undo}");
    end(vec![frozen]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_irreversible_step_is_refused_without_the_flag_and_a_halted_engine_exits_2() {
    let Some(rig) = Rig::start() else { return };
    let engine = rig.engine(None);
    let api = engine.client();
    rig.prepare(&api).await;
    let kill = json!({"name": "kill", "attack": {"ref": "kill_process:KillProcess", "args": {"target": {"inventory": "web"}, "process": "cmenothere"}}});
    let planner = json!({"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(3600)}});
    let refused = api.post("/api/1/plans/", &json!({"name": "kill", "planner": planner, "steps": [kill]})).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["pointer"], "/steps/0/irreversible", "{:?}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("kill-process@"), "{:?}", refused.body);
    let mut flagged = kill.clone();
    flagged["irreversible"] = json!(true);
    let created = api.post("/api/1/plans/", &json!({"name": "kill", "planner": planner, "steps": [flagged]})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["steps"][0]["irreversible"], true);
    assert_eq!(created.body["attack"]["ref"], "kill_process:KillProcess", "older clients see the first attack");
    for (body, pointer) in [
        (
            json!({"name": "x", "planner": planner, "steps": [{"name": "a", "wait_seconds": 1, "after": ["kill"]}, flagged_after(&flagged, "a")]}),
            "/steps/",
        ),
        (
            json!({"name": "x", "planner": planner, "steps": [flagged, {"name": "v", "after": ["nope"], "wait_seconds": 1}]}),
            "/steps/1/after/0",
        ),
        (json!({"name": "x", "planner": planner, "steps": [flagged, flagged]}), "/steps/1/name"),
        (
            json!({"name": "x", "planner": planner, "steps": [{"name": "s", "attack": {"ref": "kill_process:KillProcess", "args": {"target": {"inventory": "web"}, "process": "x", "signal": "NOPE"}}, "irreversible": true}]}),
            "/steps/0/attack/args/signal",
        ),
    ] {
        let refused = api.post("/api/1/plans/", &body).await;
        assert_eq!(refused.status, 400, "{body}: {:?}", refused.body);
        assert!(refused.body["pointer"].as_str().unwrap().starts_with(pointer), "{body}: {:?}", refused.body);
    }

    // The README's experiment is a body the engine takes.
    let mut readme: Value = serde_json::from_str(&readme_block("json", "checkout survives frozen workers")).unwrap();
    readme["planner"] = planner.clone();
    let created = api.post("/api/1/plans/", &readme).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["steps"].as_array().unwrap().len(), 6);
    // An experiment's forecast shows its firings as a one-attack plan's does.
    let forecast = api.post("/api/1/forecast", &readme).await;
    assert_eq!(forecast.status, 200, "{:?}", forecast.body);
    assert_eq!(forecast.body["count"], 1, "{:?}", forecast.body);

    assert_eq!(api.post("/api/1/halt", &json!({"reason": "freeze window"})).await.status, 200);
    let experiment = json!({"name": "while halted", "steps": [freeze("freeze", &[], "cmenothere", Some(1))]});
    let (code, stdout, stderr) = cme_experiment(&engine.url, &experiment);
    assert_eq!(code, Some(2), "refused: exit 2\n{stdout}\n{stderr}");
    assert!(stderr.contains("halted"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_halt_on_another_replica_aborts_the_experiment_and_reverts_its_faults() {
    let Some(rig) = Rig::start() else { return };
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let a = rig.engine_on(Backend::Postgres, "a", "", Vec::new(), None);
    let api_a = a.client();
    rig.prepare(&api_a).await;
    let frozen = victim(rig.dir.path(), "cmereplica");
    let plan = json!({
        "name": "held until a halt elsewhere",
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "steps": [freeze("freeze", &[], "cmereplica", Some(600))],
    });
    let created = api_a.post("/api/1/plans/", &plan).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    wait_for("the fault", async || state(frozen.id()) == Some('T')).await;

    // The journal streams from the replica running the run, until its end.
    let stream = reqwest::Client::new()
        .get(format!("{}/api/1/executors/{id}/journal", a.url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let events = tokio::spawn(async move { stream.text().await.unwrap() });

    // The second replica starts after the run began on the first: the halt crosses over.
    let b = rig.engine_on(Backend::Postgres, "b", "", Vec::new(), Some(a.database_url.clone()));
    let halted = b.client().post("/api/1/halt", &json!({"reason": "incident elsewhere"})).await;
    assert_eq!(halted.status, 200, "{:?}", halted.body);
    wait_for("the revert on the other replica", async || state(frozen.id()) == Some('S')).await;
    let executor = api_a.wait_executor(&id, is_terminal).await;
    assert_eq!(executor["status"], "cancelled", "{executor}");
    assert_eq!(executor["outcome"], "aborted", "{executor}");
    let journal = b.client().get(&format!("/api/1/executors/{id}/journal")).await.body;
    assert_eq!(journal["aborted"], "halted: incident elsewhere", "the halt's reason crosses replicas: {journal}");
    assert_eq!(journal["reverts"][0]["step"], "freeze", "{journal}");
    assert_eq!(journal["reverts"][0]["state"], "done", "{journal}");

    let events = tokio::time::timeout(std::time::Duration::from_secs(30), events).await.unwrap().unwrap();
    assert!(events.starts_with("event: journal\ndata: {"), "{events}");
    let last = events.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: end\ndata: "), "{events}");
    let last: Value = serde_json::from_str(last.trim_start_matches("event: end\ndata: ")).unwrap();
    assert_eq!(last["outcome"], "aborted", "{last}");
    end(vec![frozen]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_fault_is_compensated_by_the_host_when_the_run_is_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let sink = Sink::start(std::time::Duration::ZERO).await;
    let service = Service::start(500).await;
    let inject = json!({"ref": "api_request:ApiRequest", "args": {
        "endpoint": sink.url("/faults"), "method": "POST", "payload": {"latency_ms": 800},
        "revert": {"endpoint": sink.url("/faults/latency"), "method": "DELETE", "headers": {"X-Why": "revert"}},
    }});
    let plan = json!({
        "name": "latency injected through an API",
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "steps": [
            {"name": "inject latency", "attack": inject},
            {"name": "checkout up", "after": ["inject latency"], "verify": [{"ref": "http_probe:HttpProbe", "args": {"url": service.url("/checkout"), "expect_status": 200}}]},
        ],
    });
    let created = api.post("/api/1/plans/", &plan).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["outcome"], "refuted", "{done}");
    let requests: Vec<(String, String)> = sink.requests().into_iter().map(|(method, path, _)| (method, path)).collect();
    assert_eq!(
        requests,
        [("POST".to_string(), "/faults".to_string()), ("DELETE".to_string(), "/faults/latency".to_string())],
        "the fault, then its compensating call"
    );
    let journal = api.get(&format!("/api/1/executors/{id}/journal")).await.body;
    assert_eq!(journal["reverts"][0]["state"], "done", "{journal}");
    assert_eq!(journal["reverts"][0]["target"], format!("DELETE {}", sink.url("/faults/latency")), "{journal}");
    let undos = api.get("/api/1/undos/").await.body;
    assert_eq!(undos["undos"][0]["kind"], "http", "{undos}");
    // Without a revert, api_request cannot undo its call: a step must say so.
    let mut bare = plan.clone();
    bare["steps"][0]["attack"]["args"].as_object_mut().unwrap().remove("revert");
    let refused = api.post("/api/1/plans/", &bare).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["pointer"], "/steps/0/irreversible");
}
