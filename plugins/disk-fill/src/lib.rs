//! `disk_fill:DiskFill`: fills a file system on random hosts (an inventory's or EC2's)
//! for `duration_seconds`, over SSH, with one file (`fallocate`, else `dd`), removed after
//! it: the removal is armed as the undo before the fill, so it happens when due, when the
//! engine is halted or restarts, and (by a timer left on the host) even if the engine is
//! gone. However it is asked (`bytes`, `percent` used, or `leave_free_mib`), the fill
//! always leaves at least max(1 GiB, 5 % of the file system) free: a request beyond that
//! is refused on the host, before anything is written, saying how much there is.

use ssh_fault::{Done, Fault, Summary, as_root, make, measure_disk, quote, report, run_name};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct DiskFill;

impl Attack for DiskFill {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("disk-fill", env!("CARGO_PKG_VERSION"))
            .refs(["disk_fill:DiskFill"])
            .description("Fills a file system on random hosts of an inventory or EC2 over SSH (bytes, percent used, or leave_free_mib; always leaving max(1 GiB, 5 %) free) and removes the file after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "path": "/var/tmp", "percent": 90, "duration_seconds": 300, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        if args.path.split('/').any(|part| part == "..") {
            return Err(PluginError::invalid("path", "an absolute path without .."));
        }
        let (want, asked) = match (args.bytes, args.percent, args.leave_free_mib) {
            (Some(bytes), None, None) => (format!("want=$(( ({bytes} + 1023) / 1024 ))"), format!("{bytes} bytes")),
            (None, Some(percent), None) => {
                (format!("want=$(( size * {percent} / 100 - (size - avail) ))"), format!("to {percent} % used"))
            }
            (None, None, Some(mib)) => (format!("want=$(( avail - {mib} * 1024 ))"), format!("to {mib} MiB free")),
            _ => return Err(PluginError::invalid("bytes", "give one of bytes, percent or leave_free_mib")),
        };
        let dir = quote(&args.path);
        let measure = format!(
            "{}; {want}; \
             [ $want -gt 0 ] || {{ echo \"cme: nothing to fill on {path}: $(( avail / 1024 )) MiB free is already within what was asked ({asked})\" >&2; exit 93; }}; \
             [ $(( avail - want )) -ge $floor ] || {{ echo \"cme: filling {path} {asked} would leave less than max(1 GiB, 5 %) = $(( floor / 1024 )) MiB free ($(( avail / 1024 )) MiB free now, $(( want / 1024 )) MiB asked)\" >&2; exit 94; }}",
            measure_disk(&dir, &args.path),
            path = args.path.replace('\'', "")
        );
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let file = format!("{}/{}", args.path.trim_end_matches('/'), run_name(ctx, "disk-fill", index));
            let file = quote(&file);
            let fault = Fault {
                check: Some(as_root(args.sudo, &measure)),
                // Measured again as it writes: the disk may have filled in between.
                apply: as_root(
                    args.sudo,
                    &format!(
                        "{measure}; fallocate -l $(( want * 1024 )) {file} 2>/dev/null || \
                         dd if=/dev/zero of={file} bs=1024 count=$want conv=fsync 2>/dev/null || \
                         {{ echo 'cme: could not write the file' >&2; exit 1; }}; echo $(( want * 1024 ))"
                    ),
                ),
                undo: Some((as_root(args.sudo, &format!("rm -f {file}")), u64::from(args.duration_seconds) * 1000)),
            };
            done.push(make(host, &fault)?);
        }
        let rest = format!("{} {asked} on {} hosts for {} s", args.path, done.len(), args.duration_seconds);
        let summary = Summary { done: format!("filled {rest}"), would: format!("fill {rest}") };
        let details = json!({"path": args.path, "bytes": args.bytes, "percent": args.percent, "leave_free_mib": args.leave_free_mib, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(DiskFill);
