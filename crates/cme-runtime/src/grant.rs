//! Grants: what an operator allows a plugin to do. A host call must fit both the
//! plugin's declaration (from `describe()`) and the grant. Pure code, no I/O: every rule
//! is in the table tests below.

use std::collections::BTreeMap;

use cme_cloud::http::{EgressRules, UrlAllowList, UrlPattern};
use serde::{Deserialize, Serialize};

use crate::info::Capability;

/// An operator's grant for one plugin version. Absent sections grant nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2: Option<Ec2Grant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshGrant>,
    #[serde(default)]
    pub scripts: bool,
}

/// HTTP: URL patterns (see [`UrlPattern`]) and whether link-local / cloud metadata
/// addresses may be reached (default: no). `max_requests` caps requests per run
/// (default: only the runtime's host-call cap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    pub urls: Vec<String>,
    #[serde(default)]
    pub allow_link_local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

/// EC2: regions (empty: any), tags every touched instance must carry, whether
/// terminating is allowed, and how many instances one run may terminate (default 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Grant {
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub required_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub terminate: bool,
    #[serde(default = "one")]
    pub max_terminations_per_run: u32,
}

/// SSH: sessions one run may open (default 1), and the networks it may reach besides the
/// instances the same run described (`hosts`: CIDRs such as `10.1.0.0/16` or single
/// addresses; default none, so only described instances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshGrant {
    #[serde(default = "one")]
    pub max_sessions: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl SshGrant {
    /// Whether `address` lies in one of the granted networks.
    pub fn allows_host(&self, address: &str) -> bool {
        let Ok(ip) = address.parse::<std::net::IpAddr>() else { return false };
        self.hosts.iter().filter_map(|h| parse_cidr(h).ok()).any(|(net, bits)| in_network(ip, net, bits))
    }
}

/// `a.b.c.d/n`, `x::y/n` or a single address (all bits).
fn parse_cidr(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (address, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = address.parse().map_err(|_| format!("ssh host {text:?} is not an IP address or CIDR"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("ssh host {text:?}: the prefix must be 0-{max}"))?,
    };
    Ok((ip, bits))
}

fn in_network(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    let mask = |width: u32| if bits == 0 { 0u128 } else { u128::MAX << (width - u32::from(bits)) };
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => (u128::from(u32::from(a)) ^ u128::from(u32::from(n))) & mask(32) & 0xffff_ffff == 0,
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => (u128::from(a) ^ u128::from(n)) & mask(128) == 0,
        _ => false,
    }
}

fn one() -> u32 {
    1
}

/// One host call, as the grant check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityUse<'a> {
    Http,
    Ec2Describe { region: &'a str },
    Ec2Terminate { region: &'a str },
    Ssh,
    Scripts,
}

/// Why a call was refused: the text names the missing declaration or grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

impl Grant {
    /// The grant that allows exactly what a plugin declares (never link-local addresses,
    /// one termination and one SSH session per run): what built-in plugins get.
    pub fn as_declared(declared: &[Capability]) -> Grant {
        let mut grant = Grant::default();
        for capability in declared {
            match capability {
                Capability::Http { urls } => {
                    grant.http.get_or_insert_with(Default::default).urls.extend(urls.iter().cloned());
                }
                Capability::Ec2Describe { regions } | Capability::Ec2Terminate { regions } => {
                    let ec2 = grant.ec2.get_or_insert_with(|| Ec2Grant {
                        regions: Vec::new(),
                        required_tags: BTreeMap::new(),
                        terminate: false,
                        max_terminations_per_run: 1,
                    });
                    ec2.regions.extend(regions.iter().cloned());
                    ec2.terminate |= matches!(capability, Capability::Ec2Terminate { .. });
                }
                Capability::Ssh => grant.ssh = Some(SshGrant { max_sessions: 1, hosts: Vec::new() }),
                Capability::Scripts => grant.scripts = true,
            }
        }
        grant
    }

    /// Checks that the grant's URL patterns and SSH networks parse.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(http) = &self.http {
            for url in &http.urls {
                UrlPattern::parse(url).map_err(|e| e.to_string())?;
            }
        }
        if let Some(ssh) = &self.ssh {
            for host in &ssh.hosts {
                parse_cidr(host)?;
            }
        }
        Ok(())
    }
}

/// Checks one call against the declaration and the grant.
pub fn check(declared: &[Capability], grant: &Grant, call: CapabilityUse<'_>) -> Result<(), Denial> {
    let not_declared = |what: &str| Denial(format!("{what} is not among the capabilities the plugin declared in describe()"));
    let not_granted = |what: &str| Denial(format!("{what} is not granted to this plugin"));
    let region_in = |regions: &[String], region: &str| regions.is_empty() || regions.iter().any(|r| r == region);
    match call {
        CapabilityUse::Http => {
            if !declared.iter().any(|c| matches!(c, Capability::Http { .. })) {
                return Err(not_declared("http"));
            }
            if grant.http.is_none() {
                return Err(not_granted("http"));
            }
        }
        CapabilityUse::Ec2Describe { region } | CapabilityUse::Ec2Terminate { region } => {
            let terminate = matches!(call, CapabilityUse::Ec2Terminate { .. });
            let what = if terminate { "ec2 terminate-instances" } else { "ec2 describe-instances" };
            let declared_here = declared.iter().any(|c| match c {
                Capability::Ec2Describe { regions } if !terminate => region_in(regions, region),
                Capability::Ec2Terminate { regions } => region_in(regions, region),
                _ => false,
            });
            if !declared_here {
                return Err(not_declared(&format!("{what} in region {region}")));
            }
            let Some(ec2) = &grant.ec2 else { return Err(not_granted(what)) };
            if terminate && !ec2.terminate {
                return Err(not_granted(what));
            }
            if !region_in(&ec2.regions, region) {
                return Err(Denial(format!("{what} in region {region} is not granted (granted regions: {:?})", ec2.regions)));
            }
        }
        CapabilityUse::Ssh => {
            if !declared.iter().any(|c| matches!(c, Capability::Ssh)) {
                return Err(not_declared("ssh"));
            }
            if grant.ssh.is_none() {
                return Err(not_granted("ssh"));
            }
        }
        CapabilityUse::Scripts => {
            if !declared.iter().any(|c| matches!(c, Capability::Scripts)) {
                return Err(not_declared("scripts"));
            }
            if !grant.scripts {
                return Err(not_granted("scripts"));
            }
        }
    }
    Ok(())
}

/// The egress rules for HTTP: a URL must match a declared pattern AND a granted one;
/// link-local addresses only when the grant says so. None when HTTP is not allowed.
pub fn http_rules(declared: &[Capability], grant: &Grant) -> Option<EgressRules> {
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
    Some(EgressRules {
        allow_lists: vec![
            UrlAllowList { source: "the plugin's declared URL patterns".into(), patterns: parse(&declared_urls) },
            UrlAllowList { source: "the granted URL patterns".into(), patterns: parse(&http.urls) },
        ],
        allow_link_local: http.allow_link_local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec2(regions: &[&str], terminate: bool) -> Grant {
        Grant {
            ec2: Some(Ec2Grant {
                regions: regions.iter().map(|r| r.to_string()).collect(),
                required_tags: BTreeMap::new(),
                terminate,
                max_terminations_per_run: 1,
            }),
            ..Grant::default()
        }
    }

    #[test]
    fn calls_need_declaration_and_grant() {
        let http = || vec![Capability::Http { urls: vec!["*".into()] }];
        let describe_eu = || vec![Capability::Ec2Describe { regions: vec!["eu-west-1".into()] }];
        let terminate_any = || vec![Capability::Ec2Terminate { regions: vec![] }];
        let http_grant = Grant { http: Some(HttpGrant { urls: vec!["*".into()], ..Default::default() }), ..Grant::default() };
        let cases: Vec<(&str, Vec<Capability>, Grant, CapabilityUse, Result<(), &str>)> = vec![
            ("http declared and granted", http(), http_grant.clone(), CapabilityUse::Http, Ok(())),
            ("http granted, not declared", vec![], http_grant.clone(), CapabilityUse::Http, Err("not among the capabilities")),
            ("http declared, not granted", http(), Grant::default(), CapabilityUse::Http, Err("http is not granted")),
            ("describe in declared and granted region", describe_eu(), ec2(&["eu-west-1"], false), CapabilityUse::Ec2Describe { region: "eu-west-1" }, Ok(())),
            ("describe in an undeclared region", describe_eu(), ec2(&[], false), CapabilityUse::Ec2Describe { region: "us-east-1" }, Err("region us-east-1 is not among")),
            ("describe in an ungranted region", describe_eu(), ec2(&["us-east-1"], false), CapabilityUse::Ec2Describe { region: "eu-west-1" }, Err("granted regions")),
            ("describe with empty region lists means any", vec![Capability::Ec2Describe { regions: vec![] }], ec2(&[], false), CapabilityUse::Ec2Describe { region: "ap-south-1" }, Ok(())),
            ("terminate declared but grant is describe-only", terminate_any(), ec2(&[], false), CapabilityUse::Ec2Terminate { region: "us-east-1" }, Err("terminate-instances is not granted")),
            ("terminate declared and granted", terminate_any(), ec2(&[], true), CapabilityUse::Ec2Terminate { region: "us-east-1" }, Ok(())),
            ("a terminate declaration covers describe", terminate_any(), ec2(&[], true), CapabilityUse::Ec2Describe { region: "us-east-1" }, Ok(())),
            ("a describe declaration does not cover terminate", describe_eu(), ec2(&[], true), CapabilityUse::Ec2Terminate { region: "eu-west-1" }, Err("not among")),
            ("ec2 declared, not granted", describe_eu(), Grant::default(), CapabilityUse::Ec2Describe { region: "eu-west-1" }, Err("is not granted")),
            ("ssh declared, not granted", vec![Capability::Ssh], Grant::default(), CapabilityUse::Ssh, Err("ssh is not granted")),
            ("ssh granted, not declared", vec![], Grant { ssh: Some(SshGrant { max_sessions: 1, hosts: vec![] }), ..Grant::default() }, CapabilityUse::Ssh, Err("not among")),
            ("ssh declared and granted", vec![Capability::Ssh], Grant { ssh: Some(SshGrant { max_sessions: 1, hosts: vec![] }), ..Grant::default() }, CapabilityUse::Ssh, Ok(())),
            ("scripts declared, not granted", vec![Capability::Scripts], Grant::default(), CapabilityUse::Scripts, Err("scripts is not granted")),
            ("scripts declared and granted", vec![Capability::Scripts], Grant { scripts: true, ..Grant::default() }, CapabilityUse::Scripts, Ok(())),
        ];
        for (name, declared, grant, call, expected) in cases {
            let got = check(&declared, &grant, call);
            match (expected, got) {
                (Ok(()), Ok(())) => {}
                (Err(fragment), Err(Denial(message))) => {
                    assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}")
                }
                (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn http_urls_must_match_declaration_and_grant() {
        let declared = vec![Capability::Http { urls: vec!["http://*.internal:*".into()] }];
        let grant = Grant {
            http: Some(HttpGrant { urls: vec!["http://svc.internal:8080/api/*".into()], ..Default::default() }),
            ..Grant::default()
        };
        let rules = http_rules(&declared, &grant).unwrap();
        let check = |url: &str| rules.check_url(&url::Url::parse(url).unwrap());
        assert!(check("http://svc.internal:8080/api/kill").is_ok());
        let outside_grant = check("http://other.internal:8080/api/kill").unwrap_err().to_string();
        assert!(outside_grant.contains("granted URL patterns"), "{outside_grant}");
        let outside_declaration = check("http://svc.example:8080/api/kill").unwrap_err().to_string();
        assert!(outside_declaration.contains("declared URL patterns"), "{outside_declaration}");
        assert!(http_rules(&declared, &Grant::default()).is_none());
    }

    #[test]
    fn as_declared_grants_what_is_declared_and_no_link_local() {
        let declared = vec![
            Capability::Http { urls: vec!["*".into()] },
            Capability::Ec2Terminate { regions: vec!["eu-west-1".into()] },
            Capability::Scripts,
        ];
        let grant = Grant::as_declared(&declared);
        assert_eq!(grant.http.as_ref().unwrap().urls, vec!["*".to_string()]);
        assert!(!grant.http.as_ref().unwrap().allow_link_local);
        let ec2 = grant.ec2.as_ref().unwrap();
        assert!(ec2.terminate);
        assert_eq!(ec2.max_terminations_per_run, 1);
        assert_eq!(ec2.regions, vec!["eu-west-1".to_string()]);
        assert!(grant.scripts);
        assert!(grant.ssh.is_none());
        assert!(check(&declared, &grant, CapabilityUse::Ssh).is_err());
    }

    #[test]
    fn ssh_networks_contain_their_addresses_only() {
        let grant = SshGrant { max_sessions: 1, hosts: vec!["10.1.0.0/16".into(), "192.168.5.7".into(), "fd00::/8".into()] };
        for (address, allowed) in [
            ("10.1.2.3", true),
            ("10.2.0.1", false),
            ("192.168.5.7", true),
            ("192.168.5.8", false),
            ("fd12::1", true),
            ("fe80::1", false),
            ("not-an-ip", false),
        ] {
            assert_eq!(grant.allows_host(address), allowed, "{address}");
        }
        let bad: Grant = serde_json::from_str(r#"{"ssh":{"hosts":["10.0.0.0/33"]}}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("prefix"));
        let everything = SshGrant { max_sessions: 1, hosts: vec!["0.0.0.0/0".into()] };
        assert!(everything.allows_host("8.8.8.8"));
    }

    #[test]
    fn grants_parse_from_json_and_reject_unknown_fields() {
        let grant: Grant = serde_json::from_str(r#"{"http":{"urls":["https://api.example.com"]},"scripts":true}"#).unwrap();
        assert!(grant.validate().is_ok());
        assert!(serde_json::from_str::<Grant>(r#"{"htpp":{}}"#).is_err());
        let bad: Grant = serde_json::from_str(r#"{"http":{"urls":["nope"]}}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("invalid URL pattern"));
    }
}
