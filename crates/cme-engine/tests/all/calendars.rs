//! Calendar subscriptions on the engine: a due subscription is refreshed by one replica
//! per period, a failed refresh keeps the last good copy, and the next refresh is due a
//! refresh period later.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cme_engine::storage::prelude::*;
use cme_engine::{CalendarFetch, FetchError, NewSubscription};

use crate::support::*;

const HOLIDAY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20200101\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:New year\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// Answers the calendar (or fails), counting fetches.
#[derive(Default)]
struct Fetches {
    count: AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl CalendarFetch for Fetches {
    async fn fetch(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(FetchError("connection refused".into()));
        }
        Ok(HOLIDAY.as_bytes().to_vec())
    }
}

#[tokio::test]
async fn a_due_subscription_is_refreshed_by_one_replica_and_a_failure_keeps_the_last_copy() {
    let a = Rig::new().await;
    let b = a.replica().await;
    let fetches = Arc::new(Fetches::default());
    a.engine.set_calendar_fetch(fetches.clone());
    b.engine.set_calendar_fetch(fetches.clone());
    let new = NewSubscription {
        name: "company".into(),
        url: "https://calendar.example.com/private-abc/basic.ics".into(),
        ..NewSubscription::default()
    };
    let feed = a.engine.subscribe_calendar(new, "admin").await.unwrap();
    assert_eq!((feed.last_error.as_deref(), fetches.count.load(Ordering::SeqCst)), (None, 1));
    let next = feed.next_fetch.unwrap();
    assert!(next > chrono::Utc::now() + chrono::Duration::seconds(3500), "a refresh period later: {next}");
    // Not due: nobody fetches.
    assert_eq!(a.engine.refresh_due_calendars().await.unwrap() + b.engine.refresh_due_calendars().await.unwrap(), 0);

    // Due now, asked of both replicas at once: one fetch.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    a.store.record_fetch("company", None, None, past).await.unwrap();
    fetches.failing.store(true, Ordering::SeqCst);
    let (x, y) = tokio::join!(a.engine.refresh_due_calendars(), b.engine.refresh_due_calendars());
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    assert_eq!(fetches.count.load(Ordering::SeqCst), 2);
    let failed = a.engine.calendar("company").await.unwrap();
    assert!(failed.last_error.as_deref().is_some_and(|e| e.contains("connection refused")), "{failed:?}");
    assert_eq!(failed.last_fetched, feed.last_fetched, "the last success stays");
    assert_eq!(a.engine.calendar_blackouts("company").await.unwrap(), 1, "the last good copy stays");
}
