//! Credentials the host adds to plugins' requests (`[[http.credentials]]`): a secret bound
//! to URL patterns, added by the http capability to the matching requests of plugins whose
//! grant names it. The plugin never holds the secret: it is added after the plugin's call
//! is checked, redirects that leave the credential's URLs are refused, and every response
//! is scrubbed of it before the plugin reads it.
//!
//! Kinds: a bearer token, basic auth, any header, AWS SigV4 (signed with the standard AWS
//! credential chain), a Google service account (its JSON key exchanged for an OAuth
//! access token by the JWT bearer flow), an Azure service principal's client secret (the
//! client-credentials flow) and OpenStack Keystone v3 (a password or an application
//! credential); each token is cached until shortly before it expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use url::Url;

use super::HttpError;
use super::tokens::{AzureClientSecret, Keystone, Token, TokenCache};
use cme_grant::UrlPattern;

/// What a credential is, as the operator configures it (secrets already read).
pub enum CredentialSpec {
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `<header>: <value>`, e.g. `X-Api-Key`.
    Header { header: String, value: String },
    /// AWS Signature Version 4 for `service` in `region`, with credentials from the
    /// standard AWS chain (environment, profile, instance role, ...).
    AwsSigV4 { service: String, region: String, provider: aws_credential_types::provider::SharedCredentialsProvider },
    /// A Google service account's JSON key; the token is requested for `scopes`.
    GcpServiceAccount { key_json: String, scopes: Vec<String> },
    /// An Azure service principal (`client_id` in `tenant_id`) and its client secret; the
    /// token is requested from `authority` (default Azure AD's) for `scopes` (default
    /// Azure Resource Manager's). `ca_pem`: the certificates the authority is trusted by.
    AzureClientSecret {
        tenant_id: String,
        client_id: String,
        secret: String,
        authority: Option<String>,
        scopes: Vec<String>,
        ca_pem: Option<Vec<u8>>,
    },
    /// OpenStack Keystone v3 at `auth_url`; the token goes out as `X-Auth-Token`.
    OpenStack { auth_url: String, auth: super::KeystoneAuth, ca_pem: Option<Vec<u8>> },
}

/// One configured credential.
pub struct HttpCredential {
    name: String,
    urls: Vec<UrlPattern>,
    kind: Kind,
    builtins: Vec<String>,
}

enum Kind {
    Static { header: HeaderName, value: String, secrets: Vec<String> },
    AwsSigV4 { service: String, region: String, provider: aws_credential_types::provider::SharedCredentialsProvider },
    Gcp(Box<GcpServiceAccount>),
    Azure(Box<AzureClientSecret>),
    Keystone(Box<Keystone>),
}

impl std::fmt::Debug for HttpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("HttpCredential").field("name", &self.name).field("urls", &self.urls).finish_non_exhaustive()
    }
}

/// Why a configured HTTP credential (`[[http.credentials]]`) is refused, or its source
/// (the AWS credential chain) could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialConfigError(pub String);

impl From<String> for CredentialConfigError {
    fn from(message: String) -> Self {
        CredentialConfigError(message)
    }
}

impl HttpCredential {
    /// A credential named `name` for requests to `urls`; the error names what is wrong.
    pub fn new(name: &str, urls: &[String], spec: CredentialSpec) -> Result<HttpCredential, CredentialConfigError> {
        if urls.is_empty() {
            return Err(CredentialConfigError(format!(
                "credential {name:?}: urls is empty (a credential is only sent to the URLs it names)"
            )));
        }
        let urls = urls
            .iter()
            .map(|u| UrlPattern::parse(u).map_err(|e| format!("credential {name:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let nonempty = |what: &str, value: &str| {
            if value.is_empty() {
                Err(CredentialConfigError(format!("credential {name:?}: {what} is empty")))
            } else {
                Ok(())
            }
        };
        let kind = match spec {
            CredentialSpec::Bearer { token } => {
                nonempty("the token", &token)?;
                Kind::Static { header: AUTHORIZATION, value: format!("Bearer {token}"), secrets: vec![token] }
            }
            CredentialSpec::Basic { username, password } => {
                nonempty("the password", &password)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                Kind::Static {
                    header: AUTHORIZATION,
                    value: format!("Basic {encoded}"),
                    secrets: vec![encoded, password],
                }
            }
            CredentialSpec::Header { header, value } => {
                nonempty("the value", &value)?;
                let header = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("credential {name:?}: {header:?} is not a header name"))?;
                Kind::Static { header, value: value.clone(), secrets: vec![value] }
            }
            CredentialSpec::AwsSigV4 { service, region, provider } => {
                nonempty("service", &service)?;
                nonempty("region", &region)?;
                Kind::AwsSigV4 { service, region, provider }
            }
            CredentialSpec::GcpServiceAccount { key_json, scopes } => {
                Kind::Gcp(Box::new(GcpServiceAccount::new(name, &key_json, scopes)?))
            }
            CredentialSpec::AzureClientSecret { tenant_id, client_id, secret, authority, scopes, ca_pem } => {
                let flow = AzureClientSecret::new(
                    &tenant_id,
                    &client_id,
                    secret,
                    authority.as_deref(),
                    &scopes,
                    ca_pem.as_deref(),
                )
                .map_err(|e| format!("credential {name:?}: {e}"))?;
                Kind::Azure(Box::new(flow))
            }
            CredentialSpec::OpenStack { auth_url, auth, ca_pem } => {
                let keystone = Keystone::new(&auth_url, auth, ca_pem.as_deref())
                    .map_err(|e| format!("credential {name:?}: {e}"))?;
                Kind::Keystone(Box::new(keystone))
            }
        };
        if let Kind::Static { header, value, .. } = &kind {
            HeaderValue::from_str(value)
                .map_err(|_| format!("credential {name:?}: the {header} value is not a valid header value"))?;
        }
        Ok(HttpCredential { name: name.to_string(), urls, kind, builtins: Vec::new() })
    }

    /// Built-in plugins (by name, e.g. `api-request`) granted this credential: built-ins
    /// are not granted through the API, so the operator grants them here.
    pub fn with_builtins(mut self, builtins: Vec<String>) -> Self {
        self.builtins = builtins;
        self
    }

    /// Whether the built-in plugin `name` is granted this credential.
    pub fn granted_to_builtin(&self, name: &str) -> bool {
        self.builtins.iter().any(|b| b == name)
    }

    /// The name grants and audit rows use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this credential is sent to `url`.
    pub fn matches(&self, url: &Url) -> bool {
        self.urls.iter().any(|p| p.matches(url))
    }

    /// Drops a cached token (a provider answered 401): the next use gets a new one.
    pub(crate) async fn forget_token(&self) {
        match &self.kind {
            Kind::Gcp(account) => account.cache.forget().await,
            Kind::Azure(flow) => flow.cache.forget().await,
            Kind::Keystone(keystone) => keystone.cache.forget().await,
            Kind::Static { .. } | Kind::AwsSigV4 { .. } => {}
        }
    }

    /// OpenStack: the service catalog that came with the current token (a token is asked
    /// for when there is none); `None` for every other kind.
    pub async fn openstack_catalog(&self) -> Option<Result<serde_json::Value, HttpError>> {
        let Kind::Keystone(keystone) = &self.kind else { return None };
        Some(keystone.token().await.map(|token| token.catalog).map_err(|e| self.failed(&e)))
    }

    /// Adds the credential to `request` (replacing a header of the same name the plugin
    /// set); returns the strings to scrub from the response.
    pub(crate) async fn apply(&self, request: &mut reqwest::Request) -> Result<Vec<String>, HttpError> {
        match &self.kind {
            Kind::Static { header, value, secrets } => {
                let value =
                    HeaderValue::from_str(value).map_err(|_| self.failed("its value is not a valid header value"))?;
                request.headers_mut().insert(header.clone(), sensitive(value));
                Ok(secrets.clone())
            }
            Kind::AwsSigV4 { service, region, provider } => self.sign_sigv4(request, service, region, provider).await,
            Kind::Gcp(account) => {
                let token = account.token().await.map_err(|e| self.failed(&e))?;
                self.bearer(request, token)
            }
            Kind::Azure(flow) => {
                let token = flow.token().await.map_err(|e| self.failed(&e))?.value;
                self.bearer(request, token)
            }
            Kind::Keystone(keystone) => {
                let token = keystone.token().await.map_err(|e| self.failed(&e))?.value;
                let value =
                    HeaderValue::from_str(&token).map_err(|_| self.failed("the token is not a valid header value"))?;
                request.headers_mut().insert(HeaderName::from_static("x-auth-token"), sensitive(value));
                Ok(vec![token])
            }
        }
    }

    /// `Authorization: Bearer <token>`; the token is what to scrub.
    fn bearer(&self, request: &mut reqwest::Request, token: String) -> Result<Vec<String>, HttpError> {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| self.failed("the token is not a valid header value"))?;
        request.headers_mut().insert(AUTHORIZATION, sensitive(value));
        Ok(vec![token])
    }

    async fn sign_sigv4(
        &self,
        request: &mut reqwest::Request,
        service: &str,
        region: &str,
        provider: &aws_credential_types::provider::SharedCredentialsProvider,
    ) -> Result<Vec<String>, HttpError> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let credentials =
            provider.provide_credentials().await.map_err(|e| self.failed(&format!("no AWS credentials: {e}")))?;
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.failed(&e.to_string()))?
            .into();
        // The plugin's own Authorization or X-Amz-* headers would confuse the signature.
        request.headers_mut().remove(AUTHORIZATION);
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        let body = request.body().and_then(|b| b.as_bytes()).unwrap_or_default().to_vec();
        let url = request.url().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| self.failed(&e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| self.failed(&e.to_string()))?.into_parts();
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.failed("a signing header name is not valid"))?;
            let value = HeaderValue::from_str(value).map_err(|_| self.failed("a signing header value is not valid"))?;
            request.headers_mut().insert(name, sensitive(value));
        }
        // The secret key never leaves the host; a session token travels in a header.
        Ok(credentials.session_token().map(|t| vec![t.to_string()]).unwrap_or_default())
    }

    fn failed(&self, why: &str) -> HttpError {
        HttpError::Upstream(format!("credential {}: {why}", self.name))
    }
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// Replaces every occurrence of each secret in `bytes` with `***`.
pub(crate) fn scrub(bytes: &mut Vec<u8>, secrets: &[String]) {
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let needle = secret.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(needle) {
                out.extend_from_slice(b"***");
                i += needle.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        *bytes = out;
    }
}

/// The `aud` of every Google service-account assertion (Google's documentation: "When
/// making an access token request this value is always https://oauth2.googleapis.com/token").
const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";

/// A Google service account: the JWT bearer flow (RFC 7523) against the key's `token_uri`.
struct GcpServiceAccount {
    client_email: String,
    token_uri: String,
    scopes: String,
    key: jsonwebtoken::EncodingKey,
    key_id: Option<String>,
    http: reqwest::Client,
    cache: TokenCache,
}

#[derive(serde::Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

impl GcpServiceAccount {
    fn new(name: &str, key_json: &str, scopes: Vec<String>) -> Result<Self, String> {
        let key: ServiceAccountKey = serde_json::from_str(key_json).map_err(|e| {
            format!(
                "credential {name:?}: not a service-account key (JSON with client_email, private_key, token_uri): {e}"
            )
        })?;
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|e| format!("credential {name:?}: private_key is not an RSA PEM key: {e}"))?;
        Url::parse(&key.token_uri).map_err(|e| format!("credential {name:?}: token_uri: {e}"))?;
        let scopes =
            if scopes.is_empty() { vec!["https://www.googleapis.com/auth/cloud-platform".to_string()] } else { scopes };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("credential {name:?}: {e}"))?;
        Ok(GcpServiceAccount {
            client_email: key.client_email,
            token_uri: key.token_uri,
            scopes: scopes.join(" "),
            key: encoding,
            key_id: key.private_key_id,
            http,
            cache: TokenCache::default(),
        })
    }

    /// An access token: the cached one while it has a minute left, else a new one.
    async fn token(&self) -> Result<String, String> {
        self.cache.get(|| self.fetch()).await.map(|token| token.value)
    }

    async fn fetch(&self) -> Result<Token, String> {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        // Google checks `aud` against its token endpoint's name whichever URL the key's
        // token_uri names (google-auth sends the same).
        let claims = serde_json::json!({"iss": self.client_email, "scope": self.scopes, "aud": GOOGLE_TOKEN_AUDIENCE, "iat": now, "exp": now + 3600});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        let assertion =
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("signing the token request: {e}"))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let response = self
            .http
            .post(&self.token_uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("the token endpoint did not answer: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the token endpoint answered {status}"));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let body =
            response.bytes().await.map_err(|e| format!("reading the token endpoint's answer: {}", e.without_url()))?;
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| format!("the token endpoint's answer is not a token: {e}"))?;
        Ok(Token::new(answer.access_token, Duration::from_secs(answer.expires_in.unwrap_or(3600))))
    }
}

/// The standard AWS credential chain (environment, profile, web identity, instance role),
/// as the EC2 capability uses it.
pub async fn aws_credential_chain()
-> Result<aws_credential_types::provider::SharedCredentialsProvider, CredentialConfigError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    config
        .credentials_provider()
        .ok_or_else(|| CredentialConfigError("the AWS credential chain found no provider".into()))
}

/// The credentials of one grant, looked up by name among the configured ones.
pub fn granted(all: &[Arc<HttpCredential>], names: &[String]) -> Result<Vec<Arc<HttpCredential>>, HttpError> {
    names
        .iter()
        .map(|name| {
            all.iter().find(|c| &c.name == name).cloned().ok_or_else(|| {
                HttpError::Denied(format!(
                    "the grant names HTTP credential {name:?}, which this engine does not have ([[http.credentials]])"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_replaces_every_occurrence() {
        let mut body = b"token=s3cr3t-value; again s3cr3t-value.".to_vec();
        scrub(&mut body, &["s3cr3t-value".to_string()]);
        assert_eq!(body, b"token=***; again ***.");
    }

    #[test]
    fn a_credential_without_urls_or_secret_is_refused_with_its_name() {
        let err = HttpCredential::new("billing", &[], CredentialSpec::Bearer { token: "t0ken".into() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("billing") && err.contains("urls"), "{err}");
        let err = HttpCredential::new(
            "billing",
            &["https://billing.internal/*".into()],
            CredentialSpec::Bearer { token: String::new() },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("token is empty"), "{err}");
        let err = HttpCredential::new(
            "gce",
            &["https://compute.googleapis.com/*".into()],
            CredentialSpec::GcpServiceAccount { key_json: "{}".into(), scopes: vec![] },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("service-account key"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = HttpCredential::new(
            "billing",
            &["https://billing.internal/*".into()],
            CredentialSpec::Bearer { token: "very-secret".into() },
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
