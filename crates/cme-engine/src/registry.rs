//! The plugin registry: uploads validated and stored in the database, versions, grants,
//! enable/disable/delete, and resolution of a plan's ref to one plugin version.
//!
//! Every replica keeps its runtime in step with the `plugins` table: before resolving a
//! ref or running an attack it compares the store's plugin generation with its own (one
//! indexed read, at most once a second, or at once when it meets an id it does not know)
//! and loads, re-grants or unloads what changed. Nothing polls while idle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use cme_store::{PluginChange, PluginRow, StoredUpload, plugin};

use crate::host::{PluginDescription, PluginKind};
use crate::time::{from_us, now_us};
use crate::{ApiAction, Engine, EngineError, api_audit};

/// The largest component accepted by default (20 MiB): Cranelift cannot be interrupted,
/// so the size cap is what bounds an upload's compile time.
pub const DEFAULT_MAX_PLUGIN_BYTES: usize = 20 << 20;

/// How stale a replica's view of the registry may be before a run or plan re-reads it.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A plugin's state in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Uploaded; waits for an admin's grant. Plans cannot use it.
    Pending,
    Enabled,
    /// Plans cannot use it and its executors fail instead of running.
    Disabled,
}

impl PluginStatus {
    fn parse(text: &str) -> PluginStatus {
        match text {
            "enabled" => PluginStatus::Enabled,
            "disabled" => PluginStatus::Disabled,
            _ => PluginStatus::Pending,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            PluginStatus::Pending => "pending",
            PluginStatus::Enabled => "enabled",
            PluginStatus::Disabled => "disabled",
        }
    }
}

/// What the API shows of a plugin, built-in or uploaded.
#[derive(Debug, Clone, Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    pub description: PluginDescription,
    pub status: PluginStatus,
    pub size: u64,
    /// The operator's grant (built-ins: what they get from the configuration).
    pub grant: Option<Value>,
    pub uploaded_by: Option<String>,
    pub uploaded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An upload as received.
pub struct Upload {
    pub wasm: Vec<u8>,
    /// The sha256 the uploader expects, hex.
    pub expected_sha256: Option<String>,
}

/// What an upload did.
pub struct Uploaded {
    pub plugin: PluginView,
    /// False when the same bytes were already stored under this id (idempotent).
    pub created: bool,
    pub compile_ms: u64,
}

/// This replica's view of the stored plugins.
#[derive(Default)]
pub(crate) struct RegistryState {
    generation: Option<String>,
    checked: Option<Instant>,
    rows: HashMap<String, PluginRow>,
}

impl Engine {
    /// Validates an upload (size, digest, component of a supported world with allowed
    /// imports that compiles, a describe() that answers in time with valid info, refs
    /// free), then stores it `pending`. One upload compiles at a time.
    /// A refused upload is audited with the reason.
    pub async fn upload_plugin(&self, upload: Upload, by: &str) -> Result<Uploaded, EngineError> {
        let size = upload.wasm.len();
        let result = self.try_upload(upload, by).await;
        if let Err(refusal) = &result {
            let mut audit = api_audit(ApiAction { actor: by.into(), action: "plugin.upload".into(), target: format!("{size} bytes") });
            audit.decision = "denied".into();
            audit.reason = Some(refusal.to_string());
            if let Err(e) = self.store.insert_audit(vec![audit]).await {
                tracing::error!(error = %e, "cannot audit a refused upload");
            }
            tracing::warn!(by, size, reason = %refusal, "plugin upload refused");
        }
        result
    }

    async fn try_upload(&self, upload: Upload, by: &str) -> Result<Uploaded, EngineError> {
        let max = self.config.max_plugin_bytes;
        if upload.wasm.len() > max {
            return Err(EngineError::TooLarge(format!(
                "the component is {} bytes; this engine accepts at most {max} bytes ([registry] max_plugin_bytes)",
                upload.wasm.len()
            )));
        }
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&upload.wasm));
        if let Some(expected) = &upload.expected_sha256 {
            if !expected.trim().eq_ignore_ascii_case(&sha256) {
                return Err(EngineError::invalid(
                    format!("sha256 mismatch: expected {expected}, the upload's is {sha256}; the file was changed or cut in transit"),
                    Some("/sha256"),
                ));
            }
        }
        let _one_at_a_time = self.uploads.lock().await;
        let started = Instant::now();
        let description = self.host.inspect(&upload.wasm).await.map_err(|e| EngineError::invalid(e, None))?;
        let compile_ms = started.elapsed().as_millis() as u64;
        self.sync_plugins(true).await?;
        if let Some(clash) = self.ref_clash(&description) {
            return Err(EngineError::Conflict(clash));
        }
        let now = now_us();
        let row = plugin::Model {
            id: description.id.clone(),
            name: description.name.clone(),
            version: description.version.clone(),
            kind: kind_name(description.kind).into(),
            sha256: sha256.clone(),
            size: upload.wasm.len() as i64,
            wasm: upload.wasm,
            status: PluginStatus::Pending.as_str().into(),
            grant: None,
            uploaded_by: by.to_string(),
            uploaded_at_us: now,
            updated_at_us: now,
        };
        let audit = api_audit(ApiAction { actor: by.into(), action: "plugin.upload".into(), target: format!("{} (sha256 {sha256})", description.id) });
        let created = match self.store.insert_plugin(row, audit).await? {
            StoredUpload::Inserted => true,
            StoredUpload::AlreadyStored(_) => false,
            StoredUpload::Conflict { sha256: stored } => {
                return Err(EngineError::Conflict(format!(
                    "{} is already stored with other bytes (sha256 {stored}); a version is immutable: bump the version in describe()",
                    description.id
                )));
            }
        };
        self.sync_plugins(true).await?;
        tracing::info!(plugin = %description.id, %sha256, compile_ms, created, "plugin uploaded");
        Ok(Uploaded { plugin: self.plugin_view(&description.id).await?, created, compile_ms })
    }

    /// Sets an uploaded plugin's grant and enables it (a pending plugin is approved).
    pub async fn grant_plugin(&self, id: &str, grant: Value, by: &str) -> Result<PluginView, EngineError> {
        self.host.check_grant(&grant).map_err(|e| EngineError::invalid(e, None))?;
        self.uploaded_row(id).await?;
        let change = PluginChange { status: Some(PluginStatus::Enabled.as_str().into()), grant: Some(grant.to_string()) };
        self.change_plugin(id, change, "plugin.grant", &grant.to_string(), by).await
    }

    /// Enables or disables an uploaded plugin. Enabling needs a grant.
    pub async fn set_plugin_enabled(&self, id: &str, enabled: bool, by: &str) -> Result<PluginView, EngineError> {
        let row = self.uploaded_row(id).await?;
        if enabled && row.grant.is_none() {
            return Err(EngineError::Conflict(format!("{id} has no grant yet: PUT /api/1/plugins/{id}/grant approves and enables it")));
        }
        let status = if enabled { PluginStatus::Enabled } else { PluginStatus::Disabled };
        let action = if enabled { "plugin.enable" } else { "plugin.disable" };
        self.change_plugin(id, PluginChange { status: Some(status.as_str().into()), grant: None }, action, "", by).await
    }

    /// Deletes an uploaded plugin unless executors still to run use it.
    pub async fn delete_plugin(&self, id: &str, by: &str) -> Result<(), EngineError> {
        self.uploaded_row(id).await?;
        let audit = api_audit(ApiAction { actor: by.into(), action: "plugin.delete".into(), target: id.to_string() });
        match self.store.delete_plugin(id, now_us(), audit).await? {
            None => Err(not_found(id)),
            Some(0) => {
                self.sync_plugins(true).await?;
                Ok(())
            }
            Some(n) => Err(EngineError::Conflict(format!(
                "{n} executors that still have to run use {id}: delete their plans (or executors) first, or disable it"
            ))),
        }
    }

    /// Every plugin, built-in and uploaded, by name then version.
    pub async fn plugin_views(&self) -> Result<Vec<PluginView>, EngineError> {
        self.sync_plugins(false).await?;
        let state = self.registry.read().await;
        let mut all: Vec<PluginView> = [PluginKind::Planner, PluginKind::Attack]
            .into_iter()
            .flat_map(|kind| self.host.list(kind))
            .map(|d| {
                let row = state.rows.get(&d.id).cloned();
                view(d, row)
            })
            .collect();
        all.sort_by(|a, b| (&a.description.name, version_of(&a.description)).cmp(&(&b.description.name, version_of(&b.description))));
        Ok(all)
    }

    pub async fn plugin_view(&self, id: &str) -> Result<PluginView, EngineError> {
        self.plugin_views().await?.into_iter().find(|p| p.description.id == id).ok_or_else(|| not_found(id))
    }

    /// The plugin of `kind` a plan's `reference` names: `module:Class` (or `module.Class`)
    /// for the newest enabled version, `module:Class@1.2.0` for that version.
    pub(crate) async fn resolve_plugin(&self, kind: PluginKind, reference: &str, pointer: &str) -> Result<PluginDescription, EngineError> {
        self.sync_plugins(false).await?;
        match self.try_resolve(kind, reference, pointer).await {
            // Uploaded on another replica a moment ago? Look again before refusing.
            Err(_) => {
                self.sync_plugins(true).await?;
                self.try_resolve(kind, reference, pointer).await
            }
            found => found,
        }
    }

    async fn try_resolve(&self, kind: PluginKind, reference: &str, pointer: &str) -> Result<PluginDescription, EngineError> {
        let (wanted, version) = match reference.rsplit_once('@') {
            Some((r, v)) => (self.canonical_ref(r), Some(v)),
            None => (self.canonical_ref(reference), None),
        };
        let kind_word = kind_name(kind);
        let all = self.host.list(kind);
        let answering: Vec<&PluginDescription> = all.iter().filter(|d| d.refs.contains(&wanted)).collect();
        if answering.is_empty() {
            let known: Vec<String> = all.iter().filter_map(|p| p.refs.first().cloned()).collect();
            return Err(EngineError::invalid(format!("unknown {kind_word} ref {reference:?} (known: {})", known.join(", ")), Some(pointer)));
        }
        let state = self.registry.read().await;
        let status = |d: &PluginDescription| match state.rows.get(&d.id) {
            Some(row) => PluginStatus::parse(&row.status),
            None if d.builtin => PluginStatus::Enabled,
            // Loaded a moment before the view caught up: not usable yet.
            None => PluginStatus::Pending,
        };
        let pinned: Vec<&&PluginDescription> = answering.iter().filter(|d| version.is_none_or(|v| d.version == v)).collect();
        if pinned.is_empty() {
            let versions: Vec<&str> = answering.iter().map(|d| d.version.as_str()).collect();
            return Err(EngineError::invalid(
                format!("{kind_word} ref {wanted} has no version {} (available: {})", version.unwrap_or_default(), versions.join(", ")),
                Some(pointer),
            ));
        }
        let usable = pinned.iter().filter(|d| status(d) == PluginStatus::Enabled).max_by(|a, b| version_of(a).cmp(&version_of(b)));
        match usable {
            Some(found) => Ok((**found).clone()),
            None => {
                let blocked = pinned.iter().max_by(|a, b| version_of(a).cmp(&version_of(b))).expect("not empty");
                let why = match status(blocked) {
                    PluginStatus::Pending => format!("is pending: an admin must grant it first (PUT /api/1/plugins/{}/grant)", blocked.id),
                    _ => format!("is disabled (POST /api/1/plugins/{}/enable)", blocked.id),
                };
                Err(EngineError::invalid(format!("{kind_word} plugin {} {why}", blocked.id), Some(pointer)))
            }
        }
    }

    /// Re-reads the registry if this replica's view is over a second old (`fresh`:
    /// whatever its age; one indexed read when nothing changed).
    pub async fn refresh_plugins(&self, fresh: bool) -> Result<(), EngineError> {
        self.sync_plugins(fresh).await
    }

    /// The largest upload accepted, in bytes.
    pub fn max_plugin_bytes(&self) -> usize {
        self.config.max_plugin_bytes
    }

    /// None when the plugin may run now; otherwise why not.
    pub(crate) async fn refuse_run(&self, plugin_id: &str) -> Result<Option<String>, EngineError> {
        self.sync_plugins(!self.host.contains(plugin_id)).await?;
        let state = self.registry.read().await;
        Ok(match state.rows.get(plugin_id).map(|r| PluginStatus::parse(&r.status)) {
            Some(PluginStatus::Enabled) => None,
            Some(PluginStatus::Disabled) => Some(format!("plugin {plugin_id} is disabled")),
            Some(PluginStatus::Pending) => Some(format!("plugin {plugin_id} is pending approval")),
            None if self.host.is_builtin(plugin_id) => None,
            None => Some(format!("plugin {plugin_id} is not in the registry (deleted?)")),
        })
    }

    /// Brings this replica's runtime in step with the stored plugins. Without `force`, at
    /// most once per [`SYNC_INTERVAL`].
    pub(crate) async fn sync_plugins(&self, force: bool) -> Result<(), EngineError> {
        let fresh = |state: &RegistryState| state.checked.is_some_and(|t| t.elapsed() < SYNC_INTERVAL);
        if !force && fresh(&*self.registry.read().await) {
            return Ok(());
        }
        // One sync at a time; the view stays readable meanwhile (loading a new plugin
        // compiles it, and runs and plans must not wait for that).
        let _one = self.syncing.lock().await;
        let generation = self.store.plugins_generation().await?;
        let (known_generation, old_rows) = {
            let state = self.registry.read().await;
            (state.generation.clone(), state.rows.clone())
        };
        if known_generation.as_deref() == Some(generation.as_str()) {
            self.registry.write().await.checked = Some(Instant::now());
            return Ok(());
        }
        let rows: HashMap<String, PluginRow> = self.store.plugin_rows().await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        for (id, row) in &rows {
            let grant = row.grant.as_deref().and_then(|g| serde_json::from_str::<Value>(g).ok());
            if let Some(old) = old_rows.get(id) {
                if old.grant != row.grant {
                    if let Err(e) = self.host.set_grant(id, grant.as_ref()) {
                        tracing::error!(plugin = %id, error = %e, "cannot apply the stored grant");
                    }
                }
                continue;
            }
            let Some(wasm) = self.store.plugin_wasm(id).await? else { continue };
            match self.host.install(&wasm, grant.as_ref()).await {
                Ok(loaded) => tracing::info!(plugin = %loaded.id, "plugin loaded from the registry"),
                Err(e) => tracing::error!(plugin = %id, error = %e, "a stored plugin does not load on this engine"),
            }
        }
        for gone in old_rows.keys().filter(|id| !rows.contains_key(*id)) {
            self.host.unload(gone);
            tracing::info!(plugin = %gone, "plugin unloaded");
        }
        let mut state = self.registry.write().await;
        state.rows = rows;
        state.generation = Some(generation);
        state.checked = Some(Instant::now());
        self.registry_changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Applies a change to an uploaded plugin (callers checked it is one).
    async fn change_plugin(&self, id: &str, change: PluginChange, action: &str, detail: &str, by: &str) -> Result<PluginView, EngineError> {
        let target = if detail.is_empty() { id.to_string() } else { format!("{id}: {detail}") };
        let audit = api_audit(ApiAction { actor: by.into(), action: action.into(), target });
        if !self.store.update_plugin(id, change, now_us(), audit).await? {
            return Err(not_found(id));
        }
        self.sync_plugins(true).await?;
        self.plugin_view(id).await
    }

    /// The stored row of an uploaded plugin; built-ins cannot be changed.
    async fn uploaded_row(&self, id: &str) -> Result<PluginRow, EngineError> {
        match self.store.plugin_row(id).await? {
            Some(row) => Ok(row),
            None if self.host.is_builtin(id) => Err(EngineError::Conflict(format!(
                "{id} is built in: it cannot be changed or deleted here (configure its limits under [ec2] and [ssh])"
            ))),
            None => Err(not_found(id)),
        }
    }

    /// The host's spelling of a ref (`module.Class` -> `module:Class`); a malformed ref
    /// is kept as written and matches nothing.
    fn canonical_ref(&self, reference: &str) -> String {
        self.host.canonical_ref(reference).unwrap_or_else(|| reference.to_string())
    }

    /// Why `new` may not join the registry: a built-in's name, or a ref that another
    /// plugin (another name) already answers to.
    fn ref_clash(&self, new: &PluginDescription) -> Option<String> {
        for other in [PluginKind::Planner, PluginKind::Attack].into_iter().flat_map(|k| self.host.list(k)) {
            if other.name == new.name && other.builtin {
                return Some(format!("the name {} belongs to a built-in plugin; choose another name in describe()", new.name));
            }
            if other.name == new.name {
                continue;
            }
            if let Some(taken) = new.refs.iter().find(|r| other.refs.contains(r)) {
                return Some(format!("ref {taken} is already used by {}; choose another ref in describe()", other.id));
            }
        }
        None
    }
}

fn view(description: PluginDescription, row: Option<PluginRow>) -> PluginView {
    match row {
        Some(row) => PluginView {
            status: PluginStatus::parse(&row.status),
            size: row.size as u64,
            grant: row.grant.as_deref().and_then(|g| serde_json::from_str(g).ok()),
            uploaded_by: Some(row.uploaded_by),
            uploaded_at: Some(from_us(row.uploaded_at_us)),
            description,
        },
        None => PluginView {
            // An upload without a row is one loaded a moment before the view caught up.
            status: if description.builtin { PluginStatus::Enabled } else { PluginStatus::Pending },
            size: description.size,
            grant: description.grant.clone(),
            uploaded_by: None,
            uploaded_at: None,
            description,
        },
    }
}

fn version_of(d: &PluginDescription) -> semver::Version {
    semver::Version::parse(&d.version).unwrap_or(semver::Version::new(0, 0, 0))
}

fn kind_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Planner => "planner",
        PluginKind::Attack => "attack",
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound(format!("plugin {id} not found"))
}
