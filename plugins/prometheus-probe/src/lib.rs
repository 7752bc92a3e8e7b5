//! `prometheus_probe:PrometheusProbe`: is a metric where it should be? A PromQL instant
//! query against a Prometheus HTTP API (`GET /api/v1/query`), every sample compared with a
//! threshold.
//!
//! Args: `url` (the Prometheus base URL), `query`, `op` (`<`, `<=`, `>`, `>=`, `==`, `!=`),
//! `threshold`; optional `on_empty` (`unhealthy`, the default: no data is no evidence of
//! health; or `healthy`), `headers`, `timeout_ms` (default 5,000). Healthy when every
//! sample satisfies `value op threshold`.

use cme_plugin_sdk::probe::{HostError, KeyValue, Probe, ProbeContext, Verdict, http};
use cme_plugin_sdk::serde_json::Value;
use cme_plugin_sdk::{Capability, Describe, PluginError, json};

mod args;

use args::{Args, OnEmpty, Op};

cme_plugin_sdk::built_args!(args::Args);

impl Op {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

const DEFAULT_TIMEOUT_MS: u32 = 5_000;

struct PrometheusProbe;

impl Probe for PrometheusProbe {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("prometheus-probe", env!("CARGO_PKG_VERSION"))
            .refs(["prometheus_probe:PrometheusProbe"])
            .description("Runs a PromQL instant query against Prometheus and compares every sample with a threshold.")
            .args_built::<Args>()
            .example(json!({"url": "http://prometheus:9090", "query": "sum(rate(http_requests_total{code=~\"5..\"}[1m]))", "op": "<", "threshold": 1}))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn check(_ctx: &ProbeContext, args: Args) -> Result<Verdict, PluginError> {
        let query: String = form_urlencoded::byte_serialize(args.query.as_bytes()).collect();
        let url = format!("{}/api/v1/query?query={query}", args.url.trim_end_matches('/'));
        let request = http::Request {
            method: "GET".into(),
            url: url.clone(),
            headers: args
                .headers
                .iter()
                .map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() })
                .collect(),
            body: None,
            timeout_ms: Some(args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        };
        let response = match http::send(&request) {
            Ok(response) => response,
            Err(HostError::Upstream(m)) => {
                return Err(PluginError::Failed(format!("Prometheus at {} unreachable: {m}", args.url)));
            }
            Err(other) => return Err(other.into()),
        };
        if response.status != 200 {
            return Err(PluginError::Failed(format!(
                "Prometheus answered {} to {:?}: {}",
                response.status,
                args.query,
                excerpt(&response.body)
            )));
        }
        let doc: Value = cme_plugin_sdk::serde_json::from_slice(&response.body)
            .map_err(|e| PluginError::Failed(format!("Prometheus answered something that is not JSON: {e}")))?;
        if doc["status"] != "success" {
            return Err(PluginError::Failed(format!("Prometheus refused {:?}: {}", args.query, doc["error"])));
        }
        let samples = samples(&doc["data"]).map_err(PluginError::Failed)?;
        let condition = format!("{} {} {}", args.query, args.op.text(), args.threshold);
        if samples.is_empty() {
            let values = json!({"samples": 0});
            return Ok(match args.on_empty {
                OnEmpty::Healthy => {
                    Verdict::healthy(format!("no samples for {:?} (on_empty: healthy)", args.query)).values(values)
                }
                OnEmpty::Unhealthy => {
                    Verdict::unhealthy(format!("no samples for {:?}: no evidence of health", args.query)).values(values)
                }
            });
        }
        let breaking: Vec<&(String, f64)> =
            samples.iter().filter(|(_, v)| !args.op.holds(*v, args.threshold)).collect();
        let values = json!({
            "samples": samples.len(),
            "values": samples.iter().map(|(series, v)| json!({"series": series, "value": v})).collect::<Vec<_>>(),
        });
        Ok(match breaking.first() {
            None => Verdict::healthy(format!("{condition}: holds for {} samples", samples.len())).values(values),
            Some((series, value)) => Verdict::unhealthy(format!("{condition}: {series} is {value}")).values(values),
        })
    }
}

/// (series, value) of an instant vector or a scalar.
fn samples(data: &Value) -> Result<Vec<(String, f64)>, String> {
    let number = |pair: &Value| -> Result<f64, String> {
        pair.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| format!("a sample without a number: {pair}"))
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|sample| Ok((sample["metric"].to_string(), number(&sample["value"])?)))
            .collect(),
        Some("scalar") => Ok(vec![("scalar".into(), number(&data["result"])?)]),
        other => Err(format!("the query answered a {}, not an instant vector or a scalar", other.unwrap_or("nothing"))),
    }
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

cme_plugin_sdk::export_probe!(PrometheusProbe);
