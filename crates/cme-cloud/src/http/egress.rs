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

/// True for link-local networks and every known cloud metadata address, in any of the
/// IPv6 forms that embed a refused IPv4 address:
///
/// * IPv4: 169.254.0.0/16 (AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Hetzner,
///   Tencent), 100.100.100.200 (Alibaba), 168.63.129.16 (Azure's wire server),
///   192.0.0.192 (Oracle Cloud Classic);
/// * IPv6: fe80::/10, fd00:ec2::254 (AWS), fd20:ce::254 (GCP);
/// * embeddings: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
///   `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002:aabb:ccdd::/48`, Teredo
///   `2001:0::/32` (server and obfuscated client), ISATAP `...:5efe:a.b.c.d`.
///
/// Loopback and private networks are not refused: they are legitimate chaos targets.
pub fn is_metadata_or_link_local(ip: IpAddr) -> bool {
    static REFUSED: std::sync::LazyLock<Vec<ipnet::IpNet>> = std::sync::LazyLock::new(|| {
        [
            "169.254.0.0/16",
            "100.100.100.200/32",
            "168.63.129.16/32",
            "192.0.0.192/32",
            "fe80::/10",
            "fd00:ec2::254/128",
            "fd20:ce::254/128",
        ]
        .iter()
        .map(|n| n.parse().expect("a valid network"))
        .collect()
    });
    let refused = |ip: IpAddr| REFUSED.iter().any(|net| net.contains(&ip));
    refused(ip) || embedded_ipv4(ip).into_iter().any(|v4| refused(IpAddr::V4(v4)))
}

/// The IPv4 addresses an IPv6 address may carry (and be routed to) by a transition
/// mechanism.
fn embedded_ipv4(ip: IpAddr) -> Vec<std::net::Ipv4Addr> {
    use std::net::Ipv4Addr;
    let IpAddr::V6(v6) = ip else { return Vec::new() };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    let mut found = Vec::new();
    if let Some(mapped) = v6.to_ipv4_mapped() {
        found.push(mapped);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks); not :: or ::1.
    if s[..6].iter().all(|&x| x == 0) && (s[6] != 0 || s[7] > 1) {
        found.push(v4(s[6], s[7]));
    }
    // NAT64, the well-known prefix and the local-use one.
    if (s[0], s[1]) == (0x64, 0xff9b) && (s[2..6].iter().all(|&x| x == 0) || s[2] == 1) {
        found.push(v4(s[6], s[7]));
    }
    // 6to4: 2002:AABB:CCDD::/48.
    if s[0] == 0x2002 {
        found.push(v4(s[1], s[2]));
    }
    // Teredo: 2001:0000:SERVER:SERVER:flags:port:~CLIENT:~CLIENT.
    if (s[0], s[1]) == (0x2001, 0) {
        found.push(v4(s[2], s[3]));
        found.push(v4(!s[6], !s[7]));
    }
    // ISATAP interface identifier: ...:0000:5efe:a.b.c.d or ...:0200:5efe:a.b.c.d.
    if (s[4] == 0 || s[4] == 0x0200) && s[5] == 0x5efe {
        found.push(v4(s[6], s[7]));
    }
    found
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
            ("100.100.100.200", true),
            ("168.63.129.16", true),
            ("192.0.0.192", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fd00:ec2::254", true),
            ("fd20:ce::254", true),
            ("::ffff:169.254.169.254", true),
            ("::169.254.169.254", true),
            ("64:ff9b::169.254.169.254", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b:1::a9fe:a9fe", true),
            ("64:ff9b::100.100.100.200", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:6464:64c8::", true),
            ("2001:0:a9fe:a9fe::1", true),
            ("2001:0:4136:e378:8000:63bf:5601:5601", true),
            ("2001:db8::5efe:a9fe:a9fe", true),
            ("2001:db8::200:5efe:6464:64c8", true),
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("192.168.1.10", false),
            ("100.100.100.201", false),
            ("::1", false),
            ("::", false),
            ("fec0::1", false),
            ("fd00:ec2::253", false),
            ("64:ff9b::8.8.8.8", false),
            ("2002:808:808::", false),
            ("2001:db8::1", false),
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
