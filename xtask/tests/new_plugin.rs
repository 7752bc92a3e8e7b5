//! `cargo xtask new-plugin` makes crates that pass their own tests and build into
//! components, for both kinds.

use std::path::Path;
use std::process::Command;

fn cargo(dir: &Path, args: &[&str], target_dir: &Path) {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo {args:?} in {}:\n{}", dir.display(), String::from_utf8_lossy(&output.stderr));
}

#[test]
fn new_plugins_of_both_kinds_pass_their_tests_and_build_components() {
    let dir = tempfile::tempdir().unwrap();
    // Kept between runs (under the build's target directory) so that CI stays incremental.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-plugin");
    for (kind, name) in [("attack", "smoke-attack"), ("planner", "smoke-planner")] {
        let crate_dir = dir.path().join(name);
        let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["new-plugin", name, "--kind", kind, "--dir"])
            .arg(&crate_dir)
            .status()
            .unwrap();
        assert!(status.success());
        let source = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
        let module = name.replace('-', "_");
        assert!(source.contains(&format!("\"{module}:Smoke")), "refs follow the name");
        cargo(&crate_dir, &["test", "--quiet"], &target_dir);
        cargo(&crate_dir, &["build", "--quiet", "--release", "--target", "wasm32-wasip2"], &target_dir);
        let wasm = std::fs::read(target_dir.join(format!("wasm32-wasip2/release/{module}.wasm"))).unwrap();
        assert_eq!(&wasm[..8], b"\0asm\x0d\0\x01\0", "{name} is a component");
    }
    // A second run into the same directory is refused rather than overwriting.
    let again = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["new-plugin", "smoke-attack", "--kind", "attack", "--dir"]).arg(dir.path().join("smoke-attack")).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}
