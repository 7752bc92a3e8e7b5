//! `cpu_stress:CpuStress`: loads the CPUs of random hosts (an inventory's or EC2's) for
//! `duration_seconds`, over SSH: `cores` workers (default every online CPU) each
//! `load_percent` busy, with `stress-ng` when the host has it and a shell loop when not.
//! The workers run in a process group of their own, killed by the undo armed before they
//! start (when due, when the engine is halted or restarts, by a timer left on the host if
//! the engine is gone) and, as a last bound, by `timeout` two minutes after that.

use ssh_fault::{Done, Summary, Workers, hold, report, stress_ng_or};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct CpuStress;

impl Attack for CpuStress {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("cpu-stress", env!("CARGO_PKG_VERSION"))
            .refs(["cpu_stress:CpuStress"])
            .description("Loads cores CPUs (default all) at load_percent on random hosts of an inventory or EC2 over SSH (stress-ng, or a shell loop without it), killed after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "cores": 2, "load_percent": 80, "duration_seconds": 120}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let load = args.load_percent.unwrap_or(100);
        if !(1..=100).contains(&load) {
            return Err(PluginError::invalid("load_percent", "1 to 100"));
        }
        let cores = args.cores.map_or("$(nproc 2>/dev/null || echo 1)".to_string(), |c| c.to_string());
        let timeout = u64::from(args.duration_seconds) + 60;
        // One second per cycle: busy for load % of it, asleep for the rest.
        let busy = if load == 100 {
            "while :; do :; done".to_string()
        } else {
            format!("while :; do timeout 0.{load:02} sh -c 'while :; do :; done'; sleep 0.{:02}; done", 100 - load)
        };
        let fallback = format!("n={cores}; i=0; while [ $i -lt $n ]; do ( {busy} ) & i=$((i + 1)); done; wait");
        let workers = Workers {
            check: "true".into(),
            command: stress_ng_or(&format!("--cpu {cores} --cpu-load {load} --timeout {timeout}s --quiet"), &fallback),
            cleanup: None,
        };
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            done.push(hold(ctx, host, index, "cpu-stress", (&workers, args.sudo, args.duration_seconds))?);
        }
        let cores = args.cores.map_or("every CPU".to_string(), |c| format!("{c} CPUs"));
        let rest = format!("{cores} at {load} % on {} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("loaded {rest}"), would: format!("load {rest}") };
        let details = json!({"cores": args.cores, "load_percent": load, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(CpuStress);
