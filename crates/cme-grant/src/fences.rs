//! Fences: the operator's outer limits, intersected with every grant.
//!
//! A grant is per plugin version and may be written by anyone holding the admin role; a
//! fence is engine configuration (`[ec2]`, `[ssh]`, `[http]` in `cme.toml`) and bounds
//! every run, built-in or uploaded, whatever its grant says. A call is admitted only when
//! it fits the plugin's declaration, its grant and every fence; a refusal by a fence
//! names the fence (`the operator's [http] fence ...`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{GrantError, UrlPattern};

/// All fences. By default: EC2 in any region, no required tags, one termination per run;
/// one SSH session per run; HTTP to any URL the grant allows, nothing denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fences {
    pub ec2: Ec2Fence,
    pub ssh: SshFence,
    pub http: HttpFence,
    pub probes: ProbeFence,
}

/// `[probes]`: probes observe. By default a probe's HTTP requests may only `GET` or
/// `HEAD`; `allow_methods` names others the operator lets probes use (a health endpoint
/// that wants `POST`). Under a dry run only `GET` and `HEAD` are sent, whatever is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeFence {
    #[serde(default)]
    pub allow_methods: Vec<String>,
}

/// The methods that only observe: what every probe may send, dry run or not.
pub const OBSERVING_METHODS: [&str; 2] = ["GET", "HEAD"];

impl ProbeFence {
    /// Whether a probe may send `method` at all. Methods are compared as sent (HTTP
    /// methods are case-sensitive: `get` is not `GET`); the configured ones in uppercase.
    pub fn allows(&self, method: &str) -> bool {
        is_observing(method) || self.allow_methods.iter().any(|m| m.to_ascii_uppercase() == method)
    }
}

/// Whether `method`, as sent, only observes.
pub fn is_observing(method: &str) -> bool {
    OBSERVING_METHODS.contains(&method)
}

/// `[ec2]`: regions (empty: any), tags every touched instance must carry besides the
/// grant's, and the terminations one run may make whatever its grant allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Fence {
    pub regions: Vec<String>,
    pub required_tags: BTreeMap<String, String>,
    pub max_terminations_per_run: u32,
}

impl Default for Ec2Fence {
    fn default() -> Self {
        Ec2Fence { regions: Vec::new(), required_tags: BTreeMap::new(), max_terminations_per_run: 1 }
    }
}

/// `[ssh]`: distinct targets one run may open sessions to, whatever its grant allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshFence {
    pub max_sessions_per_run: u32,
}

impl Default for SshFence {
    fn default() -> Self {
        SshFence { max_sessions_per_run: 1 }
    }
}

/// `[http]`: `allow` URL patterns (empty: whatever the grant allows), `deny` URL
/// patterns, and `deny_networks` (CIDRs or addresses) no request may reach, checked on the
/// URL and again on every address a name resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFence {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub deny_networks: Vec<String>,
}

impl Fences {
    /// Checks that every pattern and network parses, naming the fence that does not.
    pub fn validate(&self) -> Result<(), GrantError> {
        for pattern in self.http.allow.iter().chain(&self.http.deny) {
            UrlPattern::parse(pattern).map_err(|e| GrantError::Fence(format!("[http] {e}")))?;
        }
        self.http.networks()?;
        if let Some(bad) =
            self.probes.allow_methods.iter().find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(GrantError::Fence(format!("[probes] allow_methods: {bad:?} is not an HTTP method")));
        }
        Ok(())
    }

    /// Whether `region` is inside the `[ec2]` fence; the error names the fence.
    pub fn check_ec2_region(&self, region: &str) -> Result<(), GrantError> {
        if self.ec2.regions.is_empty() || self.ec2.regions.iter().any(|r| r == region) {
            return Ok(());
        }
        Err(GrantError::OutsideFence(format!(
            "region {region} is outside the operator's [ec2] fence (regions {:?})",
            self.ec2.regions
        )))
    }

    /// The tags an instance must carry: the grant's and the fence's. Refused when the two
    /// ask for different values of one tag (no instance could satisfy both).
    pub fn required_tags(&self, granted: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, GrantError> {
        let mut tags = granted.clone();
        for (key, value) in &self.ec2.required_tags {
            match tags.get(key) {
                Some(other) if other != value => {
                    return Err(GrantError::OutsideFence(format!(
                        "the grant requires tag {key}={other} but the operator's [ec2] fence requires {key}={value}"
                    )));
                }
                _ => {
                    tags.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(tags)
    }

    /// The smaller of a grant's per-run budget and a fence's, with who set it.
    pub fn budget(granted: u32, fenced: u32, fence: &str) -> (u32, String) {
        if fenced < granted {
            (fenced, format!("the operator's {fence} fence"))
        } else {
            (granted, "the grant".to_string())
        }
    }
}

impl HttpFence {
    /// The denied networks, parsed.
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, GrantError> {
        self.deny_networks
            .iter()
            .map(|n| crate::parse_network(n).map_err(|e| GrantError::Fence(format!("[http] deny_networks: {e}"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_add_up_and_conflicts_are_refused_naming_the_fence() {
        let fences = Fences {
            ec2: Ec2Fence { required_tags: [("Chaos".into(), "true".into())].into(), ..Default::default() },
            ..Default::default()
        };
        let granted: BTreeMap<String, String> = [("Team".into(), "a".into())].into();
        let both = fences.required_tags(&granted).unwrap();
        assert_eq!(both.len(), 2);
        let conflict: BTreeMap<String, String> = [("Chaos".into(), "false".into())].into();
        assert!(fences.required_tags(&conflict).unwrap_err().to_string().contains("[ec2] fence"));
    }

    #[test]
    fn regions_and_budgets_name_who_limits() {
        let fences =
            Fences { ec2: Ec2Fence { regions: vec!["eu-west-1".into()], ..Default::default() }, ..Default::default() };
        assert!(fences.check_ec2_region("eu-west-1").is_ok());
        assert!(fences.check_ec2_region("us-east-1").unwrap_err().to_string().contains("[ec2] fence"));
        assert!(Fences::default().check_ec2_region("anywhere").is_ok());
        assert_eq!(Fences::budget(5, 1, "[ec2]"), (1, "the operator's [ec2] fence".to_string()));
        assert_eq!(Fences::budget(1, 5, "[ec2]"), (1, "the grant".to_string()));
    }

    #[test]
    fn invalid_fence_patterns_and_networks_are_named() {
        let bad = Fences { http: HttpFence { deny: vec!["nope".into()], ..Default::default() }, ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("[http]"));
        let bad = Fences {
            http: HttpFence { deny_networks: vec!["10.0.0.0/40".into()], ..Default::default() },
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("deny_networks"));
    }
}
