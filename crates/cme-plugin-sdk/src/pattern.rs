//! URL patterns for HTTP grants: `scheme://host[:port][/path]`. The host compiles this very
//! file into `cme-model` (`#[path]`): grants and the mock host match URLs from one copy.
//!
//! * a lone `*` matches any http or https URL;
//! * scheme: `http`, `https` or `*` (either);
//! * host: a name (case-insensitive), an IP literal (`[::1]` for IPv6), `*` (any host) or
//!   `*.example.com` (any subdomain of example.com, not example.com itself);
//! * port: a number or `*`; absent means the scheme's default port (80, 443), so
//!   `http://svc` does not match `http://svc:8080`;
//! * path: absent or `/*` matches any path; `/api/*` matches paths starting with `/api/`;
//!   anything else must equal the URL's path.

use std::fmt;

use url::Url;

/// A parsed URL pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    text: String,
    scheme: Scheme,
    host: Host,
    port: Port,
    path: Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    SubdomainOf(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Port {
    Any,
    Default,
    Exact(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    Any,
    Prefix(String),
    Exact(String),
}

/// A pattern that does not parse; the text says what is wrong and shows a valid form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid URL pattern {pattern:?}: {reason} (expected scheme://host[:port][/path], e.g. https://*.example.com/api/*)"
)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl UrlPattern {
    /// Parses a pattern; see the module docs for the grammar.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let err = |reason: &str| PatternError { pattern: text.to_string(), reason: reason.to_string() };
        let trimmed = text.trim();
        if trimmed == "*" {
            return Ok(UrlPattern {
                text: text.into(),
                scheme: Scheme::Any,
                host: Host::Any,
                port: Port::Any,
                path: Path::Any,
            });
        }
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| err("missing scheme://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => Scheme::Any,
            s @ ("http" | "https") => Scheme::Exact(s.to_string()),
            _ => return Err(err("scheme must be http, https or *")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority).map_err(|r| err(&r))?;
        let host = if host == "*" {
            Host::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(err("a wildcard host must look like *.example.com"));
            }
            Host::SubdomainOf(domain.to_ascii_lowercase())
        } else if host.is_empty() || host.contains('*') {
            return Err(err("host must be a name, an IP, * or *.domain"));
        } else {
            Host::Exact(host.to_ascii_lowercase())
        };
        let port = match port {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(p) => Port::Exact(p.parse().map_err(|_| err("port must be a number from 0 to 65535 or *"))?),
        };
        let path = match path {
            "" | "/*" => Path::Any,
            p if p.ends_with('*') => {
                let prefix = &p[..p.len() - 1];
                if prefix.contains('*') {
                    return Err(err("only a trailing * is allowed in the path"));
                }
                Path::Prefix(prefix.to_string())
            }
            p if p.contains('*') => return Err(err("only a trailing * is allowed in the path")),
            p => Path::Exact(p.to_string()),
        };
        Ok(UrlPattern { text: text.into(), scheme, host, port, path })
    }

    /// True when `url` (http or https) matches this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return false;
        }
        let scheme_ok = match &self.scheme {
            Scheme::Any => true,
            Scheme::Exact(s) => s == scheme,
        };
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            Host::Any => true,
            Host::Exact(h) => *h == host,
            Host::SubdomainOf(domain) => host.ends_with(&format!(".{domain}")),
        };
        let port_ok = match self.port {
            Port::Any => true,
            // url omits the port when it is the scheme's default.
            Port::Default => url.port().is_none(),
            Port::Exact(p) => url.port_or_known_default() == Some(p),
        };
        let path_ok = match &self.path {
            Path::Any => true,
            Path::Prefix(prefix) => url.path().starts_with(prefix.as_str()),
            Path::Exact(path) => url.path() == path,
        };
        scheme_ok && host_ok && port_ok && path_ok
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.contains('@') {
        return Err("user info is not allowed".into());
    }
    if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: keep the brackets, as url::Url::host_str does.
        let end = rest.find(']').ok_or("unclosed [ in IPv6 host")?;
        let host = &authority[..end + 2];
        return match &rest[end + 1..] {
            "" => Ok((host, None)),
            p => p.strip_prefix(':').map(|p| (host, Some(p))).ok_or_else(|| "garbage after IPv6 host".into()),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, url: &str) -> bool {
        UrlPattern::parse(pattern).unwrap().matches(&Url::parse(url).unwrap())
    }

    #[test]
    fn patterns_match_as_documented() {
        let cases = [
            ("*", "http://anything:1234/x", true),
            ("*", "https://a.b/", true),
            ("*", "ftp://a.b/", false),
            ("https://api.example.com", "https://api.example.com/v1/kill", true),
            ("https://api.example.com", "http://api.example.com/", false),
            ("https://api.example.com", "https://api.example.com:8443/", false),
            ("https://api.example.com", "https://API.Example.com/", true),
            ("https://api.example.com", "https://api.example.com.evil.net/", false),
            ("*://api.example.com:*", "http://api.example.com:9999/", true),
            ("http://*.example.com", "http://a.b.example.com/", true),
            ("http://*.example.com", "http://example.com/", false),
            ("http://*.example.com", "http://badexample.com/", false),
            ("http://127.0.0.1:*", "http://127.0.0.1:4000/hit", true),
            ("http://127.0.0.1:*", "http://127.0.0.2:4000/hit", false),
            ("http://[::1]:8080", "http://[::1]:8080/", true),
            ("http://svc/api/*", "http://svc/api/kill", true),
            ("http://svc/api/*", "http://svc/admin", false),
            ("http://svc/health", "http://svc/health", true),
            ("http://svc/health", "http://svc/health/x", false),
            ("http://svc:80", "http://svc/", true),
        ];
        for (pattern, url, expected) in cases {
            assert_eq!(allows(pattern, url), expected, "{pattern} vs {url}");
        }
    }

    #[test]
    fn malformed_patterns_say_what_is_wrong() {
        let cases = [
            ("api.example.com", "missing scheme://"),
            ("ftp://x", "scheme must be"),
            ("http://a*b.com", "host must be"),
            ("http://*.", "wildcard host"),
            ("http://x:http", "port must be"),
            ("http://x/a*/b", "trailing *"),
            ("http://user@x", "user info"),
        ];
        for (pattern, reason) in cases {
            let err = UrlPattern::parse(pattern).unwrap_err();
            assert!(err.to_string().contains(reason), "{pattern}: {err}");
        }
    }
}
