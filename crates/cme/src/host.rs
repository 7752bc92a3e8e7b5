//! The engine's view of plugins (`cme_engine::PluginHost`), implemented over the wasm
//! runtime with the built-in plugins and their grants.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use cme_engine::host::{ArgsRejected, CapabilityAudit, PlanInput, PluginDescription, PluginHost, PluginKind, Report, RunInput, RunResult};
use cme_runtime::{Decision, Grant, PlanContext, Plugin, RunRequest, Runtime};

struct Entry {
    plugin: Plugin,
    grant: Grant,
    description: PluginDescription,
}

/// What the operator allows the built-in attacks (`[ec2]` and `[ssh]` in the config).
///
/// By default: any region, no required tags, one termination and one SSH session per run.
#[derive(Debug, Clone)]
pub struct BuiltinPolicy {
    pub regions: Vec<String>,
    pub required_tags: std::collections::BTreeMap<String, String>,
    pub max_terminations_per_run: u32,
    pub max_ssh_sessions_per_run: u32,
}

impl Default for BuiltinPolicy {
    fn default() -> Self {
        BuiltinPolicy { regions: Vec::new(), required_tags: Default::default(), max_terminations_per_run: 1, max_ssh_sessions_per_run: 1 }
    }
}

impl BuiltinPolicy {
    fn narrow(&self, mut grant: Grant) -> Grant {
        if let Some(ec2) = &mut grant.ec2 {
            ec2.regions = self.regions.clone();
            ec2.required_tags = self.required_tags.clone();
            ec2.max_terminations_per_run = self.max_terminations_per_run;
        }
        if let Some(ssh) = &mut grant.ssh {
            ssh.max_sessions = self.max_ssh_sessions_per_run;
        }
        grant
    }
}

/// SSH keys for the runtime, read from the engine's credential store at session time.
pub struct StoredCredentials(pub cme_engine::Store);

#[async_trait::async_trait]
impl cme_runtime::CredentialSource for StoredCredentials {
    async fn ssh_credential(&self, name: &str) -> Result<Option<cme_runtime::SshCredential>, String> {
        let found = cme_engine::load_ssh_credential(&self.0, name).await?;
        Ok(found.map(|(user, key)| cme_runtime::SshCredential { user, key }))
    }
}

pub struct RuntimeHost {
    runtime: Runtime,
    /// Loaded plugins by id (`name@version`): built-ins at start, uploads as the
    /// registry syncs them.
    by_id: RwLock<HashMap<String, Arc<Entry>>>,
    generation: AtomicU64,
}

impl RuntimeHost {
    /// Loads the built-in plugins, each with the grant of exactly what it declares,
    /// narrowed by the operator's policy.
    pub async fn with_builtins(runtime: Runtime, policy: &BuiltinPolicy) -> anyhow::Result<RuntimeHost> {
        let host = RuntimeHost { runtime, by_id: RwLock::new(HashMap::new()), generation: AtomicU64::new(0) };
        for embedded in cme_plugins::BUILTINS {
            let plugin = host
                .runtime
                .load(embedded.wasm)
                .await
                .map_err(|e| anyhow::anyhow!("built-in plugin {}: {e}", embedded.crate_name))?;
            let grant = policy.narrow(Grant::as_declared(&plugin.info().capabilities));
            host.add(plugin, grant, true, embedded.wasm.len());
        }
        Ok(host)
    }

    fn add(&self, plugin: Plugin, grant: Grant, builtin: bool, size: usize) -> PluginDescription {
        let description = describe(&plugin, &grant, builtin, size);
        let entry = Arc::new(Entry { plugin, grant, description: description.clone() });
        self.by_id.write().unwrap_or_else(|e| e.into_inner()).insert(description.id.clone(), entry);
        self.generation.fetch_add(1, Ordering::SeqCst);
        description
    }

    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.by_id.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

fn describe(plugin: &Plugin, grant: &Grant, builtin: bool, size: usize) -> PluginDescription {
    let info = plugin.info();
    PluginDescription {
        id: plugin.id(),
        name: info.name.clone(),
        version: info.version.clone(),
        kind: match plugin.kind() {
            cme_runtime::PluginKind::Planner => PluginKind::Planner,
            cme_runtime::PluginKind::Attack => PluginKind::Attack,
        },
        refs: plugin.canonical_refs().collect(),
        description: info.description.clone(),
        args_schema: info.args_schema.clone(),
        example_args: info.example_args.clone(),
        capabilities: serde_json::to_value(&info.capabilities).unwrap_or(Value::Null),
        sha256: plugin.sha256().to_string(),
        size: size as u64,
        builtin,
        grant: Some(serde_json::to_value(grant).unwrap_or(Value::Null)),
    }
}

fn parse_grant(grant: Option<&Value>) -> Result<Grant, String> {
    let Some(value) = grant else { return Ok(Grant::default()) };
    let grant: Grant = serde_json::from_value(value.clone()).map_err(|e| format!("invalid grant: {e}"))?;
    grant.validate().map_err(|e| format!("invalid grant: {e}"))?;
    Ok(grant)
}

#[async_trait::async_trait]
impl PluginHost for RuntimeHost {
    fn list(&self, kind: PluginKind) -> Vec<PluginDescription> {
        let by_id = self.by_id.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<PluginDescription> = by_id.values().map(|e| e.description.clone()).filter(|d| d.kind == kind).collect();
        all.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        all
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn contains(&self, plugin_id: &str) -> bool {
        self.by_id.read().unwrap_or_else(|e| e.into_inner()).contains_key(plugin_id)
    }

    fn canonical_ref(&self, reference: &str) -> Option<String> {
        cme_runtime::canonical_ref(reference)
    }

    fn is_builtin(&self, plugin_id: &str) -> bool {
        self.entry(plugin_id).is_some_and(|e| e.description.builtin)
    }

    async fn inspect(&self, wasm: &[u8]) -> Result<PluginDescription, String> {
        let plugin = self.runtime.load(wasm).await.map_err(|e| e.to_string())?;
        Ok(describe(&plugin, &Grant::default(), false, wasm.len()))
    }

    async fn install(&self, wasm: &[u8], grant: Option<&Value>) -> Result<PluginDescription, String> {
        let grant = parse_grant(grant)?;
        let plugin = self.runtime.load(wasm).await.map_err(|e| e.to_string())?;
        if self.entry(&plugin.id()).is_some_and(|e| e.description.builtin) {
            return Err(format!("{} is a built-in plugin's id", plugin.id()));
        }
        Ok(self.add(plugin, grant, false, wasm.len()))
    }

    fn check_grant(&self, grant: &Value) -> Result<(), String> {
        parse_grant(Some(grant)).map(|_| ())
    }

    fn set_grant(&self, plugin_id: &str, grant: Option<&Value>) -> Result<(), String> {
        let grant = parse_grant(grant)?;
        let entry = self.entry(plugin_id).ok_or_else(|| format!("plugin {plugin_id} is not loaded"))?;
        let size = entry.description.size as usize;
        self.add(entry.plugin.clone(), grant, entry.description.builtin, size);
        Ok(())
    }

    fn unload(&self, plugin_id: &str) {
        let mut by_id = self.by_id.write().unwrap_or_else(|e| e.into_inner());
        if by_id.get(plugin_id).is_some_and(|e| !e.description.builtin) {
            by_id.remove(plugin_id);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn validate_args(&self, plugin_id: &str, args: &Value) -> Result<(), ArgsRejected> {
        let entry = self.entry(plugin_id).ok_or_else(|| rejected(None, format!("plugin {plugin_id} is not loaded")))?;
        entry.plugin.validate_args(args).map_err(call_rejected)
    }

    async fn plan(&self, plugin_id: &str, input: PlanInput, args: &Value) -> Result<Vec<DateTime<Utc>>, ArgsRejected> {
        let entry = self.entry(plugin_id).ok_or_else(|| rejected(None, format!("plugin {plugin_id} is not loaded")))?;
        let ctx = PlanContext { now: input.now, timezone: input.timezone, seed: input.seed };
        self.runtime.plan(&entry.plugin, ctx, args).await.result.map_err(call_rejected)
    }

    async fn run(&self, plugin_id: &str, input: RunInput) -> RunResult {
        let Some(entry) = self.entry(plugin_id) else {
            return RunResult { outcome: Err(format!("attack plugin {plugin_id} is not loaded on this engine")), log: json!({}), audit: vec![] };
        };
        let request = RunRequest { run_id: input.run_id, now: input.now, args: input.args, grant: entry.grant.clone(), dry_run: input.dry_run };
        let outcome = self.runtime.run(&entry.plugin, request).await;
        let record = outcome.record;
        RunResult {
            outcome: outcome
                .result
                .map(|r| Report { summary: r.summary, targets: r.targets, details: r.details })
                .map_err(|e| e.to_string()),
            log: json!({
                "lines": record.log,
                "stdout": record.stdout,
                "stderr": record.stderr,
                "dry_run_actions": record.dry_run_actions,
                "elapsed_ms": record.elapsed.as_millis() as u64,
            }),
            audit: record
                .audit
                .into_iter()
                .map(|a| {
                    let (decision, reason) = match a.decision {
                        Decision::Allowed => ("allowed", None),
                        Decision::Denied(r) => ("denied", Some(r)),
                        Decision::Unavailable(r) => ("unavailable", Some(r)),
                    };
                    CapabilityAudit {
                        at: a.at,
                        plugin: a.plugin,
                        call: a.call,
                        target: a.target,
                        decision: decision.into(),
                        reason,
                        dry_run: a.dry_run,
                        outcome: a.outcome,
                    }
                })
                .collect(),
        }
    }
}

fn rejected(pointer: Option<String>, message: String) -> ArgsRejected {
    ArgsRejected { pointer, message }
}

fn call_rejected(e: cme_runtime::CallError) -> ArgsRejected {
    match e {
        cme_runtime::CallError::InvalidArgs { pointer, message } => rejected(pointer, message),
        other => rejected(None, other.to_string()),
    }
}
