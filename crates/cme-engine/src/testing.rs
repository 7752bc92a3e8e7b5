//! Test support (feature `testing`): a fake [`PluginHost`] whose "components" are JSON
//! descriptions, for tests of the engine and of what is built on it. No wasm.
//!
//! A component is `{"name", "version", "kind": "planner" | "attack", "refs": [...]}`.
//! Planner args: `{"in_ms": [..]}` (offsets from now), `{"count": n}` (n times, a second
//! from now), `{"fail": "trap" | "invalid"}`. Attack args: `{"sleep_ms": n}`,
//! `{"fail": "why"}`; probe args: `{"healthy": bool, "reason": "..."}` or `{"cannot": "why"}`
//! (the probe cannot tell); args with a `bad` key are refused by the "schema" at `/bad`.
//! Keys starting `-----BEGIN FAKE KEY-----` parse.

use cme_model::Locked;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::host::{Cancel, PlanInput, RunInput, RunResult};
use crate::{
    AuditDecision, AuditEvent, AuditSource, Builtin, Grant, KeyFacts, LoadedPlugin, PluginDescription, PluginHandle,
    PluginHost, PluginHostError, PluginKind, Report, RunLog,
};

/// A call the fake host made, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub plugin: String,
    pub run_id: String,
    pub grant: Grant,
    pub dry_run: bool,
}

#[derive(Default)]
pub struct FakeHost {
    pub runs: Mutex<Vec<Call>>,
    /// Probe checks, in order (`run_id` is the check id).
    pub checks: Mutex<Vec<Call>>,
    pub loads: Mutex<u32>,
    /// Ids of the undos run, in order.
    pub undos: Mutex<Vec<String>>,
    /// When set, undos cannot reach their targets.
    pub undo_unreachable: std::sync::atomic::AtomicBool,
    /// When set, a fence refuses every undo.
    pub undo_refused: std::sync::atomic::AtomicBool,
    /// Where a run's `"arm": "command"` stores its undo (as the runtime does, before the
    /// attack acts); unset, such a run fails.
    pub undo_store: std::sync::OnceLock<std::sync::Arc<dyn crate::SshTargetStore>>,
}

/// A fake component: `{"name", "version", "kind", "refs", ...behaviour}`.
pub fn component(name: &str, version: &str, kind: &str, refs: &[&str]) -> Value {
    json!({"name": name, "version": version, "kind": kind, "refs": refs})
}

pub fn bytes(spec: &Value) -> Vec<u8> {
    spec.to_string().into_bytes()
}

fn describe(spec: &Value, size: usize) -> Result<PluginDescription, PluginHostError> {
    let text = |k: &str| {
        spec[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PluginHostError::NotAPlugin(format!("the component lacks {k}")))
    };
    let kind = match text("kind")?.as_str() {
        "planner" => PluginKind::Planner,
        "attack" => PluginKind::Attack,
        "probe" => PluginKind::Probe,
        other => return Err(PluginHostError::NotAPlugin(format!("unknown world {other}"))),
    };
    let (name, version) = (text("name")?, text("version")?);
    Ok(PluginDescription {
        id: format!("{name}@{version}"),
        refs: spec["refs"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        description: String::new(),
        // `"reversible": true` in the spec: the attack declares it can revert its faults.
        args_schema: match spec["reversible"].as_bool() {
            // Reversible when it arms an undo (`"arm": "command"`), as kill-process with STOP.
            Some(true) => json!({"type": "object", "x-cme-reversible": {"required": ["arm"]}}),
            _ => json!({"type": "object"}),
        },
        example_args: json!({}),
        capabilities: json!([]),
        sha256: String::new(),
        size: size as u64,
        name,
        version,
        kind,
    })
}

#[async_trait::async_trait]
impl PluginHost for FakeHost {
    fn canonical_ref(&self, reference: &str) -> Option<String> {
        let (module, class) = reference.split_once(':').or_else(|| reference.rsplit_once('.'))?;
        (!module.is_empty() && !class.is_empty()).then(|| format!("{module}:{class}"))
    }

    async fn load(&self, wasm: &[u8]) -> Result<LoadedPlugin, PluginHostError> {
        *self.loads.lock().unwrap() += 1;
        let spec: Value =
            serde_json::from_slice(wasm).map_err(|_| PluginHostError::NotAPlugin("not a WebAssembly binary".into()))?;
        // A component may ask to take a while to compile (`"compile_ms": N`).
        if let Some(ms) = spec.get("compile_ms").and_then(Value::as_u64) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        Ok(LoadedPlugin { description: describe(&spec, wasm.len())?, handle: PluginHandle::new(spec) })
    }

    /// Args with `"bad": ...` are refused at `/bad`; args with `"panic": ...` panic (a bug
    /// anywhere below a request handler).
    fn validate_args(&self, _plugin: &LoadedPlugin, args: &Value) -> Result<(), PluginHostError> {
        if args.get("panic").is_some() {
            panic!("the fake host was asked to panic");
        }
        match args.get("bad") {
            Some(_) => {
                Err(PluginHostError::InvalidArgs { pointer: Some("/bad".into()), message: "bad is not allowed".into() })
            }
            None => Ok(()),
        }
    }

    /// Planner args: `{"in_ms": [..]}` (offsets from now), `{"fail": "trap" | "invalid"}`,
    /// `{"count": n}` (n times, a second from now), `{"every_ms": n}` (recurring: every
    /// multiple of n ms since the epoch in the window).
    async fn plan(&self, _plugin: &LoadedPlugin, input: PlanInput) -> Result<crate::host::Planned, PluginHostError> {
        if let Some(every) = input.args["every_ms"].as_i64().filter(|n| *n > 0) {
            // The window's start rounded up to a millisecond: a start just after an
            // instant (asked again from just after the last answer) excludes it.
            let from_us = input.window.0.timestamp_micros();
            let from = from_us.div_euclid(1000) + i64::from(from_us.rem_euclid(1000) != 0);
            // The end rounded up too: an instant t (whole ms) is in [.., end) when
            // t < end exactly, so a window ending at 38.9005 s keeps 38.900 s.
            let until_us = input.window.1.timestamp_micros();
            let until = until_us.div_euclid(1000) + i64::from(until_us.rem_euclid(1000) != 0);
            let first = from.div_euclid(every) * every + if from.rem_euclid(every) == 0 { 0 } else { every };
            let instants = (0..)
                .map(|i| first + i * every)
                .take_while(|t| *t < until)
                .filter_map(DateTime::<Utc>::from_timestamp_millis)
                .collect();
            return Ok(crate::host::Planned { instants, recurring: true });
        }
        self.plan_once(input).map(|instants| crate::host::Planned { instants, recurring: false })
    }

    /// Attack args: `{"sleep_ms": n}` runs that long (after its one capability call);
    /// `{"fail": "..."}` fails with it. A cancelled run answers with what it did.
    async fn run(&self, plugin: &LoadedPlugin, grant: &Grant, input: RunInput, cancel: Cancel) -> RunResult {
        self.run_fake(plugin, grant, input, cancel).await
    }

    /// Probe args: `{"healthy": bool, "reason": "..."}`, or `{"cannot": "why"}`.
    async fn check(&self, plugin: &LoadedPlugin, grant: &Grant, input: crate::CheckInput) -> crate::CheckResult {
        self.checks.lock().unwrap().push(Call {
            plugin: plugin.description.id.clone(),
            run_id: input.check_id.clone(),
            grant: grant.clone(),
            dry_run: false,
        });
        let verdict = match input.args["cannot"].as_str() {
            Some(why) => Err(why.to_string().into()),
            None => Ok(crate::Verdict {
                healthy: input.args["healthy"].as_bool().unwrap_or(true),
                reason: input.args["reason"].as_str().unwrap_or("fine").to_string(),
                values: json!({}),
            }),
        };
        crate::CheckResult { verdict, audit: Vec::new() }
    }

    fn inspect_key(&self, private_key: &str, passphrase: Option<&str>) -> Result<KeyFacts, PluginHostError> {
        self.inspect_fake_key(private_key, passphrase)
    }

    async fn run_undo(&self, undo: &crate::Undo, _grant: Option<&Grant>) -> crate::UndoAttempt {
        self.undos.locked().push(undo.id.clone());
        if self.undo_refused.load(std::sync::atomic::Ordering::SeqCst) {
            return crate::UndoAttempt::Refused("the operator's [ec2] fence does not allow region eu-west-1".into());
        }
        if self.undo_unreachable.load(std::sync::atomic::Ordering::SeqCst) {
            crate::UndoAttempt::Unreachable("connection refused".into())
        } else {
            crate::UndoAttempt::Ran { exit_code: Some(0), output: String::new() }
        }
    }
}

impl FakeHost {
    fn plan_once(&self, input: PlanInput) -> Result<Vec<DateTime<Utc>>, PluginHostError> {
        match input.args["fail"].as_str() {
            Some("trap") => return Err(PluginHostError::PluginFault("plugin trapped: unreachable".into())),
            Some("invalid") => {
                return Err(PluginHostError::InvalidArgs {
                    pointer: Some("/date".into()),
                    message: "date is in the past".into(),
                });
            }
            _ => {}
        }
        if let Some(n) = input.args["count"].as_u64() {
            return Ok((0..n).map(|_| input.now + chrono::Duration::seconds(1)).collect());
        }
        let offsets = input.args["in_ms"].as_array().cloned().unwrap_or_default();
        Ok(offsets.iter().filter_map(|o| o.as_i64()).map(|ms| input.now + chrono::Duration::milliseconds(ms)).collect())
    }

    async fn run_fake(&self, plugin: &LoadedPlugin, grant: &Grant, input: RunInput, cancel: Cancel) -> RunResult {
        let id = plugin.description.id.clone();
        self.runs.lock().unwrap().push(Call {
            plugin: id.clone(),
            run_id: input.run_id.clone(),
            grant: grant.clone(),
            dry_run: input.dry_run,
        });
        let audit = vec![AuditEvent {
            at: Utc::now(),
            source: AuditSource::Plugin,
            run_id: Some(input.run_id.clone()),
            actor: id,
            action: "http.send".into(),
            target: "http://127.0.0.1:9/".into(),
            decision: AuditDecision::Allowed,
            reason: None,
            dry_run: input.dry_run,
            outcome: Some("200".into()),
        }];
        let log = RunLog { stdout: "ran".into(), elapsed_ms: 1, ..RunLog::default() };
        if let Some(command) = input.args["arm"].as_str() {
            let Some(store) = self.undo_store.get() else {
                return RunResult { outcome: Err("no undo store".to_string().into()), log, audit, cancelled: None };
            };
            let now = Utc::now();
            let undo = crate::Undo {
                id: format!("{}-{}-{command}", input.run_id, input.step.as_deref().unwrap_or("run")),
                run_id: input.run_id.clone(),
                plan_id: input.plan_id.clone(),
                step: input.step.clone(),
                plugin: plugin.description.id.clone(),
                address: "10.0.0.1".into(),
                port: 22,
                user: String::new(),
                credential: "fleet".into(),
                command: command.to_string(),
                revert: crate::undo::Revert::Ssh,
                plan_created_by: input.created_by.clone(),
                armed: now,
                due: now + chrono::Duration::hours(1),
                state: crate::UndoState::Pending,
                attempts: 0,
                outcome: None,
                finished: None,
            };
            if let Err(e) = store.insert_undo(&undo).await {
                return RunResult { outcome: Err(format!("undo not stored: {e}").into()), log, audit, cancelled: None };
            }
        }
        if let Some(ms) = input.args["sleep_ms"].as_u64() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                reason = cancel => return RunResult { outcome: Err(format!("cancelled: {reason}").into()), log, audit, cancelled: Some(reason) },
            }
        }
        let outcome = match input.args["fail"].as_str() {
            Some(why) => Err(why.to_string().into()),
            None => Ok(Report { summary: "done".into(), targets: vec!["t1".into()], details: json!({"k": 1}) }),
        };
        RunResult { outcome, log, audit, cancelled: None }
    }

    fn inspect_fake_key(&self, private_key: &str, _passphrase: Option<&str>) -> Result<KeyFacts, PluginHostError> {
        if private_key.starts_with("-----BEGIN FAKE KEY-----") {
            Ok(KeyFacts { fingerprint: format!("SHA256:fake{}", private_key.len()), algorithm: "ssh-fake".into() })
        } else {
            Err(PluginHostError::InvalidKey("the key does not parse".into()))
        }
    }
}

/// A fake exact planner (`exact_planner:ExactPlanner`) and a noop attack (`noop:Noop`,
/// granted scripts) as built-ins.
pub async fn builtins(host: &FakeHost) -> Vec<Builtin> {
    let planner = host
        .load(&bytes(&component("exact-planner", "0.1.0", "planner", &["exact_planner:ExactPlanner"])))
        .await
        .unwrap();
    let mut noop = component("noop", "0.1.0", "attack", &["noop:Noop"]);
    noop["reversible"] = json!(true);
    let attack = host.load(&bytes(&noop)).await.unwrap();
    let probe = host.load(&bytes(&component("fake-probe", "0.1.0", "probe", &["fake_probe:FakeProbe"]))).await.unwrap();
    let grant = Grant { scripts: true, ..Grant::default() };
    vec![
        Builtin { plugin: planner, grant: Grant::default() },
        Builtin { plugin: attack, grant },
        Builtin { plugin: probe, grant: Grant::default() },
    ]
}
