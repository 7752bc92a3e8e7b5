//! A test attack that misbehaves on request, to prove the host's limits and grants.
//! Args: `{"mode": "...", ...}`; see [`Mode`]. Never shipped with the engine.

use std::hint::black_box;
use std::io::Write;

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2, http, scripts, ssh};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

#[derive(serde::Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
enum Mode {
    /// Returns at once.
    Noop,
    /// Spins forever.
    Loop,
    /// Allocates until memory runs out.
    MemoryBomb,
    /// Recurses until the stack runs out.
    StackOverflow,
    /// Panics with a known message.
    Panic,
    /// Logs forever.
    LogFlood,
    /// Prints to stdout forever.
    StdoutFlood,
    /// Returns a report with a summary of `bytes` bytes.
    HugeReport { bytes: usize },
    /// Calls a cheap host function forever.
    HostCallFlood,
    /// Tries to read a host file through WASI.
    ReadFile { path: String },
    /// Tries to open a TCP connection through WASI.
    Connect { addr: String },
    /// Reports the environment variables it can see.
    Env,
    /// Sends one HTTP request through the host.
    Http { method: String, url: String },
    /// Calls ec2.describe-instances.
    Ec2 { region: String },
    /// Describes instances tagged `tag_key=tag_value`, then terminates `terminate`.
    Ec2Terminate { region: String, tag_key: String, tag_value: String, terminate: Vec<String> },
    /// Calls ssh.exec on `address` without describing anything first.
    Ssh { address: String },
    /// Reads a script from the host's library.
    Script { name: String },
}

struct Hostile;

impl Attack for Hostile {
    type Args = Mode;

    fn describe() -> Describe {
        Describe::new("hostile", env!("CARGO_PKG_VERSION"))
            .refs(["hostile:Hostile"])
            .description("Misbehaves on request; for the engine's tests.")
            .schema(json!({"type": "object", "required": ["mode"], "properties": {"mode": {"type": "string"}}}))
            .example(json!({"mode": "noop"}))
            .capability(Capability::Http(vec!["*".into()]))
            .capability(Capability::Ec2Terminate(vec!["ap-southeast-2".into(), "eu-west-1".into()]))
            .capability(Capability::Ssh)
            .capability(Capability::Scripts)
    }

    fn run(_ctx: &RunContext, mode: Mode) -> Result<Report, PluginError> {
        match mode {
            Mode::Noop => Ok(Report::new("noop")),
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            Mode::MemoryBomb => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 8 << 20]));
                }
            }
            Mode::StackOverflow => Ok(Report::new(format!("{}", recurse(black_box(1))))),
            Mode::Panic => panic!("plugin panicked on purpose"),
            Mode::LogFlood => loop {
                info!("flooding the log");
            },
            Mode::StdoutFlood => loop {
                // Ignore write errors: a full pipe must not stop the flood.
                let _ = std::io::stdout().write_all(&[b'x'; 4096]);
            },
            Mode::HugeReport { bytes } => Ok(Report::new("x".repeat(bytes))),
            Mode::HostCallFlood => loop {
                let _ = scripts::read("nothing");
            },
            Mode::ReadFile { path } => match std::fs::read(&path) {
                Ok(bytes) => Ok(Report::new(format!("read {} bytes from {path}", bytes.len()))),
                Err(e) => Err(PluginError::failed(format!("cannot read {path}: {e}"))),
            },
            Mode::Connect { addr } => match std::net::TcpStream::connect(&addr) {
                Ok(_) => Ok(Report::new(format!("connected to {addr}"))),
                Err(e) => Err(PluginError::failed(format!("cannot connect to {addr}: {e}"))),
            },
            Mode::Env => Ok(Report::new(format!("{} variables", std::env::vars().count()))
                .details(json!({"vars": std::env::vars().collect::<Vec<_>>()}))),
            Mode::Http { method, url } => {
                let response =
                    http::send(&http::Request { method, url, headers: vec![], body: None, timeout_ms: None })?;
                Ok(Report::new(format!("status {}", response.status)).target(response.final_url))
            }
            Mode::Ec2 { region } => {
                let instances = ec2::describe_instances(&region, &[])?;
                Ok(Report::new(format!("{} instances", instances.len())))
            }
            Mode::Ec2Terminate { region, tag_key, tag_value, terminate } => {
                let filter = ec2::Filter { name: format!("tag:{tag_key}"), values: vec![tag_value] };
                let described: Vec<String> =
                    ec2::describe_instances(&region, &[filter])?.into_iter().map(|i| i.instance_id).collect();
                let done = ec2::terminate_instances(&region, &terminate)?;
                let states: Vec<String> =
                    done.iter().map(|t| format!("{}={}", t.instance_id, t.current_state)).collect();
                Ok(Report::new(states.join(",")).details(json!({"described": described})))
            }
            Mode::Script { name } => {
                let bytes = scripts::read(&name)?;
                Ok(Report::new(format!("{} bytes", bytes.len()))
                    .details(json!({"first_line": String::from_utf8_lossy(&bytes).lines().next().unwrap_or("")})))
            }
            Mode::Ssh { address } => {
                let target = ssh::Target { address, port: 22, user: "root".into(), credential: "none".into() };
                let out = ssh::exec(&target, "true", 1000)?;
                Ok(Report::new(format!("exit {:?}", out.exit_code)))
            }
        }
    }
}

/// Recursion that keeps its state in wasm locals, so it exhausts the wasm call stack
/// (not the guest's in-memory shadow stack). Two recursive calls keep LLVM from
/// turning it into a loop.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let a = recurse(n.wrapping_add(2) | 1);
    a.wrapping_add(recurse(a | 1))
}

cme_plugin_sdk::export_attack!(Hostile);
