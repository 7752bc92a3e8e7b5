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
