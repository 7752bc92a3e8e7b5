//! `cargo xtask <task>`: project tasks that are not tests.
//!
//! * `bench [--quick]`: builds `cme` in release and measures it against the performance
//!   targets of ARCHITECTURE.md (figures, not assertions; the machine's load is printed too).
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

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
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

/// The whole suite as CI runs it: `.ci/run` installs and starts every peer it needs and
/// fails (never skips) when one is missing.
fn test() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root");
    let status = std::process::Command::new("bash").arg(root.join(".ci/run")).current_dir(root).status()?;
    anyhow::ensure!(status.success(), ".ci/run failed ({status})");
    Ok(())
}
