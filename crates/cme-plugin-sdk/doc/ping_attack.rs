use cme_plugin_sdk::attack::{Attack, Report, RunContext, http};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

/// The args: the engine checks plans against the schema derived from this type.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    /// The URL to GET; anything but a 2xx answer fails the attack.
    url: String,
}

struct Ping;

impl Attack for Ping {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("ping-attack", env!("CARGO_PKG_VERSION"))
            .refs(["ping:Ping"])
            .description("GETs a URL and fails unless it answers 2xx.")
            .args::<Args>()
            .example(json!({"url": "http://service.internal/health"}))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn run(_ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        info!("pinging {}", args.url);
        let response = http::send(&http::Request {
            method: "GET".into(),
            url: args.url.clone(),
            headers: vec![],
            body: None,
            timeout_ms: Some(2_000),
        })?; // a HostError (denied, timeout, ...) becomes a PluginError
        if !(200..300).contains(&response.status) {
            return Err(PluginError::failed(format!("{} answered {}", args.url, response.status)));
        }
        Ok(Report::new(format!("GET {} -> {}", args.url, response.status)).target(args.url))
    }
}

cme_plugin_sdk::export_attack!(Ping);
