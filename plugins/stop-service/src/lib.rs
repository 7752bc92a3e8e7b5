//! `stop_service:StopService`: stops a systemd unit on random hosts (an inventory's or
//! EC2's) for `duration_seconds`, over SSH, and starts it again: the start is armed as the
//! undo before the stop, so it happens when due, when the engine is halted or restarts,
//! and (by a timer left on the host) even if the engine is gone. A host without systemd,
//! or where the unit is not active, is refused before anything changes.

use ssh_fault::{Done, Fault, Summary, make, report, sudo};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct StopService;

impl Attack for StopService {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("stop-service", env!("CARGO_PKG_VERSION"))
            .refs(["stop_service:StopService"])
            .description("Stops a systemd unit on random hosts of an inventory or EC2 over SSH and starts it again after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "service": "nginx", "duration_seconds": 120, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        if !args.service.chars().all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c)) {
            return Err(PluginError::invalid("service", "a systemd unit name"));
        }
        let unit = &args.service;
        let sudo = sudo(args.sudo);
        let fault = Fault {
            check: Some(format!(
                "command -v systemctl >/dev/null || {{ echo 'cme: systemctl not found: this host does not run systemd' >&2; exit 90; }}; \
                 state=$(systemctl is-active {unit} 2>&1); [ \"$state\" = active ] || {{ echo \"cme: {unit} is not active here (systemctl is-active: $state)\" >&2; exit 91; }}"
            )),
            apply: format!("{sudo}systemctl stop {unit}"),
            undo: Some((format!("{sudo}systemctl start {unit}"), u64::from(args.duration_seconds) * 1000)),
        };
        let mut done: Vec<Done> = Vec::new();
        for host in args.aim.hosts(&mut ctx.rng())? {
            done.push(make(host, &fault)?);
        }
        let rest = format!("{unit} on {} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("stopped {rest}"), would: format!("stop {rest}") };
        Ok(report(ctx, summary, &done, json!({"service": unit, "duration_seconds": args.duration_seconds})))
    }
}

cme_plugin_sdk::export_attack!(StopService);
