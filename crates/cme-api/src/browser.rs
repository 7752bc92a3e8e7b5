//! No ambient browser authority. A web page in the operator's browser can reach a
//! loopback engine two ways: by DNS rebinding (its own name, resolving to 127.0.0.1: the
//! `Host` header carries that name) and by cross-site requests (forms and `fetch` carry
//! an `Origin` or `Sec-Fetch-Site: cross-site`). Both are refused before any handler runs
//! (so before any body is read), with and without tokens.

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode};
use actix_web::web;

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
        if !authority.bytes().all(|b| b.is_ascii_graphic()) {
            return false;
        }
        let host = host_of(authority);
        !host.is_empty() && self.hosts.iter().any(|known| known.eq_ignore_ascii_case(host))
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
}

/// A name as compared: lowercase, without brackets, and without the one trailing dot of
/// a fully qualified name.
fn normalize(host: &str) -> String {
    unbracketed(host).to_ascii_lowercase()
}

/// A name without brackets and without the one trailing dot (any case).
fn unbracketed(host: &str) -> &str {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host)
}

/// The host part of an authority, without port or brackets (in the authority's case);
/// empty when the authority is malformed (a port that is not a number, text after an
/// IPv6 literal's bracket).
fn host_of(authority: &str) -> &str {
    let authority = authority.trim();
    let port_ok = |port: &str| !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, "")) => host,
            Some((host, tail)) if tail.strip_prefix(':').is_some_and(port_ok) => host,
            _ => "",
        }
    } else if authority.matches(':').count() > 1 {
        authority // a bare IPv6 address
    } else {
        match authority.split_once(':') {
            None => authority,
            Some((host, port)) if port_ok(port) => host,
            Some(_) => "",
        }
    };
    unbracketed(host)
}

/// Paths an orchestrator probes by IP address: they answer whatever `Host` names.
const PROBE_PATHS: [&str; 3] = ["/livez", "/readyz", "/healthz"];

/// The request's authority when it names a host this engine serves; the refusal otherwise.
///
/// Total: a `Host` that is missing, empty, repeated, not visible ASCII, or foreign is
/// refused alike (an absolute-form request target's authority must agree with it).
fn authority_of<'r>(req: &'r ServiceRequest, policy: &HostPolicy) -> Result<&'r str, ApiError> {
    let misdirected = |why: String| ApiError::new(StatusCode::MISDIRECTED_REQUEST, why);
    let mut hosts = req.headers().get_all("host");
    let authority = match (hosts.next(), hosts.next()) {
        (Some(value), None) => {
            value.to_str().ok().filter(|v| v.bytes().all(|b| b.is_ascii_graphic())).ok_or_else(|| {
                misdirected("the Host header must be plain ASCII naming a host this engine serves".into())
            })?
        }
        (Some(_), Some(_)) => return Err(misdirected("the request names more than one Host".into())),
        (None, _) => match req.uri().authority() {
            Some(authority) => authority.as_str(),
            None => return Err(misdirected("the request names no Host".into())),
        },
    };
    if let Some(target) = req.uri().authority()
        && !target.as_str().eq_ignore_ascii_case(authority)
    {
        return Err(misdirected("the request target and the Host header name different hosts".into()));
    }
    if authority.is_empty() || !policy.allows(authority) {
        return Err(misdirected(format!(
            "this engine does not serve the host {:?}; add it to allowed_hosts in the configuration if it should",
            host_of(authority)
        )));
    }
    Ok(authority)
}

/// Why a request is refused before any handler runs: a `Host` naming no host of this
/// engine (421), or a state-changing request from another origin (403).
pub(crate) fn refusal(req: &ServiceRequest) -> Option<ApiError> {
    let policy = &req.app_data::<web::Data<ApiState>>()?.hosts;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let authority = match authority_of(req, policy) {
        Ok(authority) => authority,
        Err(_) if PROBE_PATHS.contains(&req.path()) => return None,
        Err(refusal) => return Some(refusal),
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return None;
    }
    if header("sec-fetch-site") == Some("cross-site") {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site requests may not change anything on this engine",
        ));
    }
    let origin = header("origin")?;
    let same = match origin.split_once("://") {
        Some((_, origin_authority)) => {
            origin_authority.eq_ignore_ascii_case(authority) && policy.allows(origin_authority)
        }
        None => false,
    };
    if !same {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("requests from the origin {origin:?} may not change anything on this engine"),
        ));
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
            ("localhost..", false),
            ("localhost:evil", false),
            ("localhost:", false),
            ("[::1]junk", false),
            ("[::1]:5000:1", false),
            ("127.0.0.1 ", false),
            ("lo calhost", false),
            ("localhost\u{e9}", false),
        ] {
            assert_eq!(policy.allows(authority), allowed, "{authority}");
        }
    }
}
