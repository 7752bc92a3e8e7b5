//! The one way a test goes without a missing peer (moto, PostgreSQL, sshd, a tool).
//!
//! Under `CME_REQUIRE_PEERS=1` (`.ci/run`, `cargo xtask test`) a missing peer fails the
//! test, naming how to install it. Otherwise the test skips what needs the peer, loudly: the
//! line goes straight to the terminal's stderr (libtest captures only the print macros, so
//! a passing test's `eprintln!` would be swallowed), and is appended to the skip file
//! (`<target dir>/cme-skipped-tests.txt`, or `CME_SKIP_FILE`), which `.ci/run` and
//! `cargo xtask test` print at the end.

use std::io::Write;
use std::path::PathBuf;

/// Whether missing peers fail tests (`CME_REQUIRE_PEERS=1`) instead of skipping them.
pub fn peers_required() -> bool {
    std::env::var("CME_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// `peer` is missing: fails the test under `CME_REQUIRE_PEERS=1` (saying `install`),
/// otherwise records that the calling test skips what needs it. The caller then returns
/// (or leaves out the part that needs the peer).
#[track_caller]
pub fn missing_peer(peer: &str, install: &str) {
    assert!(!peers_required(), "CME_REQUIRE_PEERS=1 but {peer} is missing: {install}");
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let line = format!("SKIPPED {test}: {peer} is missing ({install})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(file) = skip_file() {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// The skip file: `CME_SKIP_FILE`, or `cme-skipped-tests.txt` in the target directory the
/// running test binary was built in (`<target>/<profile>/deps/<test>`).
pub fn skip_file() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("CME_SKIP_FILE") {
        return Some(file.into());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("cme-skipped-tests.txt"))
}
