//! Grants: what an operator allows a plugin to do. A host call must fit both the
//! plugin's declaration (from `describe()`) and the grant. Pure code, no I/O: every rule
//! is in the table tests below.

use std::collections::BTreeMap;

use cme_cloud::http::{DeniedNetwork, EgressRules, UrlAllowList, UrlPattern};
pub use cme_grant::{Ec2Grant, Fences, Grant, GrantError, HttpGrant, SshGrant};

use crate::info::Capability;

/// One host call, as the grant check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityUse<'a> {
    Http,
    Ec2Describe {
        region: &'a str,
    },
    Ec2Terminate {
        region: &'a str,
    },
    Ssh,
    /// Listing an inventory (it takes the `ssh` capability and a grant naming it).
    Inventory {
        name: &'a str,
    },
    Scripts,
}

/// Why a call was refused: the text names the missing declaration or grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

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
            // A built-in may list any inventory: which hosts a plan aims at is the plan's args.
            Capability::Ssh => {
                grant.ssh = Some(SshGrant { max_sessions: 1, hosts: Vec::new(), inventories: vec!["*".into()] })
            }
            Capability::Scripts => grant.scripts = true,
        }
    }
    grant
}

/// Checks one call against the declaration, the grant and the operator's fences.
pub fn check(declared: &[Capability], grant: &Grant, fences: &Fences, call: CapabilityUse<'_>) -> Result<(), Denial> {
    let not_declared =
        |what: &str| Denial(format!("{what} is not among the capabilities the plugin declared in describe()"));
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
                return Err(Denial(format!(
                    "{what} in region {region} is not granted (granted regions: {:?})",
                    ec2.regions
                )));
            }
            fences.check_ec2_region(region).map_err(|reason| Denial(format!("{what}: {reason}")))?;
        }
        CapabilityUse::Ssh => {
            if !declared.iter().any(|c| matches!(c, Capability::Ssh)) {
                return Err(not_declared("ssh"));
            }
            if grant.ssh.is_none() {
                return Err(not_granted("ssh"));
            }
        }
        CapabilityUse::Inventory { name } => {
            if !declared.iter().any(|c| matches!(c, Capability::Ssh)) {
                return Err(not_declared("ssh (inventories are reached over ssh)"));
            }
            let Some(ssh) = &grant.ssh else { return Err(not_granted("ssh")) };
            if !ssh.allows_inventory(name) {
                return Err(Denial(format!(
                    "inventory {name} is not granted to this plugin (granted inventories: {:?})",
                    ssh.inventories
                )));
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
        let http_grant =
            Grant { http: Some(HttpGrant { urls: vec!["*".into()], ..Default::default() }), ..Grant::default() };
        type Case = (&'static str, Vec<Capability>, Grant, CapabilityUse<'static>, Result<(), &'static str>);
        let cases: Vec<Case> = vec![
            ("http declared and granted", http(), http_grant.clone(), CapabilityUse::Http, Ok(())),
            (
                "http granted, not declared",
                vec![],
                http_grant.clone(),
                CapabilityUse::Http,
                Err("not among the capabilities"),
            ),
            ("http declared, not granted", http(), Grant::default(), CapabilityUse::Http, Err("http is not granted")),
            (
                "describe in declared and granted region",
                describe_eu(),
                ec2(&["eu-west-1"], false),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Ok(()),
            ),
            (
                "describe in an undeclared region",
                describe_eu(),
                ec2(&[], false),
                CapabilityUse::Ec2Describe { region: "us-east-1" },
                Err("region us-east-1 is not among"),
            ),
            (
                "describe in an ungranted region",
                describe_eu(),
                ec2(&["us-east-1"], false),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Err("granted regions"),
            ),
            (
                "describe with empty region lists means any",
                vec![Capability::Ec2Describe { regions: vec![] }],
                ec2(&[], false),
                CapabilityUse::Ec2Describe { region: "ap-south-1" },
                Ok(()),
            ),
            (
                "terminate declared but grant is describe-only",
                terminate_any(),
                ec2(&[], false),
                CapabilityUse::Ec2Terminate { region: "us-east-1" },
                Err("terminate-instances is not granted"),
            ),
            (
                "terminate declared and granted",
                terminate_any(),
                ec2(&[], true),
                CapabilityUse::Ec2Terminate { region: "us-east-1" },
                Ok(()),
            ),
            (
                "a terminate declaration covers describe",
                terminate_any(),
                ec2(&[], true),
                CapabilityUse::Ec2Describe { region: "us-east-1" },
                Ok(()),
            ),
            (
                "a describe declaration does not cover terminate",
                describe_eu(),
                ec2(&[], true),
                CapabilityUse::Ec2Terminate { region: "eu-west-1" },
                Err("not among"),
            ),
            (
                "ec2 declared, not granted",
                describe_eu(),
                Grant::default(),
                CapabilityUse::Ec2Describe { region: "eu-west-1" },
                Err("is not granted"),
            ),
            (
                "ssh declared, not granted",
                vec![Capability::Ssh],
                Grant::default(),
                CapabilityUse::Ssh,
                Err("ssh is not granted"),
            ),
            (
                "ssh granted, not declared",
                vec![],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }),
                    ..Grant::default()
                },
                CapabilityUse::Ssh,
                Err("not among"),
            ),
            (
                "ssh declared and granted",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }),
                    ..Grant::default()
                },
                CapabilityUse::Ssh,
                Ok(()),
            ),
            (
                "inventory not named by the grant",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["db".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Err("inventory web is not granted"),
            ),
            (
                "inventory named by the grant",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["web".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Ok(()),
            ),
            (
                "every inventory granted",
                vec![Capability::Ssh],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["*".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Ok(()),
            ),
            (
                "inventory without ssh declared",
                vec![],
                Grant {
                    ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec!["*".into()] }),
                    ..Grant::default()
                },
                CapabilityUse::Inventory { name: "web" },
                Err("not among"),
            ),
            (
                "scripts declared, not granted",
                vec![Capability::Scripts],
                Grant::default(),
                CapabilityUse::Scripts,
                Err("scripts is not granted"),
            ),
            (
                "scripts declared and granted",
                vec![Capability::Scripts],
                Grant { scripts: true, ..Grant::default() },
                CapabilityUse::Scripts,
                Ok(()),
            ),
        ];
        for (name, declared, grant, call, expected) in cases {
            let got = check(&declared, &grant, &Fences::default(), call);
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
        let rules = http_rules(&declared, &grant, &Fences::default(), &[]).unwrap();
        let check = |url: &str| rules.check_url(&url::Url::parse(url).unwrap());
        assert!(check("http://svc.internal:8080/api/kill").is_ok());
        let outside_grant = check("http://other.internal:8080/api/kill").unwrap_err().to_string();
        assert!(outside_grant.contains("granted URL patterns"), "{outside_grant}");
        let outside_declaration = check("http://svc.example:8080/api/kill").unwrap_err().to_string();
        assert!(outside_declaration.contains("declared URL patterns"), "{outside_declaration}");
        assert!(http_rules(&declared, &Grant::default(), &Fences::default(), &[]).is_none());
    }

    #[test]
    fn as_declared_grants_what_is_declared_and_no_link_local() {
        let declared = vec![
            Capability::Http { urls: vec!["*".into()] },
            Capability::Ec2Terminate { regions: vec!["eu-west-1".into()] },
            Capability::Scripts,
        ];
        let grant = as_declared(&declared);
        assert_eq!(grant.http.as_ref().unwrap().urls, vec!["*".to_string()]);
        assert!(!grant.http.as_ref().unwrap().allow_link_local);
        let ec2 = grant.ec2.as_ref().unwrap();
        assert!(ec2.terminate);
        assert_eq!(ec2.max_terminations_per_run, 1);
        assert_eq!(ec2.regions, vec!["eu-west-1".to_string()]);
        assert!(grant.scripts);
        assert!(grant.ssh.is_none());
        assert!(check(&declared, &grant, &Fences::default(), CapabilityUse::Ssh).is_err());
    }
}
