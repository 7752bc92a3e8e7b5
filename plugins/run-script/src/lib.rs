//! `run_script:RunScript`: runs a script from the engine's script library on a random
//! running EC2 instance matching the filters, or on a random host of an inventory
//! (`"target": {"inventory": "web", "tags": {...}}`), over SSH.
//!
//! Args as the original (`region`, `filters`, `local_script`, `remote_script`, `ssh`), or
//! `target` instead of `region`, `filters` and `ssh`; `count` or `percent` hosts (default
//! one, run one after the other); plus `ssh.credential` (a credential stored in the engine; a plan sent with the
//! original's `ssh.pem` has its key stored as one by the engine before it gets here),
//! `ssh.port` (default 22), `ssh.address` (`private`, the default, or `public`), `args`
//! (the script's arguments) and `timeout_seconds` (default 300). The script is uploaded
//! with mode 0700 and run with its arguments; a non-zero exit fails the run, with the
//! exit code and the end of stderr in the error.

use cme_plugin_sdk::aim::SshHost;
use cme_plugin_sdk::attack::{Attack, Report, RunContext, scripts, ssh};
use cme_plugin_sdk::serde_json::Value;
use cme_plugin_sdk::targets::shell_quote;
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
const EXCERPT_BYTES: usize = 2048;

struct RunScript;

impl Attack for RunScript {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("run-script", env!("CARGO_PKG_VERSION"))
            .refs(["run_script:RunScript"])
            .description("Uploads a script from the engine's script library to a random running EC2 instance matching the filters, or a random host of an inventory, and runs it over SSH; a non-zero exit fails the run.")
            .args_built::<Args>()
            .example(json!({
                "region": "eu-west-1",
                "filters": {"tag:Chaos": "true"},
                "local_script": "script_attacks/s_burncpu.sh",
                "remote_script": "/tmp/s_burncpu.sh",
                "ssh": {"user": "ec2-user", "credential": "chaos-key"},
                "args": ["60"]
            }))
            .aimed_over_ssh()
            .capability(Capability::Scripts)
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let script = scripts::read(&args.local_script)?;
        let script_name = args.local_script.rsplit('/').next().unwrap_or(&args.local_script).to_string();
        let remote = args.remote_script.clone().unwrap_or_else(|| format!("/tmp/cme-{script_name}"));
        let command = std::iter::once(remote.as_str())
            .chain(args.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let timeout_ms = args.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).saturating_mul(1000);

        let mut ran = Vec::new();
        for host in args.aim.hosts(&mut ctx.rng())? {
            let SshHost { name, target } = &host;
            info!("uploading {} ({} bytes) to {}:{remote} on {name}", args.local_script, script.len(), target.address);
            ssh::upload(target, &remote, &script, 0o700)?;
            info!("running {command} on {}", target.address);
            let output = ssh::exec(target, &command, timeout_ms)?;
            if !ctx.dry_run && output.exit_code != Some(0) {
                let how = output.exit_code.map_or("was killed by a signal".to_string(), |c| format!("exited {c}"));
                let stderr = tail(&output.stderr).trim().to_string();
                let hint = if stderr.is_empty() { String::new() } else { format!(": {stderr}") };
                return Err(PluginError::failed(format!("{script_name} {how} on {name} ({}){hint}", target.address)));
            }
            ran.push((host, output));
        }
        let hosts: Vec<Value> = ran
            .iter()
            .map(|(host, output)| {
                json!({
                    "name": host.name,
                    "address": host.target.address,
                    "exit_code": output.exit_code,
                    "stdout": tail(&output.stdout),
                    "stderr": tail(&output.stderr),
                    "output_truncated": output.truncated,
                })
            })
            .collect();
        let (first, first_output) = &ran[0];
        let mut details = json!({
            "aim": args.aim.describe(),
            "script": args.local_script,
            "remote_script": remote,
            "args": args.args,
            "hosts": hosts,
            "dry_run": ctx.dry_run,
            // The original engine's fields, for the first host.
            "address": first.target.address,
            "exit_code": first_output.exit_code,
            "stdout": tail(&first_output.stdout),
            "stderr": tail(&first_output.stderr),
        });
        if let Some(region) = &args.aim.region {
            details["region"] = json!(region);
            details["instance_id"] = json!(first.name);
        }
        let names: Vec<String> = ran.iter().map(|(h, _)| format!("{} ({})", h.name, h.target.address)).collect();
        let summary = if ctx.dry_run {
            format!("dry run: would run {script_name} on {}", names.join(", "))
        } else {
            format!("{script_name} exited 0 on {}", names.join(", "))
        };
        let report = Report::new(summary).details(details);
        Ok(ran.iter().fold(report, |r, (h, _)| {
            if ctx.dry_run {
                r.target(h.name.clone())
            } else {
                r.target(h.name.clone()).target(h.target.address.clone())
            }
        }))
    }
}

/// The last bytes of an output, on a character boundary.
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(EXCERPT_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

cme_plugin_sdk::export_attack!(RunScript);
