//! `cme experiments run -f experiment.json [--wait]`: an experiment (a plan body with
//! `steps` and no planner) run once, now, the way Chaos Toolkit runs in CI. With `--wait`
//! it prints each step as it starts, ends and is reverted, waits for the run's own
//! deadline (not `--timeout`, which bounds each request), and exits 0 when every verify
//! held, 1 when the hypothesis was refuted, 2 when the run was aborted, errored or
//! refused (halted, in a blackout, an invalid body).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, JSON, Target, cell};

#[derive(Subcommand, Debug)]
pub enum ExperimentsCommand {
    /// Run an experiment once, now: a plan body with `steps` (and no planner) from a JSON
    /// file ("-" for stdin).
    Run {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Wait for the run's end, printing its steps; exit 0 held, 1 refuted, 2 aborted,
        /// errored or refused.
        #[arg(long)]
        wait: bool,
    },
}

/// The exit code of a run that was not held or refuted.
const ABORTED: u8 = 2;

/// When the experiment's plan says no deadline, how long at most the CLI waits: the
/// engine's own limit (`max_experiment_seconds`) is at most a week.
const LONGEST_RUN: Duration = Duration::from_secs(7 * 86_400);

pub fn run(target: Target, command: ExperimentsCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cme: {e}");
            return ExitCode::from(ABORTED);
        }
    };
    match runtime.block_on(async move {
        let client = Client::connect(target)?;
        match command {
            ExperimentsCommand::Run { file, wait } => run_experiment(&client, &file, wait).await,
        }
    }) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cme: {e:#}");
            ExitCode::from(ABORTED)
        }
    }
}

fn say(line: String) {
    if !JSON.load(std::sync::atomic::Ordering::Relaxed) {
        println!("{line}");
    }
}

async fn run_experiment(client: &Client, file: &std::path::Path, wait: bool) -> anyhow::Result<u8> {
    let mut body = crate::client::read_json(file, "experiment")?;
    let object = body.as_object_mut().context("the experiment file is not a JSON object")?;
    if object.contains_key("planner") {
        anyhow::bail!("an experiment runs now: its file has no planner (use `cme plans create` to schedule one)");
    }
    if !object.contains_key("steps") {
        anyhow::bail!("an experiment has steps (see the README's experiment bodies)");
    }
    // Stored as a plan whose own firing is far away: it runs once through `run`, now,
    // and is deleted after (its history stays).
    object.insert(
        "planner".into(),
        json!({"ref": "exact_planner:ExactPlanner", "args": {"date": "2999-01-01T00:00:00Z"}}),
    );
    object.entry("name").or_insert_with(|| json!(format!("experiment {}", file.display())));
    let plan = client.send(reqwest::Method::POST, "/api/1/plans/", Some(body)).await?;
    let plan_id = plan["id"].as_str().context("the engine answered a plan without id")?.to_string();
    let fired = client.send(reqwest::Method::POST, &format!("/api/1/plans/{plan_id}/run"), None).await;
    let executor_id = match fired {
        Ok(executor) => executor["id"].as_str().context("the engine answered a run without id")?.to_string(),
        Err(refused) => {
            delete_plan(client, &plan_id).await;
            return Err(refused.context("the experiment was refused"));
        }
    };
    say(format!("experiment {plan_id}: run {executor_id} started"));
    if !wait {
        delete_plan(client, &plan_id).await;
        say(format!("follow it: GET /api/1/executors/{executor_id}/journal"));
        return Ok(0);
    }
    let deadline = plan["deadline_seconds"].as_u64().map_or(LONGEST_RUN, Duration::from_secs);
    // Beyond the run's deadline: its reverts and the recorder's commit.
    let give_up = tokio::time::Instant::now() + deadline + Duration::from_secs(300);
    let mut printed = HashSet::new();
    let executor = loop {
        let executor = client.get(&format!("/api/1/executors/{executor_id}")).await?;
        if let Ok(journal) = client.get(&format!("/api/1/executors/{executor_id}/journal")).await {
            print_news(&journal, &mut printed);
        }
        if executor["executed"] == true {
            break executor;
        }
        if tokio::time::Instant::now() > give_up {
            delete_plan(client, &plan_id).await;
            anyhow::bail!("the run {executor_id} did not end within its deadline ({} s)", deadline.as_secs());
        }
        // A person's pace: the journal is shown as it grows.
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let journal = client.get(&format!("/api/1/executors/{executor_id}/journal")).await.unwrap_or(Value::Null);
    print_news(&journal, &mut printed);
    delete_plan(client, &plan_id).await;
    let outcome = executor["outcome"].as_str().unwrap_or("none");
    let why = executor["error"].as_str().or(executor["reason"].as_str()).unwrap_or("");
    say(format!(
        "run {executor_id} {}: outcome {outcome}{}",
        cell(&executor["status"]),
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    ));
    if JSON.load(std::sync::atomic::Ordering::Relaxed) {
        println!("{}", serde_json::to_string_pretty(&json!({"executor": executor, "journal": journal}))?);
    }
    Ok(match outcome {
        "held" => 0,
        "refuted" => 1,
        _ => ABORTED,
    })
}

/// Deletes the experiment's plan (its executors' history stays); a failure is only said.
async fn delete_plan(client: &Client, plan_id: &str) {
    if let Err(e) = client.send(reqwest::Method::DELETE, &format!("/api/1/plans/{plan_id}"), None).await {
        eprintln!("cme: could not delete the experiment's plan {plan_id}: {e:#}");
    }
}

/// Prints what the journal shows that was not printed yet: steps started and ended,
/// probe readings, reverts.
fn print_news(journal: &Value, printed: &mut HashSet<String>) {
    let mut lines: Vec<(String, String, String)> = Vec::new();
    for step in journal["steps"].as_array().into_iter().flatten() {
        let name = cell(&step["name"]);
        if let Some(at) = step["started"].as_str() {
            lines.push((at.into(), format!("start {name}"), format!("step {name} started ({})", cell(&step["kind"]))));
        }
        if let (Some(at), Some(status)) = (step["ended"].as_str(), step["status"].as_str()) {
            let detail = step["error"].as_str().or(step["summary"].as_str()).unwrap_or("");
            lines.push((at.into(), format!("end {name}"), format!("step {name} {status}{}", suffix(detail))));
        }
        if step["status"] == "not_run" {
            lines.push((String::new(), format!("not run {name}"), format!("step {name} not run")));
        }
    }
    for (i, reading) in journal["readings"].as_array().into_iter().flatten().enumerate() {
        let health = if reading["healthy"] == true { "healthy" } else { "unhealthy" };
        let detail = reading["reason"].as_str().unwrap_or("");
        lines.push((
            cell(&reading["at"]),
            format!("reading {i}"),
            format!("probe {} {health} ({}){}", cell(&reading["probe"]), cell(&reading["phase"]), suffix(detail)),
        ));
    }
    for (i, revert) in journal["reverts"].as_array().into_iter().flatten().enumerate() {
        let detail = revert["outcome"].as_str().unwrap_or("");
        lines.push((
            cell(&revert["at"]),
            format!("revert {i}"),
            format!(
                "revert of {} on {} {}{}",
                revert["step"].as_str().unwrap_or("the run"),
                cell(&revert["target"]),
                cell(&revert["state"]),
                suffix(detail)
            ),
        ));
    }
    lines.sort();
    for (at, key, line) in lines {
        if printed.insert(key) {
            say(if at.is_empty() { line } else { format!("{at}  {line}") });
        }
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() { String::new() } else { format!(": {detail}") }
}
