//! The engine's `PluginHost` over the wasm runtime: stateless operations on handles the
//! engine keeps. Also the built-in plugins with their grants, and armed undos run over
//! the runtime's SSH backend.

use serde_json::Value;

use cme_engine::host::{CallFailure, Cancel, PlanInput, Planned, RunInput, RunResult};
use cme_engine::{
    AuditEvent, Builtin, Grant, KeyFacts, LoadedPlugin, PluginDescription, PluginHandle, PluginHost, PluginHostError,
    Report, RunLog,
};
use cme_runtime::{CallError, PlanContext, Plugin, RunOwner, RunRequest, Runtime};

pub struct RuntimeHost {
    runtime: Runtime,
}

impl RuntimeHost {
    pub fn new(runtime: Runtime) -> RuntimeHost {
        RuntimeHost { runtime }
    }

    /// Loads the built-in plugins, each with the grant of exactly what it declares and no
    /// per-run budget of its own: the operator's fences (`[ec2]`, `[ssh]`, `[http]`, each
    /// cloud's `max_nodes_per_run`), which bound every plugin, are what bound them.
    pub async fn builtins(&self) -> anyhow::Result<Vec<Builtin>> {
        let mut builtins = Vec::new();
        for embedded in cme_plugins::BUILTINS {
            let plugin = self
                .runtime
                .load(embedded.wasm)
                .await
                .map_err(|e| anyhow::anyhow!("built-in plugin {}: {e}", embedded.crate_name))?;
            let mut grant = cme_runtime::grant::as_declared(&plugin.info().capabilities);
            if let Some(ec2) = &mut grant.ec2 {
                ec2.max_terminations_per_run = u32::MAX;
            }
            if let Some(ssh) = &mut grant.ssh {
                ssh.max_sessions = u32::MAX;
            }
            if let Some(compute) = &mut grant.compute {
                compute.max_nodes_per_run = u32::MAX;
            }
            if let Some(http) = &mut grant.http {
                let name = &plugin.info().name;
                http.credentials = self
                    .runtime
                    .http_credentials()
                    .iter()
                    .filter(|c| c.granted_to_builtin(name))
                    .map(|c| c.name().to_string())
                    .collect();
            }
            builtins.push(Builtin { plugin: loaded(plugin, embedded.wasm.len()), grant });
        }
        Ok(builtins)
    }
}

fn loaded(plugin: Plugin, size: usize) -> LoadedPlugin {
    let info = plugin.info();
    let description = PluginDescription {
        id: plugin.id(),
        name: info.name.clone(),
        version: info.version.clone(),
        kind: plugin.kind(),
        refs: plugin.canonical_refs().collect(),
        description: info.description.clone(),
        args_schema: info.args_schema.clone(),
        example_args: info.example_args.clone(),
        capabilities: serde_json::to_value(&info.capabilities).unwrap_or(Value::Null),
        sha256: plugin.sha256().to_string(),
        size: size as u64,
    };
    LoadedPlugin { description, handle: PluginHandle::new(plugin) }
}

fn plugin_of(loaded: &LoadedPlugin) -> Result<&Plugin, PluginHostError> {
    loaded.handle.get::<Plugin>().ok_or_else(|| PluginHostError::NotLoaded(loaded.description.id.clone()))
}

fn host_error(e: CallError) -> PluginHostError {
    match e {
        CallError::InvalidArgs { pointer, message } => PluginHostError::InvalidArgs { pointer, message },
        other => PluginHostError::PluginFault(other.to_string()),
    }
}

#[async_trait::async_trait]
impl PluginHost for RuntimeHost {
    async fn run_undo(&self, undo: &cme_engine::Undo, grant: Option<&cme_engine::Grant>) -> cme_engine::UndoAttempt {
        self.runtime.run_undo(undo, grant).await
    }

    fn canonical_ref(&self, reference: &str) -> Option<String> {
        cme_runtime::canonical_ref(reference)
    }

    async fn load(&self, wasm: &[u8]) -> Result<LoadedPlugin, PluginHostError> {
        let plugin = self.runtime.load(wasm).await.map_err(|e| PluginHostError::NotAPlugin(e.to_string()))?;
        Ok(loaded(plugin, wasm.len()))
    }

    fn validate_args(&self, plugin: &LoadedPlugin, args: &Value) -> Result<(), PluginHostError> {
        plugin_of(plugin)?.validate_args(args).map_err(host_error)
    }

    async fn plan(&self, plugin: &LoadedPlugin, input: PlanInput) -> Result<Planned, PluginHostError> {
        let ctx = PlanContext { now: input.now, timezone: input.timezone, seed: input.seed, window: input.window };
        self.runtime.plan(plugin_of(plugin)?, ctx, &input.args).await.result.map_err(host_error)
    }

    async fn run(&self, plugin: &LoadedPlugin, grant: &Grant, input: RunInput, cancel: Cancel) -> RunResult {
        let runtime_plugin = match plugin_of(plugin) {
            Ok(p) => p,
            Err(e) => {
                return RunResult {
                    outcome: Err(CallFailure(e.to_string())),
                    log: RunLog::default(),
                    audit: Vec::new(),
                    cancelled: None,
                };
            }
        };
        let run_id = input.run_id.clone();
        let owner = RunOwner { plan: input.plan_id, created_by: input.created_by };
        let request = RunRequest {
            run_id: input.run_id,
            now: input.now,
            args: input.args,
            grant: grant.clone(),
            dry_run: input.dry_run,
            owner,
            step: input.step,
        };
        let outcome = self.runtime.run_until(runtime_plugin, request, cancel).await;
        let record = outcome.record;
        let cancelled = match &outcome.result {
            Err(CallError::Cancelled(reason)) => Some(reason.clone()),
            _ => None,
        };
        RunResult {
            cancelled,
            outcome: outcome
                .result
                .map(|r| Report { summary: r.summary, targets: r.targets, details: r.details })
                .map_err(|e| CallFailure(e.to_string())),
            log: RunLog {
                lines: record.log,
                stdout: record.stdout,
                stderr: record.stderr,
                dry_run_actions: record.dry_run_actions,
                elapsed_ms: record.elapsed.as_millis() as u64,
            },
            audit: audit_events(record.audit, &run_id),
        }
    }

    async fn check(
        &self,
        plugin: &LoadedPlugin,
        grant: &Grant,
        input: cme_engine::CheckInput,
    ) -> cme_engine::CheckResult {
        let runtime_plugin = match plugin_of(plugin) {
            Ok(p) => p,
            Err(e) => return cme_engine::CheckResult { verdict: Err(CallFailure(e.to_string())), audit: Vec::new() },
        };
        let check_id = input.check_id.clone();
        let owner = RunOwner { plan: input.plan_id, created_by: input.created_by };
        let request = cme_runtime::ProbeRequest {
            check_id: input.check_id,
            now: input.now,
            args: input.args,
            grant: grant.clone(),
            deadline: input.deadline,
            owner,
            dry_run: input.dry_run,
        };
        let outcome = self.runtime.check(runtime_plugin, request).await;
        cme_engine::CheckResult {
            verdict: outcome.result.map_err(|e| CallFailure(e.to_string())),
            audit: audit_events(outcome.record.audit, &check_id),
        }
    }

    fn inspect_key(&self, private_key: &str, passphrase: Option<&str>) -> Result<KeyFacts, PluginHostError> {
        let key = cme_cloud::ssh::SshKey::parse(private_key, passphrase)
            .map_err(|e| PluginHostError::InvalidKey(e.to_string()))?;
        Ok(KeyFacts { fingerprint: key.fingerprint(), algorithm: key.algorithm() })
    }

    /// Runs start on the runtime's own threads, so their plugin calls run on the run's
    /// task instead of hopping to those threads and back.
    fn spawn_run(&self, run: cme_engine::host::RunTask) {
        self.runtime.spawn(run);
    }
}

/// The runtime's audit records (already the engine's events), with the run or check they
/// belong to named where the record does not name one.
fn audit_events(mut records: Vec<AuditEvent>, run_id: &str) -> Vec<AuditEvent> {
    for record in &mut records {
        record.run_id.get_or_insert_with(|| run_id.to_string());
    }
    records
}
