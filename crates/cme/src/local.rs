//! `cme plugins run` and `cme plugins check`: a component on this machine, through the
//! engine's own runtime and validation, without a server or a database. A plugin author
//! sees what the engine would: the upload's refusal, or the call's log, capability calls
//! (allowed or denied, with the reason) and result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use serde_json::{Value, json};

use cme_runtime::{
    CallRecord, Grant, PlanContext, Plugin, PluginKind, ProbeRequest, RunRequest, Runtime, RuntimeConfig,
};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The component (.wasm).
    pub file: PathBuf,
    /// The args: JSON, `@FILE` or `-` (standard input) [default: the plugin's example args].
    #[arg(long)]
    pub args: Option<String>,
    /// The grant: JSON, `@FILE` or `-`, as `cme plugins grant` takes it [default: nothing
    /// granted, so every capability call is refused and shown].
    #[arg(long, conflicts_with = "grant_declared")]
    pub grant: Option<String>,
    /// Grant exactly what the plugin declares.
    #[arg(long)]
    pub grant_declared: bool,
    /// Capabilities record what they would do instead of doing it.
    #[arg(long)]
    pub dry_run: bool,
    /// EC2 endpoint (e.g. a moto server) [default: AWS, from the standard credential chain].
    #[arg(long, env = "CME_EC2_ENDPOINT")]
    pub ec2_endpoint: Option<String>,
    /// Call it this many times more after the first, one after another, and print the
    /// median and p99 wall time of a call (instantiate + run) as the engine makes it.
    #[arg(long, default_value_t = 0)]
    pub repeat: u32,
}

/// `cme plugins check FILE`: the upload's validation, offline. Exits non-zero with the
/// message an upload would get.
pub fn check(file: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let host = crate::host::RuntimeHost::new(new_runtime(RuntimeConfig::default())?);
        let builtins = host.builtins().await?;
        let checked = cme_engine::check_upload(&host, &wasm, cme_engine::DEFAULT_MAX_PLUGIN_BYTES, &builtins).await;
        let description = checked.map_err(|e| anyhow::anyhow!("{e}"))?.description;
        println!("ok: {} ({}), refs {}", description.id, description.kind.as_str(), description.refs.join(", "));
        println!("sha256 {}, {} bytes", description.sha256, description.size);
        println!("declares: {}", description.capabilities);
        anyhow::Ok(())
    })
}

/// `cme plugins run FILE`: one call (or `1 + repeat`) with the real runtime and
/// capabilities; `json` prints one document (result, log, calls, timing) instead of text.
pub fn run(args: RunArgs, json: bool) -> anyhow::Result<()> {
    let wasm = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let executor = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    executor.block_on(async move {
        let ec2 = crate::serve::ec2_backend(args.ec2_endpoint.clone()).await;
        let runtime = new_runtime(RuntimeConfig { ec2: Some(Arc::new(ec2)), ..RuntimeConfig::default() })?;
        let plugin = runtime.load(&wasm).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let call_args = match &args.args {
            Some(text) => json_input(text, "--args")?,
            None => plugin.info().example_args.clone(),
        };
        let grant = match (&args.grant, args.grant_declared) {
            (Some(text), _) => Grant::from_json(&json_input(text, "--grant")?).context("--grant")?,
            (None, true) => cme_runtime::grant::as_declared(&plugin.info().capabilities),
            (None, false) => Grant::default(),
        };
        let call = Call { plugin: plugin.clone(), args: call_args, grant, dry_run: args.dry_run };
        // Calls start on the runtime's own threads, as the engine's runs do.
        let first = runtime.spawn({
            let (runtime, call) = (runtime.clone(), call.clone());
            async move { call.once(&runtime).await }
        });
        let first = first.await.context("the call's task")?;
        let timing = if args.repeat > 0 {
            let (runtime, call, repeat) = (runtime.clone(), call.clone(), args.repeat);
            Some(
                runtime
                    .clone()
                    .spawn(async move { call.timed(&runtime, repeat).await })
                    .await
                    .context("the timed calls")?,
            )
        } else {
            None
        };
        report(&args, json, &plugin, &first, timing.as_ref())
    })
}

/// One plugin and what it is called with.
#[derive(Clone)]
struct Call {
    plugin: Plugin,
    args: Value,
    grant: Grant,
    dry_run: bool,
}

/// What a call answered (its result as JSON, or why it failed) and recorded.
struct Answer {
    result: Result<Value, String>,
    record: CallRecord,
}

impl Call {
    async fn once(&self, runtime: &Runtime) -> Answer {
        let now = Utc::now();
        match self.plugin.kind() {
            PluginKind::Attack => {
                let request = RunRequest {
                    run_id: format!("local-{}", now.timestamp_micros()),
                    now,
                    args: self.args.clone(),
                    grant: self.grant.clone(),
                    dry_run: self.dry_run,
                    owner: Default::default(),
                    step: None,
                };
                let outcome = runtime.run(&self.plugin, request).await;
                let result =
                    outcome.result.map(|r| json!({"summary": r.summary, "targets": r.targets, "details": r.details}));
                Answer { result: result.map_err(|e| e.to_string()), record: outcome.record }
            }
            PluginKind::Planner => {
                let ctx = PlanContext {
                    now,
                    timezone: "UTC".into(),
                    seed: 1,
                    window: (now, now + chrono::Duration::days(7)),
                };
                let outcome = runtime.plan(&self.plugin, ctx, &self.args).await;
                let result = outcome.result.map(|p| {
                    json!({"window_days": 7, "instants": p.instants.iter().map(|i| i.to_rfc3339()).collect::<Vec<_>>(), "recurring": p.recurring})
                });
                Answer { result: result.map_err(|e| e.to_string()), record: outcome.record }
            }
            PluginKind::Probe => {
                let request = ProbeRequest {
                    check_id: format!("local-{}", now.timestamp_micros()),
                    now,
                    args: self.args.clone(),
                    grant: self.grant.clone(),
                    deadline: Duration::from_secs(60),
                    owner: Default::default(),
                    dry_run: self.dry_run,
                };
                let outcome = runtime.check(&self.plugin, request).await;
                let result =
                    outcome.result.map(|v| json!({"healthy": v.healthy, "reason": v.reason, "values": v.values}));
                Answer { result: result.map_err(|e| e.to_string()), record: outcome.record }
            }
        }
    }

    /// `repeat` calls one after another: (median, p99) of their wall times.
    async fn timed(&self, runtime: &Runtime, repeat: u32) -> (Duration, Duration) {
        let mut samples = Vec::with_capacity(repeat as usize);
        for _ in 0..repeat {
            let started = Instant::now();
            let _ = self.once(runtime).await;
            samples.push(started.elapsed());
        }
        samples.sort();
        (samples[samples.len() / 2], samples[(samples.len() * 99 / 100).min(samples.len() - 1)])
    }
}

fn new_runtime(config: RuntimeConfig) -> anyhow::Result<Runtime> {
    let cache_dir = crate::config::default_cache_dir().ok();
    Runtime::new(RuntimeConfig { cache_dir, ..config }).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `text` as JSON: inline, `@FILE`, or `-` for standard input (`what` names the flag).
fn json_input(text: &str, what: &str) -> anyhow::Result<Value> {
    match text.strip_prefix('@') {
        Some(path) => crate::client::read_json(Path::new(path), what),
        None if text == "-" => crate::client::read_json(Path::new("-"), what),
        None => serde_json::from_str(text).with_context(|| format!("{what} is not JSON")),
    }
}

/// One capability call as `cme plugins run` has always printed it (`plugin`, `call`, a
/// `reason` only with a refusal).
fn call_document(event: &cme_runtime::AuditEvent) -> Value {
    let mut doc = json!({
        "at": event.at,
        "run_id": event.run_id.clone().unwrap_or_default(),
        "plugin": event.actor,
        "call": event.action,
        "target": event.target,
        "decision": event.decision.as_str().replace('_', "-"),
        "dry_run": event.dry_run,
        "outcome": event.outcome,
    });
    if let Some(reason) = &event.reason {
        doc["reason"] = json!(reason);
    }
    doc
}

fn report(
    args: &RunArgs,
    json: bool,
    plugin: &Plugin,
    answer: &Answer,
    timing: Option<&(Duration, Duration)>,
) -> anyhow::Result<()> {
    let calls: Vec<Value> = answer.record.audit.iter().map(call_document).collect();
    if json {
        let doc = json!({
            "plugin": plugin.id(),
            "kind": kind_name(plugin.kind()),
            "result": answer.result.as_ref().ok(),
            "error": answer.result.as_ref().err(),
            "log": answer.record.log,
            "calls": calls,
            "stdout": answer.record.stdout,
            "stderr": answer.record.stderr,
            "dry_run_actions": answer.record.dry_run_actions,
            "elapsed_us": answer.record.elapsed.as_micros() as u64,
            "timing": timing.map(|(p50, p99)| json!({"calls": args.repeat, "median_us": p50.as_micros() as u64, "p99_us": p99.as_micros() as u64})),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{} ({}), {:.2?}", plugin.id(), kind_name(plugin.kind()), answer.record.elapsed);
        for line in &answer.record.log {
            println!("log   {} {:?} {}", line.at.to_rfc3339(), line.level, line.message);
        }
        for call in &calls {
            println!("call  {call}");
        }
        for action in &answer.record.dry_run_actions {
            println!("would {action}");
        }
        if !answer.record.stdout.is_empty() {
            println!("stdout {}", answer.record.stdout.trim_end());
        }
        if !answer.record.stderr.is_empty() {
            println!("stderr {}", answer.record.stderr.trim_end());
        }
        match &answer.result {
            Ok(result) => println!("result {}", serde_json::to_string_pretty(result)?),
            Err(error) => println!("error  {error}"),
        }
        if let Some((p50, p99)) = timing {
            println!(
                "timing {} calls: median {p50:.2?}, p99 {p99:.2?} (instantiate + call, on the runtime's threads)",
                args.repeat
            );
        }
    }
    if let Err(error) = &answer.result {
        bail!("the call failed: {error}");
    }
    Ok(())
}

fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Attack => "attack",
        PluginKind::Planner => "planner",
        PluginKind::Probe => "probe",
    }
}
