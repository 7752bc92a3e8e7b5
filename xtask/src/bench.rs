//! The engine's benchmark: the real release binary, driven over HTTP by `wrk` and by
//! plain requests, with databases seeded through the `sqlite3` CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub(crate) struct Settings {
    /// Seconds per wrk run.
    pub(crate) duration: u64,
    /// Executors stored for the paging figures.
    pub(crate) large: u64,
    /// Pending executors at each step of the cost table.
    pub(crate) pending_steps: Vec<u64>,
    /// Executors due in the burst's 10-second window.
    pub(crate) burst: u64,
    /// Recurring plans at each step of their cost table; the last for the other figures.
    pub(crate) recurring_steps: Vec<u64>,
    /// Seconds over which idle CPU is counted with the recurring plans stored.
    pub(crate) recurring_idle: u64,
    /// Time between the 20 firings of a lateness figure.
    pub(crate) firing_gap: Duration,
    /// Seconds over which idle CPU is counted (a tick is 10 ms: 3 s still shows any
    /// polling).
    pub(crate) idle: u64,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            duration: 3,
            large: 100_000,
            pending_steps: vec![10_000, 100_000],
            burst: 10_000,
            recurring_steps: vec![1_000, 10_000],
            recurring_idle: 3,
            idle: 3,
            firing_gap: Duration::from_millis(250),
        }
    } else {
        Settings {
            duration: 10,
            large: 1_000_000,
            pending_steps: vec![10_000, 100_000, 1_000_000],
            burst: 100_000,
            recurring_steps: vec![1_000, 10_000, 100_000],
            recurring_idle: 60,
            idle: 10,
            firing_gap: Duration::from_millis(500),
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let binary = build_release(&root)?;
    ensure_tools()?;
    println!("machine: {} cores, load average {}", cores(), load_average());
    let started = Steal::now();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    // `--only a,b`: just the named groups (http, paging, costs, lateness, burst, recurring, halt,
    // guards, original, replicas, upload, plugin, experiments).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect());
    // A group starts once the ones before it are on disk (see `settle`).
    let wanted = |group: &str| {
        let wanted = only.as_ref().is_none_or(|only| only.iter().any(|o| o == group));
        if wanted {
            settle();
        }
        wanted
    };
    let measured = runtime.block_on(async {
        if wanted("http") {
            http_throughput(&binary, &settings, &mut rows).await?;
        }
        if wanted("paging") {
            crate::scale_bench::paging(&binary, &settings, &mut rows).await?;
        }
        if wanted("costs") {
            crate::scale_bench::pending_costs(&binary, &settings, &mut rows).await?;
        }
        if wanted("lateness") {
            firing_lateness(&binary, &settings, &mut rows).await?;
        }
        if wanted("burst") {
            crate::scale_bench::burst(&binary, &settings, &mut rows).await?;
        }
        if wanted("recurring") {
            crate::scale_bench::recurring_plans(&binary, &settings, &mut rows).await?;
        }
        if wanted("halt") {
            halt_latency(&binary, &mut rows).await?;
        }
        if wanted("guards") {
            stop_condition_latency(&binary, &mut rows).await?;
        }
        if wanted("original") {
            side_by_side(&root, &binary, &settings, &mut rows).await?;
        }
        if wanted("replicas") {
            cross_replica_halt(&binary, &mut rows).await?;
        }
        if wanted("upload") {
            plugin_upload(&root, &binary, &mut rows).await?;
        }
        if wanted("plugin") {
            plugin_calls(&root, &binary, &mut rows)?;
        }
        if wanted("experiments") {
            crate::experiment_bench::abort_to_reverted(&binary, &mut rows).await?;
        }
        anyhow::Ok(())
    });
    // The rows measured before a group failed are printed too.
    println!("\n| figure | measured | target |\n| --- | --- | --- |");
    for (figure, measured, target) in rows {
        println!("| {figure} | {measured} | {target} |");
    }
    println!(
        "\nmachine load average after: {}; host steal over the whole run: {}",
        load_average(),
        Steal::now().since(started)
    );
    measured
}

/// The release binary to measure: `CME_BENCH_BINARY` when set (to compare builds of two
/// commits in one sitting, alternating), otherwise this checkout's, built now.
fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(binary) = std::env::var_os("CME_BENCH_BINARY") {
        eprintln!("measuring {}", PathBuf::from(&binary).display());
        return Ok(binary.into());
    }
    eprintln!("building cme (release)...");
    let mut build = cargo_as_from_the_shell(root);
    build.args(["build", "--release", "--locked", "-p", "cme"]);
    if !build.status()?.success() {
        bail!("cargo build --release -p cme failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/cme"))
}

/// Builds `cme` in the debug profile (the one the tests build: never a second profile of
/// aws-sdk-ec2 just for the chaos harness); `CME_CHAOS_BINARY` names another binary.
pub(crate) fn build_debug(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(binary) = std::env::var_os("CME_CHAOS_BINARY") {
        return Ok(binary.into());
    }
    eprintln!("building cme (debug)...");
    let mut build = cargo_as_from_the_shell(root);
    build.args(["build", "--locked", "-p", "cme"]);
    if !build.status()?.success() {
        bail!("cargo build -p cme failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug/cme"))
}

/// `cargo` in `root` as from the shell. `cargo xtask` (cargo run) hands this process its
/// own CARGO_* variables and library path; passed on, they change build scripts'
/// fingerprints and a nested build recompiles the dependencies (aws-sdk-ec2: ten minutes)
/// that a plain `cargo build --release` just built.
fn cargo_as_from_the_shell(root: &Path) -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(root);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR") || key == "LD_LIBRARY_PATH" {
            cargo.env_remove(key.as_ref());
        }
    }
    cargo
}

/// A plugin call as the engine makes it (instantiate + call, from a task on the runtime's
/// own threads), timed by the release binary's local runner: `cme plugins run FILE
/// --repeat N`. The no-op attack is the hostile test plugin in mode `noop`; the planner is
/// the exact planner. (`cargo bench -p cme-runtime` prints the same figures and the
/// on-demand allocator's, for profiling; its first build compiles the runtime's
/// dependencies for that package alone.)
fn plugin_calls(root: &Path, binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let built = build_plugins(root, &["hostile", "exact-planner"])?;
    let date = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let calls = [
        ("no-op attack", built.join("hostile.wasm"), json!({"mode": "noop"})),
        ("exact planner", built.join("exact_planner.wasm"), json!({"date": date})),
    ];
    for (what, wasm, args) in calls {
        let output = Command::new(binary)
            .args(["plugins", "run"])
            .arg(&wasm)
            .args(["--args", &args.to_string(), "--repeat", "20000", "--output", "json"])
            .output()?;
        if !output.status.success() {
            bail!("cme plugins run {}: {}", wasm.display(), String::from_utf8_lossy(&output.stderr));
        }
        let doc: Value = serde_json::from_slice(&output.stdout)?;
        let us = |key: &str| doc["timing"][key].as_u64().unwrap_or(0) as f64;
        rows.push((
            format!(
                "instantiate+run {what} (cme plugins run --repeat 20000, pooling allocator, as the engine calls it)"
            ),
            format!("median {:.1} µs, p99 {:.1} µs", us("median_us"), us("p99_us")),
            "median <= 50 µs".into(),
        ));
    }
    Ok(())
}

/// Builds packages of `plugins/` for wasm32-wasip2 as cme-plugins' build script does;
/// answers the directory of the built components.
pub(crate) fn build_plugins(root: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    // One at a time: each enables its own world's feature of the SDK.
    for package in packages {
        let mut build = cargo_as_from_the_shell(&root.join("plugins"));
        build
            .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "-p", package, "--target-dir"])
            .arg(&target);
        if !build.status()?.success() {
            bail!("building {package} for wasm32-wasip2 failed");
        }
    }
    Ok(target.join("wasm32-wasip2/release"))
}

fn ensure_tools() -> anyhow::Result<()> {
    for (tool, package) in [("wrk", "wrk"), ("sqlite3", "sqlite3")] {
        if Command::new("which").arg(tool).stdout(Stdio::null()).status()?.success() {
            continue;
        }
        eprintln!("installing {package} (apt-get)...");
        let status = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null"
                ),
            ])
            .status()?;
        if !status.success() {
            bail!("{tool} is needed: apt-get install {package}");
        }
    }
    Ok(())
}

/// A running release engine.
pub(crate) struct Engine {
    child: Child,
    pub(crate) url: String,
    pub(crate) started_to_ready: Duration,
}

impl Engine {
    pub(crate) fn start(binary: &Path, dir: &Path, extra: &[&str]) -> anyhow::Result<Engine> {
        Engine::start_on(binary, dir, &format!("sqlite://{}?mode=rwc", dir.join("cme.db").display()), extra)
    }

    /// [`Engine::start`] logging at `level` (`info`: what `cme serve` logs by default,
    /// the access log included) instead of the bench's default `warn`.
    fn start_logging(binary: &Path, dir: &Path, extra: &[&str], level: &str) -> anyhow::Result<Engine> {
        let database = format!("sqlite://{}?mode=rwc", dir.join("cme.db").display());
        Engine::spawn(binary, dir, &database, extra, level)
    }

    pub(crate) fn start_on(binary: &Path, dir: &Path, database: &str, extra: &[&str]) -> anyhow::Result<Engine> {
        let level = std::env::var("CME_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into());
        Engine::spawn(binary, dir, database, extra, &level)
    }

    fn spawn(binary: &Path, dir: &Path, database: &str, extra: &[&str], level: &str) -> anyhow::Result<Engine> {
        let started = Instant::now();
        let shared_cache = std::env::temp_dir().join("cme-bench-artifacts");
        let cache_args: Vec<&std::ffi::OsStr> = if extra.contains(&"--cache-dir") {
            vec![]
        } else {
            vec!["--cache-dir".as_ref(), shared_cache.as_os_str()]
        };
        // For profiling a row: CME_BENCH_ENGINE_LOG=FILE appends every engine's log to FILE,
        // at CME_BENCH_RUST_LOG's levels (default warn).
        let log = match std::env::var_os("CME_BENCH_ENGINE_LOG") {
            Some(file) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .with_context(|| format!("opening {}", file.to_string_lossy()))?,
            ),
            None => Stdio::null(),
        };
        let mut child = Command::new(binary)
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", database])
            .args(cache_args)
            .args(extra)
            .current_dir(dir)
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting cme")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let url = line.trim().strip_prefix("cme listening on ").context("no listening line")?.to_string();
        Ok(Engine { child, url, started_to_ready: started.elapsed() })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Wrk {
    pub(crate) requests_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// The share of the machine's CPU time the hypervisor gave to others during the run.
    steal: Steal,
}

/// The length of one slice of the alternating HTTP comparison (`stack_overhead`).
const SLICE_SECONDS: u64 = 2;

impl Wrk {
    /// Equal-length runs taken as one: their mean rate, their median p50, their worst p99.
    fn over(runs: &[Wrk], steal: Steal) -> Wrk {
        let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_ms).collect();
        p50.sort_by(f64::total_cmp);
        Wrk {
            requests_per_second: runs.iter().map(|r| r.requests_per_second).sum::<f64>() / runs.len().max(1) as f64,
            p50_ms: p50.get(p50.len() / 2).copied().unwrap_or(f64::NAN),
            p99_ms: runs.iter().map(|r| r.p99_ms).fold(f64::NAN, f64::max),
            steal,
        }
    }

    /// "N req/s (p99 X ms, host steal Y %)": the row's figure with what the host took.
    fn summary(&self) -> String {
        format!("{:.0} req/s (p99 {:.2} ms, host steal {})", self.requests_per_second, self.p99_ms, self.steal)
    }
}

/// CPU time stolen by the hypervisor between two readings of `/proc/stat`, as a share of
/// all CPU time. A shared virtual machine's throughput rows move with it: a row read with
/// a few per cent of steal is not comparable with one read at none.
#[derive(Clone, Copy)]
struct Steal {
    stolen: u64,
    total: u64,
}

impl Steal {
    fn now() -> Steal {
        let line = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = line
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|t| t.parse().ok())
            .collect();
        Steal { stolen: ticks.get(7).copied().unwrap_or(0), total: ticks.iter().sum() }
    }

    fn since(self, start: Steal) -> Steal {
        Steal { stolen: self.stolen.saturating_sub(start.stolen), total: self.total.saturating_sub(start.total) }
    }
}

impl std::fmt::Display for Steal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.total == 0 {
            return f.write_str("unknown");
        }
        write!(f, "{:.1} %", self.stolen as f64 * 100.0 / self.total as f64)
    }
}

pub(crate) fn wrk(url: &str, connections: u32, seconds: u64, script: Option<&Path>) -> anyhow::Result<Wrk> {
    let mut command = Command::new("wrk");
    command.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let start = Steal::now();
    let output = command.arg(url).output()?;
    let steal = Steal::now().since(start);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    let ms = |v: String| -> f64 {
        if let Some(x) = v.strip_suffix("us") {
            x.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
        } else if let Some(x) = v.strip_suffix("ms") {
            x.parse().unwrap_or(f64::NAN)
        } else if let Some(x) = v.strip_suffix('s') {
            x.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
        } else {
            f64::NAN
        }
    };
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    Ok(Wrk {
        requests_per_second: field("Requests/sec:").parse().unwrap_or(0.0),
        p50_ms: ms(field("50%")),
        p99_ms: ms(field("99%")),
        steal,
    })
}

async fn http_throughput(binary: &Path, s: &Settings, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::start_logging(binary, dir.path(), &[], "info")?;
    // What a browser loads for the dashboard (uncompressed; the API calls it makes are the
    // API's).
    let client = reqwest::Client::new();
    let mut weight = 0;
    for asset in ["/ui/", "/ui/app.js", "/ui/app.css"] {
        weight += client.get(format!("{}{asset}", engine.url)).send().await?.error_for_status()?.bytes().await?.len();
    }
    rows.push((
        "dashboard page weight (HTML + JS + CSS, uncompressed)".into(),
        format!("{:.1} KB in 3 requests", weight as f64 / 1000.0),
        "small, no CDN".into(),
    ));
    stack_overhead(binary, &engine, s, rows).await?;

    let script = dir.path().join("post.lua");
    let body = json!({
        "name": "bench",
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET", "payload": {}, "headers": {}}},
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": "2099-01-01T00:00:00Z"}}
    });
    std::fs::write(
        &script,
        format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{body}]]\n"),
    )?;
    let before = cpu_ticks(engine.pid());
    let plans = wrk(&format!("{}/api/1/plans/", engine.url), 8, s.duration, Some(&script))?;
    let cpu = cpu_per_request(cpu_ticks(engine.pid()) - before, None, &plans, s.duration);
    rows.push((
        "POST /api/1/plans/ (exact planner), SQLite, c=8".into(),
        format!("{}; {cpu}", plans.summary()),
        ">= 3,000 req/s".into(),
    ));
    {
        // Firings while the API takes plans as fast as it can: the scheduler must not
        // queue behind the writes.
        let url = format!("{}/api/1/plans/", engine.url);
        let load_script = script.clone();
        // As long as the firings take, and a little more.
        let load_seconds = lateness_span(s.firing_gap).as_secs() + 2;
        let load = std::thread::spawn(move || wrk(&url, 8, load_seconds, Some(&load_script)));
        let (p50, p99) = lateness_at(&engine.url, s.firing_gap).await?;
        let load = load.join().map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
        rows.push((
            "firing lateness of an executor due alone, under the POST load above (20 runs)".into(),
            format!("p50 {p50:.2} ms, p99 {p99:.2} ms (meanwhile {:.0} POST/s)", load.requests_per_second),
            "p99 <= 5 ms".into(),
        ));
    }
    match BenchDatabase::create()? {
        None => rows.push((
            "POST /api/1/plans/ (exact planner), PostgreSQL, c=8".into(),
            "not measured: set CME_BENCH_POSTGRES_URL".into(),
            ">= 3,000 req/s".into(),
        )),
        Some(database) => {
            let pg_dir = tempfile::tempdir()?;
            let on_postgres = Engine::start_on(binary, pg_dir.path(), &database.url, &[])?;
            let (before, postgres_before) = (cpu_ticks(on_postgres.pid()), postgres_ticks());
            let plans = wrk(&format!("{}/api/1/plans/", on_postgres.url), 8, s.duration, Some(&script))?;
            let cpu = cpu_per_request(
                cpu_ticks(on_postgres.pid()) - before,
                Some(postgres_ticks().saturating_sub(postgres_before)),
                &plans,
                s.duration,
            );
            rows.push((
                "POST /api/1/plans/ (exact planner), PostgreSQL, c=8".into(),
                format!("{}; {cpu}", plans.summary()),
                ">= 3,000 req/s".into(),
            ));
            on_postgres.stop();
        }
    }

    let executors = wrk(&format!("{}/api/1/executors/?size=100", engine.url), 4, s.duration, None)?;
    rows.push((
        "GET /api/1/executors/ page of 100, c=4 (the same page polled: rendered once per data version)".into(),
        executors.summary(),
        ">= 5,000 req/s".into(),
    ));
    // Every request a URL of its own: each page read and rendered afresh (what a page
    // costs right after a change).
    let fresh = dir.path().join("fresh.lua");
    std::fs::write(
        &fresh,
        "local threads = 0\nfunction setup(thread)\n  threads = threads + 1\n  thread:set(\"id\", threads)\nend\n\
         function init(args)\n  n = 0\nend\n\
         function request()\n  n = n + 1\n  return wrk.format(\"GET\", \"/api/1/executors/?size=100&t=\" .. id .. \"&n=\" .. n)\nend\n",
    )?;
    let executors = wrk(&format!("{}/api/1/executors/?size=100", engine.url), 4, s.duration, Some(&fresh))?;
    rows.push((
        "GET /api/1/executors/ page of 100, c=4, every page read afresh".into(),
        executors.summary(),
        "(reported)".into(),
    ));
    engine.stop();
    Ok(())
}

/// `GET /api/1/planners/` on `cme` as shipped (metrics, access log at the default level,
/// Host check, auth, masker), on `cme` without metrics, and on a bare actix-web handler
/// serving the same bytes (`cme-bench-bare`, built here): three rounds, each taking the
/// three in turn [`SLICE_SECONDS`] at a time, and each of the three keeping its best round,
/// so that a passing load on the machine decides nothing.
async fn stack_overhead(
    binary: &Path,
    engine: &Engine,
    s: &Settings,
    rows: &mut Vec<(String, String, String)>,
) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let bare_binary = build_bare(&root)?;
    let answer = reqwest::get(format!("{}/api/1/planners/", engine.url)).await?.error_for_status()?;
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = answer.bytes().await?;
    let dir = tempfile::tempdir()?;
    let body_file = dir.path().join("planners.json");
    std::fs::write(&body_file, &body)?;
    let bare = BareHandler::start(&bare_binary, &body_file, &content_type)?;
    let quiet = tempfile::tempdir()?;
    std::fs::write(quiet.path().join("cme.toml"), "metrics = false\n")?;
    let without_metrics = Engine::start_logging(binary, quiet.path(), &["--config", "cme.toml"], "info")?;
    // Each round measures the three in turn a slice at a time: a slow spell of a shared
    // machine (they last seconds) then falls on all three alike, where whole runs in turn
    // put it on one of them. A round's rate is its requests over its time; each of the
    // three keeps its best round.
    let urls = [&bare.url, &engine.url, &without_metrics.url].map(|base| format!("{base}/api/1/planners/"));
    let slices = s.duration.div_ceil(SLICE_SECONDS).max(1);
    let mut best: [Option<Wrk>; 3] = [None, None, None];
    for _ in 0..3 {
        let started = Steal::now();
        let mut slices_run: [Vec<Wrk>; 3] = Default::default();
        for _ in 0..slices {
            for (url, runs) in urls.iter().zip(slices_run.iter_mut()) {
                runs.push(wrk(url, 8, SLICE_SECONDS, None)?);
            }
        }
        let steal = Steal::now().since(started);
        for (runs, kept) in slices_run.iter().zip(best.iter_mut()) {
            let round = Wrk::over(runs, steal);
            if kept.as_ref().is_none_or(|k| round.requests_per_second > k.requests_per_second) {
                *kept = Some(round);
            }
        }
    }
    let [reference, shipped_run, unmetered] = best.map(|b| b.expect("three rounds were run"));
    let (reference, shipped, unmetered) =
        (reference.requests_per_second, shipped_run.requests_per_second, unmetered.requests_per_second);
    rows.push((
        format!(
            "GET /api/1/planners/ ({:.1} KB), default config, keep-alive, c=8 (best of 3)",
            body.len() as f64 / 1000.0
        ),
        shipped_run.summary(),
        ">= 50,000 req/s".into(),
    ));
    rows.push((
        "... vs a bare actix-web handler serving the same bytes (best of 3 rounds, alternating every 2 s)".into(),
        format!("cme {shipped:.0} req/s = {:.1} % of bare {reference:.0} req/s", shipped / reference * 100.0),
        ">= 90 %".into(),
    ));
    rows.push((
        "... metrics on vs off (the same loop)".into(),
        format!("on {shipped:.0} req/s, off {unmetered:.0} req/s ({:+.1} %)", (shipped / unmetered - 1.0) * 100.0),
        "within 5 %".into(),
    ));
    without_metrics.stop();
    Ok(())
}

/// The bare handler's release binary, built now.
fn build_bare(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("building cme-bench-bare (release)...");
    let mut build = cargo_as_from_the_shell(root);
    build.args(["build", "--release", "--locked", "-p", "cme-bench-bare"]);
    if !build.status()?.success() {
        bail!("cargo build --release -p cme-bench-bare failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/cme-bench-bare"))
}

/// `cme-bench-bare` serving one body, stopped when dropped.
struct BareHandler {
    child: Child,
    url: String,
}

impl BareHandler {
    fn start(binary: &Path, body: &Path, content_type: &str) -> anyhow::Result<BareHandler> {
        let mut child = Command::new(binary)
            .arg(body)
            .arg(content_type)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting cme-bench-bare")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("piped")?).read_line(&mut line)?;
        let url = line.trim().strip_prefix("listening on ").context("no listening line")?.to_string();
        Ok(BareHandler { child, url })
    }
}

impl Drop for BareHandler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU ticks (1/100 s) of every local process named `postgres` (a local server's
/// backends; 0 when the server is elsewhere).
fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(cpu_ticks)
        .sum()
}

/// "CPU per request: cme X ms[, postgres Y ms]": what each request cost the engine (and a
/// local PostgreSQL) in CPU time over a wrk run, from tick counts taken around it.
fn cpu_per_request(engine_ticks: u64, postgres_ticks: Option<u64>, run: &Wrk, seconds: u64) -> String {
    let requests = (run.requests_per_second * seconds as f64).max(1.0);
    let ms = |ticks: u64| ticks as f64 * 10.0 / requests;
    match postgres_ticks {
        Some(pg) => format!("CPU per request: cme {:.2} ms, postgres {:.2} ms", ms(engine_ticks), ms(pg)),
        None => format!("CPU per request: cme {:.2} ms", ms(engine_ticks)),
    }
}

pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

pub(crate) fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn firing_lateness(binary: &Path, s: &Settings, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::start(binary, dir.path(), &[])?;
    let (p50, p99) = lateness_at(&engine.url, s.firing_gap).await?;
    rows.push((
        "firing lateness of an executor due alone (20 runs)".into(),
        format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
        "p99 <= 5 ms".into(),
    ));
    engine.stop();
    Ok(())
}

/// How long `lateness_at` takes: the first firing 3 s out, 20 firings `gap` apart, 1 s to
/// finish.
fn lateness_span(gap: Duration) -> Duration {
    Duration::from_secs(3) + gap * LATENESS_FIRINGS + Duration::from_secs(1)
}

const LATENESS_FIRINGS: u32 = 20;

/// p50 and p99 lateness (ms) of 20 executors due one at a time, `gap` apart.
pub(crate) async fn lateness_at(url: &str, gap: Duration) -> anyhow::Result<(f64, f64)> {
    let client = reqwest::Client::new();
    let first = chrono::Utc::now() + chrono::Duration::seconds(3);
    let gap_ms = gap.as_millis() as i64;
    let (mut ids, mut plans) = (Vec::new(), Vec::new());
    for i in 0..i64::from(LATENESS_FIRINGS) {
        let date = (first + chrono::Duration::milliseconds(i * gap_ms)).to_rfc3339();
        let body = json!({"name": format!("late{i}"), "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": format!("{}/healthz", url), "method": "GET"}},
                          "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}}});
        let doc: Value = client.post(format!("{}/api/1/plans/", url)).json(&body).send().await?.json().await?;
        ids.push(doc["_embedded"]["executors"][0]["id"].as_str().context("executor id")?.to_string());
        plans.push(doc["id"].as_str().context("plan id")?.to_string());
    }
    tokio::time::sleep(lateness_span(gap)).await;
    let mut lateness = Vec::new();
    for id in ids {
        let doc: Value = client.get(format!("{}/api/1/executors/{id}", url)).send().await?.json().await?;
        let due = chrono::DateTime::parse_from_rfc3339(doc["next_run_time"].as_str().unwrap_or(""))?;
        let started = chrono::DateTime::parse_from_rfc3339(doc["started_at"].as_str().context("started")?)?;
        lateness.push((started - due).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    // Gone again, so that they count against no cap (`max_plans`) of the figures after.
    for plan in plans {
        client.delete(format!("{url}/api/1/plans/{plan}")).send().await?.error_for_status()?;
    }
    lateness.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lateness[((lateness.len() as f64 - 1.0) * q).round() as usize];
    Ok((p(0.5), p(0.99)))
}

/// A local HTTP sink that answers 200 at once (or after `delay`).
async fn sink(delay: Duration) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}

/// Plans `count` attacks against a sink that never answers in time, due in 2 s, on the
/// engine at `url`; returns their executor ids once they run.
async fn slow_attacks(client: &reqwest::Client, url: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let endpoint = sink(Duration::from_secs(60)).await?;
    let date = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let mut ids = Vec::new();
    for i in 0..count {
        let body = json!({"name": format!("slow{i}"), "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": endpoint, "method": "GET"}},
                          "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}}});
        let doc: Value = client.post(format!("{url}/api/1/plans/")).json(&body).send().await?.json().await?;
        ids.push(doc["_embedded"]["executors"][0]["id"].as_str().context("executor id")?.to_string());
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    Ok(ids)
}

/// Halts through `halt_url` and returns the longest time, in ms, from the halt to one of
/// the executors (read through `read_url`) cancelled.
async fn halt_to_cancelled(
    client: &reqwest::Client,
    halt_url: &str,
    read_url: &str,
    ids: Vec<String>,
) -> anyhow::Result<f64> {
    let halted: Value = client.post(format!("{halt_url}/api/1/halt")).send().await?.json().await?;
    let since = chrono::DateTime::parse_from_rfc3339(halted["since"].as_str().context("since")?)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut worst = 0.0f64;
    for id in ids {
        let doc: Value = client.get(format!("{read_url}/api/1/executors/{id}")).send().await?.json().await?;
        if doc["status"] != "cancelled" {
            bail!("executor {id} is {} after the halt", doc["status"]);
        }
        let finished = chrono::DateTime::parse_from_rfc3339(doc["finished_at"].as_str().context("finished")?)?;
        worst = worst.max((finished - since).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    Ok(worst)
}

async fn halt_latency(binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::start(binary, dir.path(), &[])?;
    let client = reqwest::Client::new();
    let ids = slow_attacks(&client, &engine.url, 20).await?;
    let worst = halt_to_cancelled(&client, &engine.url, &engine.url, ids).await?;
    rows.push((
        "halt: request to every running attack cancelled (20 running)".into(),
        format!("{worst:.1} ms"),
        "<= 100 ms".into(),
    ));
    engine.stop();
    Ok(())
}

/// BBVA's engine 1.1.0 (PyPI `chaosmonkey==1.1.0`) in its own venv: see xtask/original/.
fn ensure_original() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME")?;
    let venv = PathBuf::from(home).join(".cache/cme-original-venv");
    let engine = venv.join("bin/chaos-monkey-engine");
    if engine.exists() {
        return Ok(engine);
    }
    eprintln!("installing chaosmonkey==1.1.0 (pip) into {}...", venv.display());
    let run = |program: &Path, args: &[&str]| -> anyhow::Result<()> {
        if !Command::new(program).args(args).status()?.success() {
            bail!("{} {} failed", program.display(), args.join(" "));
        }
        Ok(())
    };
    run(Path::new("python3"), &["-m", "venv", venv.to_str().context("utf-8 path")?])?;
    let pip = venv.join("bin/pip");
    run(&pip, &["install", "-q", "--no-deps", "chaosmonkey==1.1.0"])?;
    // Its own pins (gevent 1.2.1, SQLAlchemy 1.1.5, ...) do not build on Python 3.11.
    run(
        &pip,
        &[
            "install",
            "-q",
            "SQLAlchemy==1.3.24",
            "APScheduler==3.6.3",
            "requests==2.31.0",
            "flask-cors==3.0.10",
            "gevent",
            "Flask==0.12.5",
            "Werkzeug==0.16.1",
            "Jinja2==2.11.3",
            "MarkupSafe==2.0.1",
            "itsdangerous==1.1.0",
            "click==7.1.2",
            "arrow==0.10.0",
            "Flask-SQLAlchemy==2.1",
            "jsonschema==2.6.0",
            "flask-hal-bbva==1.0.5",
            "paramiko",
            "boto3",
            "six",
            "pytz",
            "tzlocal==2.1",
        ],
    )?;
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", "import gevent, os; print(os.path.dirname(gevent.__file__))"])
        .output()?;
    let gevent = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string());
    std::fs::write(gevent.join("wsgi.py"), "from gevent.pywsgi import WSGIServer  # gevent 1.x had gevent.wsgi\n")?;
    Ok(engine)
}

/// The three API rows against the original engine and `cme`, with the same requests and
/// the same load generator: GET planners (c=8), POST an exact-planner plan (c=8), GET the
/// executor list holding 100 executors (c=4).
async fn side_by_side(
    root: &Path,
    binary: &Path,
    s: &Settings,
    rows: &mut Vec<(String, String, String)>,
) -> anyhow::Result<()> {
    let original = ensure_original()?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let folders = root.join("xtask/original");
    let mut python = Command::new(&original)
        .arg("--port")
        .arg(port.to_string())
        .arg("--database-uri")
        .arg(format!("sqlite:///{}", dir.path().join("original.db").display()))
        .arg("--attacks-folder")
        .arg(folders.join("attacks"))
        .arg("--planners-folder")
        .arg(folders.join("planners"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let original_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{original_url}/api/1/planners/")).send().await.is_err() {
        if Instant::now() > deadline {
            let _ = python.kill();
            bail!("the original engine did not answer in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cme_dir = tempfile::tempdir()?;
    let engine = Engine::start(binary, cme_dir.path(), &[])?;
    let body = |date: &str| {
        json!({
            "name": "bench",
            "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET", "payload": {}, "headers": {}}},
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}}
        })
    };
    // The same 100 executors on both (the original reads the date in its zone, cme in UTC).
    for url in [&original_url, &engine.url] {
        for _ in 0..100 {
            client
                .post(format!("{url}/api/1/plans/"))
                .json(&body("2099-01-01T00:00:00"))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [[{}]]\n",
            body("2099-01-01T00:00:00")
        ),
    )?;
    let measures: [(&str, &str, u32, Option<&Path>); 3] = [
        ("GET /api/1/executors/ (100 executors), c=4", "/api/1/executors/", 4, None),
        ("GET /api/1/planners/, c=8", "/api/1/planners/", 8, None),
        ("POST /api/1/plans/ (exact planner), c=8", "/api/1/plans/", 8, Some(&script)),
    ];
    for (what, path, connections, script) in measures {
        let theirs = wrk(&format!("{original_url}{path}"), connections, s.duration, script)?;
        let ours = wrk(&format!("{}{path}", engine.url), connections, s.duration, script)?;
        rows.push((
            format!("side by side: {what}"),
            format!(
                "original 1.1.0 {}, cme {}: x{:.0}",
                theirs.summary(),
                ours.summary(),
                ours.requests_per_second / theirs.requests_per_second.max(0.001)
            ),
            "cme far faster".into(),
        ));
    }
    let _ = python.kill();
    let _ = python.wait();
    engine.stop();
    Ok(())
}

/// A health endpoint the benchmark flips: every request gets the current status.
async fn health(status: std::sync::Arc<std::sync::atomic::AtomicU16>) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let status = status.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let code = status.load(std::sync::atomic::Ordering::SeqCst);
                let _ = socket
                    .write_all(
                        format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
                    )
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/health"))
}

/// Five slow attacks whose plans watch one health endpoint every second; the endpoint
/// turns unhealthy at a random moment and the figure is the time from then to the last
/// run cancelled (three rounds, the worst).
async fn stop_condition_latency(binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::start(binary, dir.path(), &[])?;
    let client = reqwest::Client::new();
    let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
    let health_url = health(status.clone()).await?;
    let endpoint = sink(Duration::from_secs(60)).await?;
    let mut worst = 0.0f64;
    for round in 0..3 {
        status.store(200, std::sync::atomic::Ordering::SeqCst);
        let date = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let mut ids = Vec::new();
        for i in 0..5 {
            let body = json!({
                "name": format!("watched{round}-{i}"),
                "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": endpoint, "method": "GET", "timeout_ms": 50000}},
                "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}},
                "stop_conditions": [{"ref": "http_probe:HttpProbe", "args": {"url": health_url}, "interval_seconds": 1, "on_failure": "pause_plan"}]
            });
            let doc: Value =
                client.post(format!("{}/api/1/plans/", engine.url)).json(&body).send().await?.json().await?;
            ids.push(doc["_embedded"]["executors"][0]["id"].as_str().context("executor id")?.to_string());
        }
        // Running, then unhealthy at a moment unrelated to the probes' schedule.
        tokio::time::sleep(Duration::from_millis(3500 + 237 * round)).await;
        let unhealthy = chrono::Utc::now();
        status.store(503, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;
        for id in ids {
            let doc: Value = client.get(format!("{}/api/1/executors/{id}", engine.url)).send().await?.json().await?;
            if doc["status"] != "cancelled" {
                bail!("executor {id} is {} after its stop condition turned unhealthy", doc["status"]);
            }
            let finished = chrono::DateTime::parse_from_rfc3339(doc["finished_at"].as_str().context("finished")?)?;
            worst = worst.max(
                (finished.with_timezone(&chrono::Utc) - unhealthy).num_microseconds().unwrap_or(0) as f64 / 1000.0,
            );
        }
    }
    rows.push((
        "stop condition: service unhealthy to every watched run cancelled (5 runs, probe every 1 s, worst of 3)".into(),
        format!("{worst:.1} ms"),
        "<= 1,100 ms (one interval + 100 ms)".into(),
    ));
    engine.stop();
    Ok(())
}

/// Two engines on one PostgreSQL (`CME_BENCH_POSTGRES_URL`, an admin URL; skipped
/// without): 20 slow attacks run on B, the halt is asked of A; the figure is the time
/// from A's halt to the last of B's runs cancelled.
async fn cross_replica_halt(binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let figure =
        "halt on replica A to every running attack on replica B cancelled (20 running, PostgreSQL)".to_string();
    let Some(database) = BenchDatabase::create()? else {
        rows.push((figure, "not measured: set CME_BENCH_POSTGRES_URL".into(), "<= 100 ms".into()));
        return Ok(());
    };
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let b = Engine::start_on(binary, dir_b.path(), &database.url, &[])?;
    let client = reqwest::Client::new();
    let ids = slow_attacks(&client, &b.url, 20).await?;
    // A joins after B claimed every run: the runs are B's, the halt is A's.
    let a = Engine::start_on(binary, dir_a.path(), &database.url, &[])?;
    let worst = halt_to_cancelled(&client, &a.url, &b.url, ids).await?;
    rows.push((figure, format!("{worst:.1} ms"), "<= 100 ms".into()));
    a.stop();
    b.stop();
    Ok(())
}

/// Lets the writes of the groups measured before settle: a PostgreSQL checkpoint (on the
/// bench's server, when one is set) and a `sync` of every file system. Without it a group
/// ran while PostgreSQL's checkpointer and the kernel wrote back the gigabytes the previous
/// group left behind, and the engine's own commits queued behind that I/O.
fn settle() {
    if let Ok(admin) = std::env::var("CME_BENCH_POSTGRES_URL") {
        let _ = Command::new("psql").arg(&admin).args(["-q", "-c", "CHECKPOINT"]).status();
    }
    let _ = Command::new("sync").status();
}

/// A database of its own on the PostgreSQL server `CME_BENCH_POSTGRES_URL` names (an admin
/// URL; None when unset), dropped at the end.
pub(crate) struct BenchDatabase {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl BenchDatabase {
    pub(crate) fn create() -> anyhow::Result<Option<BenchDatabase>> {
        let Ok(admin) = std::env::var("CME_BENCH_POSTGRES_URL") else { return Ok(None) };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name =
            format!("cme_bench_{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let created =
            Command::new("psql").arg(&admin).args(["-q", "-c", &format!("CREATE DATABASE {name}")]).status()?;
        if !created.success() {
            bail!("creating database {name}");
        }
        let url = format!("{}/{name}", admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin));
        Ok(Some(BenchDatabase { admin, name, url }))
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}

/// Uploads the SDK's example attack (built like cme-plugins' build script does) to a
/// fresh engine: the engine's own compile time, and the request from first byte to 201.
async fn plugin_upload(root: &Path, binary: &Path, rows: &mut Vec<(String, String, String)>) -> anyhow::Result<()> {
    let built = build_plugins(root, &["ping-attack"])?;
    let wasm = std::fs::read(built.join("ping_attack.wasm"))?;
    let dir = tempfile::tempdir()?;
    // A cache directory of its own, so that the upload really compiles.
    let cache = dir.path().join("artifacts");
    let engine = Engine::start(binary, dir.path(), &["--cache-dir", cache.to_str().context("utf-8 path")?])?;
    let started = std::time::Instant::now();
    let reply = reqwest::Client::new()
        .post(format!("{}/api/1/plugins/", engine.url))
        .header("content-type", "application/wasm")
        .body(wasm.clone())
        .send()
        .await?;
    let elapsed = started.elapsed();
    if reply.status() != 201 {
        bail!("upload answered {}", reply.status());
    }
    let doc: Value = reply.json().await?;
    rows.push((
        format!("plugin upload ({} KB component): engine compile / request to 201", wasm.len() / 1024),
        format!("{} ms / {:.0} ms", doc["compile_ms"], elapsed.as_secs_f64() * 1000.0),
        "reported".into(),
    ));
    engine.stop();
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
