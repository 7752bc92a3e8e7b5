//! `cargo bench -p cme-runtime`: the runtime's figures.
//!
//! * instantiate + run of a no-op attack through `Runtime::run` (fresh Store and
//!   instance, grant check, record): median and p99;
//! * Cranelift compile time of each built-in plugin;
//! * load time of a precompiled artifact (mapping the cached `.cwasm`).
//!
//! Figures, not assertions: the machine's load is printed alongside.

use std::time::{Duration, Instant};

use chrono::Utc;
use cme_runtime::{Grant, PlanContext, Provenance, RunRequest, Runtime, RuntimeConfig};

fn main() {
    let executor = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    executor.block_on(bench());
}

async fn bench() {
    println!("machine: {} cores, load average {}", num_cpus(), load_average());

    // `CME_BENCH_CALLS_ONLY=1`: just the call figures (for profiling them).
    let calls_only = std::env::var_os("CME_BENCH_CALLS_ONLY").is_some();
    // Compile time of each built-in: a runtime without artifact cache compiles at load.
    for plugin in cme_plugins::BUILTINS.iter().filter(|_| !calls_only) {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
            match runtime.load(plugin.wasm).await.unwrap().provenance() {
                Provenance::Compiled(took) => samples.push(took),
                Provenance::Cached(_) => unreachable!("no cache configured"),
            }
        }
        println!(
            "compile {:<15} {:>8} bytes: median {:>9.2?} (min {:.2?}, 5 runs)",
            plugin.crate_name,
            plugin.wasm.len(),
            median(&mut samples),
            samples[0]
        );
    }

    // Precompiled load: a fresh runtime (as after a restart) maps the cached artifact.
    let cache = tempfile::tempdir().unwrap();
    let cached = || RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), ..RuntimeConfig::default() };
    for plugin in cme_plugins::BUILTINS.iter().filter(|_| !calls_only) {
        Runtime::new(cached()).unwrap().load(plugin.wasm).await.unwrap();
        let mut samples = Vec::new();
        for _ in 0..20 {
            match Runtime::new(cached()).unwrap().load(plugin.wasm).await.unwrap().provenance() {
                Provenance::Cached(took) => samples.push(took),
                Provenance::Compiled(_) => panic!("expected a cache hit"),
            }
        }
        println!("precompiled load {:<15}: median {:>9.2?} (20 runs)", plugin.crate_name, median(&mut samples));
    }

    // Instantiate + run a no-op attack, sequentially, with each instance allocator.
    for pooling in [true, false] {
        let runtime = Runtime::new(RuntimeConfig { pooling, ..cached() }).unwrap();
        let noop = runtime.load(cme_plugins::test_plugins::HOSTILE.wasm).await.unwrap();
        let request = RunRequest {
            run_id: "bench".into(),
            now: Utc::now(),
            args: serde_json::json!({"mode": "noop"}),
            grant: Grant::default(),
            dry_run: false,
            owner: Default::default(),
            step: None,
        };
        // As the engine calls it: from a run task on the runtime's own threads.
        let on_runtime = {
            let (runtime, noop, request) = (runtime.clone(), noop.clone(), request.clone());
            runtime.clone().spawn(async move { attack_samples(&runtime, &noop, &request).await }).await.unwrap()
        };
        // From another runtime's task (a call that hops to the runtime's threads and back).
        let hopping = attack_samples(&runtime, &noop, &request).await;
        let allocator = if pooling { "pooling" } else { "on-demand" };
        for (mut samples, from) in [(on_runtime, "a run task"), (hopping, "another runtime")] {
            let p50 = median(&mut samples);
            let p99 = samples[samples.len() * 99 / 100];
            println!(
                "instantiate+run no-op attack (Runtime::run from {from}, {allocator} allocator, 20000 runs): median {p50:.2?}, p99 {p99:.2?} (target: median <= 50us)"
            );
        }

        // A planner call (on the caller's task): the exact planner asked for one date.
        let exact = runtime.load(cme_plugins::builtin("exact-planner").expect("a built-in").wasm).await.unwrap();
        let now = Utc::now();
        let ctx =
            || PlanContext { now, timezone: "UTC".into(), seed: 1, window: (now, now + chrono::Duration::days(1)) };
        let args = serde_json::json!({"date": (now + chrono::Duration::hours(1)).to_rfc3339()});
        for _ in 0..1_000 {
            runtime.plan(&exact, ctx(), &args).await.result.unwrap();
        }
        let mut samples = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let started = Instant::now();
            runtime.plan(&exact, ctx(), &args).await.result.unwrap();
            samples.push(started.elapsed());
        }
        let p50 = median(&mut samples);
        let p99 = samples[samples.len() * 99 / 100];
        let allocator = if pooling { "pooling" } else { "on-demand" };
        println!(
            "instantiate+run exact planner (Runtime::plan, {allocator} allocator, 20000 runs): median {p50:.2?}, p99 {p99:.2?} (target: median <= 50us)"
        );
    }
}

/// 20,000 timed no-op attack calls, one after another, after 1,000 to warm up.
async fn attack_samples(runtime: &Runtime, noop: &cme_runtime::Plugin, request: &RunRequest) -> Vec<Duration> {
    for _ in 0..1_000 {
        runtime.run(noop, request.clone()).await.result.unwrap();
    }
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let started = Instant::now();
        runtime.run(noop, request.clone()).await.result.unwrap();
        samples.push(started.elapsed());
    }
    samples
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
