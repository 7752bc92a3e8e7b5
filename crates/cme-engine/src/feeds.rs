//! Calendars as a resource: every calendar the engine holds blackouts of, uploaded
//! (`text/calendar`) or subscribed to by URL — the secret iCal addresses Google and
//! Outlook give, which is how companies publish their holidays.
//!
//! A subscription is fetched through the [`CalendarFetch`] port (the binary's HTTP client,
//! under the same egress rules and `[http]` fence as plugins), every `refresh_seconds`,
//! by one replica per period: a replica claims a due calendar by moving its next fetch
//! ahead in one conditional write, so two never fetch the same period. A fetch that
//! fails, or a file that no longer reads, leaves the last good copy's blackouts in place
//! and shows the error. The URL is a secret: answers show its origin only, and its path
//! and query are masked wherever the engine writes text.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::EngineError;

/// The shortest refresh a subscription may ask for.
pub const MIN_REFRESH_SECONDS: u64 = 300;
/// A subscription's refresh when it names none.
pub const DEFAULT_REFRESH_SECONDS: u64 = 3_600;
/// The longest a subscription's URL may be.
pub const MAX_URL: usize = 2_048;
/// How long a replica holds a calendar it claimed for a fetch before another may.
const FETCH_HOLD: Duration = Duration::from_secs(120);
/// The longest the keeper sleeps between looks at the due calendars (a subscription made
/// on another replica is found within this).
const KEEPER_NAP: Duration = Duration::from_secs(60);

/// A calendar the engine holds blackouts of.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarFeed {
    pub name: String,
    /// The subscription's address (a secret); None: uploaded.
    pub url: Option<String>,
    pub refresh_seconds: u64,
    /// The zone of floating times and dates; None: the file's `X-WR-TIMEZONE`, else the
    /// engine's.
    pub timezone: Option<String>,
    pub plan_id: Option<String>,
    pub stop_running: bool,
    pub include_free: bool,
    pub created: DateTime<Utc>,
    pub created_by: String,
    /// The last successful fetch (or upload).
    pub last_fetched: Option<DateTime<Utc>>,
    /// Why the last fetch failed; None after a success.
    pub last_error: Option<String>,
    /// When a replica may fetch it next (subscriptions only).
    pub next_fetch: Option<DateTime<Utc>>,
}

impl CalendarFeed {
    /// The URL as answers show it: its origin only.
    pub fn shown_url(&self) -> Option<String> {
        self.url.as_deref().map(origin_of)
    }
}

/// The origin of a URL (`https://calendar.google.com`); what a log or answer may show.
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => "(not a URL)".into(),
    }
}

/// Teaches the masker a subscription URL's secret parts: its user-info, and its path,
/// query and fragment (Google's and Outlook's secret is in the path).
fn remember_url(url: &str) {
    cme_secrets::remember_user_info(url);
    if let Ok(parsed) = url::Url::parse(url) {
        cme_secrets::remember(&parsed[url::Position::BeforePath..]);
    }
}

/// A subscription to make (`POST /api/1/calendars/` with JSON).
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub name: String,
    pub url: String,
    pub refresh_seconds: Option<u64>,
    pub timezone: Option<String>,
    pub plan_id: Option<String>,
    pub stop_running: bool,
    pub include_free: bool,
}

/// Why a calendar could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a calendar's text (the binary's HTTP client under the egress rules and the
/// operator's `[http]` fence).
#[async_trait::async_trait]
pub trait CalendarFetch: Send + Sync + 'static {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

impl crate::Engine {
    /// Gives the engine its way to fetch subscribed calendars (before `start`); without
    /// one, subscriptions are refused.
    pub fn set_calendar_fetch(&self, fetch: Arc<dyn CalendarFetch>) {
        let _ = self.calendar_fetch.set(fetch);
    }

    /// Subscribes to a calendar by URL and fetches it at once; audited. The answer shows
    /// how the first fetch went (its error too: the subscription stays and is retried).
    pub async fn subscribe_calendar(&self, new: NewSubscription, by: &str) -> Result<CalendarFeed, EngineError> {
        let fetch = self.calendar_fetch.get().cloned().ok_or_else(|| {
            EngineError::invalid("/url", "this engine cannot fetch calendars (no HTTP client configured)")
        })?;
        let name = crate::blackouts::calendar_name(&new.name)?;
        let url = new.url.trim().to_string();
        if url.len() > MAX_URL
            || !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("webcal://"))
        {
            return Err(EngineError::invalid(
                "/url",
                format!("a calendar's URL is an http(s) or webcal address of at most {MAX_URL} characters"),
            ));
        }
        // webcal:// is how calendar apps are asked to subscribe; it is fetched over HTTPS.
        let url = match url.strip_prefix("webcal://") {
            Some(rest) => format!("https://{rest}"),
            None => url,
        };
        remember_url(&url);
        let refresh = new.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if refresh < MIN_REFRESH_SECONDS {
            return Err(EngineError::invalid(
                "/refresh_seconds",
                format!("a calendar is refreshed at most every {MIN_REFRESH_SECONDS} seconds"),
            ));
        }
        if let Some(zone) = new.timezone.as_deref() {
            self.zone_named(Some(zone))?;
        }
        self.check_blackout_plan(new.plan_id.as_deref()).await?;
        let now = Utc::now();
        let feed = CalendarFeed {
            name: name.clone(),
            url: Some(url),
            refresh_seconds: refresh,
            timezone: new.timezone,
            plan_id: new.plan_id,
            stop_running: new.stop_running,
            include_free: new.include_free,
            created: now,
            created_by: by.to_string(),
            last_fetched: None,
            last_error: None,
            next_fetch: Some(now + chrono::Duration::seconds(FETCH_HOLD.as_secs() as i64)),
        };
        let shown = feed.shown_url().unwrap_or_default();
        let audit = crate::AuditEvent::action(by, "calendar.subscribe", format!("{name}: {shown}"));
        self.ports.feeds.save_feed(&feed, Some(&audit)).await?;
        tracing::info!(calendar = %name, url = %shown, by, "calendar subscribed");
        self.refresh_calendar(feed, fetch.as_ref()).await;
        self.calendar(&name).await
    }

    /// Every calendar, by name.
    pub async fn calendars(&self) -> Result<Vec<(CalendarFeed, u64)>, EngineError> {
        let counts = self.ports.feeds.blackouts_per_calendar().await?;
        let feeds = self.ports.feeds.feeds().await?;
        Ok(feeds
            .into_iter()
            .map(|feed| {
                let count = counts.get(&feed.name).copied().unwrap_or(0);
                (feed, count)
            })
            .collect())
    }

    /// One calendar.
    pub async fn calendar(&self, name: &str) -> Result<CalendarFeed, EngineError> {
        self.ports.feeds.feed(name).await?.ok_or_else(|| EngineError::not_found(crate::Resource::Calendar, name))
    }

    /// How many blackouts a calendar holds now.
    pub async fn calendar_blackouts(&self, name: &str) -> Result<u64, EngineError> {
        Ok(self.ports.feeds.blackouts_per_calendar().await?.get(name).copied().unwrap_or(0))
    }

    /// Deletes a calendar with its blackouts (a subscription is not fetched again); audited.
    pub async fn delete_calendar(&self, name: &str, by: &str) -> Result<(), EngineError> {
        let audit = crate::AuditEvent::action(by, "calendar.delete", name);
        if !self.ports.feeds.delete_feed(name, &audit).await? {
            return Err(EngineError::not_found(crate::Resource::Calendar, name));
        }
        tracing::info!(calendar = %name, by, "calendar deleted");
        Ok(())
    }

    /// Fetches and imports one subscription now, recording how it went; a failure keeps
    /// the last good copy.
    async fn refresh_calendar(&self, feed: CalendarFeed, fetch: &dyn CalendarFetch) {
        let Some(url) = feed.url.clone() else { return };
        remember_url(&url);
        let next = Utc::now() + chrono::Duration::seconds(feed.refresh_seconds as i64);
        let outcome = match fetch.fetch(&url).await {
            Err(e) => Err(format!("fetching it failed: {}", cme_secrets::text_of(&e.0))),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => Err("what it answered is not UTF-8 text".to_string()),
                Ok(text) => {
                    let import = crate::CalendarImport {
                        name: feed.name.clone(),
                        timezone: feed.timezone.clone(),
                        plan_id: feed.plan_id.clone(),
                        stop_running: feed.stop_running,
                        include_free: feed.include_free,
                        strict: false,
                    };
                    self.import_events(import, &text, "calendar refresh", false)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("what it answered cannot be imported: {e}"))
                }
            },
        };
        let (fetched, error) = match outcome {
            Ok(()) => (Some(Utc::now()), None),
            Err(e) => {
                tracing::warn!(calendar = %feed.name, error = %e, "calendar refresh failed; its last good copy stays");
                (None, Some(e))
            }
        };
        if let Err(e) = self.ports.feeds.record_fetch(&feed.name, fetched, error.as_deref(), next).await {
            tracing::error!(calendar = %feed.name, error = %e, "cannot record a calendar refresh");
        }
    }

    /// Refreshes the subscriptions due now, one replica per period (a calendar another
    /// replica claimed is left to it); how many this engine refreshed.
    pub async fn refresh_due_calendars(&self) -> Result<usize, EngineError> {
        let Some(fetch) = self.calendar_fetch.get().cloned() else { return Ok(0) };
        let mut refreshed = 0;
        loop {
            let now = Utc::now();
            let hold = now + chrono::Duration::seconds(FETCH_HOLD.as_secs() as i64);
            let Some(feed) = self.ports.feeds.claim_due_feed(now, hold).await? else { return Ok(refreshed) };
            self.refresh_calendar(feed, fetch.as_ref()).await;
            refreshed += 1;
        }
    }

    /// Refreshes due subscriptions until shutdown; sleeps until the next is due (at most
    /// [`KEEPER_NAP`], so that one made on another replica is found).
    pub(crate) async fn keep_calendars(self: Arc<Self>) {
        if self.calendar_fetch.get().is_none() {
            return;
        }
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if let Err(e) = self.refresh_due_calendars().await {
                tracing::warn!(error = %e, "cannot refresh the calendars due");
            }
            let now = Utc::now();
            let next = match self.ports.feeds.feeds().await {
                Ok(feeds) => feeds.iter().filter(|f| f.url.is_some()).filter_map(|f| f.next_fetch).min(),
                Err(_) => None,
            };
            let nap = next.map_or(KEEPER_NAP, |next| (next - now).to_std().unwrap_or(Duration::ZERO).min(KEEPER_NAP));
            tokio::select! {
                _ = tokio::time::sleep(nap.max(Duration::from_millis(500))) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_origin_of_a_calendar_url_is_shown() {
        assert_eq!(
            origin_of("https://calendar.google.com/calendar/ical/x%40group/private-abc123/basic.ics"),
            "https://calendar.google.com"
        );
        assert_eq!(
            origin_of("https://user:pw@outlook.office365.com/owa/calendar/x/reachcalendar.ics"),
            "https://outlook.office365.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080?token=s3cret"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("not a url"), "(not a URL)");
    }

    #[test]
    fn a_calendar_urls_path_and_user_info_are_masked() {
        let url = "https://ops:hunter2-long-pass@calendar.example.com/private-0123456789abcdef/basic.ics?k=1";
        remember_url(url);
        let text = cme_secrets::text_of(&format!("fetching {url} failed")).into_owned();
        assert!(!text.contains("hunter2") && !text.contains("private-0123456789abcdef"), "{text}");
        assert!(text.contains("calendar.example.com"), "the origin stays readable: {text}");
    }
}
