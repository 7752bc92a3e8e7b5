//! Credentials that trade a secret for a short-lived token at the provider's identity
//! service, and cache it until shortly before it expires:
//!
//! * Azure's client-credentials flow (a service principal's client secret, posted as a
//!   form to `{authority}/{tenant}/oauth2/v2.0/token`), whose token goes out as
//!   `Authorization: Bearer`;
//! * OpenStack Keystone v3 (`POST {auth_url}/auth/tokens` with a password scoped to a
//!   project, or an application credential), whose token goes out as `X-Auth-Token` and
//!   whose answer carries the service catalog the compute driver finds Nova in.
//!
//! The identity service's URL is the operator's (never a plugin's), requests to it are
//! never redirected, and a `ca_file` may name the certificates it is trusted by.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use url::Url;

/// The most time before its expiry a cached token is replaced (a short-lived token is
/// replaced half-way through its life).
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The largest identity-service answer read (a Keystone catalog can be large).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// A token and what came with it.
#[derive(Clone)]
pub(super) struct Token {
    pub value: String,
    /// When a new token is asked for instead.
    renew_at: Instant,
    /// Keystone's service catalog (`Null` elsewhere).
    pub catalog: Value,
}

impl Token {
    /// A token good for `lifetime` from now, without a catalog.
    pub(super) fn new(value: String, lifetime: Duration) -> Token {
        Token { value, renew_at: Instant::now() + lifetime - TOKEN_MARGIN.min(lifetime / 2), catalog: Value::Null }
    }
}

/// The current token, fetched again once it is close to expiring or was forgotten.
#[derive(Default)]
pub(super) struct TokenCache(tokio::sync::Mutex<Option<Token>>);

impl TokenCache {
    pub(super) async fn get<F, Fut>(&self, fetch: F) -> Result<Token, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, String>>,
    {
        let mut cached = self.0.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.clone());
        }
        let token = fetch().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    pub(super) async fn forget(&self) {
        *self.0.lock().await = None;
    }
}

/// A client for an identity service: no proxy, no redirects, 10 s per request, and only
/// `ca_pem`'s certificates trusted when given.
pub(super) fn identity_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(pem) = ca_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("ca_file: {e}"))?;
        builder = builder.tls_certs_only(certificates);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Reads an identity service's answer, bounded; a status other than 2xx is an error
/// naming it and the service's own error text (never the request, which holds the secret).
async fn read_answer(response: reqwest::Response) -> Result<(reqwest::header::HeaderMap, Value), String> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the answer: {}", e.without_url()))? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20));
        }
        bytes.extend_from_slice(&chunk);
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let (code, message) = crate::compute::rest::provider_error(&body, status);
        let detail = body["error_description"].as_str().map(|d| d.lines().next().unwrap_or(d).to_string());
        return Err(format!("the identity service answered {status}: {code}: {}", detail.unwrap_or(message)));
    }
    Ok((headers, body))
}

/// `expires_in` as Azure sends it: a number, or (v1 endpoints) a string of digits.
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Azure AD's client-credentials flow for one service principal.
pub(super) struct AzureClientSecret {
    token_url: Url,
    client_id: String,
    client_secret: String,
    scope: String,
    http: reqwest::Client,
    pub cache: TokenCache,
}

/// Azure AD's public authority.
pub const AZURE_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of Azure Resource Manager.
pub const AZURE_MANAGEMENT_SCOPE: &str = "https://management.azure.com/.default";

impl AzureClientSecret {
    pub(super) fn new(
        tenant_id: &str,
        client_id: &str,
        client_secret: String,
        authority: Option<&str>,
        scopes: &[String],
        ca_pem: Option<&[u8]>,
    ) -> Result<AzureClientSecret, String> {
        // Tenants are GUIDs or domain names: they go into the token URL's path.
        let tenant_fits = !tenant_id.is_empty()
            && tenant_id.len() <= 256
            && tenant_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !tenant_fits {
            return Err(format!("tenant_id {tenant_id:?} is not a tenant id or domain"));
        }
        if client_id.is_empty() {
            return Err("client_id is empty".into());
        }
        if client_secret.is_empty() {
            return Err("the client secret is empty".into());
        }
        let authority = authority.unwrap_or(AZURE_AUTHORITY).trim_end_matches('/');
        let token_url = Url::parse(&format!("{authority}/{tenant_id}/oauth2/v2.0/token"))
            .map_err(|e| format!("authority {authority:?}: {e}"))?;
        let scope = if scopes.is_empty() { AZURE_MANAGEMENT_SCOPE.to_string() } else { scopes.join(" ") };
        Ok(AzureClientSecret {
            token_url,
            client_id: client_id.to_string(),
            client_secret,
            scope,
            http: identity_client(ca_pem)?,
            cache: TokenCache::default(),
        })
    }

    pub(super) async fn token(&self) -> Result<Token, String> {
        self.cache.get(|| self.fetch()).await
    }

    async fn fetch(&self) -> Result<Token, String> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("scope", &self.scope)
            .finish();
        let response = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("the token endpoint did not answer: {}", e.without_url()))?;
        let (_, body) = read_answer(response).await?;
        let value =
            body["access_token"].as_str().filter(|t| !t.is_empty()).ok_or("the answer holds no access_token")?;
        let lifetime = seconds(&body["expires_in"]).unwrap_or(3600);
        Ok(Token::new(value.to_string(), Duration::from_secs(lifetime)))
    }
}

/// How a Keystone v3 token is asked for.
pub enum KeystoneAuth {
    /// A user's password, the token scoped to a project.
    Password { username: String, user_domain: String, password: String, project: String, project_domain: String },
    /// An application credential (already scoped to its project).
    ApplicationCredential { id: String, secret: String },
}

impl KeystoneAuth {
    fn body(&self) -> Value {
        match self {
            KeystoneAuth::Password { username, user_domain, password, project, project_domain } => json!({
                "auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": username, "domain": {"name": user_domain}, "password": password
                    }}},
                    "scope": {"project": {"name": project, "domain": {"name": project_domain}}}
                }
            }),
            KeystoneAuth::ApplicationCredential { id, secret } => json!({
                "auth": {"identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": id, "secret": secret}
                }}
            }),
        }
    }

    pub(super) fn secret(&self) -> &str {
        match self {
            KeystoneAuth::Password { password, .. } => password,
            KeystoneAuth::ApplicationCredential { secret, .. } => secret,
        }
    }
}

/// OpenStack Keystone v3.
pub(super) struct Keystone {
    tokens_url: Url,
    auth: KeystoneAuth,
    http: reqwest::Client,
    pub cache: TokenCache,
}

impl Keystone {
    pub(super) fn new(auth_url: &str, auth: KeystoneAuth, ca_pem: Option<&[u8]>) -> Result<Keystone, String> {
        let base = if auth_url.ends_with('/') { auth_url.to_string() } else { format!("{auth_url}/") };
        let base = Url::parse(&base).map_err(|e| format!("auth_url {auth_url:?}: {e}"))?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(format!("auth_url {auth_url:?} is not http(s)"));
        }
        if auth.secret().is_empty() {
            return Err("the secret is empty".into());
        }
        let tokens_url = base.join("auth/tokens").map_err(|e| format!("auth_url {auth_url:?}: {e}"))?;
        Ok(Keystone { tokens_url, auth, http: identity_client(ca_pem)?, cache: TokenCache::default() })
    }

    pub(super) async fn token(&self) -> Result<Token, String> {
        self.cache.get(|| self.fetch()).await
    }

    async fn fetch(&self) -> Result<Token, String> {
        let response = self
            .http
            .post(self.tokens_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.auth.body().to_string())
            .send()
            .await
            .map_err(|e| format!("Keystone did not answer: {}", e.without_url()))?;
        let (headers, body) = read_answer(response).await?;
        let value = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or("Keystone's answer has no X-Subject-Token")?;
        let lifetime = body["token"]["expires_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|at| (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(3600));
        Ok(Token { catalog: body["token"]["catalog"].clone(), ..Token::new(value.to_string(), lifetime) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_that_would_change_the_token_url_is_refused() {
        for tenant in ["", "a/b", "../x", "t?x=1", "t#f"] {
            assert!(
                AzureClientSecret::new(tenant, "c", "s".into(), None, &[], None).is_err(),
                "{tenant:?} should be refused"
            );
        }
        let ok = AzureClientSecret::new("contoso.onmicrosoft.com", "c", "s".into(), None, &[], None).unwrap();
        assert_eq!(
            ok.token_url.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(ok.scope, AZURE_MANAGEMENT_SCOPE);
    }

    #[test]
    fn keystone_asks_for_tokens_under_its_v3_url() {
        let auth = || KeystoneAuth::ApplicationCredential { id: "ac".into(), secret: "s3cret".into() };
        let keystone = Keystone::new("https://keystone.example:5000/v3", auth(), None).unwrap();
        assert_eq!(keystone.tokens_url.as_str(), "https://keystone.example:5000/v3/auth/tokens");
        let body = auth().body();
        assert_eq!(body["auth"]["identity"]["methods"][0], "application_credential");
        assert!(Keystone::new("ftp://x/v3", auth(), None).is_err());
        let empty = KeystoneAuth::ApplicationCredential { id: "ac".into(), secret: String::new() };
        assert!(Keystone::new("https://k/v3", empty, None).is_err());
        assert_eq!(seconds(&json!("3599")), Some(3599));
        assert_eq!(seconds(&json!(3599)), Some(3599));
    }
}
