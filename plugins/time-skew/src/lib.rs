//! `time_skew:TimeSkew`: steps the clock of random hosts (an inventory's or EC2's) by
//! `offset_seconds` for `duration_seconds`, over SSH, and pauses their time sync meanwhile
//! (`timedatectl set-ntp false`, or `chronyc offline` where chronyd runs without systemd),
//! so that it is not corrected under the experiment. The undo, armed before the step,
//! sets the true time again (the time before the step plus the uptime that passed since:
//! the uptime clock is not moved by a step) and resumes the sync (`chronyc makestep` after
//! `online`). What the undo needs is kept in a state file on the host, written before the
//! step, so running it twice changes nothing the second time.
//!
//! A host whose clock cannot be set is refused before anything changes, saying so: a
//! login without `CAP_SYS_TIME` (a container, or a user without `sudo: true`). So is a
//! host whose time sync cannot be paused (ntpd or another daemon without systemd).

use ssh_fault::{Done, Fault, Summary, as_root, make, report, state_file};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const MAX_OFFSET: i64 = 31_536_000;

struct TimeSkew;

impl Attack for TimeSkew {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("time-skew", env!("CARGO_PKG_VERSION"))
            .refs(["time_skew:TimeSkew"])
            .description("Steps the clock of random hosts of an inventory or EC2 by offset_seconds over SSH with their time sync paused, stepped back and resumed after duration_seconds (also when the engine halts or restarts); refused where the clock cannot be set (a container).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "offset_seconds": 300, "duration_seconds": 120, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let offset = args.offset_seconds;
        if offset == 0 || offset.abs() > MAX_OFFSET {
            return Err(PluginError::invalid("offset_seconds", format!("not 0, and at most {MAX_OFFSET} either way")));
        }
        // CAP_SYS_TIME is bit 25 of the effective set.
        let check = "[ -x \"$(command -v date 2>/dev/null)\" ] || { echo 'cme: date is not installed on this host' >&2; exit 90; }; \
             [ -r /proc/uptime ] || { echo 'cme: no /proc/uptime on this host: the undo could not tell the true time' >&2; exit 94; }; \
             cap=$(awk '/^CapEff:/ { print $2 }' /proc/self/status 2>/dev/null); \
             if [ -n \"$cap\" ] && [ $(( 0x$cap >> 25 & 1 )) -eq 0 ]; then echo 'cme: the clock cannot be set on this host: the login lacks CAP_SYS_TIME (a container cannot set the clock; elsewhere give sudo: true or log in as root)' >&2; exit 91; fi; \
             sync=none; \
             if [ -x \"$(command -v timedatectl 2>/dev/null)\" ] && [ \"$(timedatectl show -p NTP --value 2>/dev/null)\" = yes ]; then sync=timedatectl; \
             elif [ -x \"$(command -v chronyc 2>/dev/null)\" ] && chronyc -n tracking >/dev/null 2>&1; then sync=chrony; \
             elif pgrep -x ntpd >/dev/null 2>&1 || pgrep -x openntpd >/dev/null 2>&1; then echo 'cme: ntpd runs here without systemd, and cme cannot pause it: the clock would be corrected under the experiment' >&2; exit 92; fi";
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let state = state_file(ctx, "time-skew", index);
            let fault = Fault {
                check: Some(as_root(args.sudo, check)),
                // What the undo needs first: the true time and the uptime (a clock `date -s`
                // does not move) just before the step. The undo sets the true time from them
                // whether or not the step happened, so a session lost between the two changes
                // nothing, and a second undo finds no state. Then the step (its failure
                // removes the state: nothing changed), then the sync paused.
                apply: as_root(
                    args.sudo,
                    &format!(
                        "{check}; [ -f {state} ] && exit 0; \
                         t0=$(date +%s); up0=$(cut -d . -f 1 /proc/uptime); echo \"$t0 $up0 $sync\" > {state}; \
                         out=$(date -s \"@$(( t0 + {offset} ))\" 2>&1) || {{ rm -f {state}; echo \"cme: date -s failed: $out\" >&2; exit 93; }}; \
                         case $sync in timedatectl) timedatectl set-ntp false;; chrony) chronyc -n offline >/dev/null;; esac; \
                         echo \"clock stepped by {offset} s to $(date -u +%FT%TZ); time sync paused: $sync\""
                    ),
                ),
                undo: Some((
                    as_root(
                        args.sudo,
                        &format!(
                            "if [ -f {state} ]; then read t0 up0 sync < {state}; up1=$(cut -d . -f 1 /proc/uptime); \
                             date -s \"@$(( t0 + up1 - up0 ))\" >/dev/null && rm -f {state}; \
                             case $sync in timedatectl) timedatectl set-ntp true;; chrony) chronyc -n online >/dev/null; chronyc -n makestep >/dev/null;; esac; \
                             [ ! -f {state} ]; fi"
                        ),
                    ),
                    u64::from(args.duration_seconds) * 1000,
                )),
            };
            done.push(make(host, &fault)?);
        }
        let rest = format!("by {offset:+} s on {} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("stepped the clock {rest}"), would: format!("step the clock {rest}") };
        let details = json!({"offset_seconds": offset, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(TimeSkew);
