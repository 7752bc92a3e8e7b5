//! `memory_stress:MemoryStress`: takes memory on random hosts (an inventory's or EC2's)
//! for `duration_seconds`, over SSH: `mib`, or `percent` of MemTotal, held by one worker
//! (`stress-ng --vm`, or a shell pipe holding the bytes when the host lacks it) in a
//! process group of its own, killed by the undo armed before it starts. However it is
//! asked, it always leaves at least max(256 MiB, 10 % of MemTotal) available: a request
//! beyond that is refused on the host, before anything starts, saying how much there is.

use ssh_fault::{Done, Summary, Workers, hold, report, stress_ng_or};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct MemoryStress;

impl Attack for MemoryStress {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("memory-stress", env!("CARGO_PKG_VERSION"))
            .refs(["memory_stress:MemoryStress"])
            .description("Takes mib MiB or percent of MemTotal on random hosts of an inventory or EC2 over SSH (always leaving max(256 MiB, 10 %) available; stress-ng, or a shell pipe without it), given back after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "percent": 50, "duration_seconds": 120}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let (want, asked) = match (args.mib, args.percent) {
            (Some(mib), None) => (format!("want=$(( {mib} * 1024 ))"), format!("{mib} MiB")),
            (None, Some(percent)) => (format!("want=$(( total * {percent} / 100 ))"), format!("{percent} % of memory")),
            _ => return Err(PluginError::invalid("mib", "give mib or percent")),
        };
        // KiB, from /proc/meminfo; the floor is max(256 MiB, 10 % of MemTotal).
        let check = format!(
            "[ -r /proc/meminfo ] || {{ echo 'cme: no /proc/meminfo on this host: cannot measure its memory' >&2; exit 91; }}; \
             total=$(awk '/^MemTotal:/ {{ print $2 }}' /proc/meminfo); avail=$(awk '/^MemAvailable:/ {{ print $2 }}' /proc/meminfo); \
             [ -n \"$avail\" ] || {{ echo 'cme: /proc/meminfo has no MemAvailable (a kernel older than 3.14)' >&2; exit 92; }}; \
             floor=$(( total / 10 )); [ $floor -lt 262144 ] && floor=262144; {want}; \
             [ $(( avail - want )) -ge $floor ] || {{ echo \"cme: taking {asked} would leave less than max(256 MiB, 10 %) = $(( floor / 1024 )) MiB available ($(( avail / 1024 )) MiB available now, $(( want / 1024 )) MiB asked)\" >&2; exit 93; }}; \
             export want"
        );
        let timeout = u64::from(args.duration_seconds) + 60;
        // $want is measured (and exported) by the check, which the apply runs first.
        let workers = Workers {
            command: stress_ng_or(
                &format!("--vm 1 --vm-bytes $(( want ))K --vm-keep --vm-hang 0 --timeout {timeout}s --quiet"),
                "{ head -c $(( want * 1024 )) /dev/zero; exec sleep 2147483647; } | tail > /dev/null",
            ),
            check,
            cleanup: None,
        };
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            done.push(hold(ctx, host, index, "memory-stress", (&workers, args.sudo, args.duration_seconds))?);
        }
        let rest = format!("{asked} on {} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("took {rest}"), would: format!("take {rest}") };
        let details = json!({"mib": args.mib, "percent": args.percent, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(MemoryStress);
