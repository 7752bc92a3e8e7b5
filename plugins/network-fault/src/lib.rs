//! `network_fault:NetworkFault`: degrades the network of random hosts (an inventory's or
//! EC2's) for `duration_seconds`, over SSH: `latency` or `loss` with a netem qdisc on an
//! interface (tc), or `blackhole`, dropping TCP and UDP traffic on some ports (iptables).
//! The removal is armed as the undo before the fault, so it happens when due, when the
//! engine is halted or restarts, and (by a timer left on the host) even if the engine is
//! gone. A host without tc or iptables, a kernel without netem, or an interface that
//! already carries a netem qdisc is refused with an error saying so.

use ssh_fault::{Done, Fault, Summary, make, report, sudo};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

/// The comment blackhole rules carry, so that the undo removes only them.
const RULE_COMMENT: &str = "cme-network-fault";

struct NetworkFault;

impl Attack for NetworkFault {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("network-fault", env!("CARGO_PKG_VERSION"))
            .refs(["network_fault:NetworkFault"])
            .description("Adds latency or packet loss (tc netem) or drops the traffic of some ports (iptables) on random hosts of an inventory or EC2 over SSH, removed after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web", "tags": {"zone": "a"}}, "fault": "latency", "latency_ms": 200, "jitter_ms": 50, "duration_seconds": 300, "sudo": true}))
            .capability(Capability::Ec2Describe(vec![]))
            .capability(Capability::Ssh)
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let after_ms = u64::from(args.duration_seconds) * 1000;
        let sudo = sudo(args.sudo);
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        let what = match args.fault.as_str() {
            "latency" | "loss" => {
                let netem = match args.fault.as_str() {
                    "latency" => {
                        let delay =
                            args.latency_ms.ok_or_else(|| PluginError::invalid("latency_ms", "latency needs it"))?;
                        format!("delay {delay}ms {}ms", args.jitter_ms.unwrap_or(0))
                    }
                    _ => {
                        let loss = args.loss_percent.filter(|p| *p > 0.0 && *p <= 100.0).ok_or_else(|| {
                            PluginError::invalid("loss_percent", "loss needs it, above 0 and at most 100")
                        })?;
                        format!("loss {loss}%")
                    }
                };
                let iface = args.interface.clone();
                for host in hosts {
                    let dev = match &iface {
                        Some(name) => name.clone(),
                        None if ctx.dry_run => "<default route's>".to_string(),
                        None => default_interface(&host)?,
                    };
                    let fault = Fault {
                        check: Some(format!(
                            "command -v tc >/dev/null || {{ echo 'cme: tc (iproute2) is not installed' >&2; exit 90; }}; \
                             [ -e /sys/class/net/{dev} ] || {{ echo 'cme: there is no interface {dev}' >&2; exit 91; }}; \
                             if tc qdisc show dev {dev} root | grep -q netem; then echo 'cme: {dev} already has a netem qdisc (another fault is on)' >&2; exit 92; fi"
                        )),
                        apply: format!(
                            "out=$({sudo}tc qdisc add dev {dev} root netem {netem} 2>&1) || {{ case \"$out\" in \
                             *'qdisc kind is unknown'*) echo \"cme: the kernel lacks netem (the sch_netem module), so latency and loss cannot be injected on this host: tc said: $out\" >&2; exit 93;; \
                             *) echo \"cme: tc qdisc add failed: $out\" >&2; exit 1;; esac; }}"
                        ),
                        undo: Some((
                            format!(
                                "if tc qdisc show dev {dev} root | grep -q netem; then {sudo}tc qdisc del dev {dev} root; fi"
                            ),
                            after_ms,
                        )),
                    };
                    done.push(make(host, &fault)?);
                }
                let (done, would) = if args.fault == "latency" {
                    ("added latency on", "add latency on")
                } else {
                    ("dropped packets on", "drop packets on")
                };
                (done.to_string(), would.to_string())
            }
            "blackhole" => {
                if args.ports.is_empty() {
                    return Err(PluginError::invalid("ports", "blackhole needs the ports whose traffic to drop"));
                }
                for host in hosts {
                    if args.ports.contains(&host.target.port) {
                        return Err(PluginError::invalid(
                            "ports",
                            format!(
                                "{} is the SSH port the engine reaches {} on: the fault could not be undone",
                                host.target.port, host.name
                            ),
                        ));
                    }
                    let rules: Vec<String> = args
                        .ports
                        .iter()
                        .flat_map(|port| {
                            ["tcp", "udp"].into_iter().flat_map(move |proto| {
                                [
                                    format!("INPUT -p {proto} --dport {port}"),
                                    format!("OUTPUT -p {proto} --dport {port}"),
                                ]
                            })
                        })
                        .map(|rule| format!("{rule} -m comment --comment {RULE_COMMENT} -j DROP"))
                        .collect();
                    let insert: Vec<String> = rules.iter().map(|r| format!("{sudo}iptables -I {r}")).collect();
                    let delete: Vec<String> =
                        rules.iter().map(|r| format!("while {sudo}iptables -D {r} 2>/dev/null; do :; done")).collect();
                    let fault = Fault {
                        check: Some(
                            "command -v iptables >/dev/null || { echo 'cme: iptables is not installed' >&2; exit 90; }"
                                .into(),
                        ),
                        apply: format!("set -e; {}", insert.join("; ")),
                        undo: Some((format!("{}; true", delete.join("; ")), after_ms)),
                    };
                    done.push(make(host, &fault)?);
                }
                (
                    format!("dropped the traffic of ports {:?} on", args.ports),
                    format!("drop the traffic of ports {:?} on", args.ports),
                )
            }
            other => return Err(PluginError::invalid("fault", format!("latency, loss or blackhole, not {other:?}"))),
        };
        let rest = format!("{} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("{} {rest}", what.0), would: format!("{} {rest}", what.1) };
        let details = json!({"fault": args.fault, "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms, "loss_percent": args.loss_percent, "ports": args.ports, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

/// The interface of the host's default route.
fn default_interface(host: &cme_plugin_sdk::aim::SshHost) -> Result<String, PluginError> {
    let output = ssh_fault::exec(
        host,
        "ip route show default | awk '{for (i = 1; i < NF; i++) if ($i == \"dev\") { print $(i + 1); exit }}'",
    )?;
    let dev = output.stdout.trim().to_string();
    if dev.is_empty() {
        return Err(PluginError::failed(format!(
            "on {} ({}): no default route, so no default interface: give interface",
            host.name, host.target.address
        )));
    }
    if !dev.chars().all(|c| c.is_ascii_alphanumeric() || "_.:@-".contains(c)) {
        return Err(PluginError::failed(format!("on {}: unexpected interface name {dev:?}", host.name)));
    }
    Ok(dev)
}

cme_plugin_sdk::export_attack!(NetworkFault);
