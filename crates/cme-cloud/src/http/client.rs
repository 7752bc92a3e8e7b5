//! The per-run HTTP client: reqwest with the run's egress rules built in.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::credentials::{HttpCredential, scrub};
use super::egress::{AddressRefused, CheckedResolver};
use super::{DnsResolver, EgressRules, HttpError, SystemResolver};

/// Engine-wide HTTP settings.
///
/// By default: a 10 s timeout per request, responses cut at 1 MiB, at most 5 redirects,
/// the system resolver, no proxy (a proxy would resolve names where the egress rules
/// cannot see them), and no host-held credentials.
#[derive(Clone)]
pub struct HttpConfig {
    pub default_timeout: Duration,
    pub max_response_bytes: usize,
    pub max_redirects: usize,
    pub user_agent: String,
    pub resolver: Arc<dyn DnsResolver>,
    /// Every configured `[[http.credentials]]`; a run gets those its grant names.
    pub credentials: Vec<Arc<HttpCredential>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            default_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            max_redirects: 5,
            user_agent: concat!("cme/", env!("CARGO_PKG_VERSION")).into(),
            resolver: Arc::new(SystemResolver),
            credentials: Vec::new(),
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("default_timeout", &self.default_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_redirects", &self.max_redirects)
            .field("user_agent", &self.user_agent)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// One request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// None: the config's default timeout.
    pub timeout: Option<Duration>,
}

/// The final response (after redirects).
#[derive(Debug, Clone)]
pub struct Response {
    /// The host-held credential added to the request, by name (never its secret).
    pub credential: Option<String>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub final_url: String,
    pub elapsed: Duration,
}

/// An HTTP client bound to one run's egress rules. Cloning is cheap and shares the
/// connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    rules: Arc<EgressRules>,
    config: HttpConfig,
    /// The host-held credentials this run's grant names.
    credentials: Arc<Vec<Arc<HttpCredential>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("rules", &self.rules).finish_non_exhaustive()
    }
}

/// A redirect hop outside the rules; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("redirect refused: {0}")]
struct RedirectRefused(String);

#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
struct TooManyRedirects(usize);

impl HttpClient {
    /// Prepares a client for one run; `credentials` are those its grant names.
    pub fn new(
        config: &HttpConfig,
        rules: EgressRules,
        credentials: Vec<Arc<HttpCredential>>,
    ) -> Result<Self, HttpError> {
        let rules = Arc::new(rules);
        let credentials = Arc::new(credentials);
        let redirect_rules = rules.clone();
        let redirect_credentials = credentials.clone();
        let max_redirects = config.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(TooManyRedirects(max_redirects));
            }
            if let Err(e) = redirect_rules.check_url(attempt.url()) {
                let reason = e.to_string();
                return attempt.error(RedirectRefused(reason));
            }
            // A credential added to the first request never follows a redirect outside its URLs.
            let first = attempt.previous().first();
            if let Some(credential) =
                redirect_credentials.iter().find(|c| first.is_some_and(|u| c.matches(u)) && !c.matches(attempt.url()))
            {
                let reason = format!(
                    "{} is outside the URLs of credential {}",
                    attempt.url().origin().ascii_serialization(),
                    credential.name()
                );
                return attempt.error(RedirectRefused(reason));
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .user_agent(config.user_agent.clone())
            .dns_resolver(Arc::new(CheckedResolver { inner: config.resolver.clone(), rules: rules.clone() }))
            .build()
            .map_err(|e| HttpError::Upstream(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient { client, rules, config: config.clone(), credentials })
    }

    /// The timeout used when a request names none.
    pub fn default_timeout(&self) -> Duration {
        self.config.default_timeout
    }

    /// The credential a request to `url` carries: the first granted one whose URLs match.
    pub fn credential_for(&self, url: &Url) -> Option<&HttpCredential> {
        self.credentials.iter().find(|c| c.matches(url)).map(|c| c.as_ref())
    }

    /// Checks a request against the rules without sending it (what a dry run does).
    pub fn check(&self, request: &Request) -> Result<Url, HttpError> {
        let url =
            Url::parse(&request.url).map_err(|e| HttpError::InvalidArgument(format!("url {:?}: {e}", request.url)))?;
        self.rules.check_url(&url)?;
        method(&request.method)?;
        headers(&request.headers)?;
        for (_, value) in request.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("host")) {
            self.rules.check_host_header(value)?;
        }
        Ok(url)
    }

    /// A name on one of the engine's own ports is resolved first and refused when it
    /// names this machine. (A name that rebinds between this check and the connection
    /// still meets the engine's `Host` check, which answers only its own names.)
    async fn check_own_name(&self, url: &Url) -> Result<(), HttpError> {
        let (Some(url::Host::Domain(name)), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Ok(());
        };
        if !self.rules.is_own_port(port) {
            return Ok(());
        }
        let addresses = self.config.resolver.resolve(name.to_string()).await.unwrap_or_default();
        for ip in addresses {
            self.rules
                .check_own(ip, port)
                .map_err(|reason| HttpError::Denied(format!("{name} resolves to {ip}: {reason}")))?;
        }
        Ok(())
    }

    /// Sends a request and reads the response body up to the cap.
    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        let url = self.check(&request)?;
        self.check_own_name(&url).await?;
        let timeout = request.timeout.unwrap_or(self.config.default_timeout);
        let mut builder =
            self.client.request(method(&request.method)?, url).headers(headers(&request.headers)?).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut prepared = builder.build().map_err(|e| classify(e, timeout))?;
        let (credential, secrets) = match self.credential_for(prepared.url()) {
            Some(c) => (Some(c.name().to_string()), c.apply(&mut prepared).await?),
            None => (None, Vec::new()),
        };
        let started = Instant::now();
        let mut response = self.client.execute(prepared).await.map_err(|e| classify(e, timeout))?;
        let status = response.status().as_u16();
        let final_url = response.url().to_string();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
            .map(|(k, v)| {
                let mut value = v.into_bytes();
                scrub(&mut value, &secrets);
                (k, String::from_utf8_lossy(&value).into_owned())
            })
            .collect();
        let cap = self.config.max_response_bytes;
        let mut body = Vec::new();
        let mut body_truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, timeout))? {
            let room = cap - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                body_truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        // The plugin reads what came back: a service that echoes the credential echoes ***.
        scrub(&mut body, &secrets);
        Ok(Response { credential, status, headers, body, body_truncated, final_url, elapsed: started.elapsed() })
    }
}

fn method(text: &str) -> Result<reqwest::Method, HttpError> {
    reqwest::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| HttpError::InvalidArgument(format!("method {text:?} is not an HTTP method token")))
}

fn headers(pairs: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (key, value) in pairs {
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| HttpError::InvalidArgument(format!("header name {key:?} is not valid")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidArgument(format!("header {key:?} has a value that is not valid")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Maps reqwest's error to what the plugin should see. URLs are left out: they may carry
/// credentials in their user info.
fn classify(err: reqwest::Error, timeout: Duration) -> HttpError {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return HttpError::Denied(refused.to_string());
        }
        if let Some(refused) = cause.downcast_ref::<RedirectRefused>() {
            return HttpError::Denied(refused.to_string());
        }
        if let Some(limit) = cause.downcast_ref::<TooManyRedirects>() {
            return HttpError::Upstream(limit.to_string());
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return HttpError::Timeout(format!("no complete response within {} ms", timeout.as_millis()));
    }
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    HttpError::Upstream(message)
}
