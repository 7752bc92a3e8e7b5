//! `http_probe:HttpProbe`: is an HTTP service healthy? One request, then its status, its
//! latency and (optionally) its body, checked against the args.
//!
//! Args: `url`; optional `method` (default GET), `headers`, `expect_status` (a code or a
//! list; default any 2xx), `max_latency_ms`, `body_contains`, `json_pointer` with
//! `json_equals` (the value at the pointer of the JSON body must equal it), `timeout_ms`
//! (default 5,000). A service that cannot be reached is unhealthy, with the reason.

use cme_plugin_sdk::probe::{HostError, KeyValue, Probe, ProbeContext, Verdict, http};
use cme_plugin_sdk::serde_json::Value;
use cme_plugin_sdk::{Capability, Describe, PluginError, json};

mod args;

use args::{Args, ExpectedStatus};

cme_plugin_sdk::built_args!(args::Args);

const DEFAULT_TIMEOUT_MS: u32 = 5_000;

struct HttpProbe;

impl Probe for HttpProbe {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("http-probe", env!("CARGO_PKG_VERSION"))
            .refs(["http_probe:HttpProbe"])
            .description("Checks an HTTP service: the status, the latency and optionally the body of one request.")
            .args_built::<Args>()
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
