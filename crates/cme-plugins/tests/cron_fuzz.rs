//! The cron planner's parser, fuzzed and tested natively: its crate is a cdylib (the
//! component) and an rlib, and its tests (`plugins/cron-planner/src/lib.rs`: `mod fuzz`,
//! and `mod dialects`, the lines of each dialect as their documentation writes them) run
//! on the build machine through the guest workspace's own cargo. `PROPTEST_CASES` passes
//! through (CI: the default 256; `cargo xtask fuzz` sets more).

use std::process::Command;

#[test]
fn the_cron_planners_parser_is_fuzzed_natively() {
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&plugins).args(["test", "--locked", "-p", "cron-planner", "--lib"]);
    // The host workspace's target directory is shared (CI keeps it between runs); the
    // guest workspace builds natively beside the host's artifacts there.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
        command.env_remove(var);
    }
    let output = command.output().expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the cron planner's fuzz target failed:\n{stdout}\n{stderr}");
    for test in [
        "fuzz::cron_patterns_are_read_or_refused_and_plan_within_the_cap",
        "dialects::quartz_counts_weekdays_from_sunday_one",
        "dialects::jenkins_hashes_h_from_the_seed_the_same_every_time",
    ] {
        assert!(stdout.contains(&format!("{test} ... ok")), "{test} ran:\n{stdout}");
    }
}
