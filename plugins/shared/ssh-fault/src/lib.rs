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

/// `script` as one command run by root: through `sudo -n sh -c` when asked, else as is
/// (the login is root's, or the operator granted the privilege otherwise).
pub fn as_root(sudo: bool, script: &str) -> String {
    if sudo { format!("sudo -n sh -c {}", quote(script)) } else { script.to_string() }
}

/// A word the remote shell takes literally.
pub fn quote(word: &str) -> String {
    cme_plugin_sdk::targets::shell_quote(word)
}

/// Where a fault keeps what its revert needs on the host (a process group, an applied
/// offset): a name of this run's own and the host's place in it, under `/tmp`. The revert
/// acts only while the file is there and removes it, so running it twice (the engine's,
/// then the target's timer) changes nothing the second time.
pub fn state_file(ctx: &RunContext, kind: &str, host_index: usize) -> String {
    format!("/tmp/{}", run_name(ctx, kind, host_index))
}

/// `cme-KIND-RUN-INDEX`: the name of what a fault leaves on its host (its state file, a
/// fill's file, a stress's directory), this run's and this host's own.
pub fn run_name(ctx: &RunContext, kind: &str, host_index: usize) -> String {
    let run: String = ctx.run_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(40).collect();
    format!("cme-{kind}-{run}-{host_index}")
}

/// A shell fragment measuring the file system holding `dir` (a quoted absolute path;
/// `shown` names it in messages): sets `size` and `avail` in KiB (POSIX df) and `floor`,
/// what must stay free: max(1 GiB, 5 % of the size). Refuses a missing directory.
pub fn measure_disk(dir: &str, shown: &str) -> String {
    let shown = shown.replace('\'', "");
    format!(
        "[ -d {dir} ] || {{ echo 'cme: there is no directory {shown} on this host' >&2; exit 91; }}; \
         set -- $(df -Pk {dir} | awk 'NR == 2 {{ print $2, $4 }}'); size=$1; avail=$2; \
         [ -n \"$avail\" ] || {{ echo 'cme: df could not measure {shown}' >&2; exit 92; }}; \
         floor=$(( size / 20 )); [ $floor -lt 1048576 ] && floor=1048576"
    )
}

/// Starts `command` detached from the SSH session, in a process group of its own whose id
/// is written to `state`, ended by `timeout` after `limit_seconds` whatever becomes of the
/// engine and the undo (the last bound). Returns at once.
pub fn launch_group(state: &str, command: &str, limit_seconds: u64) -> String {
    let script = format!("echo $$ > {state}; exec timeout -s KILL {limit_seconds} sh -c {}", quote(command));
    format!("setsid sh -c {} </dev/null >/dev/null 2>&1 & sleep 0.2; [ -s {state} ]", quote(&script))
}

/// Ends the process group `launch_group` started (TERM, then KILL after 5 s) and waits
/// until it is gone; then removes its state. Nothing when the state is gone already.
pub fn end_group(state: &str) -> String {
    format!(
        "if [ -f {state} ]; then g=$(cat {state}); if [ -n \"$g\" ]; then kill -TERM -- -\"$g\" 2>/dev/null; i=0; \
         while kill -0 -- -\"$g\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; \
         kill -KILL -- -\"$g\" 2>/dev/null; fi; rm -f {state}; fi; true"
    )
}

/// A shell test: whether `tool` is an executable on the host's PATH (`command -v` alone
/// also finds a file root may not run, in bash).
pub fn has_tool(tool: &str) -> String {
    format!("[ -x \"$(command -v {tool} 2>/dev/null)\" ]")
}

/// A check line: refuses (exit 90, `cme: ` message on stderr) unless `tool` is on the
/// host's PATH, naming the package that brings it.
pub fn need_tool(tool: &str, package: &str) -> String {
    format!(
        "{} || {{ echo 'cme: {tool} is not installed on this host (it comes with {package})' >&2; exit 90; }}",
        has_tool(tool)
    )
}

/// How much longer than its duration a held fault's processes may live, should neither the
/// engine nor the target's undo timer end them: `timeout` kills them then.
const LAST_BOUND_SECONDS: u64 = 120;

/// Workers that load a host for a while: started detached in a process group of their own
/// (`launch_group`), ended by the undo (`end_group`) armed before they start.
pub struct Workers {
    /// Run first (nothing changed yet): refuses with a `cme:` message.
    pub check: String,
    /// The workers: a shell command that runs until killed.
    pub command: String,
    /// Run by the undo after the workers are gone (e.g. their files removed).
    pub cleanup: Option<String>,
}

/// Holds `workers` on `host` for `duration_seconds`: checks, arms the undo, starts them.
pub fn hold(
    ctx: &RunContext,
    host: SshHost,
    index: usize,
    kind: &str,
    (workers, sudo, duration_seconds): (&Workers, bool, u32),
) -> Result<Done, PluginError> {
    let state = state_file(ctx, kind, index);
    let limit = u64::from(duration_seconds) + LAST_BOUND_SECONDS;
    let tools = format!("{}; {}", need_tool("setsid", "util-linux"), need_tool("timeout", "coreutils"));
    let mut undo = end_group(&state);
    if let Some(cleanup) = &workers.cleanup {
        undo = format!("{undo}; {cleanup}; true");
    }
    let fault = Fault {
        check: Some(as_root(sudo, &format!("{tools}; {}", workers.check))),
        apply: as_root(
            sudo,
            &format!("{}; {} && cat {state}", workers.check, launch_group(&state, &workers.command, limit)),
        ),
        undo: Some((as_root(sudo, &undo), u64::from(duration_seconds) * 1000)),
    };
    make(host, &fault)
}

/// A shell fragment choosing stress-ng when the host has it, else `fallback`.
pub fn stress_ng_or(stress_ng: &str, fallback: &str) -> String {
    format!("if {}; then exec stress-ng {stress_ng}; else {fallback}; fi", has_tool("stress-ng"))
}
