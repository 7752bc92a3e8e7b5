//! `cargo xtask new-plugin NAME --kind attack|planner [--dir DIR]`: a plugin crate from a
//! template, ready to build, test, upload and grant.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const ATTACK: &str = include_str!("../templates/attack.rs");
const PLANNER: &str = include_str!("../templates/planner.rs");

/// What to create.
#[derive(Debug)]
pub struct NewPlugin {
    pub name: String,
    pub kind: Kind,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Attack,
    Planner,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let new = parse(args)?;
    let root = repo_root();
    create(&new, &root.join("crates/cme-plugin-sdk"))?;
    let module = new.name.replace('-', "_");
    println!("created {} ({:?}) in {}", new.name, new.kind, new.dir.display());
    println!();
    println!("  cd {}", new.dir.display());
    println!("  cargo test                                   # the template's own tests, on this machine");
    println!("  cargo build --release --target wasm32-wasip2  # target/wasm32-wasip2/release/{module}.wasm");
    println!("  cme plugins push target/wasm32-wasip2/release/{module}.wasm");
    println!();
    println!("then grant it and use it in a plan: see docs/writing-plugins.md");
    Ok(())
}

fn parse(args: &[String]) -> anyhow::Result<NewPlugin> {
    let usage = "usage: cargo xtask new-plugin NAME --kind attack|planner [--dir DIR]";
    let mut name = None;
    let mut kind = None;
    let mut dir = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--kind" => {
                kind = Some(match rest.next().map(String::as_str) {
                    Some("attack") => Kind::Attack,
                    Some("planner") => Kind::Planner,
                    other => bail!("--kind must be attack or planner (got {other:?})\n{usage}"),
                })
            }
            "--dir" => dir = Some(PathBuf::from(rest.next().context(usage)?)),
            other if other.starts_with('-') => bail!("unknown option {other}\n{usage}"),
            other => name = Some(other.to_string()),
        }
    }
    let name = name.context(usage)?;
    let kebab = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--");
    if !kebab {
        bail!("the name must be kebab-case, e.g. kill-pod (it is the plugin's name in the registry)");
    }
    let kind = kind.context(usage)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    Ok(NewPlugin { name, kind, dir })
}

/// Writes the crate; refuses to overwrite a directory that is not empty.
pub fn create(new: &NewPlugin, sdk: &Path) -> anyhow::Result<()> {
    if new.dir.exists() && new.dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", new.dir.display());
    }
    std::fs::create_dir_all(new.dir.join("src"))?;
    let module = new.name.replace('-', "_");
    let class: String = new
        .name
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let (template, feature) = match new.kind {
        Kind::Attack => (ATTACK, "attack"),
        Kind::Planner => (PLANNER, "planner"),
    };
    let source = template.replace("{{name}}", &new.name).replace("{{module}}", &module).replace("{{class}}", &class);
    std::fs::write(new.dir.join("src/lib.rs"), source)?;
    let sdk = sdk.canonicalize().with_context(|| format!("finding the SDK at {}", sdk.display()))?;
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK from your cme checkout (it is not on crates.io yet).
cme-plugin-sdk = {{ path = "{sdk}", features = ["{feature}"] }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"

# A workspace of its own, wherever it is created.
[workspace]
"#,
        name = new.name,
        sdk = sdk.display(),
    );
    std::fs::write(new.dir.join("Cargo.toml"), manifest)?;
    std::fs::write(new.dir.join(".gitignore"), "/target\n")?;
    Ok(())
}

/// The repository root: xtask lives one level below it.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the repository").to_path_buf()
}
