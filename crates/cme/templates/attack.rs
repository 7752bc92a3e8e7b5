//! `{{module}}:{{class}}`: an attack. It GETs a URL and fails unless the answer is 2xx.
//! Replace `run` with what your attack does; keep `describe` truthful: the engine shows
//! it to operators and grants capabilities from it.

use cme_plugin_sdk::attack::{Attack, Report, RunContext};
use cme_plugin_sdk::{Capability, Describe, PluginError, http, info, json};
use schemars::JsonSchema;
use serde::Deserialize;

/// The attack's args: the engine checks every plan against the schema derived from this
/// type (doc comments become the fields' descriptions).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The URL to call: an absolute http(s) URL.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
}

/// The plugin.
pub struct Plugin;

impl Attack for Plugin {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .refs(["{{module}}:{{class}}"])
            .description("GETs a URL and fails unless it answers 2xx.")
            .args::<Args>()
            .example(json!({"url": "http://service.internal/health"}))
            // What the plugin may ask for; an operator grants it, possibly narrower.
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        info!("GET {}", args.url);
        let response = http::send(&http::Request {
            method: "GET".into(),
            url: args.url.clone(),
            headers: vec![],
            body: None,
            timeout_ms: Some(5_000),
        })?;
        let summary = format!("GET {} -> {}", args.url, response.status);
        if !ctx.dry_run && !(200..300).contains(&response.status) {
            return Err(PluginError::failed(summary));
        }
        Ok(Report::new(summary).target(args.url).details(json!({"status": response.status, "elapsed_ms": response.elapsed_ms})))
    }
}

cme_plugin_sdk::export_attack!(Plugin);

/// `cargo test` runs `run` end to end against the SDK's mock host: capability calls are
/// answered from the fixtures below and recorded.
#[cfg(test)]
mod tests {
    use super::*;
    use cme_plugin_sdk::testing::{Call, MockHost, validate_describe};

    #[test]
    fn the_description_passes_the_uploads_checks() {
        assert_eq!(validate_describe(&Plugin::describe()), Ok(()));
    }

    #[test]
    fn a_2xx_answer_succeeds_and_names_the_url() {
        let host = MockHost::new().http_answer("GET", "http://svc/health", 200, "ok");
        let outcome = host.run::<Plugin>(json!({"url": "http://svc/health"}));
        let report = outcome.result.expect("the attack succeeds");
        assert_eq!(report.summary, "GET http://svc/health -> 200");
        assert_eq!(report.targets, ["http://svc/health"]);
        assert!(matches!(&outcome.calls[..], [Call::Http { method, denied: None, .. }] if method == "GET"));
    }

    #[test]
    fn another_answer_fails_the_attack() {
        let host = MockHost::new().http_answer("GET", "http://svc/health", 503, "down");
        let outcome = host.run::<Plugin>(json!({"url": "http://svc/health"}));
        assert_eq!(outcome.result, Err(PluginError::Failed("GET http://svc/health -> 503".into())));
    }

    #[test]
    fn a_dry_run_sends_nothing_and_succeeds() {
        let outcome = MockHost::new().dry_run(true).run::<Plugin>(json!({"url": "http://svc/health"}));
        assert_eq!(outcome.result.expect("succeeds").summary, "GET http://svc/health -> 0");
    }

    #[test]
    fn a_url_outside_the_grant_is_refused() {
        let host = MockHost::new().grant(vec![Capability::Http(vec!["http://allowed/*".into()])]);
        let outcome = host.run::<Plugin>(json!({"url": "http://svc/health"}));
        assert!(matches!(outcome.result, Err(PluginError::Denied(_))), "{:?}", outcome.result);
    }

    #[test]
    fn args_that_are_not_a_url_are_refused_before_the_call() {
        let outcome = MockHost::new().run::<Plugin>(json!({"url": "svc/health"}));
        assert!(matches!(outcome.result, Err(PluginError::InvalidArgs(_))), "{:?}", outcome.result);
        assert!(outcome.calls.is_empty());
    }
}
