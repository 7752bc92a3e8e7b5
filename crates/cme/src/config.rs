//! Configuration: command-line flags over `CME_*` environment variables over the config
//! file (`cme.toml`) over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use cme_api::{Role, Token};

/// The config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub timezone: Option<String>,
    pub log_format: Option<String>,
    pub dry_run: Option<bool>,
    /// Serve `/metrics` and count what they show (default true).
    pub metrics: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    pub scripts_dir: Option<PathBuf>,
    pub sqlite_synchronous_full: Option<bool>,
    pub max_concurrent_runs: Option<usize>,
    pub misfire_grace_seconds: Option<u64>,
    pub run_deadline_seconds: Option<u64>,
    /// The longest an experiment's run may take (default 3600).
    pub max_experiment_seconds: Option<u64>,
    pub lease_margin_seconds: Option<u64>,
    /// How long before its due time an executor is claimed (default 50 ms).
    pub claim_ahead_ms: Option<u64>,
    pub reaper_interval_seconds: Option<u64>,
    pub shutdown_deadline_seconds: Option<u64>,
    /// Seconds audit events are kept (default 365 days; 0 keeps them forever).
    pub audit_retention_seconds: Option<u64>,
    /// Seconds the logs of finished runs are kept; their status and result stay (default
    /// 30 days; 0 keeps them forever).
    pub run_log_retention_seconds: Option<u64>,
    /// How far ahead the executors of recurring plans are made (default 7 days); a plan is
    /// extended every seventh of it.
    pub recurring_horizon_seconds: Option<u64>,
    /// Live plans all replicas hold at most (default 100,000); more answer 429.
    pub max_plans: Option<u64>,
    /// Executors a recurring plan keeps ahead at most (default 1,000): a frequent plan
    /// (every minute, every 10 s) is planned that far, not the whole horizon, and extended
    /// as they are used.
    pub max_executors_ahead_per_plan: Option<u64>,
    /// Pending executors over all plans at most (default 1,000,000); more answer 429.
    pub max_pending_executors: Option<u64>,
    /// Blackouts all replicas hold at most, calendar events included (default 50,000);
    /// more answer 429.
    pub max_blackouts: Option<u64>,
    /// Names and addresses, besides loopback and the bind address, by which clients reach
    /// the API (requests naming any other `Host` are refused: DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Header names, besides Authorization, Proxy-Authorization, Cookie, Set-Cookie and
    /// X-Api-Key, whose values documents show as `***`.
    #[serde(default)]
    pub secret_headers: Vec<String>,
    /// The file holding the key credentials are sealed with (default `cme.key`, created
    /// 0600 at first start); `CME_CREDENTIAL_KEY` (64 hex digits) overrides it. Replicas
    /// must share the key.
    pub credential_key_file: Option<PathBuf>,
    #[serde(default)]
    pub tokens: Vec<TokenFile>,
    #[serde(default)]
    pub ec2: Ec2File,
    /// The clouds the `compute` capability reaches (`[[clouds]]`); `aws` is implied by
    /// `[ec2]` when none is named so.
    #[serde(default)]
    pub clouds: Vec<crate::clouds::CloudFile>,
    #[serde(default)]
    pub ssh: SshFile,
    #[serde(default)]
    pub http: HttpFile,
    /// `[probes]`: the HTTP methods probes may use besides GET and HEAD.
    #[serde(default)]
    pub probes: cme_grant::ProbeFence,
    #[serde(default)]
    pub registry: RegistryFile,
    /// Where events go (`[[webhooks]]`, one table each).
    #[serde(default)]
    pub webhooks: Vec<WebhookFile>,
    /// The CloudEvents `source` of the events (default "/cme").
    pub events_source: Option<String>,
    /// Probes asked all the time; an unhealthy one halts the engine (`[[stop_conditions]]`).
    #[serde(default)]
    pub stop_conditions: Vec<ProbeFile>,
    #[serde(default)]
    pub deadman: DeadmanFile,
    /// Blast-radius budgets over all plans and replicas (`[budgets]`, `[[budgets.groups]]`).
    #[serde(default)]
    pub budgets: cme_grant::Budgets,
}

/// `[http]`: the operator's fence for plugins' requests (`allow`, `deny`, `deny_networks`:
/// `cme_grant::HttpFence` itself, unknown keys refused) and the credentials the host adds
/// to them (`[[http.credentials]]`).
#[derive(Debug, Default)]
pub struct HttpFile {
    pub fence: cme_grant::HttpFence,
    pub credentials: Vec<HttpCredentialFile>,
}

impl<'de> Deserialize<'de> for HttpFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // serde cannot flatten a struct under `deny_unknown_fields`: the credentials are
        // taken out, and what is left must be exactly a fence.
        let mut table = toml::Table::deserialize(deserializer)?;
        let credentials = match table.remove("credentials") {
            Some(value) => value.try_into().map_err(D::Error::custom)?,
            None => Vec::new(),
        };
        let fence = cme_grant::HttpFence::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        Ok(HttpFile { fence, credentials })
    }
}

impl HttpFile {
    /// Reads every credential's secret and builds it; the error names the credential.
    pub async fn credentials(&self) -> anyhow::Result<Vec<std::sync::Arc<cme_cloud::http::HttpCredential>>> {
        let mut built = Vec::new();
        for (i, file) in self.credentials.iter().enumerate() {
            if self.credentials[..i].iter().any(|other| other.name == file.name) {
                anyhow::bail!("[[http.credentials]]: the name {:?} is used twice", file.name);
            }
            if let Some(unknown) = file.builtins.iter().find(|b| !cme_plugins::BUILTIN_NAMES.contains(&b.as_str())) {
                anyhow::bail!(
                    "[[http.credentials]] {:?}: {unknown:?} is not a built-in plugin ({})",
                    file.name,
                    cme_plugins::BUILTIN_NAMES.join(", ")
                );
            }
            let credential = cme_cloud::http::HttpCredential::new(&file.name, &file.urls, file.spec().await?)
                .map_err(|e| anyhow::anyhow!("[[http.credentials]]: {e}"))?
                .with_builtins(file.builtins.clone());
            built.push(std::sync::Arc::new(credential));
        }
        Ok(built)
    }
}

/// `[[http.credentials]]`: a secret the host adds to matching requests of plugins whose
/// grant names it. The secret comes from exactly one of `secret`, `secret_env` (an
/// environment variable) or `secret_file`; AWS SigV4 takes none (the standard AWS chain).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCredentialFile {
    pub name: String,
    pub urls: Vec<String>,
    pub kind: CredentialKind,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// basic: the user name.
    pub username: Option<String>,
    /// header: the header's name, e.g. X-Api-Key.
    pub header: Option<String>,
    /// aws-sigv4: the service (e.g. "ec2", "execute-api") and region.
    pub service: Option<String>,
    pub region: Option<String>,
    /// gcp-service-account: the OAuth scopes (default cloud-platform); azure-client-secret:
    /// the scopes (default Azure Resource Manager's, https://management.azure.com/.default).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// azure-client-secret: the service principal's tenant and application (client) id,
    /// and the authority tokens are asked of (default https://login.microsoftonline.com).
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub authority: Option<String>,
    /// openstack-password, openstack-application-credential: Keystone's v3 URL.
    pub auth_url: Option<String>,
    /// openstack-password: the user's domain (default "Default"), and the project the
    /// token is scoped to with its domain (default "Default"); `username` is the user.
    pub user_domain_name: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_name: Option<String>,
    /// openstack-application-credential: the application credential's id (the secret is
    /// its secret).
    pub application_credential_id: Option<String>,
    /// azure-client-secret, openstack-*: PEM certificates the identity service is trusted
    /// by, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Built-in plugins granted this credential (e.g. ["api-request"]); uploaded plugins
    /// are granted it through their grant's `http.credentials`.
    #[serde(default)]
    pub builtins: Vec<String>,
}

/// How a credential is added.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    Bearer,
    Basic,
    Header,
    AwsSigv4,
    GcpServiceAccount,
    AzureClientSecret,
    OpenstackPassword,
    OpenstackApplicationCredential,
}

impl std::fmt::Debug for HttpCredentialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("HttpCredentialFile")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl HttpCredentialFile {
    async fn spec(&self) -> anyhow::Result<cme_cloud::http::CredentialSpec> {
        use cme_cloud::http::CredentialSpec;
        let name = &self.name;
        let required = |what: &str, value: &Option<String>| {
            value.clone().ok_or_else(|| {
                anyhow::anyhow!("[[http.credentials]] {name:?}: {what} is required for kind {:?}", self.kind)
            })
        };
        // The secret itself goes to an identity service: https, or http on loopback only.
        let exchanged = matches!(
            self.kind,
            CredentialKind::AzureClientSecret
                | CredentialKind::OpenstackPassword
                | CredentialKind::OpenstackApplicationCredential
        );
        if exchanged && let Some(identity) = self.authority.as_ref().or(self.auth_url.as_ref()) {
            crate::clouds::check_endpoint(identity)
                .map_err(|e| anyhow::anyhow!("[[http.credentials]] {name:?}: {e}"))?;
        }
        Ok(match self.kind {
            CredentialKind::Bearer => CredentialSpec::Bearer { token: self.secret()? },
            CredentialKind::Basic => {
                CredentialSpec::Basic { username: required("username", &self.username)?, password: self.secret()? }
            }
            CredentialKind::Header => {
                CredentialSpec::Header { header: required("header", &self.header)?, value: self.secret()? }
            }
            CredentialKind::GcpServiceAccount => {
                CredentialSpec::GcpServiceAccount { key_json: self.secret()?, scopes: self.scopes.clone() }
            }
            CredentialKind::AzureClientSecret => CredentialSpec::AzureClientSecret {
                tenant_id: required("tenant_id", &self.tenant_id)?,
                client_id: required("client_id", &self.client_id)?,
                secret: self.secret()?,
                authority: self.authority.clone(),
                scopes: self.scopes.clone(),
                ca_pem: self.ca_pem()?,
            },
            CredentialKind::OpenstackPassword => CredentialSpec::OpenStack {
                auth_url: required("auth_url", &self.auth_url)?,
                auth: cme_cloud::http::KeystoneAuth::Password {
                    username: required("username", &self.username)?,
                    user_domain: self.user_domain_name.clone().unwrap_or_else(|| "Default".into()),
                    password: self.secret()?,
                    project: required("project_name", &self.project_name)?,
                    project_domain: self.project_domain_name.clone().unwrap_or_else(|| "Default".into()),
                },
                ca_pem: self.ca_pem()?,
            },
            CredentialKind::OpenstackApplicationCredential => CredentialSpec::OpenStack {
                auth_url: required("auth_url", &self.auth_url)?,
                auth: cme_cloud::http::KeystoneAuth::ApplicationCredential {
                    id: required("application_credential_id", &self.application_credential_id)?,
                    secret: self.secret()?,
                },
                ca_pem: self.ca_pem()?,
            },
            CredentialKind::AwsSigv4 => {
                if self.secret.is_some() || self.secret_env.is_some() || self.secret_file.is_some() {
                    anyhow::bail!(
                        "[[http.credentials]] {name:?}: aws-sigv4 takes no secret: it signs with the standard AWS credential chain"
                    );
                }
                let provider = cme_cloud::http::aws_credential_chain()
                    .await
                    .map_err(|e| anyhow::anyhow!("[[http.credentials]] {name:?}: {e}"))?;
                CredentialSpec::AwsSigV4 {
                    service: required("service", &self.service)?,
                    region: required("region", &self.region)?,
                    provider,
                }
            }
        })
    }

    /// The certificates of `ca_file`, when given.
    fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(path) = &self.ca_file else { return Ok(None) };
        let pem = std::fs::read(path)
            .with_context(|| format!("[[http.credentials]] {:?}: ca_file: reading {}", self.name, path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            anyhow::bail!("[[http.credentials]] {:?}: ca_file {} holds no PEM certificate", self.name, path.display());
        }
        Ok(Some(pem))
    }

    /// The secret, from exactly one of its three sources.
    /// The masker learns it (and a service account's private key inside it).
    fn secret(&self) -> anyhow::Result<String> {
        let secret = self.read_secret()?;
        cme_secrets::remember_pinned(&secret);
        if let Some(key) = serde_json::from_str::<serde_json::Value>(&secret)
            .ok()
            .and_then(|v| v["private_key"].as_str().map(str::to_string))
        {
            cme_secrets::remember_pinned(&key);
        }
        Ok(secret)
    }

    fn read_secret(&self) -> anyhow::Result<String> {
        let name = &self.name;
        match (&self.secret, &self.secret_env, &self.secret_file) {
            (Some(value), None, None) => Ok(value.clone()),
            (None, Some(var), None) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!("[[http.credentials]] {name:?}: the environment variable {var} is not set")
            }),
            (None, None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .with_context(|| format!("[[http.credentials]] {name:?}: reading {}", path.display())),
            _ => anyhow::bail!("[[http.credentials]] {name:?}: give exactly one of secret, secret_env and secret_file"),
        }
    }
}

/// A probe in the configuration: `ref`, `args`, `interval_seconds` (default 10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
    pub interval_seconds: Option<u64>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl ProbeFile {
    pub fn to_condition(&self) -> cme_engine::EngineStopCondition {
        cme_engine::EngineStopCondition {
            probe: cme_engine::PluginCall { reference: self.reference.clone(), args: self.args.clone() },
            interval: std::time::Duration::from_secs(self.interval_seconds.unwrap_or(10).clamp(1, 3600)),
        }
    }
}

/// `[deadman]`: when this engine cancels its runs by itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadmanFile {
    /// Seconds the database may not answer while attacks run (default 10).
    pub database_after_seconds: Option<u64>,
    /// A probe that must keep answering healthy.
    pub heartbeat: Option<ProbeFile>,
    /// Seconds the heartbeat may fail before the switch trips (default 30).
    pub heartbeat_after_seconds: Option<u64>,
}

/// `[[webhooks]]`: one receiver of events.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    /// Unique; names its deliveries (default: the host of its URL).
    pub name: Option<String>,
    pub url: String,
    /// Kinds such as "executor.failed", families such as "executor.*", or "*".
    pub events: Vec<String>,
    /// Signs each request (`Cme-Signature`); `secret_env` names a variable holding it.
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub max_backoff_seconds: Option<u64>,
    pub give_up_after_seconds: Option<u64>,
}

impl std::fmt::Debug for WebhookFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookFile").field("name", &self.name).field("events", &self.events).finish_non_exhaustive()
    }
}

impl WebhookFile {
    pub fn to_webhook(&self) -> anyhow::Result<cme_webhooks::Webhook> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| anyhow::anyhow!("webhook {:?}: invalid url: {e}", self.name.as_deref().unwrap_or("")))?;
        let name = self.name.clone().or_else(|| url.host_str().map(str::to_string)).unwrap_or_default();
        let mut webhook = cme_webhooks::Webhook::new(name, url, self.events.clone());
        webhook.secret = match (&self.secret, &self.secret_env) {
            (Some(_), Some(_)) => anyhow::bail!("webhook {:?}: give secret or secret_env, not both", webhook.name),
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("webhook {:?}: the variable {var} (secret_env) is not set", webhook.name)
            })?),
            (None, None) => None,
        };
        if let Some(s) = self.timeout_seconds {
            webhook.timeout = std::time::Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.max_backoff_seconds {
            webhook.max_backoff = std::time::Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.give_up_after_seconds {
            webhook.give_up_after = std::time::Duration::from_secs(s);
        }
        webhook.validate()?;
        Ok(webhook)
    }
}

/// `[registry]`: uploaded plugins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// The largest component accepted, in bytes (default 20 MiB).
    pub max_plugin_bytes: Option<usize>,
    /// Signers of plugins, by name: OpenSSH ed25519 public key lines.
    #[serde(default)]
    pub trusted_keys: std::collections::BTreeMap<String, String>,
    /// Refuse unsigned uploads.
    #[serde(default)]
    pub require_signature: bool,
}

/// `[ec2]`: the EC2 backend and its fence, which bounds every plugin (built-in or
/// uploaded) whatever its grant says. Credentials always come from the standard AWS chain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2File {
    /// Overrides the endpoint (otherwise `AWS_ENDPOINT_URL_EC2` or AWS's own).
    pub endpoint_url: Option<String>,
    /// Regions any plugin may act in (default: any).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Tags every instance any plugin describes, terminates or reaches over SSH must
    /// carry, e.g. `{ Chaos = "true" }` (default: none, with a warning at start).
    #[serde(default)]
    pub required_tags: std::collections::BTreeMap<String, String>,
    /// Instances one run of any plugin may terminate (default 1).
    pub max_terminations_per_run: Option<u32>,
}

/// `[ssh]`: the SSH backend.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshFile {
    /// The known-hosts file (default `known_hosts` in the working directory).
    pub known_hosts: Option<PathBuf>,
    /// `accept-new` (default), `strict` or `off` (tests only).
    pub host_key_policy: Option<cme_cloud::ssh::HostKeyPolicy>,
    /// Seconds to connect and authenticate (default 10).
    pub connect_timeout_seconds: Option<u64>,
    /// Distinct SSH targets one run of any plugin may open sessions to (default 1).
    pub max_sessions_per_run: Option<u32>,
}

impl FileConfig {
    pub fn read(path: &std::path::Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// `[[tokens]]`: `name`, `role`, and the secret as `sha256` (its hex SHA-256) or, with a
/// warning at start, as plaintext `token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub name: Option<String>,
    pub role: Role,
    pub token: Option<String>,
    pub sha256: Option<String>,
}

impl TokenFile {
    pub fn to_token(&self) -> anyhow::Result<Token> {
        let name = self.name.clone().unwrap_or_else(|| self.role.name().to_string());
        match (&self.token, &self.sha256) {
            (None, Some(digest)) => {
                Token::hashed(name.clone(), self.role, digest).map_err(|e| anyhow::anyhow!("[[tokens]] {name}: {e}"))
            }
            (Some(secret), None) => {
                tracing::warn!(token = %name, "a [[tokens]] entry holds its secret in plaintext: give its sha256 instead");
                Token::plain(name.clone(), self.role, secret).map_err(|e| anyhow::anyhow!("[[tokens]] {name}: {e}"))
            }
            _ => anyhow::bail!("[[tokens]] {name}: give exactly one of sha256 (recommended) or token"),
        }
    }
}

/// `CME_TOKENS="admin:secret1,viewer:secret2"`: each token is named after its role.
pub fn parse_tokens(text: &str) -> anyhow::Result<Vec<Token>> {
    text.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|pair| {
            let (role, token) = pair
                .trim()
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("a token must be ROLE:TOKEN, e.g. admin:s3cret"))?;
            let role = match role {
                "viewer" => Role::Viewer,
                "publisher" => Role::Publisher,
                "operator" => Role::Operator,
                "admin" => Role::Admin,
                other => anyhow::bail!("unknown role {other:?}: viewer, publisher, operator or admin"),
            };
            Token::plain(role.name(), role, token).map_err(|e| anyhow::anyhow!(e))
        })
        .collect()
}

/// Where precompiled plugin artifacts go by default: the user's cache directory, never a
/// shared temporary one (anyone could prepare a path there in advance).
pub fn default_cache_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "neither XDG_CACHE_HOME nor HOME is set: give the artifact cache a directory with --cache-dir"
            )
        })?;
    Ok(base.join("cme").join("artifacts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_table_is_a_fence_and_credentials_and_nothing_else() {
        let file: FileConfig = toml::from_str(
            r#"
            [http]
            allow = ["https://*.internal/*"]
            deny_networks = ["10.0.0.0/8"]
            [[http.credentials]]
            name = "gh"
            urls = ["https://api.github.com/*"]
            kind = "bearer"
            secret = "x"
            "#,
        )
        .unwrap();
        assert_eq!(file.http.fence.allow, vec!["https://*.internal/*".to_string()]);
        assert_eq!(file.http.fence.deny_networks, vec!["10.0.0.0/8".to_string()]);
        assert!(file.http.fence.deny.is_empty());
        assert_eq!(file.http.credentials.len(), 1);
        let typo = toml::from_str::<FileConfig>("[http]\nalow = [\"https://x/*\"]\n").unwrap_err().to_string();
        assert!(typo.contains("unknown field") && typo.contains("alow"), "{typo}");
        assert!(toml::from_str::<FileConfig>("").unwrap().http.fence.allow.is_empty());
    }
}
