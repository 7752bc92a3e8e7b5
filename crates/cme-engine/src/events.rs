//! Events: what the engine tells the outside world happened, as CloudEvents 1.0, and who
//! subscribed to which.
//!
//! Events are written by the store in the transaction of the change they describe (an
//! executor's claim or record, an audited operator action), one outbox row per subscribed
//! webhook, so that none is lost to a crash, a restart or a receiver's outage. What sends
//! them is outside the engine (the engine does no HTTP): it claims due deliveries from
//! [`crate::Storage::claim_deliveries`] and reports each attempt back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AuditDecision, AuditEvent, ExecutorStatus};

/// The `type` prefix of every event: `cme.executor.failed`, `cme.plan.created`, ...
pub const EVENT_TYPE_PREFIX: &str = "cme.";

/// The events a webhook may subscribe to (without the `cme.` prefix), in the order the
/// documentation lists them.
pub const EVENT_KINDS: [&str; 15] = [
    "executor.started",
    "executor.succeeded",
    "executor.failed",
    "executor.missed",
    "executor.skipped",
    "executor.cancelled",
    "plan.created",
    "plan.deleted",
    "plan.firings_skipped",
    "engine.halted",
    "engine.resumed",
    "plugin.uploaded",
    "plugin.granted",
    "plugin.deleted",
    "guard.tripped",
];

/// One event, before it is framed as a CloudEvent.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per event; a receiver deduplicates retried deliveries by it.
    pub id: String,
    /// One of [`EVENT_KINDS`].
    pub kind: &'static str,
    /// The executor, plan or plugin id the event is about ("" for engine events).
    pub subject: String,
    pub time: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl Event {
    fn new(kind: &'static str, subject: impl Into<String>, time: DateTime<Utc>, data: serde_json::Value) -> Event {
        Event { id: uuid::Uuid::new_v4().to_string(), kind, subject: subject.into(), time, data }
    }

    /// An executor reached `status` (running means its attack started).
    pub fn executor(
        executor_id: &str,
        plan_id: &str,
        status: ExecutorStatus,
        time: DateTime<Utc>,
        detail: ExecutorDetail<'_>,
    ) -> Option<Event> {
        let kind = match status {
            ExecutorStatus::Running => "executor.started",
            ExecutorStatus::Succeeded => "executor.succeeded",
            ExecutorStatus::Failed => "executor.failed",
            ExecutorStatus::Missed => "executor.missed",
            ExecutorStatus::Skipped => "executor.skipped",
            ExecutorStatus::Cancelled => "executor.cancelled",
            ExecutorStatus::Pending | ExecutorStatus::Paused => return None,
        };
        let data = serde_json::json!({
            "executor_id": executor_id,
            "plan_id": plan_id,
            "status": status.as_str(),
            "summary": detail.summary,
            "error": detail.error,
            "reason": detail.reason,
            "dry_run": detail.dry_run,
        });
        Some(Event::new(kind, executor_id, time, data))
    }

    /// The event an audited operator action stands for, if any (only allowed actions
    /// happened).
    pub fn of_action(audit: &AuditEvent) -> Option<Event> {
        if audit.decision != AuditDecision::Allowed || audit.source != crate::AuditSource::Api {
            return None;
        }
        let kind = match audit.action.as_str() {
            "plan.create" => "plan.created",
            "plan.delete" => "plan.deleted",
            "plan.firings_skipped" => "plan.firings_skipped",
            "halt" => "engine.halted",
            "resume" => "engine.resumed",
            "plugin.upload" => "plugin.uploaded",
            "plugin.grant" => "plugin.granted",
            "plugin.delete" => "plugin.deleted",
            "guard.trip" => "guard.tripped",
            _ => return None,
        };
        // Audit targets start with the id they are about ("p1", "p1: detail", "id (sha256 ..)").
        let subject = audit.target.split([':', ' ']).next().unwrap_or_default();
        let data = serde_json::json!({
            "actor": audit.actor,
            "target": audit.target,
            "reason": audit.reason,
        });
        Some(Event::new(kind, subject, audit.at, data))
    }

    /// The CloudEvents 1.0 type: `cme.` and the kind.
    pub fn cloud_type(&self) -> String {
        format!("{EVENT_TYPE_PREFIX}{}", self.kind)
    }

    /// The event in the CloudEvents 1.0 JSON format (structured mode), from `source`.
    pub fn cloud_event(&self, source: &str) -> serde_json::Value {
        let mut event = serde_json::json!({
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": self.cloud_type(),
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "datacontenttype": "application/json",
            "data": self.data,
        });
        if !self.subject.is_empty() {
            event["subject"] = self.subject.clone().into();
        }
        event
    }
}

/// What an executor event says besides its status.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecutorDetail<'a> {
    pub summary: Option<&'a str>,
    pub error: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub dry_run: Option<bool>,
}

/// A webhook as the engine and the store see it: its name, where it goes (shown with any
/// user-info masked) and the events it wants. Its secret stays with the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Unique; names the webhook's outbox rows.
    pub name: String,
    /// The receiver's URL, masked for display.
    pub shown_url: String,
    /// Kinds (`executor.failed`), families (`executor.*`) or `*`.
    pub events: Vec<String>,
}

/// Why a webhook's subscription is refused (its name, or an event it names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubscriptionError(pub String);

impl Subscription {
    /// Checks that every pattern names a known kind or family.
    pub fn validate(&self) -> Result<(), SubscriptionError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(SubscriptionError(format!(
                "webhook name {:?}: 1 to 64 letters, digits, '-', '_' or '.'",
                self.name
            )));
        }
        if self.events.is_empty() {
            return Err(SubscriptionError(format!(
                "webhook {:?} subscribes to no events: list kinds such as \"executor.failed\", families such as \"executor.*\", or \"*\"",
                self.name
            )));
        }
        for pattern in &self.events {
            if !EVENT_KINDS.iter().any(|kind| matches(pattern, kind)) {
                return Err(SubscriptionError(format!(
                    "webhook {:?}: unknown event {pattern:?}; known: {}",
                    self.name,
                    EVENT_KINDS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether this webhook wants events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|pattern| matches(pattern, kind))
    }
}

fn matches(pattern: &str, kind: &str) -> bool {
    let pattern = pattern.strip_prefix(EVENT_TYPE_PREFIX).unwrap_or(pattern);
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(family) => kind.strip_prefix(family).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == kind,
    }
}

/// One event on its way to one webhook (an outbox row claimed for an attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub webhook: String,
    /// The CloudEvent, without its `source` (the sender adds it).
    pub event: Event,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What a sender asks of the outbox when it claims deliveries.
///
/// Rows are claimed in outbox order per webhook: a row waits while an earlier pending row
/// of its webhook is held by a sender or waits for its retry, so a receiver never gets an
/// event before an earlier one that is still on its way.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryClaim<'a> {
    /// The sender's clock; on PostgreSQL the database's clock judges instead, so replicas
    /// whose clocks disagree hold and retry rows by one clock.
    pub now: DateTime<Utc>,
    /// Names the sender holding the claimed rows.
    pub owner: &'a str,
    /// How long the claimed rows are held (long enough to try all of them).
    pub lease: std::time::Duration,
    pub limit: u64,
    /// The furthest ahead a sender ever holds a row or sets its retry. A row held or
    /// waiting beyond `now + furthest` was dated by a clock that has since stepped back,
    /// and is due now rather than days later.
    pub furthest: std::time::Duration,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered { at: DateTime<Utc> },
    /// Try again at `retry_at`.
    Failed { at: DateTime<Utc>, error: String, retry_at: DateTime<Utc> },
    /// Failed and out of attempts: kept as `failed`, visible, never sent again.
    GaveUp { at: DateTime<Utc>, error: String },
}

/// The state of a webhook's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub last_delivered: Option<DateTime<Utc>>,
    /// The latest failed attempt, and its error.
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When the oldest pending event happened (how far behind the receiver is).
    pub oldest_pending: Option<DateTime<Utc>>,
    pub next_attempt: Option<DateTime<Utc>>,
}

/// A configured webhook and its deliveries, as `GET /api/1/webhooks/` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookState {
    #[serde(flatten)]
    pub subscription: Subscription,
    #[serde(flatten)]
    pub deliveries: DeliveryCounts,
}

impl crate::Engine {
    /// The configured webhooks with the state of their deliveries.
    pub async fn webhooks(&self) -> Result<Vec<WebhookState>, crate::EngineError> {
        let mut states = Vec::with_capacity(self.config.webhooks.len());
        for subscription in &self.config.webhooks {
            let deliveries = self.ports.events.delivery_counts(&subscription.name).await?;
            states.push(WebhookState { subscription: subscription.clone(), deliveries });
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(events: &[&str]) -> Subscription {
        Subscription {
            name: "ops".into(),
            shown_url: "http://x/".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn patterns_match_kinds_families_and_everything() {
        let s = subscription(&["executor.*", "cme.plan.created"]);
        assert!(s.wants("executor.failed"));
        assert!(s.wants("plan.created"));
        assert!(!s.wants("plan.deleted"));
        assert!(!s.wants("engine.halted"));
        assert!(subscription(&["*"]).wants("plugin.granted"));
        assert!(!subscription(&["exec.*"]).wants("executor.failed"), "a family is a whole segment");
    }

    #[test]
    fn unknown_events_and_bad_names_are_refused_naming_them() {
        let error = subscription(&["executor.exploded"]).validate().unwrap_err().to_string();
        assert!(error.contains("executor.exploded") && error.contains("executor.failed"), "{error}");
        assert!(subscription(&[]).validate().is_err());
        let bad = Subscription { name: "a b".into(), ..subscription(&["*"]) };
        assert!(bad.validate().unwrap_err().to_string().contains("a b"));
        subscription(&["executor.*", "engine.halted", "*"]).validate().unwrap();
    }

    #[test]
    fn operator_actions_become_events_about_their_subject() {
        let upload = AuditEvent::action("admin", "plugin.upload", "ping@1.0.0 (sha256 ab12)");
        let event = Event::of_action(&upload).unwrap();
        assert_eq!((event.kind, event.subject.as_str()), ("plugin.uploaded", "ping@1.0.0"));
        let grant = AuditEvent::action("admin", "plugin.grant", "ping@1.0.0: http");
        assert_eq!(Event::of_action(&grant).unwrap().subject, "ping@1.0.0");
        assert_eq!(Event::of_action(&AuditEvent::action("admin", "halt", "")).unwrap().kind, "engine.halted");
        assert!(Event::of_action(&upload.clone().denied("too big")).is_none(), "a refused upload did not happen");
        assert!(Event::of_action(&AuditEvent::action("admin", "credential.create", "k")).is_none());
        let trip = AuditEvent {
            reason: Some("checkout 503".into()),
            ..AuditEvent::action("guard", "guard.trip", "p1: http-probe@0.1.0 (halt)")
        };
        let tripped = Event::of_action(&trip).unwrap();
        assert_eq!((tripped.kind, tripped.subject.as_str()), ("guard.tripped", "p1"));
        assert_eq!(tripped.data["reason"], "checkout 503");
    }

    #[test]
    fn a_cloud_event_has_the_required_attributes() {
        let event = Event::executor(
            "e1",
            "p1",
            ExecutorStatus::Failed,
            Utc::now(),
            ExecutorDetail { error: Some("boom"), ..Default::default() },
        )
        .unwrap();
        let cloud = event.cloud_event("/cme/test");
        for attribute in ["specversion", "id", "source", "type"] {
            assert!(cloud.get(attribute).is_some_and(|v| v.is_string()), "{attribute} missing in {cloud}");
        }
        assert_eq!(cloud["type"], "cme.executor.failed");
        assert_eq!(cloud["subject"], "e1");
        assert_eq!(cloud["data"]["error"], "boom");
        assert!(Event::executor("e1", "p1", ExecutorStatus::Pending, Utc::now(), ExecutorDetail::default()).is_none());
    }
}
