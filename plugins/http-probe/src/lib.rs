//! `http_probe:HttpProbe`: is an HTTP service healthy? One request, then its status, its
//! latency and (optionally) its body, checked against the args.
//!
//! Args: `url`; optional `method` (default GET), `headers`, `expect_status` (a code or a
//! list; default any 2xx), `max_latency_ms`, `body_contains`, `json_pointer` with
//! `json_equals` (the value at the pointer of the JSON body must equal it), `timeout_ms`
//! (default 5,000). A service that cannot be reached is unhealthy, with the reason.

use std::collections::BTreeMap;

use cme_plugin_sdk::probe::{HostError, KeyValue, Probe, ProbeContext, Verdict, http};
use cme_plugin_sdk::serde_json::Value;
use cme_plugin_sdk::{Capability, Describe, PluginError, json};

#[derive(serde::Deserialize)]
struct Args {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    expect_status: Option<ExpectedStatus>,
    max_latency_ms: Option<u32>,
    body_contains: Option<String>,
    json_pointer: Option<String>,
    json_equals: Option<Value>,
    timeout_ms: Option<u32>,
}

fn get() -> String {
    "GET".into()
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ExpectedStatus {
    One(u16),
    Any(Vec<u16>),
}

const DEFAULT_TIMEOUT_MS: u32 = 5_000;

struct HttpProbe;

impl Probe for HttpProbe {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("http-probe", env!("CARGO_PKG_VERSION"))
            .refs(["http_probe:HttpProbe"])
            .description("Checks an HTTP service: the status, the latency and optionally the body of one request.")
            .schema(json!({
                "type": "object",
                "required": ["url"],
                "additionalProperties": false,
                "properties": {
                    "url": {"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://", "description": "absolute http(s) URL"},
                    "method": {"type": "string", "pattern": "^[A-Za-z]+$", "description": "default GET"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "expect_status": {
                        "oneOf": [
                            {"type": "integer", "minimum": 100, "maximum": 599},
                            {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 100, "maximum": 599}}
                        ],
                        "description": "a code or a list of codes (default: any 2xx)"
                    },
                    "max_latency_ms": {"type": "integer", "minimum": 1, "description": "slower answers are unhealthy"},
                    "body_contains": {"type": "string", "description": "text the body must contain"},
                    "json_pointer": {"type": "string", "pattern": "^(/.*)?$", "description": "a JSON pointer into the JSON body, e.g. /status"},
                    "json_equals": {"description": "the value the pointer must find"},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "description": "default 5000"}
                },
                "dependentRequired": {"json_equals": ["json_pointer"], "json_pointer": ["json_equals"]}
            }))
            .example(json!({"url": "https://shop.example.com/health", "expect_status": 200, "max_latency_ms": 500}))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn check(_ctx: &ProbeContext, args: Args) -> Result<Verdict, PluginError> {
        let request = http::Request {
            method: args.method.to_ascii_uppercase(),
            url: args.url.clone(),
            headers: args
                .headers
                .iter()
                .map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() })
                .collect(),
            body: None,
            timeout_ms: Some(args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        };
        let target = format!("{} {}", request.method, args.url);
        let response = match http::send(&request) {
            Ok(response) => response,
            // The service cannot be reached: that is an answer, and it is unhealthy.
            Err(HostError::Upstream(m)) => return Ok(Verdict::unhealthy(format!("{target}: unreachable: {m}"))),
            Err(HostError::Timeout(m)) => return Ok(Verdict::unhealthy(format!("{target}: no answer in time ({m})"))),
            Err(other) => return Err(other.into()),
        };
        let values = json!({"status": response.status, "latency_ms": response.elapsed_ms, "url": response.final_url});
        let answered = format!("{target} -> {} in {} ms", response.status, response.elapsed_ms);
        let status_ok = match &args.expect_status {
            None => (200..300).contains(&response.status),
            Some(ExpectedStatus::One(code)) => response.status == *code,
            Some(ExpectedStatus::Any(codes)) => codes.contains(&response.status),
        };
        if !status_ok {
            let expected = match &args.expect_status {
                None => "2xx".to_string(),
                Some(ExpectedStatus::One(code)) => code.to_string(),
                Some(ExpectedStatus::Any(codes)) => format!("{codes:?}"),
            };
            return Ok(Verdict::unhealthy(format!("{answered}, expected {expected}")).values(values));
        }
        if let Some(max) = args.max_latency_ms
            && response.elapsed_ms > max
        {
            return Ok(Verdict::unhealthy(format!("{answered}, slower than {max} ms")).values(values));
        }
        let body = String::from_utf8_lossy(&response.body);
        if let Some(needle) = &args.body_contains
            && !body.contains(needle.as_str())
        {
            return Ok(Verdict::unhealthy(format!("{answered}, body without {needle:?}")).values(values));
        }
        if let (Some(pointer), Some(expected)) = (&args.json_pointer, &args.json_equals) {
            let found =
                cme_plugin_sdk::serde_json::from_str::<Value>(&body).ok().and_then(|doc| doc.pointer(pointer).cloned());
            if found.as_ref() != Some(expected) {
                let found = found.map_or_else(|| "nothing".to_string(), |v| v.to_string());
                return Ok(
                    Verdict::unhealthy(format!("{answered}, {pointer} is {found}, expected {expected}")).values(values)
                );
            }
        }
        Ok(Verdict::healthy(answered).values(values))
    }
}

cme_plugin_sdk::export_probe!(HttpProbe);
