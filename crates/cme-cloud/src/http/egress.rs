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

/// A network no request may reach, with where the refusal comes from.
#[derive(Debug, Clone)]
pub struct DeniedNetwork {
    pub network: ipnet::IpNet,
    pub source: String,
}

/// The egress rules of one run.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    /// A URL must match a pattern of every list; no list at all allows nothing.
    pub allow_lists: Vec<UrlAllowList>,
    /// A URL matching a pattern of any of these lists is refused (an operator's deny).
    pub deny_lists: Vec<UrlAllowList>,
    /// Networks refused on the URL and on every resolved address.
    pub denied_networks: Vec<DeniedNetwork>,
    /// The engine's own listening sockets: a plugin must not drive the engine's API.
    pub own_sockets: Vec<SocketAddr>,
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
        for list in &self.deny_lists {
            if let Some(pattern) = list.patterns.iter().find(|p| p.matches(url)) {
                return Err(HttpError::Denied(format!("{url} matches {pattern} of {}", list.source)));
            }
        }
        let port = url.port_or_known_default().unwrap_or(0);
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) => {
                self.check_addr(ip).map_err(|reason| HttpError::Denied(format!("{url}: {reason}")))?;
                self.check_own(ip, port).map_err(|reason| HttpError::Denied(format!("{url}: {reason}")))
            }
            None => match url.host_str() {
                Some(name) if self.is_own_port(port) && is_loopback_name(name) => {
                    Err(HttpError::Denied(format!("{url}: {}", own_refusal(port))))
                }
                _ => Ok(()),
            },
        }
    }

    /// Checks one resolved address; the error says why it is refused.
    pub(crate) fn check_addr(&self, ip: IpAddr) -> Result<(), String> {
        if !self.allow_link_local && is_metadata_or_link_local(ip) {
            return Err(format!(
                "{ip} is a link-local or cloud metadata address, refused unless the grant sets allow_link_local"
            ));
        }
        let embedded = embedded_ipv4(ip);
        for denied in &self.denied_networks {
            if denied.network.contains(&ip) || embedded.iter().any(|v4| denied.network.contains(&IpAddr::V4(*v4))) {
                return Err(format!("{ip} is in {} of {}", denied.network, denied.source));
            }
        }
        Ok(())
    }

    /// Whether `port` is one the engine listens on (then local addresses are refused).
    pub fn is_own_port(&self, port: u16) -> bool {
        self.own_sockets.iter().any(|s| s.port() == port)
    }

    /// Refuses `ip:port` when it reaches one of the engine's own listening sockets:
    /// the listen address itself, loopback and unspecified addresses on that port, and,
    /// for an engine listening on all interfaces, every address of this machine.
    pub(crate) fn check_own(&self, ip: IpAddr, port: u16) -> Result<(), String> {
        let ip = canonical(ip);
        let own = self.own_sockets.iter().filter(|s| s.port() == port).any(|s| {
            let listen = canonical(s.ip());
            listen == ip || ip.is_loopback() || ip.is_unspecified() || (listen.is_unspecified() && is_local_address(ip))
        });
        if own { Err(own_refusal(port)) } else { Ok(()) }
    }
}

impl EgressRules {
    /// Refuses a `Host` header that names the engine itself (loopback names and
    /// addresses, its listen addresses): with it, a request to any address could pass the
    /// engine's own Host check.
    pub fn check_host_header(&self, value: &str) -> Result<(), HttpError> {
        if self.own_sockets.is_empty() {
            return Ok(());
        }
        let host = match url::Url::parse(&format!("http://{value}/")) {
            Ok(parsed) => parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string(),
            Err(_) => return Err(HttpError::InvalidArgument(format!("Host header {value:?} is not a host name"))),
        };
        let own_ip = host.parse::<IpAddr>().ok().is_some_and(|ip| {
            let ip = canonical(ip);
            ip.is_loopback() || ip.is_unspecified() || self.own_sockets.iter().any(|s| canonical(s.ip()) == ip)
        });
        if own_ip || is_loopback_name(&host) {
            return Err(HttpError::Denied(format!(
                "a Host header naming {host} would address the engine's own API; plugins may not call it"
            )));
        }
        Ok(())
    }
}

fn own_refusal(port: u16) -> String {
    format!("the engine's own API listens there (port {port}); plugins may not call it")
}

/// `localhost` and its subdomains, which resolvers answer with loopback addresses.
pub fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is an address of this machine: binding a socket to it succeeds.
fn is_local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// True for link-local networks and every known cloud metadata address, in any of the
/// IPv6 forms that embed a refused IPv4 address:
///
/// * IPv4: 169.254.0.0/16 (AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Hetzner,
///   Tencent), 100.100.100.200 (Alibaba), 168.63.129.16 (Azure's wire server),
///   192.0.0.192 (Oracle Cloud Classic);
/// * IPv6: fe80::/10, fd00:ec2::/64 (AWS: IMDS `::254`, EKS Pod Identity `::23`, the
///   Route 53 resolver and time service beside them), fd20:ce::/64 (GCP's `::254`);
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
            "fd00:ec2::/64",
            "fd20:ce::/64",
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
            ("fd00:ec2::253", true),
            ("fd00:ec3::254", false),
            ("64:ff9b::8.8.8.8", false),
            ("2002:808:808::", false),
            ("2001:db8::1", false),
            ("8.8.8.8", false),
        ];
        for (ip, expected) in cases {
            assert_eq!(is_metadata_or_link_local(ip.parse().unwrap()), expected, "{ip}");
        }
    }

    /// Every documented cloud metadata and workload-credential endpoint, by its vendor's
    /// name for it: each must be refused.
    #[test]
    fn every_documented_cloud_metadata_endpoint_is_refused() {
        let endpoints = [
            ("AWS IMDS (IPv4)", "169.254.169.254"),
            ("AWS IMDS (IPv6, Nitro)", "fd00:ec2::254"),
            ("AWS ECS task metadata and credentials", "169.254.170.2"),
            ("AWS EKS Pod Identity agent (IPv4)", "169.254.170.23"),
            ("AWS EKS Pod Identity agent (IPv6)", "fd00:ec2::23"),
            ("AWS Route 53 resolver (IPv6)", "fd00:ec2::253"),
            ("GCP metadata server (IPv4)", "169.254.169.254"),
            ("GCP metadata server (IPv6)", "fd20:ce::254"),
            ("Azure IMDS", "169.254.169.254"),
            ("Azure wire server", "168.63.129.16"),
            ("Alibaba Cloud metadata", "100.100.100.200"),
            ("Oracle Cloud IMDS", "169.254.169.254"),
            ("Oracle Cloud Classic metadata", "192.0.0.192"),
            ("DigitalOcean metadata", "169.254.169.254"),
            ("OpenStack metadata (IPv4)", "169.254.169.254"),
            ("OpenStack metadata (IPv6)", "fe80::a9fe:a9fe"),
            ("Hetzner Cloud metadata", "169.254.169.254"),
            ("Tencent Cloud metadata", "169.254.0.23"),
            ("IPv4-mapped AWS IMDS", "::ffff:169.254.169.254"),
        ];
        for (vendor, address) in endpoints {
            assert!(is_metadata_or_link_local(address.parse().unwrap()), "{vendor} at {address} must be refused");
            let url = Url::parse(&format!(
                "http://{}/",
                if address.contains(':') { format!("[{address}]") } else { address.to_string() }
            ))
            .unwrap();
            let refusal = rules(&["*"], false).check_url(&url).expect_err(vendor);
            assert!(matches!(&refusal, HttpError::Denied(m) if m.contains("metadata")), "{vendor}: {refusal}");
        }
    }

    fn rules(patterns: &[&str], allow_link_local: bool) -> EgressRules {
        let patterns = patterns.iter().map(|p| UrlPattern::parse(p).unwrap()).collect();
        EgressRules {
            allow_lists: vec![UrlAllowList { source: "the granted URL patterns".into(), patterns }],
            allow_link_local,
            ..Default::default()
        }
    }

    #[test]
    fn literal_metadata_url_is_refused_unless_granted() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        assert!(
            matches!(rules(&["*"], false).check_url(&url), Err(HttpError::Denied(m)) if m.contains("allow_link_local"))
        );
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
        assert!(matches!(
            EgressRules::default().check_url(&Url::parse("http://a/").unwrap()),
            Err(HttpError::Denied(_))
        ));
    }

    #[test]
    fn non_http_schemes_are_invalid() {
        assert!(matches!(
            rules(&["*"], false).check_url(&Url::parse("file:///etc/passwd").unwrap()),
            Err(HttpError::InvalidArgument(_))
        ));
    }

    #[test]
    fn the_engines_own_listen_address_is_refused_on_its_port_only() {
        let own = |listen: &str| EgressRules { own_sockets: vec![listen.parse().unwrap()], ..rules(&["*"], false) };
        let check =
            |rules: &EgressRules, url: &str| rules.check_url(&Url::parse(url).unwrap()).map_err(|e| e.to_string());
        let loopback = own("127.0.0.1:8099");
        for (url, refused) in [
            ("http://127.0.0.1:8099/api/1/resume", true),
            ("http://127.0.0.2:8099/", true),
            ("http://[::1]:8099/", true),
            ("http://[::ffff:127.0.0.1]:8099/", true),
            ("http://0.0.0.0:8099/", true),
            ("http://localhost:8099/", true),
            ("http://api.localhost.:8099/", true),
            ("http://127.0.0.1:8098/", false),
            ("http://localhost:8098/", false),
            ("http://10.9.9.9:8099/", false),
            ("http://svc.example:8099/", false),
        ] {
            let got = check(&loopback, url);
            assert_eq!(got.is_err(), refused, "{url}: {got:?}");
            if let Err(message) = got {
                assert!(message.contains("engine's own API"), "{message}");
            }
        }
        assert!(check(&own("0.0.0.0:8099"), "http://127.0.0.1:8099/").is_err());
    }

    #[test]
    fn operator_deny_patterns_and_networks_are_refused_naming_the_fence() {
        let fenced = EgressRules {
            deny_lists: vec![UrlAllowList {
                source: "the operator's [http] fence (deny)".into(),
                patterns: vec![UrlPattern::parse("https://*.prod.example.com").unwrap()],
            }],
            denied_networks: vec![DeniedNetwork {
                network: "10.0.0.0/8".parse().unwrap(),
                source: "the operator's [http] fence (deny_networks)".into(),
            }],
            ..rules(&["*"], false)
        };
        let err = fenced.check_url(&Url::parse("https://db.prod.example.com/").unwrap()).unwrap_err().to_string();
        assert!(err.contains("[http] fence"), "{err}");
        let err = fenced.check_url(&Url::parse("http://10.1.2.3/").unwrap()).unwrap_err().to_string();
        assert!(err.contains("[http] fence (deny_networks)"), "{err}");
        assert!(fenced.check_addr("::ffff:10.1.2.3".parse().unwrap()).is_err(), "embedded IPv4 forms are denied too");
        assert!(fenced.check_addr("64:ff9b::10.1.2.3".parse().unwrap()).is_err());
        assert!(fenced.check_addr("192.168.1.1".parse().unwrap()).is_ok());
        assert!(fenced.check_url(&Url::parse("https://staging.example.com/").unwrap()).is_ok());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            /// Any URL text a plugin may send is checked without a panic.
            #[test]
            fn any_url_is_checked_or_refused(text in "(https?|ftp|file|HTTP)://[ -~]{0,80}|\\PC{0,80}") {
                if let Ok(url) = Url::parse(&text) {
                    let _ = rules(&["*"], false).check_url(&url);
                    let _ = rules(&["https://api.example.com/*"], false).check_url(&url);
                }
            }

            /// A link-local (metadata) IPv4 address is refused in every IPv6 spelling that
            /// carries it.
            #[test]
            fn link_local_is_refused_in_every_spelling(c in any::<u8>(), d in any::<u8>()) {
                let v4 = std::net::Ipv4Addr::new(169, 254, c, d);
                let [a, b, c, d] = v4.octets();
                let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
                for spelled in [
                    v4.to_string(),
                    format!("::ffff:{v4}"),
                    format!("::{v4}"),
                    format!("64:ff9b::{v4}"),
                    format!("64:ff9b:1::{hi:x}:{lo:x}"),
                    format!("2002:{hi:x}:{lo:x}::1"),
                    format!("2001:0:{hi:x}:{lo:x}::1"),
                    format!("2001:db8::5efe:{hi:x}:{lo:x}"),
                ] {
                    let ip: IpAddr = spelled.parse().unwrap();
                    prop_assert!(is_metadata_or_link_local(ip), "{} must be refused", spelled);
                }
            }

            /// Every address of AWS's fd00:ec2::/64 is refused.
            #[test]
            fn the_aws_metadata_network_is_refused_whole(tail in any::<u64>()) {
                let ip = std::net::Ipv6Addr::from((0xfd00_0ec2_0000_0000u128 << 64) | u128::from(tail));
                prop_assert!(is_metadata_or_link_local(IpAddr::V6(ip)));
            }
        }
    }
}
