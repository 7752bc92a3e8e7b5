//! `cme:plugin/http`: real requests through reqwest, within the run's egress rules (the
//! declared AND granted URL patterns, the `[http]` fence; no link-local or metadata
//! address unless granted). Clients are shared by runs with the same rules.

use std::time::{Duration, Instant};

use cme_cloud::http::{DeniedNetwork, EgressRules, HttpClient, HttpError, Request as CloudRequest};
use cme_cloud::http::{UrlAllowList, UrlPattern};
use cme_model::Locked;

use super::{Backends, Unit};
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::http::{Host, Request, Response};
use crate::bindings::wit_types::KeyValue;
use crate::grant::{Denial, Fences, Grant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `http` unit.
pub(crate) struct Http;

/// What one run keeps: the requests it made (what the grant's `max_requests` counts).
#[derive(Default)]
pub(crate) struct HttpRun {
    requests: u32,
}

impl Unit for Http {
    const INTERFACE: &'static str = "cme:plugin/http";
    type RunState = HttpRun;
    type Use<'a> = ();

    /// Declared and granted; which URLs is the egress rules' part ([`http_rules`]).
    fn check(declared: &[Capability], grant: &Grant, _fences: &Fences, _: ()) -> Result<(), Denial> {
        if !declared.iter().any(|c| matches!(c, Capability::Http { .. })) {
            return Err(not_declared("http"));
        }
        if grant.http.is_none() {
            return Err(not_granted("http"));
        }
        Ok(())
    }

    /// Every declared URL pattern; never link-local addresses.
    fn grant_as_declared(declared: &[Capability], grant: &mut Grant) {
        for capability in declared {
            if let Capability::Http { urls } = capability {
                grant.http.get_or_insert_with(Default::default).urls.extend(urls.iter().cloned());
            }
        }
    }
}

/// The egress rules for HTTP: a URL must match a declared pattern AND a granted one AND
/// the `[http]` fence's allow patterns (when it has any), no deny pattern or network of
/// the fence, and not the engine's own sockets; link-local addresses only when the grant
/// says so. None when HTTP is not allowed.
pub fn http_rules(
    declared: &[Capability],
    grant: &Grant,
    fences: &Fences,
    own_sockets: &[std::net::SocketAddr],
) -> Option<EgressRules> {
    let http = grant.http.as_ref()?;
    let parse = |urls: &[String]| urls.iter().filter_map(|u| UrlPattern::parse(u).ok()).collect::<Vec<_>>();
    let declared_urls: Vec<String> = declared
        .iter()
        .filter_map(|c| match c {
            Capability::Http { urls } => Some(urls.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut allow_lists = vec![
        UrlAllowList { source: "the plugin's declared URL patterns".into(), patterns: parse(&declared_urls) },
        UrlAllowList { source: "the granted URL patterns".into(), patterns: parse(&http.urls) },
    ];
    if !fences.http.allow.is_empty() {
        allow_lists.push(UrlAllowList {
            source: "the operator's [http] fence (allow)".into(),
            patterns: parse(&fences.http.allow),
        });
    }
    let denied_networks = fences
        .http
        .networks()
        .unwrap_or_default()
        .into_iter()
        .map(|network| DeniedNetwork { network, source: "the operator's [http] fence (deny_networks)".into() })
        .collect();
    Some(EgressRules {
        allow_lists,
        deny_lists: vec![UrlAllowList {
            source: "the operator's [http] fence (deny)".into(),
            patterns: parse(&fences.http.deny),
        }],
        denied_networks,
        own_sockets: own_sockets.to_vec(),
        allow_link_local: http.allow_link_local,
    })
}

impl Backends {
    /// The client for these rules, built on first use: runs with the same declaration and
    /// grant share one client and its connection pool (building a TLS client costs
    /// milliseconds).
    pub(crate) fn http_client(&self, declared: &[Capability], grant: &Grant) -> Result<HttpClient, HttpError> {
        const MAX_CLIENTS: usize = 256;
        let key = serde_json::to_string(&(declared, &grant.http)).unwrap_or_default();
        let mut clients = self.http_clients.locked();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let rules = http_rules(declared, grant, &self.fences, &self.own_sockets)
            .expect("admitted HTTP calls have an HTTP grant");
        let names = grant.http.as_ref().map(|h| h.credentials.as_slice()).unwrap_or_default();
        let credentials = cme_cloud::http::granted_credentials(&self.http.credentials, names)?;
        let client = HttpClient::new(&self.http, rules, credentials)?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

impl Host for CallState {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, HostError>> {
        const CALL: &str = "http.send";
        let target = format!("{} {}", req.method, req.url);
        if let Err(denied) = self.admit::<Http>(CALL, &target, ())? {
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
        if max.is_some_and(|max| caps.units.http.requests >= max) {
            return Err(format!("the grant allows {} HTTP requests per run", max.unwrap_or_default()));
        }
        caps.units.http.requests += 1;
        Ok(())
    }

    /// The HTTP client for this run's egress rules.
    pub(crate) fn prepare_http_client(&mut self) -> Result<HttpClient, HttpError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::HttpGrant;

    #[test]
    fn http_urls_must_match_declaration_and_grant() {
        let declared = vec![Capability::Http { urls: vec!["http://*.internal:*".into()] }];
        let grant = Grant {
            http: Some(HttpGrant { urls: vec!["http://svc.internal:8080/api/*".into()], ..Default::default() }),
            ..Grant::default()
        };
        let rules = http_rules(&declared, &grant, &Fences::default(), &[]).unwrap();
        let check = |url: &str| rules.check_url(&url::Url::parse(url).unwrap());
        assert!(check("http://svc.internal:8080/api/kill").is_ok());
        let outside_grant = check("http://other.internal:8080/api/kill").unwrap_err().to_string();
        assert!(outside_grant.contains("granted URL patterns"), "{outside_grant}");
        let outside_declaration = check("http://svc.example:8080/api/kill").unwrap_err().to_string();
        assert!(outside_declaration.contains("declared URL patterns"), "{outside_declaration}");
        assert!(http_rules(&declared, &Grant::default(), &Fences::default(), &[]).is_none());
    }
}
