//! The sending loop: claim due deliveries, POST them, record each attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use cme_engine::{Attempt, Delivery, DeliveryClaim, EventStore};

use crate::{SIGNATURE_HEADER, Webhook, signature};

/// How the sender runs.
///
/// By default: events say `source: "/cme"`, and up to 8 deliveries are claimed at a time.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// The CloudEvents `source` of every event.
    pub source: String,
    /// Names this sender's leases (the engine id).
    pub owner: String,
    pub batch: u64,
}

impl SenderConfig {
    pub fn new(owner: impl Into<String>) -> SenderConfig {
        SenderConfig { source: "/cme".into(), owner: owner.into(), batch: 8 }
    }
}

/// Delivers the outbox to the configured webhooks.
pub struct Sender {
    storage: Arc<dyn EventStore>,
    webhooks: HashMap<String, Webhook>,
    client: reqwest::Client,
    config: SenderConfig,
}

impl Sender {
    pub fn new(
        storage: Arc<dyn EventStore>,
        webhooks: Vec<Webhook>,
        config: SenderConfig,
    ) -> Result<Sender, crate::WebhookError> {
        Webhook::validate_all(&webhooks)?;
        // Redirects are not followed: a receiver that moved answers 3xx, which is a failure
        // the operator sees, not a hop to wherever it points.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cme-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client without custom TLS builds");
        Ok(Sender { storage, webhooks: webhooks.into_iter().map(|w| (w.name.clone(), w)).collect(), client, config })
    }

    /// Delivers until `shutdown` turns true (the batch in flight is finished first).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.webhooks.is_empty() {
            return;
        }
        let mut signals = self.storage.outbox_signals();
        tracing::info!(webhooks = self.webhooks.len(), "webhook sender started");
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.pass().await {
                Ok(true) => continue,
                Ok(false) => match self.storage.next_delivery(self.furthest()).await {
                    Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or_default().max(Duration::from_millis(10)),
                    Ok(None) => Duration::MAX,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the outbox; trying again in 5 s");
                        Duration::from_secs(5)
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "cannot claim deliveries; trying again in 5 s");
                    Duration::from_secs(5)
                }
            };
            let sleep = async {
                match pause {
                    Duration::MAX => std::future::pending().await,
                    pause => tokio::time::sleep(pause).await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                changed = signals.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims one batch and delivers it; true when a full batch was claimed (more may wait).
    async fn pass(&self) -> Result<bool, cme_engine::StorageError> {
        let claim = DeliveryClaim {
            now: Utc::now(),
            owner: &self.config.owner,
            lease: self.lease(),
            limit: self.config.batch,
            furthest: self.furthest(),
        };
        let claimed = self.storage.claim_deliveries(&claim).await?;
        let full = claimed.len() as u64 == self.config.batch;
        let mut by_webhook: HashMap<String, Vec<Delivery>> = HashMap::new();
        for delivery in claimed {
            by_webhook.entry(delivery.webhook.clone()).or_default().push(delivery);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (name, deliveries) in by_webhook {
            let sender = self.clone_parts();
            tasks.spawn(async move { sender.deliver_in_order(&name, deliveries).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "cannot record a delivery attempt; it is retried when its lease ends");
            }
        }
        Ok(full)
    }

    /// How long a claimed batch is held: long enough to try every row in it.
    fn lease(&self) -> Duration {
        let longest = self.webhooks.values().map(|w| w.timeout).max().unwrap_or_default();
        longest.saturating_mul(self.config.batch as u32) + Duration::from_secs(10)
    }

    /// The furthest ahead this sender holds a row or sets its retry (a lease, or the
    /// backoff's cap); anything further was set by a clock that stepped back since.
    fn furthest(&self) -> Duration {
        let backoff = self.webhooks.values().map(|w| w.max_backoff).max().unwrap_or_default();
        self.lease().max(backoff) + Duration::from_secs(1)
    }

    fn clone_parts(&self) -> Sender {
        Sender {
            storage: self.storage.clone(),
            webhooks: self.webhooks.clone(),
            client: self.client.clone(),
            config: self.config.clone(),
        }
    }

    /// One webhook's share of a batch, in event order; after a failure the rest wait for
    /// the same retry time (a receiver that is down is not hammered).
    async fn deliver_in_order(&self, name: &str, deliveries: Vec<Delivery>) -> Result<(), cme_engine::StorageError> {
        let mut failed: Option<(String, DateTime<Utc>)> = None;
        for delivery in deliveries {
            let attempt = match (&failed, self.webhooks.get(name)) {
                (_, None) => {
                    // Written while the webhook was configured; it is gone now.
                    Attempt::GaveUp { at: Utc::now(), error: format!("webhook {name:?} is no longer configured") }
                }
                (Some((error, retry_at)), Some(_)) => {
                    Attempt::Failed { at: Utc::now(), error: format!("not tried: {error}"), retry_at: *retry_at }
                }
                (None, Some(webhook)) => {
                    let attempt = self.attempt(webhook, &delivery).await;
                    if let Attempt::Failed { error, retry_at, .. } = &attempt {
                        failed = Some((error.clone(), *retry_at));
                    }
                    attempt
                }
            };
            self.storage.finish_delivery(delivery.id, &self.config.owner, &attempt).await?;
        }
        Ok(())
    }

    /// One POST, and what it means for the delivery.
    async fn attempt(&self, webhook: &Webhook, delivery: &Delivery) -> Attempt {
        let mut event = delivery.event.cloud_event(&self.config.source);
        // Event data carries halt reasons, summaries and URLs: masked like every answer.
        cme_secrets::mask_strings(&mut event);
        let body = serde_json::to_vec(&event).expect("JSON values serialise");
        let mut request = self
            .client
            .post(webhook.url.clone())
            .timeout(webhook.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/cloudevents+json; charset=utf-8")
            .header("cme-delivery-attempt", (delivery.attempts + 1).to_string());
        if let Some(secret) = &webhook.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, Utc::now().timestamp(), &body));
        }
        let answer = request.body(body).send().await;
        let at = Utc::now();
        let error = match answer {
            Ok(response) if response.status().is_success() => {
                metrics::counter!("cme_webhook_deliveries_total", "webhook" => webhook.name.clone(), "outcome" => "delivered").increment(1);
                return Attempt::Delivered { at };
            }
            Ok(response) => format!("the receiver answered {}", response.status()),
            // Without the URL: reqwest's errors name it, and its path may be a token.
            Err(e) if e.is_timeout() => format!("no answer within {} s", webhook.timeout.as_secs_f64()),
            Err(e) if e.is_connect() => "cannot connect to the receiver".to_string(),
            Err(e) => format!("the request failed: {}", e.without_url()),
        };
        metrics::counter!("cme_webhook_deliveries_total", "webhook" => webhook.name.clone(), "outcome" => "failed")
            .increment(1);
        let attempts = delivery.attempts + 1;
        if (at - delivery.event.time).to_std().unwrap_or_default() >= webhook.give_up_after {
            tracing::warn!(webhook = %webhook.name, event_id = %delivery.event.id, attempts, %error, "webhook delivery given up");
            return Attempt::GaveUp { at, error };
        }
        let retry_at = at
            + chrono::Duration::from_std(backoff(attempts, delivery.id, webhook.max_backoff))
                .unwrap_or(chrono::Duration::MAX);
        tracing::warn!(webhook = %webhook.name, event_id = %delivery.event.id, attempts, %error, %retry_at, "webhook delivery failed; will retry");
        Attempt::Failed { at, error, retry_at }
    }
}

/// 1 s doubling per attempt up to `max`, less up to a fifth (spread by `id`, so that a
/// backlog does not retry in lockstep).
fn backoff(attempts: u32, id: i64, max: Duration) -> Duration {
    let full = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(20)).min(max);
    let spread = (id.unsigned_abs().wrapping_mul(2_654_435_761) % 1000) as u32;
    full - full / 5 * spread / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_the_cap_with_a_spread_below_a_fifth() {
        let max = Duration::from_secs(300);
        for id in [1, 2, 77, 1_000_003] {
            let delays: Vec<Duration> = (1..=12).map(|a| backoff(a, id, max)).collect();
            assert!(delays[0] <= Duration::from_secs(1) && delays[0] >= Duration::from_millis(800), "{delays:?}");
            assert!(delays[3] <= Duration::from_secs(8) && delays[3] >= Duration::from_millis(6400), "{delays:?}");
            assert!(delays.windows(2).all(|w| w[0] <= w[1]), "never shorter: {delays:?}");
            assert!(delays[11] <= max && delays[11] >= max * 4 / 5, "{delays:?}");
        }
        assert_ne!(backoff(5, 1, max), backoff(5, 2, max), "spread by delivery");
        assert_eq!(backoff(u32::MAX, 1, Duration::from_secs(2)), backoff(3, 1, Duration::from_secs(2)));
    }
}
