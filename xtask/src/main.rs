//! `cargo xtask <task>`: project tasks that are not tests.
//!
//! * `bench [--quick]`: builds `cme` (and the bench itself) in release and measures it
//!   against the performance targets of ARCHITECTURE.md (figures, not assertions; the
//!   machine's load is printed too).
//! * `fuzz [--minutes N] [--cases N]`: every fuzz target, round after round.
//! * `chaos [--minutes N] [--seed S] [--backend sqlite|postgres|both] [--engines N] [--ci]`: a
//!   workload against real engines under injected faults, judged by a history checker.
//! * `test`: the whole suite as CI runs it (`.ci/run`): installs and starts every peer,
//!   checks formatting and lints, runs `cargo test --workspace`; a missing peer fails it.
//!
//! A new plugin project comes from the binary: `cme plugins new NAME --kind attack|planner|probe`.

mod bench;
mod chaos;
mod experiment_bench;
mod fuzz;
mod scale_bench;
mod sink_request;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") if cfg!(debug_assertions) => return bench_optimised(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("test") => test(),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--quick] [--only GROUP,...]\n       cargo xtask fuzz [--minutes N] [--cases N]\n       cargo xtask chaos [--minutes N] [--seed S] [--backend sqlite|postgres|both] [--engines N] [--ci]\n       cargo xtask test"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `cargo xtask` builds this program unoptimised (as CI's `chaos` wants it, beside the
/// tests); the bench is run from an optimised build of it instead. Its clients share the
/// machine with the engine they measure: unoptimised, the plan-creating clients alone took
/// about two fifths of the CPU the engine did.
fn bench_optimised(args: &[String]) -> std::process::ExitCode {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the bench itself in release...");
    let status = std::process::Command::new(cargo)
        .args(["run", "--release", "--quiet", "--package", "xtask", "--", "bench"])
        .args(args)
        .current_dir(root)
        .status();
    match status {
        Ok(status) if status.success() => std::process::ExitCode::SUCCESS,
        Ok(status) => std::process::ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: running the optimised bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The whole suite as CI runs it: `.ci/run` installs and starts every peer it needs and
/// fails (never skips) when one is missing.
fn test() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root");
    let status = std::process::Command::new("bash").arg(root.join(".ci/run")).current_dir(root).status()?;
    anyhow::ensure!(status.success(), ".ci/run failed ({status})");
    Ok(())
}
