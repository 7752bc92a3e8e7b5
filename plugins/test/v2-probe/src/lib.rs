//! A probe built against `cme:plugin@0.2.0`: the host must keep loading it and running
//! its checks within the same grant. Args: `{"url": "..."}`; healthy when the URL answers
//! 2xx through the 0.2.0 `http` import (a refusal comes back as the 0.2.0 host-error).

wit_bindgen::generate!({ world: "probe", path: "../../../wit/legacy/v0.2.0" });

use cme::plugin::http::{Request, send};
use cme::plugin::types::{Capability, HostError};

struct V2Probe;

impl Guest for V2Probe {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v2-probe".into(),
            version: "0.2.0".into(),
            refs: vec!["v2_probe:V2Probe".into()],
            description: "A probe built against cme:plugin@0.2.0.".into(),
            args_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#.into(),
            example_args: r#"{"url":"http://127.0.0.1:1/"}"#.into(),
            capabilities: vec![Capability::Http(vec!["http://127.0.0.1:*".into()])],
        }
    }

    fn check(_ctx: ProbeContext, args: String) -> Result<Verdict, PluginError> {
        let url = args.split('"').nth(3).unwrap_or_default().to_string();
        let request =
            Request { method: "GET".into(), url: url.clone(), headers: vec![], body: None, timeout_ms: Some(5_000) };
        match send(&request) {
            Ok(response) => Ok(Verdict {
                healthy: (200..300).contains(&response.status),
                reason: format!("GET {url} -> {}", response.status),
                values: format!("{{\"status\":{}}}", response.status),
            }),
            Err(HostError::Denied(why)) => Err(PluginError::Denied(why)),
            Err(other) => Err(PluginError::Failed(format!("{other:?}"))),
        }
    }
}

export!(V2Probe);
