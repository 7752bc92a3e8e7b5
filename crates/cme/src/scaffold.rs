//! `cme plugins new NAME --kind attack|planner|probe`: a plugin project that needs nothing
//! of this repository. It depends on `cme-plugin-sdk` by version (or by path or git when
//! told), and carries a toolchain file, a test that runs the plugin through the SDK's mock
//! host, a grant and a plan to start from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const ATTACK: &str = include_str!("../templates/attack.rs");
const PLANNER: &str = include_str!("../templates/planner.rs");
const PROBE: &str = include_str!("../templates/probe.rs");

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin's name, kebab-case (its name in the registry; refs follow from it).
    pub name: String,
    /// Which world it implements.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Where to create it [default: ./NAME]; refused if it exists and is not empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Depend on the SDK at this path (a checkout's crates/cme-plugin-sdk) instead of by version.
    #[arg(long, value_name = "PATH", conflicts_with = "sdk_git")]
    pub sdk_path: Option<PathBuf>,
    /// Depend on the SDK from this git repository instead of by version.
    #[arg(long, value_name = "URL")]
    pub sdk_git: Option<String>,
    /// The git revision (commit, tag or branch) with --sdk-git.
    #[arg(long, value_name = "REV", requires = "sdk_git")]
    pub sdk_rev: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Attack,
    Planner,
    Probe,
}

impl Kind {
    fn feature(self) -> &'static str {
        match self {
            Kind::Attack => "attack",
            Kind::Planner => "planner",
            Kind::Probe => "probe",
        }
    }
}

/// Writes the project and says what to do next.
pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    create(&args, &dir)?;
    let module = args.name.replace('-', "_");
    println!("created {} ({}) in {}", args.name, args.kind.feature(), dir.display());
    println!();
    println!("  cd {}", dir.display());
    println!("  cargo test                                    # runs it through the SDK's mock host");
    println!("  cargo build --release --target wasm32-wasip2   # target/wasm32-wasip2/release/{module}.wasm");
    println!("  cme plugins check target/wasm32-wasip2/release/{module}.wasm");
    println!("  cme plugins run target/wasm32-wasip2/release/{module}.wasm --grant @grant.json");
    println!(
        "  cme plugins push target/wasm32-wasip2/release/{module}.wasm && cme plugins grant {} -f grant.json",
        args.name
    );
    println!("  cme plans create -f plan.json");
    Ok(())
}

fn create(args: &NewArgs, dir: &Path) -> anyhow::Result<()> {
    let name = &args.name;
    if !cme_model::is_plugin_name(name) {
        bail!("the name must be kebab-case, e.g. kill-pod (it is the plugin's name in the registry)");
    }
    if dir.exists() && dir.read_dir().with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let module = name.replace('-', "_");
    let class: String = name
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let reference = format!("{module}:{class}");
    let template = match args.kind {
        Kind::Attack => ATTACK,
        Kind::Planner => PLANNER,
        Kind::Probe => PROBE,
    };
    let source = template.replace("{{name}}", name).replace("{{module}}", &module).replace("{{class}}", &class);

    let sdk = match (&args.sdk_path, &args.sdk_git) {
        (Some(path), _) => {
            let path = path.canonicalize().with_context(|| format!("--sdk-path {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!(
                    "--sdk-path {}: no Cargo.toml there (expected a checkout's crates/cme-plugin-sdk)",
                    path.display()
                );
            }
            format!("path = {}", toml_string(&path.display().to_string()))
        }
        (None, Some(url)) => match &args.sdk_rev {
            Some(rev) => format!("git = {}, rev = {}", toml_string(url), toml_string(rev)),
            None => format!("git = {}", toml_string(url)),
        },
        (None, None) => format!("version = \"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
cme-plugin-sdk = {{ {sdk}, features = ["{feature}"] }}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1"

[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"

# A workspace of its own, wherever it is created.
[workspace]
"#,
        feature = args.kind.feature(),
    );
    let (grant, plan) = starting_points(args.kind, name, &reference);

    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    let files: [(&str, String); 6] = [
        ("Cargo.toml", manifest),
        ("rust-toolchain.toml", "[toolchain]\nchannel = \"stable\"\ntargets = [\"wasm32-wasip2\"]\n".into()),
        (".gitignore", "/target\n".into()),
        ("src/lib.rs", source),
        ("grant.json", format!("{:#}\n", grant)),
        ("plan.json", format!("{:#}\n", plan)),
    ];
    for (file, contents) in files {
        std::fs::write(dir.join(file), contents).with_context(|| format!("writing {file}"))?;
    }
    Ok(())
}

/// What an operator grants the new plugin and a plan that uses it; both are edited before
/// use (the service's URL, the date).
fn starting_points(kind: Kind, name: &str, reference: &str) -> (serde_json::Value, serde_json::Value) {
    use serde_json::json;
    let http_grant = json!({"http": {"urls": ["http://service.internal/*"]}});
    let once = json!({"ref": "exact_planner:ExactPlanner", "args": {"date": "2030-01-01T10:00:00Z"}});
    match kind {
        Kind::Attack => (
            http_grant,
            json!({"name": format!("{name}, once"), "attack": {"ref": reference, "args": {"url": "http://service.internal/health"}}, "planner": once}),
        ),
        // Planners need no capability: the grant only approves and enables the plugin.
        Kind::Planner => (
            json!({}),
            json!({"name": format!("call a service, as {name} plans"),
                   "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://service.internal/chaos", "method": "POST"}},
                   "planner": {"ref": reference, "args": {"start": "2030-06-21T10:00:00Z", "every_minutes": 30, "times": 4}}}),
        ),
        Kind::Probe => (
            http_grant,
            json!({"name": format!("call a service while {name} says it is healthy"),
                   "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://service.internal/chaos", "method": "POST"}},
                   "planner": once,
                   "steady_state": [{"ref": reference, "args": {"url": "http://service.internal/health", "expect_status": 200}}]}),
        ),
    }
}

/// A TOML basic string (paths on Windows carry backslashes; URLs may carry quotes).
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
