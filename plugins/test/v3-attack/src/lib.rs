//! An attack built against `cme:plugin@0.3.0`: the host must keep loading it (its
//! `ec2-disrupt` declaration, a 0.3.0 capability case) and running it within the same
//! grant. Args: `{"url": "..."}`; GETs the URL through the 0.3.0 `http` import and arms a
//! compensating DELETE of it through 0.3.0's `undo.arm-http` (a refusal comes back as the
//! 0.3.0 host-error).

// The generated import glue takes one argument per WIT parameter.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ world: "attack", path: "../../../wit/legacy/v0.3.0" });
}

use bindings::*;

use cme::plugin::http::{Request, send};
use cme::plugin::types::{Capability, HostError};
use cme::plugin::undo::arm_http;

struct V3Attack;

fn request(method: &str, url: &str) -> Request {
    Request { method: method.into(), url: url.into(), headers: vec![], body: None, timeout_ms: Some(5_000) }
}

fn failed(error: HostError) -> PluginError {
    match error {
        HostError::Denied(why) => PluginError::Denied(why),
        other => PluginError::Failed(format!("{other:?}")),
    }
}

impl Guest for V3Attack {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v3-attack".into(),
            version: "0.3.0".into(),
            refs: vec!["v3_attack:V3Attack".into()],
            description: "An attack built against cme:plugin@0.3.0.".into(),
            args_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#.into(),
            example_args: r#"{"url":"http://127.0.0.1:1/"}"#.into(),
            capabilities: vec![
                Capability::Http(vec!["http://127.0.0.1:*".into()]),
                Capability::Ec2Disrupt(vec!["eu-west-1".into()]),
            ],
        }
    }

    fn run(_ctx: RunContext, args: String) -> Result<AttackReport, PluginError> {
        let url = args.split('"').nth(3).unwrap_or_default().to_string();
        let response = send(&request("GET", &url)).map_err(failed)?;
        let undo = arm_http(&request("DELETE", &url), 60_000).map_err(failed)?;
        Ok(AttackReport {
            summary: format!("GET {url} -> {}", response.status),
            targets: vec![url],
            details: format!("{{\"status\":{},\"undo\":\"{undo}\"}}", response.status),
        })
    }
}

export!(V3Attack);
