//! The flow the SSH fault plugins share. For each chosen host: an optional check (a
//! command whose failure, with its `cme:` message on stderr, refuses the attack on that
//! host before anything changes), the undo armed (before the fault: the engine holds it
//! whatever happens to the run), the fault, and, should the fault command fail, its undo
//! run at once. Commands are built by each plugin; this crate runs and reports them.

use cme_plugin_sdk::aim::SshHost;
use cme_plugin_sdk::attack::{Report, RunContext, ssh, undo};
use cme_plugin_sdk::serde_json::{Value, json};
use cme_plugin_sdk::{PluginError, info};

/// How long one command may take.
const TIMEOUT_MS: u32 = 60_000;
/// How much of a failing command's output an error quotes.
const EXCERPT_BYTES: usize = 1024;

/// What to do on one host.
pub struct Fault {
    /// Run first; a non-zero exit refuses the attack on this host (nothing changed yet).
    pub check: Option<String>,
    /// What makes the fault.
    pub apply: String,
    /// What reverses it, and after how long (None: nothing to undo, e.g. a killed process).
    pub undo: Option<(String, u64)>,
}

/// What happened on one host.
pub struct Done {
    pub host: SshHost,
    /// The fault command's standard output.
    pub stdout: String,
    pub undo_id: Option<String>,
}

/// `sudo -n ` when asked (never prompts: a password prompt would hang the run).
pub fn sudo(yes: bool) -> &'static str {
    if yes { "sudo -n " } else { "" }
}

/// Runs `command` on `host`; a non-zero exit is the attack's failure, naming the host and
/// quoting the end of its stderr (or stdout).
pub fn exec(host: &SshHost, command: &str) -> Result<ssh::ExecOutput, PluginError> {
    let output = ssh::exec(&host.target, command, TIMEOUT_MS)?;
    if output.exit_code == Some(0) {
        return Ok(output);
    }
    let text = if output.stderr.trim().is_empty() { &output.stdout } else { &output.stderr };
    let how = output.exit_code.map_or("was killed".to_string(), |c| format!("exited {c}"));
    Err(PluginError::failed(format!("on {} ({}): {}", host.name, host.target.address, excerpt(text, how))))
}

fn excerpt(text: &str, how: String) -> String {
    let text = text.trim();
    let mut start = text.len().saturating_sub(EXCERPT_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if text.is_empty() { format!("the command {how}") } else { text[start..].trim_start_matches("cme: ").to_string() }
}

/// Makes `fault` on `host`: check, arm, apply (undoing at once if the apply fails).
pub fn make(host: SshHost, fault: &Fault) -> Result<Done, PluginError> {
    if let Some(check) = &fault.check {
        exec(&host, check)?;
    }
    let undo_id = match &fault.undo {
        Some((command, after_ms)) => Some(undo::arm(&host.target, command, *after_ms)?),
        None => None,
    };
    info!("on {} ({}): {}", host.name, host.target.address, fault.apply);
    match exec(&host, &fault.apply) {
        Ok(output) => Ok(Done { stdout: output.stdout, host, undo_id }),
        Err(failed) => {
            if let Some((command, _)) = &fault.undo {
                // Whatever the fault left half made; the armed undo runs again later.
                let _ = ssh::exec(&host.target, command, TIMEOUT_MS);
            }
            Err(failed)
        }
    }
}

/// What a report says, for people: what was done (`"stopped nginx on 2 hosts"`) and what
/// a dry run would do (`"stop nginx on 2 hosts"`).
pub struct Summary {
    pub done: String,
    pub would: String,
}

/// The report of a fault made on every host.
pub fn report(ctx: &RunContext, summary: Summary, done: &[Done], details: Value) -> Report {
    let summary = if ctx.dry_run { format!("dry run: would {}", summary.would) } else { summary.done };
    let hosts: Vec<Value> = done
        .iter()
        .map(|d| json!({"name": d.host.name, "address": d.host.target.address, "undo_id": d.undo_id, "output": d.stdout.trim()}))
        .collect();
    let mut details = details;
    details["hosts"] = Value::Array(hosts);
    details["dry_run"] = Value::Bool(ctx.dry_run);
    done.iter().fold(Report::new(summary).details(details), |report, d| {
        report.target(d.host.name.clone()).target(d.host.target.address.clone())
    })
}
