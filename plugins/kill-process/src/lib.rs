//! `kill_process:KillProcess`: sends a signal to the processes with a name (or whose
//! command line matches a pattern) on random hosts, over SSH; hosts come from an inventory
//! (`target`) or from EC2 (`region`, `filters`, `ssh`). `STOP` freezes them for
//! `duration_seconds` and arms `CONT` as the undo; the other signals are not undone (the
//! service manager restarts what it supervises). The processes are looked up first, so
//! none matching fails the run before any signal is sent, and the report names their pids.

use ssh_fault::{Done, Fault, Summary, exec, make, quote, report, sudo};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct KillProcess;

impl Attack for KillProcess {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("kill-process", env!("CARGO_PKG_VERSION"))
            .refs(["kill_process:KillProcess"])
            .description("Sends a signal to the processes with a name (or matching a pattern) on random hosts of an inventory or EC2, over SSH; STOP is undone with CONT after duration_seconds.")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web", "tags": {"zone": "a"}}, "process": "nginx", "signal": "KILL"}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let stop = args.signal == "STOP";
        let duration = match (stop, args.duration_seconds) {
            (true, None) => {
                return Err(PluginError::invalid(
                    "duration_seconds",
                    "STOP needs it: the processes are continued (CONT) after it",
                ));
            }
            (false, Some(_)) => {
                return Err(PluginError::invalid(
                    "duration_seconds",
                    "only STOP is undone; other signals end the processes",
                ));
            }
            (_, d) => d,
        };
        let (what, lookup) = match (&args.process, &args.pattern) {
            (Some(name), None) => (format!("processes named {name}"), format!("pgrep -x -- {}", quote(name))),
            // The pattern travels as octal escapes, so that the shell running pgrep does
            // not carry it in its own command line (and match itself).
            (None, Some(pattern)) => {
                (format!("processes matching {pattern:?}"), format!("pgrep -f -- \"$(printf '{}')\"", octal(pattern)))
            }
            _ => return Err(PluginError::invalid("process", "give process or pattern, not both")),
        };
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for host in hosts {
            let found = exec(
                &host,
                &format!("{lookup} || {{ echo 'cme: no {} on this host' >&2; exit 1; }}", what.replace('\'', "")),
            )?;
            let pids: Vec<&str> =
                found.stdout.split_whitespace().filter(|p| p.chars().all(|c| c.is_ascii_digit())).collect();
            if pids.is_empty() && !ctx.dry_run {
                return Err(PluginError::failed(format!("on {} ({}): no {what}", host.name, host.target.address)));
            }
            let pids = if ctx.dry_run { "<pids>".to_string() } else { pids.join(" ") };
            let sudo = sudo(args.sudo);
            let fault = Fault {
                check: None,
                apply: format!("{sudo}kill -{} {pids} && echo {pids}", args.signal),
                undo: duration
                    .map(|seconds| (format!("{sudo}kill -CONT {pids} 2>/dev/null; true"), u64::from(seconds) * 1000)),
            };
            done.push(make(host, &fault)?);
        }
        let undone = duration.map_or(String::new(), |s| format!(", continued after {s} s"));
        let rest = format!("{} to {what} on {} hosts{undone}", args.signal, done.len());
        let summary = Summary { done: format!("sent {rest}"), would: format!("send {rest}") };
        let details = json!({"signal": args.signal, "process": args.process, "pattern": args.pattern, "duration_seconds": duration});
        Ok(report(ctx, summary, &done, details))
    }
}

/// `\ooo` escapes of every byte, for printf.
fn octal(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:03o}")).collect()
}

cme_plugin_sdk::export_attack!(KillProcess);
