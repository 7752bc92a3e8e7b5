//! `io_stress:IoStress`: loads the disk of random hosts (an inventory's or EC2's) for
//! `duration_seconds`, over SSH: `workers` writers each writing `bytes` to a file in a
//! directory of this run's under `path`, synced, over and over (`stress-ng --hdd`, or `dd`
//! when the host lacks it). The writers run in a process group of their own, killed by the
//! undo armed before they start, which then removes the directory. What they write must
//! fit and still leave max(1 GiB, 5 %) of the file system free, or the host is refused
//! before anything starts.

use ssh_fault::{Done, Summary, Workers, hold, measure_disk, quote, report, run_name, stress_ng_or};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const DEFAULT_BYTES: u64 = 256 << 20;

struct IoStress;

impl Attack for IoStress {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("io-stress", env!("CARGO_PKG_VERSION"))
            .refs(["io_stress:IoStress"])
            .description("Loads a disk on random hosts of an inventory or EC2 over SSH: workers writers each writing and syncing bytes under path, over and over (stress-ng, or dd without it), killed and their files removed after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "workers": 2, "bytes": 536_870_912u64, "path": "/var/tmp", "duration_seconds": 120}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let path = args.path.clone().unwrap_or_else(|| "/var/tmp".into());
        if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return Err(PluginError::invalid("path", "an absolute path without .."));
        }
        let workers = args.workers.unwrap_or(1);
        let bytes = args.bytes.unwrap_or(DEFAULT_BYTES);
        let timeout = u64::from(args.duration_seconds) + 60;
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let dir = format!("{}/{}", path.trim_end_matches('/'), run_name(ctx, "io-stress", index));
            let (root, dir) = (quote(&path), quote(&dir));
            let kib = (bytes * u64::from(workers)).div_ceil(1024);
            let check = format!(
                "{}; \
                 [ $(( avail - {kib} )) -ge $floor ] || {{ echo \"cme: {workers} writers of {mib} MiB on {shown} would leave less than max(1 GiB, 5 %) = $(( floor / 1024 )) MiB free ($(( avail / 1024 )) MiB free now)\" >&2; exit 94; }}",
                measure_disk(&root, &path),
                shown = path.replace('\'', ""),
                mib = bytes >> 20
            );
            let fallback = format!(
                "i=0; while [ $i -lt {workers} ]; do ( while :; do dd if=/dev/zero of={dir}/w$i bs=1048576 count={count} conv=fsync 2>/dev/null; rm -f {dir}/w$i; done ) & i=$((i + 1)); done; wait",
                count = bytes.div_ceil(1 << 20)
            );
            let stress = Workers {
                check,
                // The run's directory is made by the workers' own command: the check
                // changes nothing.
                command: format!(
                    "mkdir -p {dir} && {}",
                    stress_ng_or(
                        &format!("--hdd {workers} --hdd-bytes {bytes} --temp-path {dir} --timeout {timeout}s --quiet"),
                        &fallback,
                    )
                ),
                cleanup: Some(format!("rm -rf {dir}")),
            };
            done.push(hold(ctx, host, index, "io-stress", (&stress, args.sudo, args.duration_seconds))?);
        }
        let rest = format!(
            "{workers} writers of {} MiB under {path} on {} hosts for {} s",
            bytes >> 20,
            done.len(),
            args.duration_seconds
        );
        let summary = Summary { done: format!("started {rest}"), would: format!("start {rest}") };
        let details =
            json!({"workers": workers, "bytes": bytes, "path": path, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(IoStress);
