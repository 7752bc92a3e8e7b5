//! An attack built against `cme:plugin@0.1.0`: the host must keep running it, with the
//! same grant checks, through the 0.1.0 names of the capabilities. Args: `{"url": "..."}`;
//! it GETs the URL and reports the status (a refusal comes back as the 0.1.0 host-error).

// The generated export glue takes one argument per WIT parameter.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ world: "attack", path: "../../../wit/legacy/v0.1.0" });
}
use bindings::*;

use cme::plugin::http::{Request, send};
use cme::plugin::types::{Capability, HostError};

struct LegacyAttack;

impl Guest for LegacyAttack {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-attack".into(),
            version: "0.1.0".into(),
            refs: vec!["legacy_attack:LegacyAttack".into()],
            description: "An attack built against cme:plugin@0.1.0.".into(),
            args_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#.into(),
            example_args: r#"{"url":"http://127.0.0.1:1/"}"#.into(),
            capabilities: vec![Capability::Http(vec!["http://127.0.0.1:*".into()])],
        }
    }

    fn run(_ctx: RunContext, args: String) -> Result<AttackReport, PluginError> {
        let url = args.split('"').nth(3).ok_or_else(|| PluginError::InvalidArgs("url: missing".into()))?.to_string();
        let request = Request {
            method: "GET".into(),
            url: url.clone(),
            headers: Vec::new(),
            body: None,
            timeout_ms: Some(5_000),
        };
        match send(&request) {
            Ok(response) => Ok(AttackReport {
                summary: format!("GET {url} -> {}", response.status),
                targets: vec![url],
                details: format!("{{\"status\":{}}}", response.status),
            }),
            Err(HostError::Denied(why)) => Err(PluginError::Denied(why)),
            Err(other) => Err(PluginError::Failed(format!("{other:?}"))),
        }
    }
}

export!(LegacyAttack);
