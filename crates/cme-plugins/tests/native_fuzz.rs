//! Plugins' parsers, fuzzed and tested natively: the cron planner's (`plugins/cron-planner/
//! src/lib.rs`: `mod fuzz`, and `mod dialects`, the lines of each dialect as their
//! documentation writes them) and network-fault's CIDRs (`plugins/network-fault/src/
//! cidr.rs`). Their unit tests run on the build machine through the guest workspace's own
//! cargo. `PROPTEST_CASES` passes through (CI: the default 256; `cargo xtask fuzz` sets
//! more).

use std::process::Command;

/// Runs `package`'s unit tests natively; asserts each of `tests` passed.
fn native_tests(package: &str, tests: &[&str]) {
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&plugins).args(["test", "--locked", "-p", package, "--lib"]);
    // The host workspace's target directory is shared (CI keeps it between runs); the
    // guest workspace builds natively beside the host's artifacts there.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
        command.env_remove(var);
    }
    let output = command.output().expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{package}'s native tests failed:\n{stdout}\n{stderr}");
    for test in tests {
        assert!(stdout.contains(&format!("{test} ... ok")), "{test} ran:\n{stdout}");
    }
}

#[test]
fn the_cron_planners_parser_is_fuzzed_natively() {
    native_tests(
        "cron-planner",
        &[
            "fuzz::cron_patterns_are_read_or_refused_and_plan_within_the_cap",
            "dialects::quartz_counts_weekdays_from_sunday_one",
            "dialects::jenkins_hashes_h_from_the_seed_the_same_every_time",
        ],
    );
}

#[test]
fn network_faults_cidr_parser_is_fuzzed_natively() {
    native_tests(
        "network-fault",
        &[
            "cidr::tests::any_text_is_read_or_refused_and_a_network_holds_itself",
            "cidr::tests::an_ipv4_network_holds_exactly_the_addresses_sharing_its_prefix",
            "cidr::tests::a_network_holds_its_addresses_and_no_other",
        ],
    );
}
