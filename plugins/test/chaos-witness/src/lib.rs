//! The chaos harness's attack: POSTs `{"run_id", "plan"}` to the sink. The sink records
//! the receipt before it answers (and holds the answer 1–3 s, so runs are in flight when
//! faults land); any answer but 2xx fails the run.

use cme_plugin_sdk::attack::{Attack, KeyValue, Report, RunContext, http};
use cme_plugin_sdk::{Capability, Describe, PluginError, json};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    /// The sink's URL.
    url: String,
    /// The harness's name of the plan, echoed to the sink.
    #[serde(default)]
    plan: String,
}

struct Witness;

impl Attack for Witness {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("chaos-witness", env!("CARGO_PKG_VERSION"))
            .refs(["chaos_witness:Witness"])
            .description("Sends its run id to a sink (the chaos harness's witness of every firing).")
            .args::<Args>()
            .example(json!({"url": "http://127.0.0.1:9000/fired", "plan": "p1"}))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let body = json!({"run_id": ctx.run_id, "plan": args.plan}).to_string();
        let response = http::send(&http::Request {
            method: "POST".into(),
            url: args.url.clone(),
            headers: vec![KeyValue { key: "content-type".into(), value: "application/json".into() }],
            body: Some(body.into_bytes()),
            timeout_ms: Some(10_000),
        })?;
        if !(200..300).contains(&response.status) {
            return Err(PluginError::failed(format!("the sink answered {}", response.status)));
        }
        Ok(Report::new(format!("witnessed {}", ctx.run_id)).target(args.url))
    }
}

cme_plugin_sdk::export_attack!(Witness);
