//! `run_script:RunScript`: runs a script from the engine's script library on a random
//! running EC2 instance matching the filters, over SSH.
//!
//! Args as the original (`region`, `filters`, `local_script`, `remote_script`, `ssh`)
//! plus `ssh.credential` (a credential stored in the engine; a plan sent with the
//! original's `ssh.pem` has its key stored as one by the engine before it gets here),
//! `ssh.port` (default 22), `ssh.address` (`private`, the default, or `public`), `args`
//! (the script's arguments) and `timeout_seconds` (default 300). The script is uploaded
//! with mode 0700 and run with its arguments; a non-zero exit fails the run, with the
//! exit code and the end of stderr in the error.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, ec2, scripts, ssh};
use cme_plugin_sdk::serde_json::{Map, Value};
use cme_plugin_sdk::targets::{choose, filters_from_json, running_only, shell_quote};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

#[derive(serde::Deserialize)]
struct Args {
    region: String,
    filters: Map<String, Value>,
    local_script: String,
    remote_script: Option<String>,
    ssh: Ssh,
    #[serde(default)]
    args: Vec<String>,
    timeout_seconds: Option<u32>,
}

#[derive(serde::Deserialize)]
struct Ssh {
    #[serde(default)]
    user: String,
    credential: String,
    port: Option<u16>,
    #[serde(default)]
    address: AddressKind,
}

#[derive(serde::Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum AddressKind {
    #[default]
    Private,
    Public,
}

const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
const EXCERPT_BYTES: usize = 2048;

struct RunScript;

impl Attack for RunScript {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("run-script", env!("CARGO_PKG_VERSION"))
            .refs(["run_script:RunScript"])
            .description("Uploads a script from the engine's script library to a random running EC2 instance matching the filters and runs it over SSH; a non-zero exit fails the run.")
            .schema(json!({
                "type": "object",
                "required": ["region", "filters", "local_script", "ssh"],
                "additionalProperties": false,
                "properties": {
                    "region": {"type": "string", "minLength": 1, "description": "AWS region, e.g. eu-west-1"},
                    "filters": {
                        "type": "object",
                        "description": "EC2 describe-instances filters: name -> value or list of values; only running instances are considered",
                        "additionalProperties": {"type": ["string", "number", "boolean", "array"], "items": {"type": ["string", "number", "boolean"]}}
                    },
                    "local_script": {"type": "string", "minLength": 1, "description": "a script of the engine's library, e.g. s_burncpu.sh or script_attacks/s_burncpu.sh"},
                    "remote_script": {"type": "string", "pattern": "^/", "description": "absolute path to upload it to (default /tmp/cme-<script name>)"},
                    "ssh": {
                        "type": "object",
                        "required": ["credential"],
                        "additionalProperties": false,
                        "properties": {
                            "user": {"type": "string", "description": "login user (default: the credential's user)"},
                            "credential": {"type": "string", "minLength": 1, "description": "name of a credential stored in the engine (POST /api/1/credentials)"},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "default 22"},
                            "address": {"enum": ["private", "public"], "description": "which address of the instance to connect to (default private)"}
                        }
                    },
                    "args": {"type": "array", "items": {"type": "string"}, "maxItems": 64, "description": "arguments passed to the script"},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "description": "how long the script may run (default 300; the run's deadline caps it)"}
                }
            }))
            .example(json!({
                "region": "eu-west-1",
                "filters": {"tag:Chaos": "true"},
                "local_script": "script_attacks/s_burncpu.sh",
                "remote_script": "/tmp/s_burncpu.sh",
                "ssh": {"user": "ec2-user", "credential": "chaos-key"},
                "args": ["60"]
            }))
            .capability(Capability::Ec2Describe(vec![]))
            .capability(Capability::Ssh)
            .capability(Capability::Scripts)
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let script = scripts::read(&args.local_script)?;
        let script_name = args.local_script.rsplit('/').next().unwrap_or(&args.local_script).to_string();
        let remote = args.remote_script.clone().unwrap_or_else(|| format!("/tmp/cme-{script_name}"));

        let filters = running_only("filters", filters_from_json("filters", &args.filters)?)?;
        let candidates = ec2::describe_instances(&args.region, &filters)?;
        let Some(instance) = choose(&mut ctx.rng(), candidates, 1).pop() else {
            return Err(PluginError::failed(format!(
                "no instance matched filters {} in {} (only running instances count)",
                Value::Object(args.filters.clone()),
                args.region
            )));
        };
        let address = match args.ssh.address {
            AddressKind::Private => instance.private_ip.clone(),
            AddressKind::Public => instance.public_ip.clone(),
        };
        let kind = if args.ssh.address == AddressKind::Private { "private" } else { "public" };
        let Some(address) = address else {
            return Err(PluginError::failed(format!("instance {} has no {kind} IP address (ssh.address)", instance.instance_id)));
        };
        let target = ssh::Target {
            address: address.clone(),
            port: args.ssh.port.unwrap_or(22),
            user: args.ssh.user.clone(),
            credential: args.ssh.credential.clone(),
        };

        info!("uploading {} ({} bytes) to {}:{remote} on {}", args.local_script, script.len(), address, instance.instance_id);
        ssh::upload(&target, &remote, &script, 0o700)?;
        let command = std::iter::once(remote.as_str()).chain(args.args.iter().map(String::as_str)).map(shell_quote).collect::<Vec<_>>().join(" ");
        let timeout_ms = args.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS).saturating_mul(1000);
        info!("running {command} on {address}");
        let output = ssh::exec(&target, &command, timeout_ms)?;

        let details = json!({
            "region": args.region,
            "instance_id": instance.instance_id,
            "address": address,
            "script": args.local_script,
            "remote_script": remote,
            "args": args.args,
            "exit_code": output.exit_code,
            "stdout": tail(&output.stdout),
            "stderr": tail(&output.stderr),
            "output_truncated": output.truncated,
            "dry_run": ctx.dry_run,
        });
        if ctx.dry_run {
            let summary = format!("dry run: would run {script_name} on {} ({address})", instance.instance_id);
            return Ok(Report::new(summary).target(instance.instance_id).details(details));
        }
        match output.exit_code {
            Some(0) => {
                let summary = format!("{script_name} exited 0 on {} ({address})", instance.instance_id);
                Ok(Report::new(summary).target(instance.instance_id).target(address).details(details))
            }
            code => {
                let how = code.map_or("was killed by a signal".to_string(), |c| format!("exited {c}"));
                let stderr = tail(&output.stderr);
                let stderr = stderr.trim();
                let hint = if stderr.is_empty() { String::new() } else { format!(": {stderr}") };
                Err(PluginError::failed(format!("{script_name} {how} on {} ({address}){hint}", instance.instance_id)))
            }
        }
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
