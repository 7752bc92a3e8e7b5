//! `cargo xtask fuzz [--minutes N] [--cases N]`: the fuzz targets CI runs briefly, run for
//! as long as asked.
//!
//! The targets are property tests (proptest) over every parser on a request path: they
//! run on stable Rust, so round after round of `--cases` fresh random cases (256 by
//! default in CI; 5,000 a round here) until the minutes are up. A coverage-guided run
//! (cargo-fuzz, libFuzzer) needs a nightly toolchain, which these machines cannot
//! install; the same targets run longer instead. A failure stops the run and prints the
//! minimal failing input proptest found: add it to the target's `regressions` as a
//! named case, then fix the parser.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The fuzz targets, by the prefix of their test names, and the test filters that select
/// them. The host targets run in one `cargo test --workspace` (the features the whole
/// workspace builds with, so nothing is compiled again for a subset).
const TARGETS: &[(&str, &str)] = &[
    ("iCalendar and YAML inventories (cme-engine)", "fuzz::"),
    ("URL masking (cme-secrets)", "tests::fuzz::"),
    ("egress URL and address checks (cme-cloud)", "http::egress::tests::fuzz::"),
    ("plan bodies through the API (cme-api)", "plan_bodies"),
    ("cron planner parser (plugins/cron-planner, native)", "cron:fuzz::"),
];

/// Which target a passing test line (`test NAME ... ok`) belongs to: the longest prefix
/// that names it.
fn target_of(line: &str, guest: bool) -> Option<usize> {
    let name = line.strip_prefix("test ")?.strip_suffix(" ... ok")?;
    if name.contains("regressions::") {
        return None;
    }
    if guest {
        return name.starts_with("fuzz::").then_some(TARGETS.len() - 1);
    }
    TARGETS[..TARGETS.len() - 1]
        .iter()
        .enumerate()
        .filter(|(_, (_, prefix))| name.starts_with(prefix))
        .max_by_key(|(_, (_, prefix))| prefix.len())
        .map(|(i, _)| i)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut minutes = 1.0f64;
    let mut cases = 5_000u64;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--minutes" => minutes = iter.next().context("--minutes N")?.parse().context("--minutes takes a number")?,
            "--cases" => cases = iter.next().context("--cases N")?.parse().context("--cases takes a number")?,
            other => bail!("unknown argument {other:?}: cargo xtask fuzz [--minutes N] [--cases N]"),
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut counts = vec![0u64; TARGETS.len()];
    let mut round = 0;
    eprintln!("fuzzing {} targets for {minutes} min, {cases} cases per target and round", TARGETS.len());
    while round == 0 || Instant::now() < deadline {
        round += 1;
        for guest in [false, true] {
            let started = Instant::now();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut command = Command::new(cargo);
            command.env("PROPTEST_CASES", cases.to_string());
            if guest {
                command.current_dir(root.join("plugins")).args([
                    "test",
                    "--locked",
                    "-p",
                    "cron-planner",
                    "--lib",
                    "--",
                    "fuzz::",
                ]);
            } else {
                command.current_dir(&root).args([
                    "test",
                    "--locked",
                    "--workspace",
                    "--tests",
                    "--",
                    "fuzz::",
                    "plan_bodies",
                ]);
            }
            let output = command.output().context("running cargo test")?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                println!("{stdout}");
                eprintln!("{}", String::from_utf8_lossy(&output.stderr));
                bail!(
                    "a fuzz target failed in round {round}: add the minimal failing input above to its regressions, then fix it"
                );
            }
            for line in stdout.lines() {
                if let Some(i) = target_of(line, guest) {
                    counts[i] += cases;
                }
            }
            eprintln!(
                "round {round}: {} in {:.1} s",
                if guest { "guest targets" } else { "host targets" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("fuzz: {round} rounds, no failure");
    for ((name, _), count) in TARGETS.iter().zip(&counts) {
        println!("  {name:<55} {count:>10} cases");
    }
    Ok(())
}
