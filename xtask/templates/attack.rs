//! `{{module}}:{{class}}`: an attack. It GETs a URL and fails unless the answer is 2xx.
//! Replace `run` with what your attack does; keep `describe` truthful: the engine shows
//! it to operators and grants capabilities from it.

use cme_plugin_sdk::attack::{Attack, Report, RunContext, http};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

#[derive(Debug, serde::Deserialize)]
pub struct Args {
    /// The URL to call.
    pub url: String,
}

pub struct Plugin;

impl Attack for Plugin {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .refs(["{{module}}:{{class}}"])
            .description("GETs a URL and fails unless it answers 2xx.")
            .schema(json!({
                "type": "object",
                "required": ["url"],
                "additionalProperties": false,
                "properties": {"url": {"type": "string", "pattern": "^https?://", "description": "absolute http(s) URL"}}
            }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_args_parse() {
        let info = Plugin::describe();
        let example = info.example;
        let args: Args = cme_plugin_sdk::serde_json::from_value(example).expect("the example matches Args");
        assert!(args.url.starts_with("http"));
    }
}
