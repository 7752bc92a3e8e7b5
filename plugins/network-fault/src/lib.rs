//! `network_fault:NetworkFault`: degrades the network of random hosts (an inventory's or
//! EC2's) for `duration_seconds`, over SSH: `latency`, `loss`, `corrupt` or `duplicate`
//! with a netem qdisc on an interface (tc); `blackhole`, dropping TCP and UDP traffic on
//! some ports; or `partition`, dropping all traffic to and from some addresses or CIDRs
//! (iptables, ip6tables), never one holding the engine's address as the host sees it.
//! The removal is armed as the undo before the fault, so it happens when due, when the
//! engine is halted or restarts, and (by a timer left on the host) even if the engine is
//! gone. A host without tc or iptables, a kernel without netem, or an interface that
//! already carries a netem qdisc is refused with an error saying so.

use ssh_fault::{Done, Fault, Summary, make, report, sudo};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;
mod cidr;

use args::Args;
use cidr::Cidr;

cme_plugin_sdk::built_args!(args::Args);

/// The comment blackhole rules carry, so that the undo removes only them.
const RULE_COMMENT: &str = "cme-network-fault";

struct NetworkFault;

impl Attack for NetworkFault {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("network-fault", env!("CARGO_PKG_VERSION"))
            .refs(["network_fault:NetworkFault"])
            .description("Adds latency, packet loss, corruption or duplication (tc netem), drops the traffic of some ports, or partitions hosts from addresses and CIDRs (iptables) on random hosts of an inventory or EC2 over SSH, removed after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web", "tags": {"zone": "a"}}, "fault": "latency", "latency_ms": 200, "jitter_ms": 50, "duration_seconds": 300, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let after_ms = u64::from(args.duration_seconds) * 1000;
        let sudo = sudo(args.sudo);
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        let what = match args.fault.as_str() {
            "latency" | "loss" | "corrupt" | "duplicate" => {
                let share = |value: Option<f64>, field: &str| {
                    value.filter(|p| *p > 0.0 && *p <= 100.0).ok_or_else(|| {
                        PluginError::invalid(field, format!("{} needs it, above 0 and at most 100", args.fault))
                    })
                };
                let netem = match args.fault.as_str() {
                    "latency" => {
                        let delay =
                            args.latency_ms.ok_or_else(|| PluginError::invalid("latency_ms", "latency needs it"))?;
                        format!("delay {delay}ms {}ms", args.jitter_ms.unwrap_or(0))
                    }
                    "loss" => format!("loss {}%", share(args.loss_percent, "loss_percent")?),
                    "corrupt" => format!("corrupt {}%", share(args.corrupt_percent, "corrupt_percent")?),
                    _ => format!("duplicate {}%", share(args.duplicate_percent, "duplicate_percent")?),
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
                let (done, would) = match args.fault.as_str() {
                    "latency" => ("added latency on", "add latency on"),
                    "loss" => ("dropped packets on", "drop packets on"),
                    "corrupt" => ("corrupted packets on", "corrupt packets on"),
                    _ => ("duplicated packets on", "duplicate packets on"),
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
            "partition" => {
                let peers: Vec<Cidr> = args
                    .peers
                    .iter()
                    .map(|p| Cidr::parse(p).map_err(|e| PluginError::invalid("peers", e)))
                    .collect::<Result<_, _>>()?;
                if peers.is_empty() {
                    return Err(PluginError::invalid("peers", "partition needs the addresses or CIDRs to cut off"));
                }
                for host in hosts {
                    if !ctx.dry_run {
                        refuse_cutting_off_the_engine(&host, &peers)?;
                    }
                    let rules: Vec<(&str, String)> = peers
                        .iter()
                        .flat_map(|peer| {
                            let tool = if peer.is_ipv6() { "ip6tables" } else { "iptables" };
                            [(tool, format!("INPUT -s {peer}")), (tool, format!("OUTPUT -d {peer}"))]
                        })
                        .map(|(tool, rule)| (tool, format!("{rule} -m comment --comment {RULE_COMMENT} -j DROP")))
                        .collect();
                    let insert: Vec<String> = rules.iter().map(|(tool, r)| format!("{sudo}{tool} -I {r}")).collect();
                    let delete: Vec<String> = rules
                        .iter()
                        .map(|(tool, r)| format!("while {sudo}{tool} -D {r} 2>/dev/null; do :; done"))
                        .collect();
                    let mut check = ssh_fault::need_tool("iptables", "iptables");
                    if peers.iter().any(Cidr::is_ipv6) {
                        check = format!("{check}; {}", ssh_fault::need_tool("ip6tables", "iptables"));
                    }
                    let fault = Fault {
                        check: Some(check),
                        apply: format!("set -e; {}", insert.join("; ")),
                        undo: Some((format!("{}; true", delete.join("; ")), after_ms)),
                    };
                    done.push(make(host, &fault)?);
                }
                let peers: Vec<String> = peers.iter().map(ToString::to_string).collect();
                (format!("partitioned from {}:", peers.join(", ")), format!("partition from {}:", peers.join(", ")))
            }
            other => {
                return Err(PluginError::invalid(
                    "fault",
                    format!("latency, loss, corrupt, duplicate, blackhole or partition, not {other:?}"),
                ));
            }
        };
        let rest = format!("{} hosts for {} s", done.len(), args.duration_seconds);
        let summary = Summary { done: format!("{} {rest}", what.0), would: format!("{} {rest}", what.1) };
        let details = json!({"fault": args.fault, "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms, "loss_percent": args.loss_percent, "corrupt_percent": args.corrupt_percent, "duplicate_percent": args.duplicate_percent, "ports": args.ports, "peers": args.peers, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

/// Refuses a partition that would cut the host off from the engine: the address the host
/// sees the engine's SSH connection come from (`SSH_CLIENT`, so NAT is taken into account).
fn refuse_cutting_off_the_engine(host: &cme_plugin_sdk::aim::SshHost, peers: &[Cidr]) -> Result<(), PluginError> {
    let output = ssh_fault::exec(host, "echo \"$SSH_CLIENT\"")?;
    let seen =
        output.stdout.split_whitespace().next().and_then(|a| a.parse::<std::net::IpAddr>().ok()).ok_or_else(|| {
            PluginError::failed(format!(
                "on {} ({}): SSH_CLIENT does not say where the engine connects from, so a partition could cut it off",
                host.name, host.target.address
            ))
        })?;
    match peers.iter().find(|peer| peer.contains(seen)) {
        Some(peer) => Err(PluginError::invalid(
            "peers",
            format!(
                "{peer} holds {seen}, the engine's address as {} sees it: the partition could not be undone",
                host.name
            ),
        )),
        None => Ok(()),
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
