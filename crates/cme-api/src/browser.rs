//! No ambient browser authority. A web page in the operator's browser can reach a
//! loopback engine two ways: by DNS rebinding (its own name, resolving to 127.0.0.1: the
//! `Host` header carries that name) and by cross-site requests (forms and `fetch` carry
//! an `Origin` or `Sec-Fetch-Site: cross-site`). Both are refused before any handler runs
//! (so before any body is read), with and without tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::ApiState;
use crate::problem::ApiError;

/// The names and addresses clients may use to reach the engine.
///
/// By default `localhost`, `127.0.0.1` and `::1`; the binary adds the address it is
/// bound to (unless unspecified) and the operator's `allowed_hosts`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    hosts: Vec<String>,
}

impl Default for HostPolicy {
    fn default() -> Self {
        HostPolicy::new(Vec::<String>::new())
    }
}

impl HostPolicy {
    /// The loopback names plus `extra` (names or IP addresses, any case; no ports).
    pub fn new(extra: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].into_iter().map(String::from).collect();
        hosts.extend(extra.into_iter().map(|h| normalize(&h.into())));
        hosts.sort();
        hosts.dedup();
        HostPolicy { hosts }
    }

    /// Whether `authority` (`host[:port]`, `[v6]:port`) names this engine.
    fn allows(&self, authority: &str) -> bool {
        let host = host_of(authority);
        self.hosts.iter().any(|h| *h == host)
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// The host part of an authority, without port or brackets.
fn host_of(authority: &str) -> String {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if authority.matches(':').count() > 1 {
        authority // a bare IPv6 address
    } else {
        authority.split(':').next().unwrap_or("")
    };
    normalize(host)
}

/// Refuses a request whose `Host` names no host of this engine (421), and a
/// state-changing request from another origin (403).
pub async fn refuse_foreign(req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(refusal) = refusal(&req) {
        let response = refusal.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn refusal(req: &ServiceRequest) -> Option<ApiError> {
    let policy = &req.app_data::<web::Data<ApiState>>()?.hosts;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let authority = header("host").map(str::to_string).or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(authority) = &authority {
        if !policy.allows(authority) {
            return Some(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this engine does not serve the host {:?}; add it to allowed_hosts in the configuration if it should", host_of(authority)),
            ));
        }
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return None;
    }
    if header("sec-fetch-site") == Some("cross-site") {
        return Some(ApiError::new(StatusCode::FORBIDDEN, "cross-site requests may not change anything on this engine"));
    }
    let origin = header("origin")?;
    let same = match (origin.split_once("://"), authority.as_deref()) {
        (Some((_, origin_authority)), Some(authority)) => origin_authority.eq_ignore_ascii_case(authority) && policy.allows(origin_authority),
        _ => false,
    };
    if !same {
        return Some(ApiError::new(StatusCode::FORBIDDEN, format!("requests from the origin {origin:?} may not change anything on this engine")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_without_ports_brackets_or_case() {
        let policy = HostPolicy::new(["CME.internal", "10.0.0.5"]);
        for (authority, allowed) in [
            ("127.0.0.1:5000", true),
            ("localhost", true),
            ("LOCALHOST:5000", true),
            ("[::1]:5000", true),
            ("cme.internal:443", true),
            ("cme.internal.", true),
            ("10.0.0.5:5000", true),
            ("evil.example:5000", false),
            ("127.0.0.1.evil.example", false),
            ("localhost.evil.example", false),
            ("[::2]:5000", false),
            ("", false),
        ] {
            assert_eq!(policy.allows(authority), allowed, "{authority}");
        }
    }
}
