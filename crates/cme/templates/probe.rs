//! `{{module}}:{{class}}`: a probe. It GETs a URL and says the system is healthy when it
//! answers `expect_status`. Probes guard plans (steady state before each run, stop
//! conditions during them); they are never dry runs, so they should only read.

use cme_plugin_sdk::probe::{Probe, ProbeContext, Verdict};
use cme_plugin_sdk::{Capability, Describe, HostError, PluginError, http, json};
use schemars::JsonSchema;
use serde::Deserialize;

/// The probe's args: the engine checks them against the schema derived from this type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The URL to GET: an absolute http(s) URL.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// The status a healthy system answers.
    #[serde(default = "ok")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u16,
}

fn ok() -> u16 {
    200
}

/// The plugin.
pub struct Plugin;

impl Probe for Plugin {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .refs(["{{module}}:{{class}}"])
            .description("Healthy when a URL answers the expected status.")
            .args::<Args>()
            .example(json!({"url": "http://service.internal/health", "expect_status": 200}))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn check(_ctx: &ProbeContext, args: Args) -> Result<Verdict, PluginError> {
        let request = http::Request { method: "GET".into(), url: args.url.clone(), headers: vec![], body: None, timeout_ms: Some(3_000) };
        Ok(match http::send(&request) {
            Ok(r) if r.status == args.expect_status => Verdict::healthy(format!("GET {} -> {}", args.url, r.status)),
            Ok(r) => Verdict::unhealthy(format!("GET {} -> {}, expected {}", args.url, r.status, args.expect_status)),
            // Unreachable is an answer too: the system is not healthy.
            Err(HostError::Timeout(m) | HostError::Upstream(m)) => Verdict::unhealthy(format!("GET {}: {m}", args.url)),
            Err(other) => return Err(other.into()),
        }
        .values(json!({"url": args.url})))
    }
}

cme_plugin_sdk::export_probe!(Plugin);

/// `cargo test` checks through the SDK's mock host, as the engine would.
#[cfg(test)]
mod tests {
    use super::*;
    use cme_plugin_sdk::testing::{MockHost, validate_describe};

    #[test]
    fn the_description_passes_the_uploads_checks() {
        assert_eq!(validate_describe(&Plugin::describe()), Ok(()));
    }

    #[test]
    fn the_expected_status_is_healthy_and_another_is_not() {
        let up = MockHost::new().http_answer("GET", "http://svc/health", 200, "ok");
        assert!(up.check::<Plugin>(json!({"url": "http://svc/health"})).result.unwrap().healthy);
        let down = MockHost::new().http_answer("GET", "http://svc/health", 503, "");
        let verdict = down.check::<Plugin>(json!({"url": "http://svc/health"})).result.unwrap();
        assert_eq!(verdict.reason, "GET http://svc/health -> 503, expected 200");
    }

    #[test]
    fn an_unreachable_service_is_unhealthy() {
        let host = MockHost::new().http_error("GET", "http://svc/health", HostError::Upstream("connection refused".into()));
        assert!(!host.check::<Plugin>(json!({"url": "http://svc/health"})).result.unwrap().healthy);
    }
}
