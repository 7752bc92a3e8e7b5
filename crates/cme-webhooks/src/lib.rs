//! # cme-webhooks: the engine's events, delivered to HTTP receivers
//!
//! A [`Sender`] claims due deliveries from the engine's outbox (see
//! [`cme_engine::events`]), POSTs each as a CloudEvents 1.0 JSON document (structured
//! mode, `Content-Type: application/cloudevents+json`), and records the attempt: a 2xx
//! answer delivers it; anything else (an error status, a redirect, a refused connection,
//! a timeout) is retried with exponential backoff (1 s doubling up to the webhook's
//! `max_backoff`, with jitter), until the webhook's `give_up_after` has passed since the
//! event, when the delivery is kept as `failed`. Deliveries to one webhook go in event
//! order within a batch; after a failure the rest of that batch waits for the retry.
//!
//! Every request carries `Cme-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
//! HMAC-SHA256 over `<t>.<body>` keyed with the webhook's secret (see [`signature`]):
//! a receiver checks it and rejects old timestamps (replays).
//!
//! Invariant: an event is marked delivered only after its receiver answered 2xx; a
//! webhook's secret is used to sign and nowhere else (never logged, never shown); the
//! sender waits on the outbox signal or its next due time, never polls.

mod sender;
mod signature;

pub use sender::{Sender, SenderConfig};
pub use signature::{SIGNATURE_HEADER, signature};

use std::time::Duration;

/// One configured webhook.
///
/// By default a request times out after 10 s, retries back off up to 5 minutes apart,
/// and a delivery is given up 24 hours after its event.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub url: url::Url,
    /// Signs every request; None sends them unsigned.
    pub secret: Option<String>,
    /// Kinds (`executor.failed`), families (`executor.*`) or `*`.
    pub events: Vec<String>,
    pub timeout: Duration,
    pub max_backoff: Duration,
    pub give_up_after: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.shown_url())
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("events", &self.events)
            .finish()
    }
}

/// Why a webhook cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Subscription(String),
    #[error("webhook {name:?}: the URL must be http or https, not {scheme:?}")]
    Scheme { name: String, scheme: String },
    #[error("webhook name {0:?} is configured twice")]
    Duplicate(String),
}

impl Webhook {
    /// A webhook to `url` for `events`, with the default timeout, backoff and give-up time.
    pub fn new(name: impl Into<String>, url: url::Url, events: Vec<String>) -> Webhook {
        Webhook {
            name: name.into(),
            url,
            secret: None,
            events,
            timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            give_up_after: Duration::from_secs(86_400),
        }
    }

    /// The URL as shown: its origin only, the rest masked (receivers such as chat
    /// services put their token in the path; user-info is a password).
    pub fn shown_url(&self) -> String {
        let origin = self.url.origin().ascii_serialization();
        let bare = self.url.path() == "/"
            && self.url.query().is_none()
            && self.url.username().is_empty()
            && self.url.password().is_none();
        if bare { format!("{origin}/") } else { format!("{origin}/***") }
    }

    /// What the engine and the store know of this webhook (not its secret).
    pub fn subscription(&self) -> cme_engine::Subscription {
        cme_engine::Subscription { name: self.name.clone(), shown_url: self.shown_url(), events: self.events.clone() }
    }

    /// Checks one webhook.
    pub fn validate(&self) -> Result<(), WebhookError> {
        self.subscription().validate().map_err(|refused| WebhookError::Subscription(refused.0))?;
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(WebhookError::Scheme { name: self.name.clone(), scheme: self.url.scheme().to_string() });
        }
        Ok(())
    }

    /// Checks a configuration's webhooks: each valid, names unique.
    pub fn validate_all(webhooks: &[Webhook]) -> Result<(), WebhookError> {
        let mut names = std::collections::HashSet::new();
        for webhook in webhooks {
            webhook.validate()?;
            if !names.insert(webhook.name.as_str()) {
                return Err(WebhookError::Duplicate(webhook.name.clone()));
            }
        }
        Ok(())
    }
}

/// Describes what this crate counts (for the Prometheus HELP lines).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "cme_webhook_deliveries_total",
        "Webhook delivery attempts, by webhook and outcome (delivered, failed)."
    );
}
