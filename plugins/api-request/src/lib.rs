//! `api_request:ApiRequest`: calls an HTTP API, as the original engine's ApiRequest did.
//!
//! Args: `{"endpoint", "method", "payload", "headers"}` as the original, plus optional
//! `timeout_ms` (default 10,000), `expected_status` (a code or a list of codes; default any
//! 2xx succeeds) and `encoding` (`form` or `json`). For the original's clients the payload
//! is form-encoded (`application/x-www-form-urlencoded`) as before, unless `headers` carry
//! `Content-Type: application/json` or `encoding` is `json`. An empty payload sends no body.

use cme_plugin_sdk::attack::{Attack, KeyValue, Report, RunContext, http};
use cme_plugin_sdk::serde_json::{Map, Value};
use cme_plugin_sdk::{Capability, Describe, PluginError, info, json};

mod args;

use args::{Args, Encoding, ExpectedStatus};

cme_plugin_sdk::built_args!(args::Args);

const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const BODY_EXCERPT_BYTES: usize = 512;

struct ApiRequest;

impl Attack for ApiRequest {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("api-request", env!("CARGO_PKG_VERSION"))
            .refs(["api_request:ApiRequest"])
            .description("Calls an HTTP API (for example a service's kill switch) and fails unless it answers the expected status.")
            .args_built::<Args>()
            .example(json!({
                "endpoint": "http://service.internal/chaos/kill",
                "method": "POST",
                "payload": {"terminate": 1},
                "headers": {"X-CUSTOM-HEADER": "test"}
            }))
            .capability(Capability::Http(vec!["*".into()]))
    }

    fn run(ctx: &RunContext, args: Args) -> Result<Report, PluginError> {
        let method = args.method.to_ascii_uppercase();
        let mut headers: Vec<KeyValue> =
            args.headers.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.text() }).collect();
        let declared_json = headers.iter().any(|h| {
            h.key.eq_ignore_ascii_case("content-type") && h.value.to_ascii_lowercase().starts_with("application/json")
        });
        let encoding = args.encoding.unwrap_or(if declared_json { Encoding::Json } else { Encoding::Form });
        let body = encode_body(&args.payload, encoding, &mut headers);

        if let Some(revert) = &args.revert {
            // Registered before the call: whatever happens next, the host sends it.
            let compensating = http::Request {
                method: revert.method.to_ascii_uppercase(),
                url: revert.endpoint.clone(),
                headers: revert.headers.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.text() }).collect(),
                body: revert.body.as_ref().map(|b| b.as_bytes().to_vec()),
                timeout_ms: None,
            };
            let after_ms = u64::from(revert.after_seconds.unwrap_or(3600)) * 1000;
            let id = cme_plugin_sdk::attack::undo::arm_http(&compensating, after_ms)?;
            info!("armed the revert {} {} ({id})", compensating.method, compensating.url);
        }
        info!("{method} {}", args.endpoint);
        let response = http::send(&http::Request {
            method: method.clone(),
            url: args.endpoint.clone(),
            headers,
            body,
            timeout_ms: Some(args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        })?;

        let excerpt_len = response.body.len().min(BODY_EXCERPT_BYTES);
        let details = json!({
            "method": method,
            "endpoint": args.endpoint,
            "final_url": response.final_url,
            "status": response.status,
            "elapsed_ms": response.elapsed_ms,
            "response_bytes": response.body.len(),
            "body_excerpt": String::from_utf8_lossy(&response.body[..excerpt_len]),
            "dry_run": ctx.dry_run,
        });
        if ctx.dry_run {
            let summary = format!("dry run: would send {method} {}", args.endpoint);
            return Ok(Report::new(summary).target(args.endpoint).details(details));
        }
        let ok = match &args.expected_status {
            None => (200..300).contains(&response.status),
            Some(ExpectedStatus::One(code)) => response.status == *code,
            Some(ExpectedStatus::Any(codes)) => codes.contains(&response.status),
        };
        let summary = format!("{method} {} -> {} in {} ms", args.endpoint, response.status, response.elapsed_ms);
        if !ok {
            let expected = match &args.expected_status {
                None => "2xx".to_string(),
                Some(ExpectedStatus::One(code)) => code.to_string(),
                Some(ExpectedStatus::Any(codes)) => format!("{codes:?}"),
            };
            return Err(PluginError::failed(format!("{summary} (expected {expected})")));
        }
        Ok(Report::new(summary).target(args.endpoint).details(details))
    }
}

/// The request body for `payload`: none when it is empty (as `requests` did), else form
/// fields or JSON; adds a Content-Type header when the caller gave none.
fn encode_body(payload: &Map<String, Value>, encoding: Encoding, headers: &mut Vec<KeyValue>) -> Option<Vec<u8>> {
    if payload.is_empty() {
        return None;
    }
    let (content_type, body) = match encoding {
        Encoding::Json => ("application/json", Value::Object(payload.clone()).to_string()),
        Encoding::Form => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (key, value) in payload {
                match value {
                    // Lists become repeated fields, as `requests` encodes them.
                    Value::Array(items) => items.iter().for_each(|item| {
                        form.append_pair(key, &scalar_text(item));
                    }),
                    other => {
                        form.append_pair(key, &scalar_text(other));
                    }
                }
            }
            ("application/x-www-form-urlencoded", form.finish())
        }
    };
    if !headers.iter().any(|h| h.key.eq_ignore_ascii_case("content-type")) {
        headers.push(KeyValue { key: "Content-Type".into(), value: content_type.into() });
    }
    Some(body.into_bytes())
}

/// A JSON value as form text: strings bare, everything else as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

cme_plugin_sdk::export_attack!(ApiRequest);
