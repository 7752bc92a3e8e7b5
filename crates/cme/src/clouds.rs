//! `[[clouds]]`: the clouds the `compute` capability reaches, each a provider, a scope,
//! a credential and the operator's fence. Everything is checked at start, with an error
//! naming the cloud and the setting; a cloud named `aws` is implied by `[ec2]` when the
//! file has none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cme_cloud::compute::rest::Rest;
use cme_cloud::compute::{Cloud, CloudFence, ProviderKind};
use cme_cloud::http::HttpCredential;
use serde::Deserialize;

use crate::config::{CredentialKind, Ec2File, HttpCredentialFile};

/// How long one request to a provider's API may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest an operation may be given to finish.
const MAX_OPERATION_TIMEOUT_SECONDS: u64 = 3600;

/// One `[[clouds]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFile {
    pub name: String,
    pub provider: String,
    /// aws, digitalocean: the regions nodes are listed in.
    #[serde(default)]
    pub regions: Vec<String>,
    /// gce: the project and its zones.
    pub project: Option<String>,
    #[serde(default)]
    pub zones: Vec<String>,
    /// azure: the subscription and its resource groups.
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub resource_groups: Vec<String>,
    /// openstack: the region of the catalog's endpoints and their interface (default public).
    pub region: Option<String>,
    pub interface: Option<String>,
    /// The `[[http.credentials]]` entry the provider's API is called with (aws: none, the
    /// standard AWS chain).
    pub credential: Option<String>,
    /// Tags every node listed or touched must carry.
    #[serde(default)]
    pub required_tags: BTreeMap<String, String>,
    /// Nodes one run may stop, reboot or destroy (default 1).
    pub max_nodes_per_run: Option<u32>,
    /// How long an operation may take to finish (default 300 s).
    pub operation_timeout_seconds: Option<u64>,
    /// PEM certificates trusted for the provider's endpoints, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The provider's API (openstack: Nova's, instead of the Keystone catalog's);
    /// `http://` only on loopback.
    pub endpoint: Option<String>,
}

/// The clouds of `files`, plus the `aws` one `[ec2]` implies when none is named so.
pub fn clouds(
    files: &[CloudFile],
    ec2_file: &Ec2File,
    ec2: &Arc<cme_cloud::ec2::Ec2>,
    credentials: &[HttpCredentialFile],
    built: &[Arc<HttpCredential>],
) -> anyhow::Result<Vec<Cloud>> {
    let mut clouds = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if files[..i].iter().any(|other| other.name == file.name) {
            bail!("[[clouds]]: the name {:?} is used twice", file.name);
        }
        let cloud =
            build(file, ec2_file, ec2, credentials, built).with_context(|| format!("[[clouds]] {:?}", file.name))?;
        clouds.push(cloud);
    }
    if !files.iter().any(|file| file.name == "aws") {
        clouds.push(implied_aws(ec2_file, ec2)?);
    }
    Ok(clouds)
}

/// `aws`, as `[ec2]` says: its regions (or the AWS configuration's own), its required
/// tags, and its terminations per run as the nodes per run.
fn implied_aws(ec2_file: &Ec2File, ec2: &Arc<cme_cloud::ec2::Ec2>) -> anyhow::Result<Cloud> {
    let mut regions = ec2_file.regions.clone();
    if regions.is_empty() {
        regions.extend(ec2.default_region());
    }
    let fence = CloudFence {
        required_tags: ec2_file.required_tags.clone(),
        max_nodes_per_run: ec2_file.max_terminations_per_run.unwrap_or(1).max(1),
        ..CloudFence::default()
    };
    // No region anywhere: the cloud exists and says so when used.
    Ok(Cloud::new("aws", Arc::new(cme_cloud::compute::aws::AwsCompute::new(ec2.clone(), regions)), fence))
}

fn build(
    file: &CloudFile,
    ec2_file: &Ec2File,
    ec2: &Arc<cme_cloud::ec2::Ec2>,
    credentials: &[HttpCredentialFile],
    built: &[Arc<HttpCredential>],
) -> anyhow::Result<Cloud> {
    if file.name.is_empty()
        || !file.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        bail!("name: lowercase letters, digits, - and _ only");
    }
    let provider: ProviderKind = file.provider.parse().map_err(|e| anyhow::anyhow!("provider: {e}"))?;
    check_scope(file, provider)?;
    for (key, value) in &file.required_tags {
        check_tag(provider, key, value).with_context(|| format!("required_tags {key:?}"))?;
    }
    if let Some(endpoint) = &file.endpoint {
        check_endpoint(endpoint)?;
    }
    let ca_pem = match &file.ca_file {
        Some(ca_file) => {
            let pem = std::fs::read(ca_file).with_context(|| format!("ca_file: reading {}", ca_file.display()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                bail!("ca_file: {} holds no PEM certificate", ca_file.display());
            }
            Some(pem)
        }
        None => None,
    };
    let fence = CloudFence {
        required_tags: file.required_tags.clone(),
        max_nodes_per_run: match file.max_nodes_per_run {
            Some(0) => bail!("max_nodes_per_run: at least 1"),
            Some(n) => n,
            None => 1,
        },
        operation_timeout: match file.operation_timeout_seconds {
            Some(s) if s == 0 || s > MAX_OPERATION_TIMEOUT_SECONDS => {
                bail!("operation_timeout_seconds: from 1 to {MAX_OPERATION_TIMEOUT_SECONDS}")
            }
            Some(s) => Duration::from_secs(s),
            None => CloudFence::default().operation_timeout,
        },
    };
    let credential = check_credential(file, provider, credentials)?;
    match provider {
        ProviderKind::Aws => {
            if file.endpoint.is_some() || file.ca_file.is_some() {
                bail!("an aws cloud uses the [ec2] backend: set its endpoint_url there");
            }
            if let Some(outside) =
                file.regions.iter().find(|r| !ec2_file.regions.is_empty() && !ec2_file.regions.contains(r))
            {
                bail!("regions: {outside:?} is outside [ec2] regions {:?}", ec2_file.regions);
            }
            let provider = cme_cloud::compute::aws::AwsCompute::new(ec2.clone(), file.regions.clone());
            Ok(Cloud::new(&file.name, Arc::new(provider), fence))
        }
        ProviderKind::DigitalOcean => {
            let credential = built_credential(credential, built)?;
            let endpoint = file.endpoint.as_deref().unwrap_or(cme_cloud::compute::digitalocean::DEFAULT_ENDPOINT);
            check_covered(&credential, endpoint)?;
            let rest = Rest::new(ProviderKind::DigitalOcean, credential, ca_pem.as_deref(), REQUEST_TIMEOUT)?;
            let provider =
                cme_cloud::compute::digitalocean::DigitalOcean::new(rest, Some(endpoint), file.regions.clone())?;
            Ok(Cloud::new(&file.name, Arc::new(provider), fence))
        }
        ProviderKind::Gce => {
            let credential = built_credential(credential, built)?;
            let endpoint = file.endpoint.as_deref().unwrap_or(cme_cloud::compute::gce::DEFAULT_ENDPOINT);
            check_covered(&credential, endpoint)?;
            let rest = Rest::new(ProviderKind::Gce, credential, ca_pem.as_deref(), REQUEST_TIMEOUT)?;
            let project = file.project.as_deref().unwrap_or_default();
            let provider = cme_cloud::compute::gce::Gce::new(rest, Some(endpoint), project, file.zones.clone())?;
            Ok(Cloud::new(&file.name, Arc::new(provider), fence))
        }
        ProviderKind::OpenStack => {
            let credential = built_credential(credential, built)?;
            if let Some(endpoint) = &file.endpoint {
                check_covered(&credential, endpoint)?;
            }
            let rest = Rest::new(ProviderKind::OpenStack, credential.clone(), ca_pem.as_deref(), REQUEST_TIMEOUT)?;
            let provider = cme_cloud::compute::openstack::OpenStack::new(
                rest,
                credential,
                file.region.as_deref().unwrap_or_default(),
                file.interface.as_deref(),
                file.endpoint.as_deref(),
            )?;
            Ok(Cloud::new(&file.name, Arc::new(provider), fence))
        }
        ProviderKind::Azure => {
            let credential = built_credential(credential, built)?;
            let endpoint = file.endpoint.as_deref().unwrap_or(cme_cloud::compute::azure::DEFAULT_ENDPOINT);
            // What receives the token is the subscription's resources.
            let subscription = file.subscription_id.as_deref().unwrap_or_default();
            check_covered(&credential, &format!("{}/subscriptions/{subscription}/", endpoint.trim_end_matches('/')))?;
            let rest = Rest::new(ProviderKind::Azure, credential, ca_pem.as_deref(), REQUEST_TIMEOUT)?;
            let provider = cme_cloud::compute::azure::Azure::new(
                rest,
                Some(endpoint),
                file.subscription_id.as_deref().unwrap_or_default(),
                file.resource_groups.clone(),
            )?;
            Ok(Cloud::new(&file.name, Arc::new(provider), fence))
        }
    }
}

/// Each provider's scope settings, and none of another's.
fn check_scope(file: &CloudFile, provider: ProviderKind) -> anyhow::Result<()> {
    let given: Vec<&str> = [
        ("regions", !file.regions.is_empty()),
        ("project", file.project.is_some()),
        ("zones", !file.zones.is_empty()),
        ("subscription_id", file.subscription_id.is_some()),
        ("resource_groups", !file.resource_groups.is_empty()),
        ("region", file.region.is_some()),
        ("interface", file.interface.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let (takes, needs): (&[&str], &[&str]) = match provider {
        ProviderKind::Aws => (&["regions"], &["regions"]),
        ProviderKind::Gce => (&["project", "zones"], &["project", "zones"]),
        ProviderKind::Azure => (&["subscription_id", "resource_groups"], &["subscription_id", "resource_groups"]),
        ProviderKind::OpenStack => (&["region", "interface"], &["region"]),
        ProviderKind::DigitalOcean => (&["regions"], &[]),
    };
    if let Some(stray) = given.iter().find(|g| !takes.contains(g)) {
        bail!("{stray} is not a {provider} setting ({provider} takes {})", takes.join(", "));
    }
    if let Some(missing) = needs.iter().find(|n| !given.contains(n)) {
        bail!("{missing} is required for provider {provider}");
    }
    if let Some(interface) = &file.interface
        && !matches!(interface.as_str(), "public" | "internal" | "admin")
    {
        bail!("interface: public, internal or admin, not {interface:?}");
    }
    Ok(())
}

/// A required tag the provider can store: otherwise no node could ever carry it.
fn check_tag(provider: ProviderKind, key: &str, value: &str) -> anyhow::Result<()> {
    let gce_word =
        |text: &str| text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let fits = match provider {
        ProviderKind::Aws => !key.is_empty() && key.len() <= 128 && value.len() <= 256 && !key.starts_with("aws:"),
        // Labels: a lowercase letter first, lowercase letters, digits, - and _, 63 at most.
        ProviderKind::Gce => {
            key.starts_with(|c: char| c.is_ascii_lowercase())
                && key.len() <= 63
                && gce_word(key)
                && value.len() <= 63
                && gce_word(value)
        }
        ProviderKind::Azure => {
            !key.is_empty()
                && key.len() <= 512
                && value.len() <= 256
                && !key.contains(['<', '>', '%', '&', '\\', '?', '/'])
        }
        ProviderKind::OpenStack => !key.is_empty() && key.len() <= 255 && value.len() <= 255,
        // Tags are `key:value` strings of letters, digits, :, - and _.
        ProviderKind::DigitalOcean => {
            let tag = if value.is_empty() { key.to_string() } else { format!("{key}:{value}") };
            !key.is_empty()
                && !key.contains(':')
                && tag.len() <= 255
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'))
        }
    };
    if !fits {
        bail!(
            "{provider} cannot store this tag, so no node could carry it{}",
            match provider {
                ProviderKind::Gce => " (labels are lowercase letters, digits, - and _, starting with a letter)",
                ProviderKind::DigitalOcean => " (tags are letters, digits, - and _, as key:value)",
                _ => "",
            }
        );
    }
    Ok(())
}

/// The built credential a checked `[[clouds]]` entry names.
fn built_credential(
    named: Option<&HttpCredentialFile>,
    built: &[Arc<HttpCredential>],
) -> anyhow::Result<Arc<HttpCredential>> {
    let name = named.map(|c| c.name.as_str()).unwrap_or_default();
    built
        .iter()
        .find(|c| c.name() == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("credential {name:?} is not configured"))
}

/// Every URL that receives the credential must be among its `urls`: the endpoint first.
fn check_covered(credential: &HttpCredential, endpoint: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(endpoint).map_err(|e| anyhow::anyhow!("endpoint {endpoint:?}: {e}"))?;
    if !credential.matches(&url) {
        bail!(
            "credential {:?} is not sent to {endpoint}: its urls must cover the provider's endpoint",
            credential.name()
        );
    }
    Ok(())
}

/// `https://`, or `http://` to a loopback host only (an endpoint, an identity service).
pub(crate) fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(endpoint).map_err(|e| anyhow::anyhow!("endpoint {endpoint:?}: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http"
            if match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(name)) => cme_cloud::http::is_loopback_name(name),
                None => false,
            } =>
        {
            Ok(())
        }
        "http" => bail!("endpoint {endpoint:?}: plain http only to a loopback host; use https"),
        other => bail!("endpoint {endpoint:?}: {other}:// is not http(s)"),
    }
}

/// The credential a provider needs, of a kind it takes.
fn check_credential<'a>(
    file: &CloudFile,
    provider: ProviderKind,
    credentials: &'a [HttpCredentialFile],
) -> anyhow::Result<Option<&'a HttpCredentialFile>> {
    let Some(name) = &file.credential else {
        if provider == ProviderKind::Aws {
            return Ok(None);
        }
        bail!("credential is required for provider {provider} (a [[http.credentials]] entry)");
    };
    if provider == ProviderKind::Aws {
        bail!("credential: an aws cloud signs with the standard AWS credential chain");
    }
    let Some(credential) = credentials.iter().find(|c| &c.name == name) else {
        bail!("credential {name:?} is not a [[http.credentials]] entry");
    };
    let fits = match provider {
        ProviderKind::Gce => matches!(credential.kind, CredentialKind::GcpServiceAccount),
        ProviderKind::DigitalOcean => matches!(credential.kind, CredentialKind::Bearer),
        ProviderKind::Azure => matches!(credential.kind, CredentialKind::AzureClientSecret),
        ProviderKind::OpenStack => matches!(
            credential.kind,
            CredentialKind::OpenstackPassword | CredentialKind::OpenstackApplicationCredential
        ),
        ProviderKind::Aws => false,
    };
    if !fits {
        bail!("credential {name:?} is of kind {:?}, which provider {provider} does not take", credential.kind);
    }
    Ok(Some(credential))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> CloudFile {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn each_provider_takes_its_own_scope_and_no_other() {
        let gce = file("name = \"g\"\nprovider = \"gce\"\nproject = \"p\"\nzones = [\"europe-west1-b\"]");
        check_scope(&gce, ProviderKind::Gce).unwrap();
        let stray = file("name = \"g\"\nprovider = \"gce\"\nproject = \"p\"\nzones = [\"z\"]\nregions = [\"r\"]");
        let error = check_scope(&stray, ProviderKind::Gce).unwrap_err().to_string();
        assert!(error.contains("regions is not a gce setting"), "{error}");
        let azure = file("name = \"a\"\nprovider = \"azure\"\nsubscription_id = \"s\"");
        let error = check_scope(&azure, ProviderKind::Azure).unwrap_err().to_string();
        assert!(error.contains("resource_groups is required"), "{error}");
        let openstack = file("name = \"o\"\nprovider = \"openstack\"\nregion = \"RegionOne\"\ninterface = \"private\"");
        assert!(check_scope(&openstack, ProviderKind::OpenStack).unwrap_err().to_string().contains("interface"));
    }

    #[test]
    fn a_required_tag_the_provider_cannot_store_is_refused() {
        assert!(check_tag(ProviderKind::Gce, "chaos", "yes").is_ok());
        let upper = check_tag(ProviderKind::Gce, "Chaos", "yes").unwrap_err().to_string();
        assert!(upper.contains("lowercase"), "{upper}");
        assert!(check_tag(ProviderKind::Gce, "chaos", "Yes").is_err());
        assert!(check_tag(ProviderKind::Aws, "Chaos", "Yes").is_ok());
        assert!(check_tag(ProviderKind::Aws, "aws:reserved", "x").is_err());
        assert!(check_tag(ProviderKind::DigitalOcean, "chaos", "yes").is_ok());
        assert!(check_tag(ProviderKind::DigitalOcean, "chaos zone", "").is_err());
        assert!(check_tag(ProviderKind::Azure, "a/b", "x").is_err());
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        assert!(check_endpoint("https://compute.example").is_ok());
        assert!(check_endpoint("http://127.0.0.1:5000/v3").is_ok());
        assert!(check_endpoint("http://localhost:5000").is_ok());
        assert!(check_endpoint("http://10.0.0.1/v3").unwrap_err().to_string().contains("loopback"));
        assert!(check_endpoint("ftp://x").is_err());
    }
}
