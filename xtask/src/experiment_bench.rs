//! `cargo xtask bench --only experiments`: from an experiment's abort to its last revert
//! done. Each round freezes five processes over a private sshd (kill-process STOP, each
//! revert a `kill -CONT` over SSH), then a verify step that cannot reach its service
//! refutes the hypothesis; the figure is the time from that verify's end (the abort) to
//! the last revert recorded in the run's journal, p50 and p99 over the rounds.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use cme_test_peers::sshd::{self, Sshd, current_user, ed25519, free_port};

use crate::bench::Engine;

const ROUNDS: usize = 20;
const FAULTS: usize = 5;

/// The victims: copies of sleep under names kill-process can match exactly.
struct Victims(Vec<Child>);

impl Drop for Victims {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn abort_to_reverted(binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    const FIGURE: &str = "experiment: abort to last revert done (5 SSH reverts, newest first)";
    if !sshd::available() {
        rows.push((FIGURE.into(), "not measured: no sshd on this machine".into(), "reported".into()));
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let host_key = ed25519(dir.path(), "host_key");
    let client_key = ed25519(dir.path(), "client_key");
    let port = free_port();
    let _sshd = Sshd::start(dir.path(), &["127.0.0.1"], port, &host_key, &[&client_key]);
    let config = dir.path().join("cme.toml");
    std::fs::write(
        &config,
        format!(
            "[ssh]\nknown_hosts = \"{}\"\nhost_key_policy = \"accept-new\"\nmax_sessions_per_run = 8\n",
            dir.path().join("known_hosts").display()
        ),
    )?;
    let engine = Engine::start(binary, dir.path(), &["--config", config.to_str().context("a UTF-8 path")?])?;
    let client = reqwest::Client::new();
    let url = engine.url.clone();
    let post = async |path: &str, body: Value| -> anyhow::Result<Value> {
        let answer = client.post(format!("{url}{path}")).json(&body).send().await?;
        let status = answer.status();
        let doc: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {doc}");
        }
        Ok(doc)
    };
    let key = std::fs::read_to_string(&client_key)?;
    post("/api/1/credentials/", json!({"name": "bench", "user": current_user(), "private_key": key})).await?;
    let inventory = format!("[bench]\nlocalhost ansible_host=127.0.0.1 ansible_port={port} cme_credential=bench\n");
    let imported = client
        .post(format!("{url}/api/1/inventories/?format=ini"))
        .header("content-type", "text/plain")
        .body(inventory)
        .send()
        .await?;
    if !imported.status().is_success() {
        bail!("importing the bench inventory: {}", imported.text().await?);
    }
    let names: Vec<String> = (0..FAULTS).map(|i| format!("cmebench{i}")).collect();
    let _victims = Victims(
        names
            .iter()
            .map(|name| {
                let path = dir.path().join(name);
                std::fs::copy("/bin/sleep", &path)?;
                Ok(Command::new(&path).arg("3600").spawn()?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut steps: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"name": name, "attack": {"ref": "kill_process:KillProcess", "args": {
                "target": {"inventory": "bench"}, "process": name, "signal": "STOP", "duration_seconds": 600}}})
        })
        .collect();
    steps.push(json!({"name": "refuted", "after": names, "verify": [{"ref": "http_probe:HttpProbe", "args": {"url": format!("http://{closed}/health"), "timeout_ms": 1000}}]}));
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let plan = post(
            "/api/1/plans/",
            json!({
                "name": format!("abort bench {round}"),
                "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": "2999-01-01T00:00:00Z"}},
                "steps": steps,
            }),
        )
        .await?;
        let plan_id = plan["id"].as_str().context("a plan id")?.to_string();
        let run = post(&format!("/api/1/plans/{plan_id}/run"), json!({})).await?;
        let run_id = run["id"].as_str().context("a run id")?.to_string();
        let give_up = Instant::now() + Duration::from_secs(60);
        let journal = loop {
            let executor: Value = client.get(format!("{url}/api/1/executors/{run_id}")).send().await?.json().await?;
            if executor["executed"] == true {
                break client
                    .get(format!("{url}/api/1/executors/{run_id}/journal"))
                    .send()
                    .await?
                    .json::<Value>()
                    .await?;
            }
            if Instant::now() > give_up {
                bail!("the bench experiment {run_id} did not end in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        client.delete(format!("{url}/api/1/plans/{plan_id}")).send().await?;
        let at = |text: &Value| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
            Ok(chrono::DateTime::parse_from_rfc3339(text.as_str().context("a date")?)?.to_utc())
        };
        let aborted = journal["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["name"] == "refuted"))
            .context("the verify step in the journal")?["ended"]
            .clone();
        let reverts = journal["reverts"].as_array().context("the reverts")?;
        if reverts.len() != FAULTS || reverts.iter().any(|r| r["state"] != "done") {
            bail!("round {round}: not every fault was reverted: {journal}");
        }
        let last = reverts.iter().map(|r| at(&r["at"])).collect::<anyhow::Result<Vec<_>>>()?.into_iter().max();
        let took = (last.context("a revert time")? - at(&aborted)?).to_std().unwrap_or_default();
        samples.push(took.as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let quantile = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    rows.push((
        FIGURE.into(),
        format!("p50 {:.0} ms, p99 {:.0} ms ({ROUNDS} rounds)", quantile(0.5), quantile(0.99)),
        "reported".into(),
    ));
    Ok(())
}
