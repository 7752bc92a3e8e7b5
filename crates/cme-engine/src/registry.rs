//! The plugin registry: which plugin versions exist (built in, or uploaded and stored),
//! their statuses and grants, which are loaded on this replica, and which version a
//! plan's ref means. The host only compiles and calls; everything it needs for a call
//! (the loaded plugin and its grant) comes from here.
//!
//! Every replica keeps its loaded set in step with the stored records: before resolving
//! a ref or running an attack it compares the store's plugin generation with its own
//! (one indexed read, at most once a second, or at once when it meets an id it does not
//! know) and loads, re-grants or unloads what changed. Nothing polls while idle.

use cme_model::RwLocked;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::host::{LoadedPlugin, PluginDescription, PluginHost, PluginHostError};
use crate::model::{AuditEvent, Grant, PluginChange, PluginKind, PluginRecord, PluginStatus, StoredUpload};
use crate::signatures::SignatureError;
use crate::{Engine, EngineError, Resource};

/// The largest component accepted by default (20 MiB): Cranelift cannot be interrupted,
/// so the size cap is what bounds an upload's compile time.
pub const DEFAULT_MAX_PLUGIN_BYTES: usize = 20 << 20;

/// How stale a replica's view of the registry may be before a run or plan re-reads it.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A plugin that ships with the engine: always enabled, with the grant the operator's
/// configuration gives it.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub plugin: LoadedPlugin,
    pub grant: Grant,
}

/// A plugin this replica can call.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) loaded: LoadedPlugin,
    pub(crate) grant: Grant,
    /// None for built-ins.
    record: Option<PluginRecord>,
}

impl Entry {
    fn builtin(&self) -> bool {
        self.record.is_none()
    }

    fn status(&self) -> PluginStatus {
        self.record.as_ref().map_or(PluginStatus::Enabled, |r| r.status)
    }

    fn id(&self) -> &str {
        &self.loaded.description.id
    }

    fn view(&self) -> PluginView {
        PluginView {
            description: self.loaded.description.clone(),
            builtin: self.builtin(),
            status: self.status(),
            grant: match &self.record {
                None => Some(self.grant.clone()),
                Some(record) => record.grant.clone(),
            },
            uploaded_by: self.record.as_ref().map(|r| r.uploaded_by.clone()),
            uploaded_at: self.record.as_ref().map(|r| r.uploaded_at),
            signed_by: self.record.as_ref().and_then(|r| r.signed_by.clone()),
        }
    }
}

/// What the API shows of a plugin, built-in or uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginView {
    pub description: PluginDescription,
    pub builtin: bool,
    pub status: PluginStatus,
    /// The operator's grant (built-ins: what they get from the configuration).
    pub grant: Option<Grant>,
    pub uploaded_by: Option<String>,
    pub uploaded_at: Option<DateTime<Utc>>,
    /// The trusted key that signed it (`name (SHA256:...)`).
    pub signed_by: Option<String>,
}

/// An upload as received.
pub struct Upload {
    pub wasm: Vec<u8>,
    /// The sha256 the uploader expects, hex.
    pub expected_sha256: Option<String>,
    /// A detached SSH signature over the bytes (the armored `.sig` text), see
    /// [`crate::signatures`].
    pub signature: Option<String>,
}

/// What an upload did.
pub struct Uploaded {
    pub plugin: PluginView,
    /// False when the same bytes were already stored under this id (idempotent).
    pub created: bool,
    pub compile_ms: u64,
}

/// This replica's registry.
pub(crate) struct Registry {
    state: RwLock<State>,
    builtins: Vec<Arc<Entry>>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
    /// Bumped whenever the loaded set, a status or a grant changes.
    changes: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The store's generation this view reflects.
    generation: Option<String>,
    checked: Option<Instant>,
    plugins: HashMap<String, Arc<Entry>>,
}

impl Registry {
    pub(crate) fn new(builtins: Vec<Builtin>) -> Registry {
        let builtins: Vec<Arc<Entry>> =
            builtins.into_iter().map(|b| Arc::new(Entry { loaded: b.plugin, grant: b.grant, record: None })).collect();
        let plugins = builtins.iter().map(|e| (e.id().to_string(), e.clone())).collect();
        Registry {
            state: RwLock::new(State { plugins, ..State::default() }),
            builtins,
            syncing: Default::default(),
            changes: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read_locked()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write_locked()
    }

    fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.read().plugins.get(id).cloned()
    }

    fn all(&self) -> Vec<Arc<Entry>> {
        self.read().plugins.values().cloned().collect()
    }
}

impl Engine {
    /// Validates an upload (size, digest, component of a supported world with allowed
    /// imports that compiles, a describe() that answers in time with valid info, name and
    /// refs free), then stores it `pending`. One upload compiles at a time; one that
    /// arrives meanwhile is refused as busy (429). A refused
    /// upload is audited with the reason.
    pub async fn upload_plugin(&self, upload: Upload, by: &str) -> Result<Uploaded, EngineError> {
        let size = upload.wasm.len();
        let result = self.try_upload(upload, by).await;
        if let Err(refusal) = &result {
            let audit = AuditEvent::action(by, "plugin.upload", format!("{size} bytes")).denied(refusal.to_string());
            if let Err(e) = self.ports.audit.insert_audit(&[audit]).await {
                tracing::error!(error = %e, "cannot audit a refused upload");
            }
            tracing::warn!(by, size, reason = %refusal, "plugin upload refused");
        }
        result
    }

    async fn try_upload(&self, upload: Upload, by: &str) -> Result<Uploaded, EngineError> {
        too_large(&upload.wasm, self.config.max_plugin_bytes)?;
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&upload.wasm));
        if let Some(expected) = &upload.expected_sha256
            && !expected.trim().eq_ignore_ascii_case(&sha256)
        {
            return Err(EngineError::DigestMismatch { expected: expected.clone(), actual: sha256 });
        }
        // Before compiling: a refused signature costs nothing.
        let signer = self.config.trusted_keys.judge(&upload.wasm, upload.signature.as_deref())?;
        // One compile at a time (it takes both cores); another upload meanwhile is told to
        // come back rather than queued, so that uploads cannot pile up compiles.
        let _one_at_a_time = self
            .uploads
            .try_lock()
            .map_err(|_| EngineError::Busy("another plugin upload is being compiled; try again in a moment".into()))?;
        let started = Instant::now();
        let loaded = load_upload(self.host.as_ref(), &upload.wasm).await?;
        let compile_ms = started.elapsed().as_millis() as u64;
        self.sync_plugins(true).await?;
        self.check_clash(&loaded.description)?;
        let d = &loaded.description;
        let now = Utc::now();
        let record = PluginRecord {
            id: d.id.clone(),
            name: d.name.clone(),
            version: d.version.clone(),
            kind: d.kind,
            sha256: sha256.clone(),
            size: upload.wasm.len() as u64,
            status: PluginStatus::Pending,
            grant: None,
            uploaded_by: by.to_string(),
            uploaded_at: now,
            updated_at: now,
            signed_by: signer.as_ref().map(ToString::to_string),
        };
        let signed = signer.map(|s| format!(", signed by {s}")).unwrap_or_default();
        let audit = AuditEvent::action(by, "plugin.upload", format!("{} (sha256 {sha256}{signed})", d.id));
        let created = match self.ports.plugins.insert_plugin(&record, &upload.wasm, &audit).await? {
            StoredUpload::Inserted => true,
            StoredUpload::AlreadyStored => false,
            StoredUpload::Conflict { sha256: stored } => {
                return Err(EngineError::VersionTaken { id: d.id.clone(), stored });
            }
        };
        let id = d.id.clone();
        if created {
            // Loaded already: the sync that follows takes it as is instead of compiling again.
            let entry = Arc::new(Entry { loaded, grant: Grant::default(), record: Some(record) });
            self.registry.write().plugins.insert(id.clone(), entry);
            self.registry.changes.fetch_add(1, Ordering::SeqCst);
        }
        self.sync_plugins(true).await?;
        tracing::info!(plugin = %id, %sha256, compile_ms, created, "plugin uploaded");
        Ok(Uploaded { plugin: self.plugin_view(&id).await?, created, compile_ms })
    }

    /// Sets an uploaded plugin's grant and enables it (a pending plugin is approved).
    pub async fn grant_plugin(&self, id: &str, grant: &Value, by: &str) -> Result<PluginView, EngineError> {
        let grant = Grant::from_json(grant)?;
        grant.check_credentials(&self.config.http_credentials)?;
        let record = self.uploaded_record(id).await?;
        self.check_signed(&record)?;
        let detail = serde_json::to_string(&grant).unwrap_or_default();
        let change = PluginChange { status: Some(PluginStatus::Enabled), grant: Some(grant) };
        self.change_plugin(id, change, AuditEvent::action(by, "plugin.grant", format!("{id}: {detail}"))).await
    }

    /// Enables or disables an uploaded plugin. Enabling needs a grant.
    pub async fn set_plugin_enabled(&self, id: &str, enabled: bool, by: &str) -> Result<PluginView, EngineError> {
        let record = self.uploaded_record(id).await?;
        if enabled && record.grant.is_none() {
            return Err(EngineError::NoGrant { id: id.to_string() });
        }
        if enabled {
            self.check_signed(&record)?;
        }
        let (status, action) =
            if enabled { (PluginStatus::Enabled, "plugin.enable") } else { (PluginStatus::Disabled, "plugin.disable") };
        self.change_plugin(id, PluginChange { status: Some(status), grant: None }, AuditEvent::action(by, action, id))
            .await
    }

    /// Deletes an uploaded plugin unless executors still to run use it. (Its bytes go;
    /// its audit events and the plans that used it stay.)
    pub async fn delete_plugin(&self, id: &str, by: &str) -> Result<(), EngineError> {
        self.uploaded_record(id).await?;
        match self.ports.plugins.delete_plugin(id, &AuditEvent::action(by, "plugin.delete", id)).await? {
            None => Err(EngineError::not_found(Resource::Plugin, id)),
            Some(0) => {
                self.sync_plugins(true).await?;
                Ok(())
            }
            Some(executors) => Err(EngineError::PluginInUse { id: id.to_string(), executors }),
        }
    }

    /// Every plugin, built-in and uploaded, by name then version.
    pub async fn plugin_views(&self) -> Result<Vec<PluginView>, EngineError> {
        self.sync_plugins(false).await?;
        let mut all: Vec<PluginView> = self.registry.all().iter().map(|e| e.view()).collect();
        all.sort_by(|a, b| {
            (&a.description.name, a.description.semver()).cmp(&(&b.description.name, b.description.semver()))
        });
        Ok(all)
    }

    pub async fn plugin_view(&self, id: &str) -> Result<PluginView, EngineError> {
        self.sync_plugins(false).await?;
        self.registry.get(id).map(|e| e.view()).ok_or_else(|| EngineError::not_found(Resource::Plugin, id))
    }

    /// Changes whenever this replica's plugins change (loaded set, statuses, grants), so
    /// that callers may cache what they render of [`Engine::plugin_views`].
    pub fn plugins_generation(&self) -> u64 {
        self.registry.changes.load(Ordering::SeqCst)
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

    /// The plugin of `kind` a plan's `reference` names: `module:Class` (or `module.Class`)
    /// for the newest enabled version, `module:Class@1.2.0` for that version. `field`
    /// locates the ref in the request.
    pub(crate) async fn resolve_plugin(
        &self,
        kind: PluginKind,
        reference: &str,
        field: &str,
    ) -> Result<Arc<Entry>, EngineError> {
        self.sync_plugins(false).await?;
        match self.try_resolve(kind, reference, field) {
            // Uploaded on another replica a moment ago? Look again before refusing.
            Err(_) => {
                self.sync_plugins(true).await?;
                self.try_resolve(kind, reference, field)
            }
            found => found,
        }
    }

    fn try_resolve(&self, kind: PluginKind, reference: &str, field: &str) -> Result<Arc<Entry>, EngineError> {
        let (wanted, version) = match reference.rsplit_once('@') {
            Some((r, v)) => (self.canonical_ref(r), Some(v)),
            None => (self.canonical_ref(reference), None),
        };
        let of_kind: Vec<Arc<Entry>> =
            self.registry.all().into_iter().filter(|e| e.loaded.description.kind == kind).collect();
        let answering: Vec<&Arc<Entry>> =
            of_kind.iter().filter(|e| e.loaded.description.refs.contains(&wanted)).collect();
        if answering.is_empty() {
            let mut known: Vec<String> =
                of_kind.iter().filter_map(|e| e.loaded.description.refs.first().cloned()).collect();
            known.sort();
            known.dedup();
            return Err(EngineError::UnknownRef { kind, reference: reference.to_string(), known, field: field.into() });
        }
        let newest =
            |a: &&&Arc<Entry>, b: &&&Arc<Entry>| a.loaded.description.semver().cmp(&b.loaded.description.semver());
        let pinned: Vec<&Arc<Entry>> =
            answering.iter().copied().filter(|e| version.is_none_or(|v| e.loaded.description.version == v)).collect();
        if pinned.is_empty() {
            let mut available: Vec<&Arc<Entry>> = answering.clone();
            available.sort_by_key(|a| a.loaded.description.semver());
            return Err(EngineError::NoSuchVersion {
                kind,
                reference: wanted,
                version: version.unwrap_or_default().to_string(),
                available: available.iter().map(|e| e.loaded.description.version.clone()).collect(),
                field: field.into(),
            });
        }
        if let Some(found) =
            pinned.iter().filter(|e| e.status() == PluginStatus::Enabled && self.vouched(e)).max_by(newest)
        {
            return Ok((*found).clone());
        }
        let blocked = pinned.iter().max_by(newest).expect("not empty");
        let id = blocked.id().to_string();
        Err(match blocked.status() {
            PluginStatus::Enabled => SignatureError::Unsigned(id).into(),
            PluginStatus::Pending => EngineError::PluginPending { kind, id, field: field.into() },
            _ => EngineError::PluginDisabled { kind, id, field: field.into() },
        })
    }

    /// The plugin to run for an executor, or why it may not run now.
    pub(crate) async fn runnable(&self, plugin_id: &str) -> Result<Result<Arc<Entry>, String>, EngineError> {
        self.sync_plugins(self.registry.get(plugin_id).is_none()).await?;
        Ok(match self.registry.get(plugin_id) {
            Some(entry) if !self.vouched(&entry) => Err(SignatureError::Unsigned(plugin_id.to_string()).to_string()),
            Some(entry) => match entry.status() {
                PluginStatus::Enabled => Ok(entry),
                PluginStatus::Disabled => Err(format!("plugin {plugin_id} is disabled")),
                PluginStatus::Pending => Err(format!("plugin {plugin_id} is pending approval")),
            },
            None => Err(format!("plugin {plugin_id} is not in the registry (deleted?)")),
        })
    }

    /// The grant of a plugin as it stands, whatever its status (None: not in the
    /// registry): what an HTTP revert it armed is sent with.
    pub(crate) async fn grant_of(&self, plugin_id: &str) -> Option<cme_grant::Grant> {
        if let Err(error) = self.sync_plugins(self.registry.get(plugin_id).is_none()).await {
            tracing::warn!(plugin_id, %error, "cannot read the registry for a revert's grant");
        }
        self.registry.get(plugin_id).map(|entry| entry.grant.clone())
    }

    /// Whether the signature policy lets this plugin run (built-ins always).
    fn vouched(&self, entry: &Entry) -> bool {
        entry.record.as_ref().is_none_or(|r| self.config.trusted_keys.vouches_for(r.signed_by.as_deref()))
    }

    /// Brings this replica's loaded set in step with the stored records. Without
    /// `force`, at most once per [`SYNC_INTERVAL`].
    pub(crate) async fn sync_plugins(&self, force: bool) -> Result<(), EngineError> {
        let fresh = |state: &State| state.checked.is_some_and(|t| t.elapsed() < SYNC_INTERVAL);
        if !force && fresh(&self.registry.read()) {
            return Ok(());
        }
        // One sync at a time; the view stays readable meanwhile (loading a new plugin
        // compiles it, and runs and plans must not wait for that).
        let _one = self.registry.syncing.lock().await;
        let generation = self.ports.plugins.plugins_generation().await?;
        let (known_generation, old) = {
            let state = self.registry.read();
            (state.generation.clone(), state.plugins.clone())
        };
        if known_generation.as_deref() == Some(generation.as_str()) {
            self.registry.write().checked = Some(Instant::now());
            return Ok(());
        }
        let mut plugins: HashMap<String, Arc<Entry>> =
            self.registry.builtins.iter().map(|e| (e.id().to_string(), e.clone())).collect();
        for record in self.ports.plugins.plugin_records().await? {
            let grant = record.grant.clone().unwrap_or_default();
            let loaded = match old.get(&record.id).filter(|e| !e.builtin()) {
                Some(entry) => entry.loaded.clone(),
                None => match self.load_stored(&record.id).await? {
                    Some(loaded) => loaded,
                    None => continue,
                },
            };
            plugins.insert(record.id.clone(), Arc::new(Entry { loaded, grant, record: Some(record) }));
        }
        for gone in old.keys().filter(|id| !plugins.contains_key(*id)) {
            tracing::info!(plugin = %gone, "plugin unloaded");
        }
        let mut state = self.registry.write();
        state.plugins = plugins;
        state.generation = Some(generation);
        state.checked = Some(Instant::now());
        self.registry.changes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Compiles a stored plugin; None (logged) when it does not load on this engine.
    async fn load_stored(&self, id: &str) -> Result<Option<LoadedPlugin>, EngineError> {
        let Some(wasm) = self.ports.plugins.plugin_wasm(id).await? else { return Ok(None) };
        match self.host.load(&wasm).await {
            Ok(loaded) if loaded.description.id == id => {
                tracing::info!(plugin = %id, "plugin loaded from the registry");
                Ok(Some(loaded))
            }
            Ok(loaded) => {
                tracing::error!(plugin = %id, describes = %loaded.description.id, "a stored plugin describes itself as another plugin; not loaded");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(plugin = %id, error = %e, "a stored plugin does not load on this engine");
                Ok(None)
            }
        }
    }

    /// Applies a change (with its audit event) to an uploaded plugin.
    async fn change_plugin(
        &self,
        id: &str,
        change: PluginChange,
        audit: AuditEvent,
    ) -> Result<PluginView, EngineError> {
        if !self.ports.plugins.update_plugin(id, &change, Utc::now(), &audit).await? {
            return Err(EngineError::not_found(Resource::Plugin, id));
        }
        self.sync_plugins(true).await?;
        self.plugin_view(id).await
    }

    /// Refuses to grant or enable a plugin no trusted key vouches for when the engine
    /// accepts signed plugins only.
    fn check_signed(&self, record: &PluginRecord) -> Result<(), EngineError> {
        if self.config.trusted_keys.vouches_for(record.signed_by.as_deref()) {
            Ok(())
        } else {
            Err(SignatureError::Unsigned(record.id.clone()).into())
        }
    }

    /// With `require_signature`, disables every enabled upload that no trusted key vouches
    /// for (unsigned, or signed by a key since removed), each audited and logged: the flag
    /// holds for what was enabled before it was set.
    pub(crate) async fn disable_unsigned_plugins(&self) -> Result<usize, EngineError> {
        if !self.config.trusted_keys.required {
            return Ok(0);
        }
        let mut disabled = 0;
        for record in self.ports.plugins.plugin_records().await? {
            if record.status != PluginStatus::Enabled
                || self.config.trusted_keys.vouches_for(record.signed_by.as_deref())
            {
                continue;
            }
            let audit = AuditEvent::action(
                "engine",
                "plugin.disable",
                format!("{}: not signed by a trusted key (require_signature)", record.id),
            );
            let change = PluginChange { status: Some(PluginStatus::Disabled), grant: None };
            self.change_plugin(&record.id, change, audit).await?;
            tracing::warn!(plugin = %record.id, signed_by = record.signed_by.as_deref().unwrap_or("nobody"), "plugin disabled: require_signature is set and no trusted key signed it");
            disabled += 1;
        }
        Ok(disabled)
    }

    /// The stored record of an uploaded plugin; built-ins cannot be changed.
    async fn uploaded_record(&self, id: &str) -> Result<PluginRecord, EngineError> {
        match self.ports.plugins.plugin_record(id).await? {
            Some(record) => Ok(record),
            None if self.registry.builtins.iter().any(|b| b.id() == id) => {
                Err(EngineError::BuiltinPlugin { id: id.to_string() })
            }
            None => Err(EngineError::not_found(Resource::Plugin, id)),
        }
    }

    /// The host's spelling of a ref (`module.Class` -> `module:Class`); a malformed ref
    /// is kept as written and matches nothing.
    fn canonical_ref(&self, reference: &str) -> String {
        self.host.canonical_ref(reference).unwrap_or_else(|| reference.to_string())
    }

    /// Refuses a new plugin that takes a built-in's name, or a ref that another plugin
    /// (another name) already answers to.
    fn check_clash(&self, new: &PluginDescription) -> Result<(), EngineError> {
        let builtins: Vec<&PluginDescription> = self.registry.builtins.iter().map(|b| &b.loaded.description).collect();
        let all = self.registry.all();
        clash(new, &builtins, all.iter().map(|entry| &entry.loaded.description))
    }
}

/// Checks a component as an upload is checked before anything is stored: the size cap,
/// the host's validation (a supported world, imports the host provides, a describe() that
/// answers in time with valid info), and the built-ins' names and refs. `cme plugins
/// check` runs exactly this, offline; the errors are the upload's.
pub async fn check_upload(
    host: &dyn PluginHost,
    wasm: &[u8],
    max_bytes: usize,
    builtins: &[Builtin],
) -> Result<LoadedPlugin, EngineError> {
    too_large(wasm, max_bytes)?;
    let loaded = load_upload(host, wasm).await?;
    let builtins: Vec<&PluginDescription> = builtins.iter().map(|b| &b.plugin.description).collect();
    clash(&loaded.description, &builtins, builtins.iter().copied())?;
    Ok(loaded)
}

fn too_large(wasm: &[u8], max: usize) -> Result<(), EngineError> {
    if wasm.len() > max {
        return Err(EngineError::TooLarge { size: wasm.len(), max });
    }
    Ok(())
}

/// The host's validation of an upload, its refusal as the API words it.
async fn load_upload(host: &dyn PluginHost, wasm: &[u8]) -> Result<LoadedPlugin, EngineError> {
    host.load(wasm).await.map_err(|e| match e {
        PluginHostError::NotAPlugin(m) => EngineError::NotAPlugin(m),
        other => EngineError::NotAPlugin(other.to_string()),
    })
}

/// Why `new` cannot join: a built-in's name, or a ref another plugin (of another name)
/// answers to. Versions of one plugin share their refs.
fn clash<'a>(
    new: &PluginDescription,
    builtins: &[&PluginDescription],
    others: impl Iterator<Item = &'a PluginDescription>,
) -> Result<(), EngineError> {
    if builtins.iter().any(|b| b.name == new.name) {
        return Err(EngineError::BuiltinName { name: new.name.clone() });
    }
    for other in others {
        if other.name == new.name {
            continue;
        }
        if let Some(taken) = new.refs.iter().find(|r| other.refs.contains(r)) {
            return Err(EngineError::RefTaken { reference: taken.clone(), by: other.id.clone() });
        }
    }
    Ok(())
}
