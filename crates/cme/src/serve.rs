//! `cme serve`: wires the store, the wasm runtime, the engine and the API, and runs
//! until SIGTERM or SIGINT (then stops claiming, lets running attacks finish up to a
//! deadline, and exits 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use anyhow::Context;

use cme_api::{ApiState, Auth, HostPolicy};
use cme_engine::{Engine, EngineConfig, Storage};
use cme_runtime::{Runtime, RuntimeConfig};
use cme_store::{Store, StoreConfig};

use crate::ServeArgs;
use cme_cloud::ssh::{HostKeyPolicy, SshConfig};
use cme_runtime::SshBackend;

use crate::config::{FileConfig, SshFile, default_cache_dir, parse_tokens};
use crate::host::RuntimeHost;
use cme_grant::{Ec2Fence, Fences, SshFence};

const DEFAULT_BIND: &str = "127.0.0.1:5000";
const DEFAULT_DATABASE: &str = "sqlite://cme.db?mode=rwc";

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    // Held until the engine has stopped: dropping it writes out every line still queued.
    let _log = crate::logging::init(args.log_format.as_deref().or(file.log_format.as_deref()).unwrap_or("text"))?;
    actix_web::rt::System::new().block_on(run(args, file))
}

async fn run(args: ServeArgs, file: FileConfig) -> anyhow::Result<()> {
    // Installed first, so that everything counted from the start is kept; without it the
    // counting macros do nothing.
    let metrics = match file.metrics.unwrap_or(true) {
        true => Some(crate::metrics::install()?),
        false => None,
    };
    let sealing = credential_key(&file)?;
    let fences = fences(&file)?;
    let probe_fence = fences.probes.clone();
    file.budgets.validate().map_err(|e| anyhow::anyhow!("[budgets]: {e}"))?;
    let bind: SocketAddr = args.bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.parse().expect("valid default"));
    let mut tokens = file.tokens.iter().map(|t| t.to_token()).collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(text) = &args.tokens {
        tokens.extend(parse_tokens(text)?);
    }
    if tokens.is_empty() && !bind.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {bind} without API tokens: anyone who can reach it could fire attacks. \
             Configure tokens (--tokens admin:<secret> or [[tokens]] in the config file) or bind 127.0.0.1"
        );
    }
    let timezone_name = args.timezone.or(file.timezone).unwrap_or_else(|| "UTC".into());
    let timezone: chrono_tz::Tz = timezone_name
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown IANA time zone {timezone_name:?} (e.g. Europe/Madrid)"))?;
    let database_url = args.database_url.or(file.database_url.clone()).unwrap_or_else(|| DEFAULT_DATABASE.into());

    let webhooks = file.webhooks.iter().map(|w| w.to_webhook()).collect::<anyhow::Result<Vec<_>>>()?;
    cme_webhooks::Webhook::validate_all(&webhooks)?;
    remember_secrets(&tokens, &webhooks, &database_url);
    cme_secrets::add_secret_headers(&file.secret_headers);
    let subscriptions: Vec<cme_engine::Subscription> = webhooks.iter().map(|w| w.subscription()).collect();
    let mut store_config = StoreConfig::new(database_url.clone());
    store_config.credential_key = Some(sealing);
    store_config.subscriptions = subscriptions.clone();
    if let Some(full) = file.sqlite_synchronous_full {
        store_config.sqlite_synchronous_full = full;
    }
    let store: Arc<dyn Storage> = Arc::new(
        Store::connect(&store_config)
            .await
            .with_context(|| format!("opening the database {}", redact(&database_url)))?,
    );

    // Bound before the runtime starts, so that plugins can be kept off the API's sockets.
    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let own_sockets = vec![listener.local_addr().context("reading the bound address")?];
    let ec2 = Arc::new(ec2_backend(file.ec2.endpoint_url.clone()).await);
    let credentials = file.http.credentials().await?;
    let clouds = crate::clouds::clouds(&file.clouds, &file.ec2, &ec2, &file.http.credentials, &credentials)?;
    let undo_armed = Arc::new(tokio::sync::Notify::new());
    let credential_names: Vec<String> = credentials.iter().map(|c| c.name().to_string()).collect();
    let mut runtime_config = RuntimeConfig {
        cache_dir: Some(match args.cache_dir.or(file.cache_dir.clone()) {
            Some(dir) => dir,
            None => default_cache_dir()?,
        }),
        scripts_dir: args.scripts_dir.or(file.scripts_dir.clone()),
        ec2: Some(ec2),
        ssh: Some(ssh_backend(&file.ssh, &store, &undo_armed)),
        clouds,
        fences,
        own_sockets,
        budgets: file.budgets.clone(),
        ledger: Some(Arc::new(crate::ledger::StorageLedger(store.clone()))),
        ..RuntimeConfig::default()
    };
    runtime_config.http.credentials = credentials;
    if let Some(s) = file.run_deadline_seconds {
        runtime_config.run_limits.deadline = Duration::from_secs(s.max(1));
    }
    let run_deadline = runtime_config.run_limits.deadline;
    let calendar_fetch =
        crate::calendar_fetch::HttpCalendarFetch::new(&runtime_config.fences.http, &runtime_config.own_sockets)
            .context("preparing the HTTP client of calendar subscriptions")?;
    let runtime = Runtime::new(runtime_config).context("starting the wasm runtime")?;
    let host = RuntimeHost::new(runtime);
    let builtins = host.builtins().await?;

    let mut engine_config = EngineConfig {
        timezone,
        dry_run: args.dry_run || file.dry_run.unwrap_or(false),
        run_deadline,
        webhooks: subscriptions,
        http_credentials: credential_names,
        probes: probe_fence,
        undo_armed,
        ..EngineConfig::default()
    };
    if let Some(n) = file.max_concurrent_runs {
        engine_config.max_concurrent_runs = n;
    }
    if let Some(s) = file.misfire_grace_seconds {
        engine_config.default_grace = Duration::from_secs(s);
    }
    if let Some(ms) = file.claim_ahead_ms {
        engine_config.claim_ahead = Duration::from_millis(ms.min(10_000));
    }
    if let Some(s) = file.max_experiment_seconds {
        engine_config.max_experiment_seconds = Duration::from_secs(s.clamp(1, 7 * 86_400));
    }
    if let Some(s) = file.lease_margin_seconds {
        engine_config.lease_margin = Duration::from_secs(s);
    }
    if let Some(s) = file.reaper_interval_seconds {
        engine_config.reaper_interval = Duration::from_secs(s.max(1));
    }
    if let Some(s) = file.shutdown_deadline_seconds {
        engine_config.shutdown_deadline = Duration::from_secs(s);
    }
    let retention = |seconds: u64| (seconds > 0).then(|| Duration::from_secs(seconds));
    if let Some(s) = file.audit_retention_seconds {
        engine_config.audit_retention = retention(s);
    }
    if let Some(s) = file.run_log_retention_seconds {
        engine_config.run_log_retention = retention(s);
    }
    if let Some(n) = file.max_plans {
        engine_config.max_plans = n;
    }
    if let Some(n) = file.max_executors_ahead_per_plan {
        engine_config.max_executors_ahead_per_plan = usize::try_from(n.clamp(2, 100_000)).unwrap_or(1000);
    }
    if let Some(s) = file.recurring_horizon_seconds {
        engine_config.recurring_horizon = Duration::from_secs(s.max(1));
    }
    if let Some(n) = file.max_pending_executors {
        engine_config.max_pending_executors = n;
    }
    if let Some(n) = file.max_blackouts {
        engine_config.max_blackouts = n;
    }
    if let Some(bytes) = file.registry.max_plugin_bytes {
        engine_config.max_plugin_bytes = bytes;
    }
    engine_config.budgets = file.budgets.clone();
    let registry = &file.registry;
    engine_config.trusted_keys = cme_engine::TrustedKeys::new(
        registry.trusted_keys.iter().map(|(n, k)| (n.as_str(), k.as_str())),
        registry.require_signature,
    )?;
    if registry.require_signature && registry.trusted_keys.is_empty() {
        anyhow::bail!(
            "[registry] require_signature is on but no trusted_keys are configured: no upload could be accepted"
        );
    }
    engine_config.stop_conditions = file.stop_conditions.iter().map(|c| c.to_condition()).collect();
    if let Some(s) = file.deadman.database_after_seconds {
        engine_config.deadman.database_after = Duration::from_secs(s.max(1));
    }
    engine_config.deadman.heartbeat =
        file.deadman.heartbeat.as_ref().map(|h| {
            (h.to_condition(), Duration::from_secs(file.deadman.heartbeat_after_seconds.unwrap_or(30).max(1)))
        });
    let mut sender_config = cme_webhooks::SenderConfig::new(engine_config.engine_id.clone());
    if let Some(source) = &file.events_source {
        sender_config.source = source.clone();
    }
    let sender = cme_webhooks::Sender::new(store.clone(), webhooks, sender_config)?;
    let engine = Engine::new(store, Arc::new(host), builtins, engine_config);
    engine.set_calendar_fetch(Arc::new(calendar_fetch));
    engine.refresh_plugins(true).await.context("loading the uploaded plugins")?;
    engine.check_guards().await.context("checking [[stop_conditions]] and [deadman] heartbeat")?;
    engine.start();
    let (stop_sending, sending_stops) = tokio::sync::watch::channel(false);
    let sending = tokio::spawn(sender.run(sending_stops));

    let auth = Auth::new(tokens);
    if auth.open() {
        tracing::warn!("no API tokens configured: every local caller is admin");
    }
    let mut hosts = file.allowed_hosts.clone();
    if !bind.ip().is_unspecified() {
        hosts.push(bind.ip().to_string());
    }
    let hosts = HostPolicy::new(hosts);
    tracing::info!(hosts = ?hosts.hosts(), "serving these host names only");
    let render = metrics.map(|handle| -> cme_api::MetricsRender { Box::new(move || handle.render()) });
    let state = ApiState::with_metrics(
        engine.clone(),
        auth,
        hosts,
        cme_secrets::Redactor::new(file.secret_headers.clone()),
        render,
    );
    let server = HttpServer::new(move || cme_api::app(state.clone()))
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .with_context(|| format!("serving on {bind}"))?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    for addr in &addrs {
        tracing::info!(%addr, database = %redact(&database_url), %timezone, "cme listening");
        println!("cme listening on http://{addr}");
    }

    let serving = actix_web::rt::spawn(server);
    wait_for_signal().await;
    tracing::info!("shutting down: no new runs; waiting for running attacks");
    handle.stop(true).await;
    engine.shutdown().await;
    // The events of the last runs are stored; what cannot be sent in a few seconds waits
    // in the outbox for the next start.
    stop_sending.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), sending).await;
    let _ = serving.await;
    Ok(())
}

/// The operator's fences from `[ec2]`, `[ssh]`, `[http]` and `[probes]`; warns when no instance tag
/// fences the EC2 attacks in.
fn fences(file: &FileConfig) -> anyhow::Result<Fences> {
    let defaults = Fences::default();
    let fences = Fences {
        ec2: Ec2Fence {
            regions: file.ec2.regions.clone(),
            required_tags: file.ec2.required_tags.clone(),
            max_terminations_per_run: file
                .ec2
                .max_terminations_per_run
                .unwrap_or(defaults.ec2.max_terminations_per_run),
        },
        ssh: SshFence {
            max_sessions_per_run: file.ssh.max_sessions_per_run.unwrap_or(defaults.ssh.max_sessions_per_run),
        },
        http: file.http.fence.clone(),
        probes: file.probes.clone(),
    };
    fences.validate()?;
    if fences.ec2.required_tags.is_empty() {
        tracing::warn!(
            "no [ec2] required_tags configured: attacks may terminate or reach any instance a plan's filters match; \
             set e.g. required_tags = {{ Chaos = \"true\" }} to fence them in"
        );
    }
    Ok(fences)
}

/// Teaches the masker the secrets the configuration holds, before anything is logged
/// with them: plaintext token secrets, webhook secrets and the database's password
/// (`[[http.credentials]]` values are learnt as they are read).
fn remember_secrets(tokens: &[cme_api::Token], webhooks: &[cme_webhooks::Webhook], database_url: &str) {
    for token in tokens {
        if let cme_api::TokenSecret::Plain(secret) = &token.secret {
            cme_secrets::remember_pinned(secret);
        }
    }
    for secret in webhooks.iter().filter_map(|w| w.secret.as_deref()) {
        cme_secrets::remember_pinned(secret);
    }
    if let Some(password) = url::Url::parse(database_url).ok().and_then(|u| u.password().map(str::to_string)) {
        cme_secrets::remember_pinned(&password);
        cme_secrets::remember_pinned(&percent_encoding::percent_decode_str(&password).decode_utf8_lossy());
    }
    if let Ok(key) = std::env::var("CME_CREDENTIAL_KEY") {
        cme_secrets::remember_pinned(&key);
    }
}

/// The key credentials are sealed with: `CME_CREDENTIAL_KEY`, or the key file (created
/// owner-only with a fresh key at first start; refused when others may read it).
fn credential_key(file: &FileConfig) -> anyhow::Result<cme_store::CredentialKey> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Ok(hex) = std::env::var("CME_CREDENTIAL_KEY") {
        return cme_store::CredentialKey::from_hex(&hex).map_err(|e| anyhow::anyhow!("CME_CREDENTIAL_KEY: {e}"));
    }
    let path = file.credential_key_file.clone().unwrap_or_else(|| "cme.key".into());
    match std::fs::metadata(&path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "the credential key file {} may be read by others (mode {mode:o}): chmod 600 it",
                    path.display()
                );
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            cme_store::CredentialKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = cme_store::CredentialKey::generate();
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating the credential key file {}", path.display()))?;
            writeln!(out, "{}", key.to_hex())?;
            tracing::warn!(path = %path.display(), "created a credential key file: back it up; stored credentials cannot be read without it");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The SSH backend: keys come from the credential store, host keys are checked by policy.
fn ssh_backend(file: &SshFile, store: &Arc<dyn Storage>, undo_armed: &Arc<tokio::sync::Notify>) -> SshBackend {
    let mut config = SshConfig::default();
    if let Some(path) = &file.known_hosts {
        config.known_hosts = path.clone();
    }
    if let Some(policy) = file.host_key_policy {
        if policy == HostKeyPolicy::Off {
            tracing::warn!("[ssh] host_key_policy = \"off\": host keys are not checked (for tests only)");
        }
        config.policy = policy;
    }
    if let Some(seconds) = file.connect_timeout_seconds {
        config.connect_timeout = Duration::from_secs(seconds.max(1));
    }
    SshBackend {
        config,
        store: Arc::new(crate::ssh_store::StoredSsh { storage: store.clone(), undo_armed: undo_armed.clone() }),
    }
}

/// The EC2 backend from the standard AWS chain. A default region keeps start-up from
/// asking the instance metadata service for one (every call names its region anyway).
pub(crate) async fn ec2_backend(endpoint_url: Option<String>) -> cme_cloud::ec2::Ec2 {
    use aws_config::{BehaviorVersion, Region};
    let base = aws_config::defaults(BehaviorVersion::latest()).region(Region::new("us-east-1")).load().await;
    let config = cme_cloud::ec2::Ec2Config { endpoint_url, ..Default::default() };
    cme_cloud::ec2::Ec2::new(base, config)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A database URL without its password (`postgres://user:***@host/db`).
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://cme:s3cr%40t@db.internal:5432/cme"),
            "postgres://cme:***@db.internal:5432/cme"
        );
        assert_eq!(super::redact("sqlite://cme.db?mode=rwc"), "sqlite://cme.db?mode=rwc");
        assert_eq!(super::redact("postgres://cme@db/cme"), "postgres://cme@db/cme");
    }
}
