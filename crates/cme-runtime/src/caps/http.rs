//! `cme:plugin/http`: real requests through reqwest, within the run's egress rules (the
//! declared AND granted URL patterns; no link-local or metadata address unless granted).

use std::time::{Duration, Instant};

use cme_cloud::http::{HttpClient, HttpError, Request as CloudRequest};

use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::http::{Host, Request, Response};
use crate::bindings::wit_types::KeyValue;
use crate::grant::CapabilityUse;
use crate::state::CallState;

impl Host for CallState {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, HostError>> {
        const CALL: &str = "http.send";
        let target = format!("{} {}", req.method, req.url);
        if let Err(denied) = self.admit(CALL, &target, CapabilityUse::Http)? {
            return Ok(Err(denied));
        }
        if let Some(reason) = self.probe_refusal(&req.method) {
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::Denied(reason)));
        }
        if let Err(reason) = self.take_http_budget() {
            self.audit(CALL, target, Decision::Denied(reason.clone()), None);
            return Ok(Err(HostError::BudgetExhausted(reason)));
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let client = match self.prepare_http_client() {
            Ok(client) => client,
            Err(error) => return Ok(Err(self.http_failed(&target, error))),
        };
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(client.default_timeout())
            .min(remaining);
        // What a plugin sends as a secret is masked wherever it could show next (a
        // dependency's trace line, an error, the run's summary).
        static SECRET_HEADERS: std::sync::LazyLock<cme_secrets::Redactor> =
            std::sync::LazyLock::new(cme_secrets::Redactor::default);
        for kv in &req.headers {
            SECRET_HEADERS.remember_header(&kv.key, &kv.value);
        }
        cme_secrets::remember_user_info(&req.url);
        let request = CloudRequest {
            method: req.method,
            url: req.url,
            headers: req.headers.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            body: req.body,
            timeout: Some(timeout),
        };
        if self.records_only(&request.method) {
            return Ok(self.record_dry_run(&target, &client, &request));
        }
        if timeout.is_zero() {
            let error = HttpError::Timeout("the run's deadline leaves no time for the request".into());
            return Ok(Err(self.http_failed(&target, error)));
        }
        self.begin(CALL, &target);
        match client.send(request).await {
            Ok(response) => {
                let outcome = match &response.credential {
                    Some(name) => format!("{} (credential {name})", response.status),
                    None => response.status.to_string(),
                };
                self.audit(CALL, target, Decision::Allowed, Some(outcome));
                Ok(Ok(Response {
                    status: response.status,
                    headers: response.headers.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
                    body: response.body,
                    body_truncated: response.body_truncated,
                    final_url: response.final_url,
                    elapsed_ms: u32::try_from(response.elapsed.as_millis()).unwrap_or(u32::MAX),
                }))
            }
            Err(error) => Ok(Err(self.http_failed(&target, error))),
        }
    }
}

impl CallState {
    /// Why a probe may not send `method`: probes observe (GET, HEAD), unless the
    /// operator's `[probes] allow_methods` allows more. None for attacks.
    fn probe_refusal(&self, method: &str) -> Option<String> {
        let caps = self.caps.as_ref()?;
        caps.probe?;
        (!caps.backends.fences.probes.allows(method)).then(|| {
            format!("probes observe: a probe may send only GET or HEAD, not {method} (the operator's [probes] allow_methods may allow more)")
        })
    }

    /// Whether a request is recorded rather than sent: every request of a dry-run
    /// attack; of a probe (which observes, dry run or not), one that would do more than
    /// observe under a dry run.
    fn records_only(&self, method: &str) -> bool {
        match &self.caps {
            Some(caps) => match caps.probe {
                Some(mode) => mode.dry_run && !cme_grant::is_observing(method),
                None => caps.dry_run,
            },
            None => false,
        }
    }

    /// Counts a request against the grant's `max_requests`.
    fn take_http_budget(&mut self) -> Result<(), String> {
        let caps = self.caps.as_mut().expect("admitted calls have capabilities");
        let max = caps.grant.http.as_ref().and_then(|h| h.max_requests);
        if max.is_some_and(|max| caps.http_requests >= max) {
            return Err(format!("the grant allows {} HTTP requests per run", max.unwrap_or_default()));
        }
        caps.http_requests += 1;
        Ok(())
    }

    /// The HTTP client for this run's egress rules.
    fn prepare_http_client(&mut self) -> Result<HttpClient, HttpError> {
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        caps.backends.http_client(&caps.declared, &caps.grant)
    }

    /// A dry run checks the request like a real one, then records it instead of sending.
    fn record_dry_run(
        &mut self,
        target: &str,
        client: &HttpClient,
        request: &CloudRequest,
    ) -> Result<Response, HostError> {
        match client.check(request) {
            Ok(url) => {
                let bytes = request.body.as_ref().map_or(0, Vec::len);
                let with =
                    client.credential_for(&url).map(|c| format!(" with credential {}", c.name())).unwrap_or_default();
                let action =
                    format!("would send {} {url} ({bytes} body bytes){with}", request.method.to_ascii_uppercase());
                self.caps.as_mut().expect("admitted").actions.push(action);
                self.audit("http.send", target.to_string(), Decision::Allowed, Some("not sent: dry run".into()));
                Ok(Response {
                    status: 0,
                    headers: Vec::new(),
                    body: Vec::new(),
                    body_truncated: false,
                    final_url: url.to_string(),
                    elapsed_ms: 0,
                })
            }
            Err(error) => Err(self.http_failed(target, error)),
        }
    }

    fn http_failed(&mut self, target: &str, error: HttpError) -> HostError {
        let target = target.to_string();
        match error {
            HttpError::Denied(reason) => {
                self.audit("http.send", target, Decision::Denied(reason.clone()), None);
                HostError::Denied(reason)
            }
            HttpError::InvalidArgument(m) => {
                self.audit("http.send", target, Decision::Allowed, Some(format!("invalid argument: {m}")));
                HostError::InvalidArgument(m)
            }
            HttpError::Timeout(m) => {
                self.audit("http.send", target, Decision::Allowed, Some(format!("timeout: {m}")));
                HostError::Timeout(m)
            }
            HttpError::Upstream(m) => {
                self.audit("http.send", target, Decision::Allowed, Some(format!("upstream: {m}")));
                HostError::Upstream(m)
            }
        }
    }
}
