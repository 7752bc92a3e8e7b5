//! Plain REST for the providers without an SDK here (reqwest and serde, no cloud crate):
//! the credential added only to URLs its `[[http.credentials]]` entry names (a page link
//! or an operation URL the provider hands back included), 429 and 503 retried at most 3
//! times honouring `Retry-After` (mutations only when the caller says the request is
//! idempotent), a 401 answered by a fresh token once, and the provider's error code and
//! message kept.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::{ComputeError, ProviderKind};
use crate::http::HttpCredential;

/// Retries of a 429 or 503 answer, at most.
const MAX_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured; a longer one ends the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_BODY_BYTES: usize = 16 << 20;

/// A provider's API, as one client.
pub struct Rest {
    provider: ProviderKind,
    client: reqwest::Client,
    credential: Arc<HttpCredential>,
    /// The wait before a retry when the answer names none.
    backoff: Duration,
}

/// One answer: its status and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Rest {
    /// A client trusting the system's roots, or only `ca_pem`'s certificates when given;
    /// each request times out after `timeout`.
    pub fn new(
        provider: ProviderKind,
        credential: Arc<HttpCredential>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Rest, ComputeError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("cme/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ComputeError::InvalidArgument(format!("ca_file: {e}")))?;
            builder = builder.tls_certs_only(certificates);
        }
        let client = builder
            .build()
            .map_err(|e| ComputeError::InvalidArgument(format!("cannot build the {provider} client: {e}")))?;
        Ok(Rest { provider, client, credential, backoff: Duration::from_secs(1) })
    }

    /// The wait before a retry when the answer names none (1 s by default; tests shorten it).
    pub fn with_backoff(mut self, backoff: Duration) -> Rest {
        self.backoff = backoff;
        self
    }

    /// Sends `method url` with the credential and `body` (JSON), retrying as the module
    /// says. A 2xx answer (or `expected` statuses, e.g. 404 for a read) is `Ok`; any other
    /// is `Upstream` with the provider's code (`code`: the body's field holding it).
    pub async fn send(
        &self,
        operation: &'static str,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        idempotent: bool,
        expected: &[StatusCode],
    ) -> Result<Answer, ComputeError> {
        if !self.credential.matches(url) {
            return Err(ComputeError::Denied(format!(
                "{} {operation}: {url} is not among the URLs of credential {:?}, so it is not sent there",
                self.provider,
                self.credential.name()
            )));
        }
        let retries = if idempotent || method == Method::GET { MAX_RETRIES } else { 0 };
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
            }
            let mut request = request.build().map_err(|e| self.unreachable(operation, e.to_string()))?;
            self.credential.apply(&mut request).await.map_err(|e| self.unreachable(operation, e.to_string()))?;
            let response = match self.client.execute(request).await {
                Ok(response) => response,
                Err(e) if attempt < retries && (e.is_connect() || e.is_timeout()) => {
                    attempt += 1;
                    tokio::time::sleep(self.backoff).await;
                    continue;
                }
                Err(e) => return Err(self.unreachable(operation, without_url(&e))),
            };
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = read_bounded(response).await.map_err(|e| self.unreachable(operation, e))?;
            let body: Value =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.credential.forget_token().await;
                continue;
            }
            let limited = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || rate_limited(&body);
            if limited && attempt < retries {
                let wait = retry_after(&headers).unwrap_or(self.backoff);
                if wait <= MAX_RETRY_AFTER {
                    attempt += 1;
                    tracing::debug!(provider = %self.provider, operation, %status, ?wait, attempt, "retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if status.is_success() || expected.contains(&status) {
                return Ok(Answer { status, body, headers });
            }
            let (code, message) = provider_error(&body, status);
            return Err(ComputeError::Upstream { provider: self.provider, operation, code, message });
        }
    }

    fn unreachable(&self, operation: &'static str, reason: String) -> ComputeError {
        ComputeError::Unreachable { provider: self.provider, operation, reason }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is read as "soon": the backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// GCE answers a quota error as 403 `rateLimitExceeded`.
fn rate_limited(body: &Value) -> bool {
    body["error"]["errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| matches!(e["reason"].as_str(), Some("rateLimitExceeded" | "userRateLimitExceeded")))
    })
}

/// The provider's error code and message, from the shapes the providers use:
/// DigitalOcean `{"id", "message"}`, Google `{"error": {"status"|"errors"[0].reason, "message"}}`,
/// Azure `{"error": {"code", "message"}}`, OpenStack `{"<kind>": {"code", "message"}}`.
pub(crate) fn provider_error(body: &Value, status: StatusCode) -> (String, String) {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let error = &body["error"];
    let code = text(&body["id"])
        .or_else(|| text(&error["code"]).filter(|c| !c.is_empty()))
        .or_else(|| text(&error["errors"][0]["reason"]))
        .or_else(|| text(&error["status"]))
        // OpenStack names the error by its one key: {"itemNotFound": {"code": 404, ...}}.
        .or_else(|| {
            let object = body.as_object().filter(|o| o.len() == 1)?;
            object.iter().next().filter(|(_, v)| v.get("message").is_some()).map(|(k, _)| k.clone())
        })
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = text(&body["message"])
        .or_else(|| text(&error["message"]))
        .or_else(|| body.as_object().and_then(|o| o.values().find_map(|v| text(&v["message"]))))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let mut message = message;
    message.truncate(1000);
    (code, message)
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| without_url(&e))? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("the answer is larger than {} MiB", MAX_BODY_BYTES >> 20));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// reqwest's error text without the URL (a page link may carry a token in its query),
/// with its causes (the TLS or connection failure underneath "error sending request").
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(at) = text.find(" for url (") {
        text.truncate(at);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_keep_their_code_and_message() {
        let cases = [
            (
                serde_json::json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
                "not_found",
            ),
            (serde_json::json!({"error": {"code": "OperationNotAllowed", "message": "quota"}}), "OperationNotAllowed"),
            (
                serde_json::json!({"error": {"code": 403, "message": "slow down", "errors": [{"reason": "rateLimitExceeded"}]}}),
                "rateLimitExceeded",
            ),
            (
                serde_json::json!({"itemNotFound": {"code": 404, "message": "Instance could not be found"}}),
                "itemNotFound",
            ),
        ];
        for (body, code) in cases {
            let (found, message) = provider_error(&body, StatusCode::NOT_FOUND);
            assert_eq!(found, code, "{body}");
            assert!(!message.is_empty());
        }
        assert!(rate_limited(&serde_json::json!({"error": {"errors": [{"reason": "rateLimitExceeded"}]}})));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }
}
