//! How the engine fetches subscribed calendars: the capability HTTP client (reqwest with
//! the egress rules built in: no proxy, resolved addresses checked, the engine's own
//! sockets and cloud metadata refused) under the operator's `[http]` fence — its
//! `allow`, `deny` and `deny_networks` bind calendar fetches as they bind plugins.
//! No host-held credential is added: a calendar's secret is its URL.

use std::time::Duration;

use cme_cloud::http::{DeniedNetwork, EgressRules, HttpClient, HttpConfig, Request, UrlAllowList, UrlPattern};
use cme_engine::{CalendarFetch, FetchError};

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct HttpCalendarFetch {
    client: HttpClient,
}

impl HttpCalendarFetch {
    pub fn new(fence: &cme_grant::HttpFence, own_sockets: &[std::net::SocketAddr]) -> anyhow::Result<Self> {
        let parse = |urls: &[String]| urls.iter().filter_map(|u| UrlPattern::parse(u).ok()).collect::<Vec<_>>();
        let mut allow_lists = vec![UrlAllowList {
            source: "calendar subscriptions (any http or https URL)".into(),
            patterns: parse(&["*".into()]),
        }];
        if !fence.allow.is_empty() {
            allow_lists.push(UrlAllowList {
                source: "the operator's [http] fence (allow)".into(),
                patterns: parse(&fence.allow),
            });
        }
        let rules = EgressRules {
            allow_lists,
            deny_lists: vec![UrlAllowList {
                source: "the operator's [http] fence (deny)".into(),
                patterns: parse(&fence.deny),
            }],
            denied_networks: fence
                .networks()?
                .into_iter()
                .map(|network| DeniedNetwork { network, source: "the operator's [http] fence (deny_networks)".into() })
                .collect(),
            own_sockets: own_sockets.to_vec(),
            allow_link_local: false,
        };
        let config = HttpConfig {
            default_timeout: FETCH_TIMEOUT,
            max_response_bytes: cme_api::limits::MAX_CALENDAR_BYTES,
            ..HttpConfig::default()
        };
        Ok(HttpCalendarFetch { client: HttpClient::new(&config, rules, Vec::new())? })
    }
}

#[async_trait::async_trait]
impl CalendarFetch for HttpCalendarFetch {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let request = Request {
            method: "GET".into(),
            url: url.to_string(),
            headers: vec![("Accept".into(), "text/calendar, */*;q=0.5".into())],
            ..Request::default()
        };
        let response = self.client.send(request).await.map_err(|e| FetchError(e.to_string()))?;
        if !(200..300).contains(&response.status) {
            return Err(FetchError(format!("it answered HTTP {}", response.status)));
        }
        if response.body_truncated {
            return Err(FetchError(format!(
                "the calendar is larger than {} bytes",
                cme_api::limits::MAX_CALENDAR_BYTES
            )));
        }
        Ok(response.body)
    }
}
