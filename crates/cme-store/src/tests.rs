//! Storage edge cases the engine's tests cannot reach: rows as earlier versions wrote
//! them, and rows that name no status.

use sea_orm::{ConnectionTrait, Statement};

use cme_engine::{ExecutorStatus, RunLog, Storage, StorageError};

use crate::{Store, StoreConfig};

async fn store_with_executor(status: &str, log: &str) -> Store {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let sql = format!(
        "INSERT INTO executors (id, plan_id, due_at_us, status, attempts, grace_ms, created_at_us, targets, log) \
         VALUES ('e1', 'p1', 1000, '{status}', 0, 60000, 1000, '[]', '{log}')"
    );
    store.db().execute_raw(Statement::from_string(store.backend(), sql)).await.unwrap();
    store
}

#[tokio::test]
async fn rows_of_earlier_versions_read_in_the_one_log_shape() {
    let store = store_with_executor("cancelled", "[]").await;
    let executor = store.executor("e1").await.unwrap().unwrap();
    assert_eq!(executor.status, ExecutorStatus::Cancelled);
    assert_eq!(executor.log, RunLog::default());
}

#[tokio::test]
async fn a_status_the_engine_does_not_know_is_corrupt_not_guessed() {
    let store = store_with_executor("exploded", "[]").await;
    match store.executor("e1").await {
        Err(StorageError::Corrupt(why)) => assert!(why.contains("exploded"), "{why}"),
        other => panic!("expected a corrupt row, got {other:?}"),
    }
}

fn credential(name: &str) -> cme_engine::Credential {
    cme_engine::Credential {
        name: name.into(),
        user: "ubuntu".into(),
        private_key: "-----BEGIN KEY-----\nsecret-material\n-----END KEY-----\n".into(),
        passphrase: Some("open sesame".into()),
        fingerprint: "SHA256:x".into(),
        algorithm: "ssh-ed25519".into(),
        created: chrono::Utc::now(),
        may_use: vec!["ops-ci".into()],
        owner_plan: None,
    }
}

async fn raw_key_column(store: &Store, name: &str) -> (String, Option<String>) {
    let row = store
        .db()
        .query_one_raw(Statement::from_string(store.backend(), format!("SELECT private_key, passphrase FROM credentials WHERE name = '{name}'")))
        .await
        .unwrap()
        .unwrap();
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

#[tokio::test]
async fn credentials_are_sealed_at_rest_and_open_with_their_key_only() {
    let key = crate::CredentialKey::generate();
    let store = Store::connect(&StoreConfig { credential_key: Some(key.clone()), ..StoreConfig::in_memory() }).await.unwrap();
    let audit = cme_engine::AuditEvent::action("admin", "credential.create", "web");
    assert!(store.insert_credential(&credential("web"), &audit).await.unwrap());
    let (private_key, passphrase) = raw_key_column(&store, "web").await;
    assert!(private_key.starts_with("enc:v1:") && !private_key.contains("secret-material"), "{private_key}");
    assert!(passphrase.as_deref().is_some_and(|p| p.starts_with("enc:v1:") && !p.contains("sesame")));
    let opened = store.credential("web").await.unwrap().unwrap();
    assert_eq!((opened.private_key.as_str(), opened.passphrase.as_deref()), (credential("web").private_key.as_str(), Some("open sesame")));

    // A sealed key moved to another credential's row does not open.
    let moved = "UPDATE credentials SET name = 'db' WHERE name = 'web'";
    store.db().execute_raw(Statement::from_string(store.backend(), moved)).await.unwrap();
    assert!(matches!(store.credential("db").await, Err(StorageError::Corrupt(_))));
}

#[tokio::test]
async fn sealed_credentials_need_the_key_and_old_plain_rows_still_read() {
    let plain = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let audit = cme_engine::AuditEvent::action("admin", "credential.create", "old");
    plain.insert_credential(&credential("old"), &audit).await.unwrap();
    assert_eq!(raw_key_column(&plain, "old").await.0, credential("old").private_key, "without a key: stored as given");
    let sealed_text = crate::CredentialKey::generate().seal("old", "x");
    plain.db().execute_raw(Statement::from_string(plain.backend(), format!("UPDATE credentials SET private_key = '{sealed_text}'"))).await.unwrap();
    match plain.credential("old").await {
        Err(StorageError::Corrupt(why)) => assert!(why.contains("no credential key"), "{why}"),
        other => panic!("a sealed row without the key: {other:?}"),
    }
}

/// A fresh PostgreSQL database for this test, or None when no server is configured.
fn fresh_postgres(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("CME_TEST_POSTGRES_URL") else {
        assert_ne!(std::env::var("CME_REQUIRE_PEERS").as_deref(), Ok("1"), "CME_TEST_POSTGRES_URL is required under CI");
        return None;
    };
    let database = format!("cme_store_{name}_{}", std::process::id());
    let status = std::process::Command::new("psql").arg(&admin).args(["-q", "-c", &format!("CREATE DATABASE {database}")]).status().unwrap();
    assert!(status.success());
    Some(format!("{}/{database}", admin.rsplit_once('/').unwrap().0))
}

#[tokio::test]
async fn replicas_starting_together_migrate_one_at_a_time() {
    let Some(url) = fresh_postgres("migrate") else { return };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let config = StoreConfig::new(url.clone());
            tokio::spawn(async move { Store::connect(&config).await })
        })
        .collect();
    for start in starts {
        let store = start.await.unwrap().expect("every replica starts");
        assert!(!store.halt_state().await.unwrap().halted);
    }
}

fn subscribed(events: &[&str]) -> StoreConfig {
    let subscription = cme_engine::Subscription { name: "ops".into(), shown_url: "http://x/".into(), events: events.iter().map(|e| e.to_string()).collect() };
    StoreConfig { subscriptions: vec![subscription], ..StoreConfig::in_memory() }
}

fn failed_event() -> cme_engine::Event {
    let detail = cme_engine::ExecutorDetail { error: Some("boom"), ..Default::default() };
    cme_engine::Event::executor("e1", "p1", ExecutorStatus::Failed, chrono::Utc::now(), detail).unwrap()
}

#[tokio::test]
async fn a_delivery_is_held_by_one_sender_until_its_lease_ends() {
    let store = Store::connect(&subscribed(&["executor.*"])).await.unwrap();
    let signals = store.outbox_signals();
    store.insert_events(&[failed_event()]).await.unwrap();
    assert!(signals.has_changed().unwrap(), "writing rows wakes the senders");
    let now = chrono::Utc::now();
    let lease = now + chrono::Duration::seconds(30);
    let first = store.claim_deliveries(now, "a", lease, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.data["error"], "boom");
    assert!(store.claim_deliveries(now, "b", lease, 10).await.unwrap().is_empty(), "held by a");
    // b may not record an attempt on a's delivery.
    let delivered = cme_engine::Attempt::Delivered { at: now };
    store.finish_delivery(first[0].id, "b", &delivered).await.unwrap();
    assert_eq!(store.delivery_counts("ops").await.unwrap().pending, 1);
    // a's lease ends (it died): b takes it over and delivers it.
    let later = lease + chrono::Duration::seconds(1);
    assert_eq!(store.next_delivery().await.unwrap(), Some(crate::convert::at(crate::convert::us(lease))));
    let again = store.claim_deliveries(later, "b", later + chrono::Duration::seconds(30), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    store.finish_delivery(again[0].id, "b", &delivered).await.unwrap();
    let counts = store.delivery_counts("ops").await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 1, 0));
    assert_eq!(store.next_delivery().await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_attempt_waits_for_its_retry_and_unwanted_events_are_not_stored() {
    let store = Store::connect(&subscribed(&["plan.created"])).await.unwrap();
    store.insert_events(&[failed_event()]).await.unwrap();
    let now = chrono::Utc::now();
    assert!(store.claim_deliveries(now, "a", now, 10).await.unwrap().is_empty(), "ops does not want executor events");

    let store = Store::connect(&subscribed(&["*"])).await.unwrap();
    store.insert_events(&[failed_event()]).await.unwrap();
    let now = chrono::Utc::now();
    let claimed = store.claim_deliveries(now, "a", now + chrono::Duration::seconds(30), 10).await.unwrap();
    let retry_at = now + chrono::Duration::seconds(60);
    let failed = cme_engine::Attempt::Failed { at: now, error: "the receiver answered 503".into(), retry_at };
    store.finish_delivery(claimed[0].id, "a", &failed).await.unwrap();
    assert!(store.claim_deliveries(now + chrono::Duration::seconds(59), "a", retry_at, 10).await.unwrap().is_empty());
    let counts = store.delivery_counts("ops").await.unwrap();
    assert_eq!(counts.last_error.as_deref(), Some("the receiver answered 503"));
    assert_eq!(counts.pending, 1);
    let retried = store.claim_deliveries(retry_at, "a", retry_at + chrono::Duration::seconds(30), 10).await.unwrap();
    assert_eq!(retried[0].attempts, 1);
}

fn take(count: u32, per_day: Option<u32>, interval: Option<u64>) -> cme_engine::BudgetTake {
    cme_engine::BudgetTake { rule: "web".into(), group: "web:eu-west-1:Service=web".into(), count, max_per_day: per_day, min_interval_seconds: interval }
}

#[tokio::test]
async fn the_ledger_counts_a_rolling_day_and_the_time_since_the_last_attack() {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let t0 = chrono::Utc::now() - chrono::Duration::hours(30);
    assert_eq!(store.take_budget(&[take(2, Some(2), None)], "r1", t0, true).await.unwrap(), Ok(()));
    let refused = store.take_budget(&[take(1, Some(2), None)], "r2", t0 + chrono::Duration::hours(1), true).await.unwrap().unwrap_err();
    assert!(refused.contains("2 terminations per 24 hours") && refused.contains("2 already"), "{refused}");
    // A day later the first two no longer count.
    assert_eq!(store.take_budget(&[take(1, Some(2), None)], "r3", t0 + chrono::Duration::hours(25), true).await.unwrap(), Ok(()));
    // The last attack was at t0 + 25 h: ten minutes must pass.
    let soon = t0 + chrono::Duration::hours(25) + chrono::Duration::minutes(5);
    let waiting = store.take_budget(&[take(1, None, Some(600))], "r4", soon, true).await.unwrap().unwrap_err();
    assert!(waiting.contains("300 s ago") && waiting.contains("600 s must pass"), "{waiting}");
    // A dry run checks without charging.
    let later = soon + chrono::Duration::minutes(10);
    assert_eq!(store.take_budget(&[take(1, Some(2), Some(600))], "dry", later, false).await.unwrap(), Ok(()));
    assert_eq!(store.take_budget(&[take(1, Some(2), Some(600))], "r5", later, true).await.unwrap(), Ok(()));
    assert!(store.take_budget(&[take(1, Some(2), None)], "r6", later, true).await.unwrap().is_err(), "two in the last day now");
}
