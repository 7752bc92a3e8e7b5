//! Where a plugin's HTTP may go: URL patterns, then addresses after DNS resolution.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use url::Url;

use super::{HttpError, UrlPattern};

/// URL patterns from one source (a plugin's declaration, an operator's grant).
#[derive(Debug, Clone, Default)]
pub struct UrlAllowList {
    /// Where the patterns come from, for refusal messages.
    pub source: String,
    pub patterns: Vec<UrlPattern>,
}

/// The egress rules of one run.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    /// A URL must match a pattern of every list; no list at all allows nothing.
    pub allow_lists: Vec<UrlAllowList>,
    /// Allow link-local and cloud metadata addresses. Off by default: instance
    /// credentials live behind 169.254.169.254.
    pub allow_link_local: bool,
}

impl EgressRules {
    /// Checks a URL before any connection: scheme, patterns, and IP literals (which no
    /// resolver sees).
    pub fn check_url(&self, url: &Url) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidArgument(format!("{url}: only http and https URLs are supported")));
        }
        if self.allow_lists.is_empty() {
            return Err(HttpError::Denied(format!("{url}: no HTTP URL is allowed")));
        }
        for list in &self.allow_lists {
            if !list.patterns.iter().any(|p| p.matches(url)) {
                let allowed: Vec<String> = list.patterns.iter().map(ToString::to_string).collect();
                return Err(HttpError::Denied(format!("{url} matches none of {} {allowed:?}", list.source)));
            }
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) => self.check_addr(ip).map_err(|reason| HttpError::Denied(format!("{url}: {reason}"))),
            None => Ok(()),
        }
    }

    /// Checks one resolved address; the error says why it is refused.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), String> {
        if !self.allow_link_local && is_metadata_or_link_local(ip) {
            return Err(format!(
                "{ip} is a link-local or cloud metadata address, refused unless the grant sets allow_link_local"
            ));
        }
        Ok(())
    }
}

/// True for 169.254.0.0/16, fe80::/10, the AWS IPv6 metadata address fd00:ec2::254, and
/// their IPv4-mapped forms.
pub fn is_metadata_or_link_local(ip: IpAddr) -> bool {
    static REFUSED: std::sync::LazyLock<Vec<ipnet::IpNet>> = std::sync::LazyLock::new(|| {
        // Link-local (where cloud metadata services answer) and AWS's IPv6 metadata address.
        ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"].iter().map(|n| n.parse().expect("a valid network")).collect()
    });
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    REFUSED.iter().any(|net| net.contains(&ip))
}

/// Name resolution, replaceable so that tests can play a rebinding DNS server.
pub trait DnsResolver: Send + Sync + 'static {
    /// Resolves `host`; the ports of the returned addresses are ignored.
    fn resolve(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (getaddrinfo through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl DnsResolver for SystemResolver {
    fn resolve(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// The refusal raised inside the resolver; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct AddressRefused(pub String);

/// reqwest's resolver for one run: resolves once, drops refused addresses, and hands the
/// rest to the connector, so the addresses checked are the addresses connected to.
pub(super) struct CheckedResolver {
    pub inner: Arc<dyn DnsResolver>,
    pub rules: Arc<EgressRules>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let inner = self.inner.clone();
        let rules = self.rules.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved = inner.resolve(host.clone()).await?;
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|ip| match rules.check_addr(*ip) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusals.push(reason);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                let reason = refusals.first().cloned().unwrap_or_else(|| "no address".into());
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(AddressRefused(format!("{host} resolves to no permitted address: {reason}")));
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_recognised() {
        let cases = [
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fd00:ec2::254", true),
            ("::ffff:169.254.169.254", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("::1", false),
            ("fec0::1", false),
            ("8.8.8.8", false),
        ];
        for (ip, expected) in cases {
            assert_eq!(is_metadata_or_link_local(ip.parse().unwrap()), expected, "{ip}");
        }
    }

    fn rules(patterns: &[&str], allow_link_local: bool) -> EgressRules {
        let patterns = patterns.iter().map(|p| UrlPattern::parse(p).unwrap()).collect();
        EgressRules { allow_lists: vec![UrlAllowList { source: "the granted URL patterns".into(), patterns }], allow_link_local }
    }

    #[test]
    fn literal_metadata_url_is_refused_unless_granted() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        assert!(matches!(rules(&["*"], false).check_url(&url), Err(HttpError::Denied(m)) if m.contains("allow_link_local")));
        assert!(rules(&["*"], true).check_url(&url).is_ok());
        let mapped = Url::parse("http://[::ffff:169.254.169.254]/").unwrap();
        assert!(rules(&["*"], false).check_url(&mapped).is_err());
    }

    #[test]
    fn url_outside_patterns_is_denied_and_names_them() {
        let err = rules(&["https://api.example.com"], false)
            .check_url(&Url::parse("https://evil.example.net/").unwrap())
            .unwrap_err();
        assert!(matches!(&err, HttpError::Denied(m) if m.contains("https://api.example.com")), "{err}");
        assert!(matches!(rules(&[], false).check_url(&Url::parse("http://a/").unwrap()), Err(HttpError::Denied(_))));
        assert!(matches!(EgressRules::default().check_url(&Url::parse("http://a/").unwrap()), Err(HttpError::Denied(_))));
    }

    #[test]
    fn non_http_schemes_are_invalid() {
        assert!(matches!(
            rules(&["*"], false).check_url(&Url::parse("file:///etc/passwd").unwrap()),
            Err(HttpError::InvalidArgument(_))
        ));
    }
}
