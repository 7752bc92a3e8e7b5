//! `cargo xtask chaos [--minutes N] [--seed S] [--backend sqlite|postgres|both] [--engines N] [--ci]`:
//! a workload against real engines while faults are injected, then a checker over the
//! recorded history (see `checker`). The fault schedule is drawn from the seed (printed
//! at start): the same seed replays the same schedule, not the same interleaving.
//!
//! SQLite runs one engine (its file on a small ext4 image in a mount namespace of its own,
//! for the disk faults); PostgreSQL runs one to three on a private cluster of the harness's own
//! (never a shared server), reached through a TCP proxy that can delay or reset. Engines
//! run under libfaketime when it is installed (Debian `faketime`) so that their clocks
//! can be stepped; the sink and the harness keep the real clock.

mod checker;
mod engines;
mod faults;
mod history;
mod proxy;
mod sink;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use engines::{EngineProc, Recipe, SmallDisk};
use history::{FinalExecutor, FinalPlan, FinalState, History, Terms};

/// The harness's wall clock: ms since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

struct Settings {
    minutes: f64,
    seed: u64,
    backends: Vec<Backend>,
    engines: usize,
    ci: bool,
}

fn settings(args: &[String]) -> anyhow::Result<Settings> {
    let mut s = Settings {
        minutes: 5.0,
        seed: (now_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16,
        backends: vec![Backend::Sqlite, Backend::Postgres],
        engines: 3,
        ci: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().context(format!("{arg} needs a value"));
        match arg.as_str() {
            "--minutes" => s.minutes = value()?.parse()?,
            "--seed" => s.seed = value()?.parse()?,
            "--engines" => s.engines = value()?.parse::<usize>()?.clamp(1, 3),
            "--backend" => {
                s.backends = match value()?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    other => bail!("--backend sqlite|postgres|both, not {other}"),
                }
            }
            "--ci" => s.ci = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(s)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let settings = settings(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives below the root")?.to_path_buf();
    println!("chaos: seed {} ({})", settings.seed, if settings.ci { "CI schedules" } else { "randomized" });
    let binary = crate::bench::build_debug(&root)?;
    let wasm = crate::bench::build_plugins(&root, &["chaos-witness"])?.join("chaos_witness.wasm");
    // Workers enough that the proxy's and the sink's tasks never wait behind the harness.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(6).enable_all().build()?;
    let mut failed = false;
    for backend in &settings.backends {
        let report = runtime.block_on(campaign(&settings, *backend, &binary, &wasm))?;
        println!("{report}");
        failed |= !report.violations.is_empty();
    }
    if failed {
        bail!("the checker found violations (replay with --seed {})", settings.seed);
    }
    Ok(())
}

/// The engines' configuration: short deadlines, so that leases lapse and the reaper acts
/// within a run; a claim-ahead window; a cap over all replicas; every event to the sink.
fn engine_config(sink: &str, ci: bool) -> String {
    let deadline = if ci { 3 } else { 5 };
    format!(
        "claim_ahead_ms = 500\nrun_deadline_seconds = {deadline}\nlease_margin_seconds = 2\nreaper_interval_seconds = 1\n\
         misfire_grace_seconds = 30\nshutdown_deadline_seconds = 2\n\n[budgets]\nmax_concurrent_attacks = {CAP}\n\n\
         [[webhooks]]\nname = \"chaos\"\nurl = \"{sink}/events\"\nevents = [\"*\"]\nmax_backoff_seconds = 2\ntimeout_seconds = 2\n"
    )
}

/// `max_concurrent_attacks` of every run.
pub const CAP: usize = 6;

/// What one campaign found, printed as the checker's report.
pub struct Report {
    backend: Backend,
    seconds: u64,
    executors: usize,
    receipts: usize,
    halts: usize,
    blackouts: usize,
    injections: Vec<(String, usize, usize)>,
    violations: Vec<checker::Violation>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "== chaos report: {:?}, {} s", self.backend, self.seconds)?;
        writeln!(
            f,
            "executors {}, attacks at the sink {}, halts {}, blackouts {}",
            self.executors, self.receipts, self.halts, self.blackouts
        )?;
        for (kind, count, overlapping) in &self.injections {
            writeln!(f, "  {kind:<22} {count:>4} injected, {overlapping:>4} with work in flight")?;
        }
        if self.violations.is_empty() {
            writeln!(f, "violations: 0")
        } else {
            writeln!(f, "violations: {}", self.violations.len())?;
            for v in self.violations.iter().take(50) {
                writeln!(f, "  {v:?}")?;
            }
            Ok(())
        }
    }
}

/// Everything a campaign runs on.
pub struct World {
    pub dir: PathBuf,
    pub engines: Vec<Mutex<EngineProc>>,
    pub postgres: Option<cme_test_peers::postgres::PrivatePostgres>,
    pub proxy: Option<proxy::Proxy>,
    pub disk: Option<SmallDisk>,
    pub sink: sink::Sink,
    pub faults: Mutex<Vec<history::Fault>>,
    pub ops: Mutex<Vec<history::Op>>,
    pub http: reqwest::Client,
    /// Set when the injections are done: the workload stops.
    pub stop: std::sync::atomic::AtomicBool,
}

impl World {
    /// The API of a live engine (the `n`th's when it is up, else any).
    pub fn url(&self, n: usize) -> Option<String> {
        let count = self.engines.len();
        (0..count).map(|i| (n + i) % count).find_map(|i| self.engines[i].lock().unwrap().url.clone())
    }

    /// Starts engine `n` (never holding its lock while it starts: the workload and the
    /// proxy go on meanwhile).
    pub async fn start_engine(&self, n: usize) -> anyhow::Result<()> {
        let (recipe, log) = self.engines[n].lock().unwrap().plan();
        let launched = tokio::task::spawn_blocking(move || engines::launch(&recipe, &log)).await??;
        self.engines[n].lock().unwrap().install(launched);
        Ok(())
    }

    /// Sends `signal` to engine `n` and waits for it to exit; its exit status.
    pub async fn end_engine(&self, n: usize, signal: &str) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = {
            let mut engine = self.engines[n].lock().unwrap();
            engine.signal(signal)?;
            engine.take().context("not running")?
        };
        Ok(tokio::task::spawn_blocking(move || child.wait()).await??)
    }

    pub fn record(&self, op: history::Op) {
        self.ops.lock().unwrap().push(op);
    }

    /// Whether some engine has an executor claimed or running now.
    pub async fn work_in_flight(&self) -> bool {
        let Some(url) = self.url(0) else { return false };
        let answer = self.http.get(format!("{url}/api/1/executors/?status=running&size=1")).send().await;
        match answer {
            Ok(r) if r.status().is_success() => {
                r.json::<Value>().await.is_ok_and(|doc| listed(&doc, "executors").is_some_and(|a| !a.is_empty()))
            }
            _ => false,
        }
    }
}

async fn campaign(settings: &Settings, backend: Backend, binary: &Path, wasm: &Path) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    // Kept when the campaign fails (its engines' logs say why); removed when it passes.
    let dir = tempfile::Builder::new().prefix("cme-chaos-").tempdir()?.keep();
    let dir = Kept(dir);
    let sink = sink::Sink::start().await?;
    let config = dir.path().join("cme.toml");
    std::fs::write(&config, engine_config(&sink.base, settings.ci))?;
    let faketime = Path::new(engines::LIBFAKETIME).exists();
    if !faketime {
        // CI installs it: there, clock faults are never skipped quietly.
        anyhow::ensure!(
            !cme_test_peers::peers_required(),
            "CME_REQUIRE_PEERS=1 but libfaketime is missing (apt-get install faketime)"
        );
        eprintln!("chaos: libfaketime missing (apt-get install faketime): no clock faults");
    }
    let (postgres, proxy, disk, database_url, count) = match backend {
        Backend::Sqlite => {
            let mount = dir.path().join("disk");
            let disk = SmallDisk::create(&mount, 64)?;
            (None, None, Some(disk), format!("sqlite://{}/cme.db?mode=rwc", mount.display()), 1)
        }
        Backend::Postgres => {
            let pg = cme_test_peers::postgres::PrivatePostgres::start(&dir.path().join("pg"))?;
            pg.psql("CREATE DATABASE chaos")?;
            let proxy = proxy::Proxy::start(pg.port).await?;
            let url = format!("postgres://postgres@127.0.0.1:{}/chaos", proxy.port);
            (Some(pg), Some(proxy), None, url, settings.engines)
        }
    };
    let mut engines = Vec::new();
    for i in 0..count {
        let clock = faketime.then(|| dir.path().join(format!("clock-{i}")));
        if let Some(clock) = &clock {
            std::fs::write(clock, "+0\n")?;
        }
        let recipe = Recipe {
            binary: binary.to_path_buf(),
            dir: dir.path().to_path_buf(),
            database_url: database_url.clone(),
            config: config.clone(),
            clock,
            namespace: disk.as_ref().map(SmallDisk::pid),
        };
        let mut engine = EngineProc::new(recipe, i);
        let (recipe, log) = engine.plan();
        engine.install(tokio::task::spawn_blocking(move || engines::launch(&recipe, &log)).await??);
        engines.push(Mutex::new(engine));
    }
    let world = Arc::new(World {
        dir: dir.path().to_path_buf(),
        engines,
        postgres,
        proxy,
        disk,
        sink,
        faults: Default::default(),
        ops: Default::default(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
        stop: Default::default(),
    });
    install_witness(&world, wasm).await?;
    smoke(&world).await?;

    let schedule = faults::schedule(settings.seed, backend, settings.ci, settings.minutes, faketime, count);
    match schedule.whole {
        true => println!("chaos: {backend:?}, {count} engine(s), {} injections", schedule.items.len()),
        false => println!("chaos: {backend:?}, {count} engine(s), injections for {} s", schedule.span.as_secs()),
    }
    let workload = tokio::spawn(workload::drive(world.clone(), settings.seed));
    let injections = faults::inject(world.clone(), schedule).await?;
    workload.await??;

    // The quiet period: faults lifted, engines up, leases and the reaper given their time.
    faults::lift_all(&world).await?;
    let lease = Duration::from_secs(if settings.ci { 3 } else { 5 } + 2);
    tokio::time::sleep(lease + Duration::from_secs(1) + Duration::from_secs(10)).await;
    until_quiet(&world).await;
    until_delivered(&world).await;
    let final_state = final_state(&world).await?;
    // The events of the changes the state shows (some made while it was read).
    until_delivered(&world).await;
    let recorded = std::mem::take(&mut *world.sink.recorded.lock().unwrap());
    let history = History {
        terms: Terms {
            claim_ahead_ms: 500,
            max_concurrent_attacks: Some(CAP),
            in_flight_ms: 2_000,
            lease_ms: lease.as_millis() as i64,
        },
        ops: world.ops.lock().unwrap().clone(),
        receipts: recorded.receipts,
        touches: recorded.touches,
        deliveries: recorded.deliveries,
        faults: world.faults.lock().unwrap().clone(),
        final_state,
    };
    let violations = checker::check(&history);
    if !violations.is_empty() {
        // The campaign's directory is kept already (see `Kept`): the history joins its logs.
        std::fs::write(dir.path().join("history.txt"), format!("{history:#?}"))?;
        eprintln!("chaos: the history and the engines' logs are kept in {}", dir.path().display());
    }
    drop(world);
    if violations.is_empty() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
    Ok(Report {
        backend,
        seconds: started.elapsed().as_secs(),
        executors: history.final_state.executors.len(),
        receipts: history.receipts.len(),
        halts: history.ops.iter().filter(|o| o.action == history::Action::Halt && o.answer.done()).count(),
        blackouts: history
            .ops
            .iter()
            .filter(|o| matches!(o.action, history::Action::Blackout { .. }) && o.answer.done())
            .count(),
        injections,
        violations,
    })
}

/// A campaign's directory: removed only once its campaign has ended without an error.
struct Kept(PathBuf);

impl Kept {
    fn path(&self) -> &Path {
        &self.0
    }
}

/// Uploads the witness attack and grants it the sink.
async fn install_witness(world: &World, wasm: &Path) -> anyhow::Result<()> {
    let url = world.url(0).context("no engine")?;
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let uploaded = world
        .http
        .post(format!("{url}/api/1/plugins/"))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await?;
    anyhow::ensure!(uploaded.status().as_u16() == 201, "upload: {}", uploaded.text().await?);
    let grant = json!({"http": {"urls": [format!("{}/*", world.sink.base)]}});
    let granted = world.http.put(format!("{url}/api/1/plugins/chaos-witness@0.1.0/grant")).json(&grant).send().await?;
    anyhow::ensure!(granted.status().is_success(), "grant: {}", granted.text().await?);
    Ok(())
}

/// A smoke run at offset +0: one plan fires and reaches the sink before any fault.
async fn smoke(world: &World) -> anyhow::Result<()> {
    let url = world.url(0).context("no engine")?;
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1_500);
    let body = workload::plan_body("smoke", &world.sink.base, workload::When::At(due), false);
    let sent = now_ms();
    let answer = world.http.post(format!("{url}/api/1/plans/")).json(&body).send().await?;
    let status = answer.status().as_u16();
    let doc: Value = answer.json().await.unwrap_or_default();
    world.record(history::Op {
        action: history::Action::Create {
            name: "smoke".into(),
            id: doc["id"].as_str().map(str::to_string),
            recurring: false,
            forbid: false,
        },
        sent,
        answered: now_ms(),
        answer: history::Answer::of(Some(status)),
    });
    anyhow::ensure!(status == 201, "the smoke plan: {status} {doc}");
    for _ in 0..200 {
        if world.sink.recorded.lock().unwrap().receipts.iter().any(|r| r.plan == "smoke") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the smoke plan never reached the sink; see the engines' logs in {}", world.dir.display())
}

/// Waits (up to a minute) until no executor is running anywhere.
async fn until_quiet(world: &World) {
    for _ in 0..120 {
        if !world.work_in_flight().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A list document's items: at the top (the original's lists) or embedded (HAL).
fn listed<'a>(doc: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    doc[key].as_array().or_else(|| doc["_embedded"][key].as_array())
}

/// Waits (up to two minutes) until the outbox holds no pending event: deliveries a killed
/// engine held wait out their lease (2 s per event of its batch, plus 10 s), and events
/// reach the webhook in order, so later ones wait behind them.
async fn until_delivered(world: &World) {
    for _ in 0..240 {
        let Some(url) = world.url(0) else { return };
        let listed = world.http.get(format!("{url}/api/1/webhooks/")).send().await;
        let doc: Value = match listed {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        let pending: u64 = listed_items(&doc).iter().map(|w| w["pending"].as_u64().unwrap_or(1)).sum();
        if doc.is_object() && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn listed_items(doc: &Value) -> Vec<Value> {
    listed(doc, "webhooks").cloned().unwrap_or_default()
}

/// Every page of a list (`key`), following `_links.next`.
async fn all_pages(world: &World, first: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    let base = world.url(0).context("no engine up")?;
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next {
        let doc: Value = world.http.get(format!("{base}{path}")).send().await?.error_for_status()?.json().await?;
        items.extend(listed(&doc, key).cloned().unwrap_or_default());
        next = doc["_links"]["next"]["href"].as_str().map(str::to_string);
    }
    Ok(items)
}

async fn final_state(world: &World) -> anyhow::Result<FinalState> {
    let mut state = FinalState { read_at: now_ms(), ..FinalState::default() };
    let ms = |v: &Value| {
        v.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map_or(0, |t| t.timestamp_millis())
    };
    for plan in all_pages(world, "/api/1/plans/?all=true&size=1000", "plans").await? {
        let id = plan["id"].as_str().unwrap_or_default().to_string();
        state.plans.insert(id, FinalPlan { paused: plan["paused"] == json!(true), deleted: false });
    }
    // Plans made and not listed: deleted (or never stored, which the checker tells apart).
    let base = world.url(0).context("no engine up")?;
    let ours: Vec<String> = world
        .ops
        .lock()
        .unwrap()
        .iter()
        .filter_map(|o| match &o.action {
            history::Action::Create { id: Some(id), .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let unlisted: Vec<String> = ours.into_iter().filter(|id| !state.plans.contains_key(id)).collect();
    for id in unlisted {
        let gone = world.http.get(format!("{base}/api/1/plans/{id}")).send().await?.status().as_u16() == 404;
        let deleted =
            gone && world.ops.lock().unwrap().iter().any(|o| o.action == history::Action::Delete { id: id.clone() });
        if deleted {
            state.plans.insert(id, FinalPlan { paused: false, deleted: true });
        }
    }
    for e in all_pages(world, "/api/1/executors/?executed=all&size=1000", "executors").await? {
        let text = |k: &str| e[k].as_str().map(str::to_string);
        let id = text("id").unwrap_or_default();
        state.executors.insert(
            id.clone(),
            FinalExecutor {
                id,
                plan_id: text("plan_id").unwrap_or_default(),
                status: text("status").unwrap_or_default(),
                error: text("error"),
                due: ms(&e["next_run_time"]),
                started: e["started_at"].as_str().map(|_| ms(&e["started_at"])),
            },
        );
    }
    let halt: Value = world.http.get(format!("{base}/api/1/halt")).send().await?.json().await?;
    state.halted = halt["halted"] == json!(true);
    Ok(state)
}
