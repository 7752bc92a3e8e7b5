//! Builds the plugins in `plugins/` into wasm32-wasip2 components and copies them to
//! OUT_DIR, where `src/lib.rs` embeds them. Like wasmtime's test-programs: the guests
//! are built from source with a nested cargo, into their own target directory (sharing
//! the host's would deadlock on its lock), always in release (small, fast components).

use std::path::{Path, PathBuf};
use std::process::Command;

// The one list of built-in plugins (crate names in plugins/), shared with src/lib.rs.
include!("src/builtin_names.rs");
const TEST_PLUGINS: [&str; 16] = [
    "hostile",
    "ping-attack",
    "gce-stop-instance",
    "ping-v2",
    "describe-loop",
    "describe-huge",
    "bad-schema",
    "ref-thief",
    "impostor",
    "command",
    "legacy-planner",
    "legacy-attack",
    "v2-planner",
    "v2-probe",
    "v3-attack",
    "chaos-witness",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root =
        manifest_dir.parent().and_then(Path::parent).expect("crates/cme-plugins lives two levels below the root");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep the guests beside <profile>.
    let target_dir = out_dir.ancestors().nth(4).unwrap_or(&out_dir).join("wasm-plugins");

    for watched in ["plugins", "wit", "crates/cme-plugin-sdk"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // Two checkouts sharing one CARGO_TARGET_DIR (CI clones next to a working copy) share
    // this build script's record, whose watched paths name the other checkout: re-check
    // whenever cargo runs from another directory. The nested cargo then decides, by the
    // plugin sources' own fingerprints, whether anything needs building.
    println!("cargo:rerun-if-env-changed=PWD");

    let mut packages: Vec<&str> = BUILTIN_NAMES.to_vec();
    if std::env::var_os("CARGO_FEATURE_TEST_PLUGINS").is_some() {
        packages.extend(TEST_PLUGINS);
    }
    for package in packages {
        build(root, &target_dir, package);
        let file = format!("{}.wasm", package.replace('-', "_"));
        let built = target_dir.join("wasm32-wasip2/release").join(&file);
        copy_if_changed(&built, &out_dir.join(&file));
    }
    let entries: String = BUILTIN_NAMES
        .iter()
        .map(|name| format!("    EmbeddedPlugin {{ crate_name: {name:?}, wasm: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{}.wasm\")) }},\n", name.replace('-', "_")))
        .collect();
    let list = format!(
        "/// Every built-in plugin of `BUILTIN_NAMES`, embedded.\npub const BUILTINS: &[EmbeddedPlugin] = &[\n{entries}];\n"
    );
    if std::fs::read_to_string(out_dir.join("builtins.rs")).ok().as_deref() != Some(list.as_str()) {
        std::fs::write(out_dir.join("builtins.rs"), list).expect("writing builtins.rs");
    }
}

/// Copies only new content, so that an unchanged plugin does not rebuild its dependents.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(to, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
    }
}

/// One cargo invocation per package, so that each gets only its own world's SDK feature.
fn build(root: &Path, target_dir: &Path, package: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join("plugins"))
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "-p", package])
        .arg("--target-dir")
        .arg(target_dir);
    // Host-only settings must not leak into the guest build.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]
    {
        cmd.env_remove(var);
    }
    let output = cmd.output().unwrap_or_else(|e| panic!("running cargo to build plugin {package}: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2")
            && (stderr.contains("not installed") || stderr.contains("can't find crate"))
        {
            "\n\nThe wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`."
        } else {
            ""
        };
        panic!("building plugin {package} for wasm32-wasip2 failed:\n{stderr}{hint}");
    }
}
