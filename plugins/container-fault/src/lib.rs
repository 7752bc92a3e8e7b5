//! `container_fault:ContainerFault`: kills, stops, pauses or restarts containers on random
//! hosts (an inventory's or EC2's), over SSH, through `docker` or `podman`: at most
//! `containers` of the running ones matching `name`, `label` or `image` on each host,
//! chosen at random. A kill, stop or pause is undone after `duration_seconds`: the undo,
//! armed before anything is touched, starts (or unpauses) exactly the containers the fault
//! touched, whose ids it keeps in a state file on the host. A host without the runtime, or
//! whose runtime cannot reach its daemon, or with no running container matching, is
//! refused before anything changes.

use ssh_fault::{Done, Fault, Summary, as_root, has_tool, make, quote, report, state_file};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

/// How long `docker stop` waits for a container before it kills it.
const STOP_GRACE_SECONDS: u32 = 10;

struct ContainerFault;

impl Attack for ContainerFault {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("container-fault", env!("CARGO_PKG_VERSION"))
            .refs(["container_fault:ContainerFault"])
            .description("Kills, stops, pauses or restarts Docker or Podman containers (by name, label or image) on random hosts of an inventory or EC2 over SSH; killed and stopped ones are started again, paused ones unpaused, after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "action": "stop", "label": "app=checkout", "duration_seconds": 120, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let (filter, which) = match (&args.name, &args.label, &args.image) {
            (Some(name), None, None) => (format!("name=^{name}$"), format!("named {name}")),
            (None, Some(label), None) => (format!("label={label}"), format!("labelled {label}")),
            (None, None, Some(image)) => (format!("ancestor={image}"), format!("of image {image}")),
            _ => return Err(PluginError::invalid("name", "give one of name, label or image")),
        };
        let undone = match (args.action.as_str(), args.duration_seconds) {
            ("kill" | "stop" | "pause", Some(seconds)) => Some(seconds),
            ("kill" | "stop" | "pause", None) => {
                return Err(PluginError::invalid("duration_seconds", "kill, stop and pause are undone after it"));
            }
            ("restart", None) => None,
            ("restart", Some(_)) => {
                return Err(PluginError::invalid("duration_seconds", "a restart has nothing to undo"));
            }
            (other, _) => {
                return Err(PluginError::invalid("action", format!("kill, stop, pause or restart, not {other:?}")));
            }
        };
        let runtime = match args.runtime.as_deref() {
            None => format!("if {}; then rt=docker; else rt=podman; fi", has_tool("docker")),
            Some(rt @ ("docker" | "podman")) => format!("rt={rt}"),
            Some(other) => return Err(PluginError::invalid("runtime", format!("docker or podman, not {other:?}"))),
        };
        let limit = args.containers.unwrap_or(1);
        let filter = quote(&filter);
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let state = state_file(ctx, "container-fault", index);
            // The running containers matching, at most `limit` of them, in a random order.
            let find = format!(
                "{runtime}; {has} || {{ echo \"cme: $rt is not installed on this host\" >&2; exit 90; }}; \
                 out=$($rt ps -q 2>&1) || {{ echo \"cme: $rt cannot list containers here: $out\" >&2; exit 91; }}; \
                 ids=$($rt ps -q --no-trunc --filter {filter}); \
                 [ -n \"$ids\" ] || {{ echo 'cme: no running container {which} on this host' >&2; exit 92; }}; \
                 ids=$(echo \"$ids\" | {{ shuf 2>/dev/null || cat; }} | head -n {limit})",
                has = has_tool("$rt"),
                which = which.replace('\'', "")
            );
            let act = match args.action.as_str() {
                "kill" => "kill",
                "stop" => &format!("stop -t {STOP_GRACE_SECONDS}"),
                "pause" => "pause",
                _ => "restart",
            };
            let fault = Fault {
                check: Some(as_root(args.sudo, &find)),
                // The ids are kept while the action runs (a stop may take its grace) as
                // `.applying`, renamed when it is done: an undo due meanwhile waits for it.
                // (A restart keeps nothing: it has no undo.)
                apply: as_root(
                    args.sudo,
                    &if undone.is_some() {
                        format!(
                            "{find}; [ -f {state} ] && exit 0; echo $ids > {state}.applying; \
                             $rt {act} $ids >/dev/null; status=$?; mv {state}.applying {state}; [ $status = 0 ] && echo $ids"
                        )
                    } else {
                        format!("{find}; $rt {act} $ids >/dev/null && echo $ids")
                    },
                ),
                // Each touched container back as it was: a paused one unpaused, one that
                // exited (killed, stopped) started; one already running left alone.
                undo: undone.map(|seconds| {
                    // A container that cannot be brought back fails the undo (kept for its
                    // retry, and reported); one removed meanwhile is gone for good.
                    let command = format!(
                        "{runtime}; failed=0; i=0; while [ -f {state}.applying ] && [ $i -lt {wait} ]; do sleep 1; i=$((i + 1)); done; \
                         [ -f {state}.applying ] && mv {state}.applying {state}; \
                         if [ -f {state} ]; then for id in $(cat {state}); do \
                         case $($rt inspect -f '{{{{.State.Status}}}}' $id 2>/dev/null) in \
                         paused) $rt unpause $id >/dev/null || failed=1;; \
                         exited|created|stopped|configured) $rt start $id >/dev/null || failed=1;; esac; \
                         done; [ $failed = 0 ] && rm -f {state}; fi; exit $failed",
                        wait = STOP_GRACE_SECONDS + 20
                    );
                    (as_root(args.sudo, &command), u64::from(seconds) * 1000)
                }),
            };
            done.push(make(host, &fault)?);
        }
        let until = undone.map_or(String::new(), |s| format!(" for {s} s"));
        let rest = format!("up to {limit} containers {which} on {} hosts{until}", done.len());
        let (did, would) = match args.action.as_str() {
            "kill" => ("killed", "kill"),
            "stop" => ("stopped", "stop"),
            "pause" => ("paused", "pause"),
            _ => ("restarted", "restart"),
        };
        let summary = Summary { done: format!("{did} {rest}"), would: format!("{would} {rest}") };
        let details = json!({"action": args.action, "name": args.name, "label": args.label, "image": args.image, "containers": limit, "runtime": args.runtime, "duration_seconds": undone});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(ContainerFault);
