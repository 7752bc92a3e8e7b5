//! `dns_fault:DnsFault`: breaks name resolution on random hosts (an inventory's or EC2's)
//! for `duration_seconds`, over SSH: `/etc/hosts` entries, each carrying a marker comment
//! of this run, point the names at `redirect_to` or at the unspecified addresses (both
//! families always: the one `redirect_to` is not of resolves to its unspecified address,
//! so that no lookup of the name reaches DNS). The file
//! is edited in place (never replaced: in a container or a network namespace it is a bind
//! mount), and the undo, armed before the edit, removes only the marked lines, leaving the
//! file byte for byte as it was. A host whose resolver does not read `/etc/hosts` first is
//! refused before anything changes; nscd's hosts cache is invalidated both ways.

use std::net::IpAddr;

use ssh_fault::{Done, Fault, Summary, as_root, make, report, run_name, state_file};

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Describe, PluginError, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const HOSTS: &str = "/etc/hosts";

struct DnsFault;

impl Attack for DnsFault {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("dns-fault", env!("CARGO_PKG_VERSION"))
            .refs(["dns_fault:DnsFault"])
            .description("Makes host names unresolvable (0.0.0.0 and ::) or points them elsewhere on random hosts of an inventory or EC2 over SSH, with marked /etc/hosts entries removed after duration_seconds (also when the engine halts or restarts).")
            .args_built::<Args>()
            .example(json!({"target": {"inventory": "web"}, "names": ["db.internal"], "duration_seconds": 120, "sudo": true}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        // Both families are answered from the file: a name pointed at an IPv4 address
        // resolves to :: for IPv6 (else DNS would give a client that asks for IPv6 the real
        // address), and the other way round.
        let addresses: Vec<String> = match &args.redirect_to {
            Some(text) => {
                let address: IpAddr =
                    text.parse().map_err(|_| PluginError::invalid("redirect_to", "an IPv4 or IPv6 address"))?;
                let other = if address.is_ipv4() { "::" } else { "0.0.0.0" };
                vec![address.to_string(), other.into()]
            }
            None => vec!["0.0.0.0".into(), "::".into()],
        };
        for name in &args.names {
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.trim_end_matches('.').split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !valid {
                return Err(PluginError::invalid("names", format!("{name:?} is not a host name")));
            }
        }
        let hosts = args.aim.hosts(&mut ctx.rng())?;
        let mut done: Vec<Done> = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let state = state_file(ctx, "dns-fault", index);
            let marker = format!("# {}", run_name(ctx, "dns-fault", index));
            let marker_ref = &marker;
            let lines: String = addresses
                .iter()
                .flat_map(|address| args.names.iter().map(move |name| format!("{address} {name} {marker_ref}\\n")))
                .collect();
            let flush = "if [ -x \"$(command -v nscd 2>/dev/null)\" ]; then nscd -i hosts 2>/dev/null; fi";
            let fault = Fault {
                check: Some(as_root(
                    args.sudo,
                    &format!(
                        "[ -w {HOSTS} ] || {{ echo 'cme: {HOSTS} is not writable here (give sudo: true, or log in as root)' >&2; exit 91; }}; \
                         if [ -f /etc/nsswitch.conf ] && ! grep -Eq '^hosts:.*[[:space:]]files' /etc/nsswitch.conf; then \
                         echo 'cme: this host does not resolve through {HOSTS} (the hosts line of /etc/nsswitch.conf lacks files)' >&2; exit 92; fi"
                    ),
                )),
                // Written in place; a last line without its newline gets one, which the
                // undo takes away again (the state file remembers).
                apply: as_root(
                    args.sudo,
                    &format!(
                        "grep -qF '{marker}' {HOSTS} && exit 0; \
                         if [ -s {HOSTS} ] && [ -n \"$(tail -c 1 {HOSTS})\" ]; then printf '\\n' >> {HOSTS} && touch {state}.nonl; fi; \
                         printf '{lines}' >> {HOSTS}; {flush}; grep -F '{marker}' {HOSTS}"
                    ),
                ),
                undo: Some((
                    as_root(
                        args.sudo,
                        &format!(
                            "if grep -qF '{marker}' {HOSTS}; then grep -vF '{marker}' {HOSTS} > {state}.kept; \
                             if [ -f {state}.nonl ] && [ -s {state}.kept ] && [ -z \"$(tail -c 1 {state}.kept)\" ]; then truncate -s -1 {state}.kept; fi; \
                             cat {state}.kept > {HOSTS}; rm -f {state}.kept; fi; rm -f {state}.nonl; {flush}; true"
                        ),
                    ),
                    u64::from(args.duration_seconds) * 1000,
                )),
            };
            done.push(make(host, &fault)?);
        }
        let names = args.names.join(", ");
        let rest = format!("on {} hosts for {} s", done.len(), args.duration_seconds);
        let summary = match &args.redirect_to {
            Some(to) => Summary {
                done: format!("pointed {names} at {to} {rest}"),
                would: format!("point {names} at {to} {rest}"),
            },
            None => Summary {
                done: format!("made {names} unresolvable {rest}"),
                would: format!("make {names} unresolvable {rest}"),
            },
        };
        let details =
            json!({"names": args.names, "redirect_to": args.redirect_to, "duration_seconds": args.duration_seconds});
        Ok(report(ctx, summary, &done, details))
    }
}

cme_plugin_sdk::export_attack!(DnsFault);
