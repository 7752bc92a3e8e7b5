//! Storage edge cases the engine's tests cannot reach: rows as earlier versions wrote
//! them, and rows that name no status.

use sea_orm::{ConnectionTrait, Statement};

use cme_engine::storage::prelude::*;
use cme_engine::{ExecutorStatus, RunLog, StorageError};

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
        .query_one_raw(Statement::from_string(
            store.backend(),
            format!("SELECT private_key, passphrase FROM credentials WHERE name = '{name}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

#[tokio::test]
async fn credentials_are_sealed_at_rest_and_open_with_their_key_only() {
    let key = crate::CredentialKey::generate();
    let store =
        Store::connect(&StoreConfig { credential_key: Some(key.clone()), ..StoreConfig::in_memory() }).await.unwrap();
    let audit = cme_engine::AuditEvent::action("admin", "credential.create", "web");
    assert!(store.insert_credential(&credential("web"), &audit).await.unwrap());
    let (private_key, passphrase) = raw_key_column(&store, "web").await;
    assert!(private_key.starts_with("enc:v1:") && !private_key.contains("secret-material"), "{private_key}");
    assert!(passphrase.as_deref().is_some_and(|p| p.starts_with("enc:v1:") && !p.contains("sesame")));
    let opened = store.credential("web").await.unwrap().unwrap();
    assert_eq!(
        (opened.private_key.as_str(), opened.passphrase.as_deref()),
        (credential("web").private_key.as_str(), Some("open sesame"))
    );

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
    plain
        .db()
        .execute_raw(Statement::from_string(
            plain.backend(),
            format!("UPDATE credentials SET private_key = '{sealed_text}'"),
        ))
        .await
        .unwrap();
    match plain.credential("old").await {
        Err(StorageError::Corrupt(why)) => assert!(why.contains("no credential key"), "{why}"),
        other => panic!("a sealed row without the key: {other:?}"),
    }
}

/// A fresh PostgreSQL database for this test, or None when no server is configured.
fn fresh_postgres(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("CME_TEST_POSTGRES_URL") else {
        cme_test_peers::missing_peer(
            "CME_TEST_POSTGRES_URL (a PostgreSQL server; .ci/run starts one)",
            "apt-get install postgresql; CME_TEST_POSTGRES_URL=postgres://...",
        );
        return None;
    };
    let database = format!("cme_store_{name}_{}", std::process::id());
    let status = std::process::Command::new("psql")
        .arg(&admin)
        .args(["-q", "-c", &format!("CREATE DATABASE {database}")])
        .status()
        .unwrap();
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
    let subscription = cme_engine::Subscription {
        name: "ops".into(),
        shown_url: "http://x/".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
    };
    StoreConfig { subscriptions: vec![subscription], ..StoreConfig::in_memory() }
}

/// The furthest ahead the tests' senders hold or retry a row.
const FURTHEST: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Up to ten deliveries claimed at `now` by `owner` for `lease_seconds`.
async fn claim(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    owner: &str,
    lease_seconds: u64,
) -> Vec<cme_engine::Delivery> {
    let claim = cme_engine::DeliveryClaim {
        now,
        owner,
        lease: std::time::Duration::from_secs(lease_seconds),
        limit: 10,
        furthest: FURTHEST,
    };
    store.claim_deliveries(&claim).await.unwrap()
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
    let first = claim(&store, now, "a", 30).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.data["error"], "boom");
    assert!(claim(&store, now, "b", 30).await.is_empty(), "held by a");
    // b may not record an attempt on a's delivery.
    let delivered = cme_engine::Attempt::Delivered { at: now };
    store.finish_delivery(first[0].id, "b", &delivered).await.unwrap();
    assert_eq!(store.delivery_counts("ops").await.unwrap().pending, 1);
    // a's lease ends (it died): b takes it over and delivers it.
    let later = lease + chrono::Duration::seconds(1);
    let next = store.next_delivery(FURTHEST).await.unwrap().expect("a pending delivery");
    assert!((next - lease).num_milliseconds().abs() < 1_000, "due when a's lease ends: {next} vs {lease}");
    let again = claim(&store, later, "b", 30).await;
    assert_eq!(again.len(), 1);
    store.finish_delivery(again[0].id, "b", &delivered).await.unwrap();
    let counts = store.delivery_counts("ops").await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.failed), (0, 1, 0));
    assert_eq!(store.next_delivery(FURTHEST).await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_attempt_waits_for_its_retry_and_unwanted_events_are_not_stored() {
    let store = Store::connect(&subscribed(&["plan.created"])).await.unwrap();
    store.insert_events(&[failed_event()]).await.unwrap();
    let now = chrono::Utc::now();
    assert!(claim(&store, now, "a", 0).await.is_empty(), "ops does not want executor events");

    let store = Store::connect(&subscribed(&["*"])).await.unwrap();
    store.insert_events(&[failed_event()]).await.unwrap();
    let now = chrono::Utc::now();
    let claimed = claim(&store, now, "a", 30).await;
    let retry_at = now + chrono::Duration::seconds(60);
    let failed = cme_engine::Attempt::Failed { at: now, error: "the receiver answered 503".into(), retry_at };
    store.finish_delivery(claimed[0].id, "a", &failed).await.unwrap();
    assert!(claim(&store, now + chrono::Duration::seconds(59), "a", 1).await.is_empty());
    let counts = store.delivery_counts("ops").await.unwrap();
    assert_eq!(counts.last_error.as_deref(), Some("the receiver answered 503"));
    assert_eq!(counts.pending, 1);
    let retried = claim(&store, retry_at, "a", 30).await;
    assert_eq!(retried[0].attempts, 1);
}

fn take(count: u32, per_day: Option<u32>, interval: Option<u64>) -> cme_engine::BudgetTake {
    cme_engine::BudgetTake {
        rule: "web".into(),
        group: "web:eu-west-1:Service=web".into(),
        count,
        max_per_day: per_day,
        min_interval_seconds: interval,
    }
}

#[tokio::test]
async fn the_ledger_counts_a_rolling_day_and_the_time_since_the_last_attack() {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let t0 = chrono::Utc::now() - chrono::Duration::hours(30);
    assert_eq!(store.take_budget(&[take(2, Some(2), None)], "r1", t0, true).await.unwrap(), Ok(()));
    let refused = store
        .take_budget(&[take(1, Some(2), None)], "r2", t0 + chrono::Duration::hours(1), true)
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused.contains("2 terminations per 24 hours") && refused.contains("2 already"), "{refused}");
    // A day later the first two no longer count.
    assert_eq!(
        store.take_budget(&[take(1, Some(2), None)], "r3", t0 + chrono::Duration::hours(25), true).await.unwrap(),
        Ok(())
    );
    // The last attack was at t0 + 25 h: ten minutes must pass.
    let soon = t0 + chrono::Duration::hours(25) + chrono::Duration::minutes(5);
    let waiting = store.take_budget(&[take(1, None, Some(600))], "r4", soon, true).await.unwrap().unwrap_err();
    assert!(waiting.contains("300 s ago") && waiting.contains("600 s must pass"), "{waiting}");
    // A dry run checks without charging.
    let later = soon + chrono::Duration::minutes(10);
    assert_eq!(store.take_budget(&[take(1, Some(2), Some(600))], "dry", later, false).await.unwrap(), Ok(()));
    assert_eq!(store.take_budget(&[take(1, Some(2), Some(600))], "r5", later, true).await.unwrap(), Ok(()));
    assert!(
        store.take_budget(&[take(1, Some(2), None)], "r6", later, true).await.unwrap().is_err(),
        "two in the last day now"
    );
}

/// A database of its own on each backend this machine has: SQLite in memory, and
/// PostgreSQL when `CME_TEST_POSTGRES_URL` names an admin URL.
async fn empty_databases() -> Vec<sea_orm::DatabaseConnection> {
    let mut databases = vec![sea_orm::Database::connect("sqlite::memory:").await.unwrap()];
    if let Ok(admin) = std::env::var("CME_TEST_POSTGRES_URL") {
        let name = format!("cme_store_test_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let server = sea_orm::Database::connect(&admin).await.unwrap();
        server.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        databases.push(sea_orm::Database::connect(format!("{base}/{name}")).await.unwrap());
    }
    databases
}

#[tokio::test]
async fn the_work_counts_start_from_what_is_stored_and_follow_every_change() {
    use sea_orm_migration::MigratorTrait;
    for db in empty_databases().await {
        let run = |sql: &str| {
            let sql = sql.to_string();
            let db = db.clone();
            async move { db.execute_unprepared(&sql).await.unwrap() }
        };
        let counted = || {
            let db = db.clone();
            async move {
                let pair = |sql: &str| Statement::from_string(db.get_database_backend(), sql.to_string());
                let kept = db.query_one_raw(pair("SELECT CAST(SUM(live_plans) AS BIGINT) AS p, CAST(SUM(waiting_executors) AS BIGINT) AS e FROM work_counts")).await.unwrap().unwrap();
                let real = db
                    .query_one_raw(pair(
                        "SELECT (SELECT COUNT(*) FROM plans WHERE deleted_at_us IS NULL) AS p, \
                         (SELECT COUNT(*) FROM executors WHERE status IN ('pending', 'paused')) AS e",
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                let read = |row: &sea_orm::QueryResult| {
                    (row.try_get::<i64>("", "p").unwrap(), row.try_get::<i64>("", "e").unwrap())
                };
                assert_eq!(
                    read(&kept),
                    read(&real),
                    "kept counts against real ones on {:?}",
                    db.get_database_backend()
                );
                read(&kept)
            }
        };
        // Rows stored before the counts existed.
        crate::migration::Migrator::up(&db, Some(11)).await.unwrap();
        let plan = |id: &str, deleted: &str| {
            format!(
                "INSERT INTO plans (id, name, created_at_us, deleted_at_us, attack_ref, attack_plugin, attack_args, planner_ref, \
                 planner_plugin, planner_args, dry_run, timezone, seed, grace_ms, created_by) \
                 VALUES ('{id}', 'p', 1, {deleted}, 'a', 'a', '{{}}', 'p', 'p', '{{}}', false, 'UTC', 0, 1000, 'test')"
            )
        };
        let executor = |id: &str, status: &str| {
            format!(
                "INSERT INTO executors (id, plan_id, due_at_us, status, attempts, grace_ms, created_at_us, targets, log) \
                 VALUES ('{id}', 'p1', 1000, '{status}', 0, 60000, 1000, '[]', '[]')"
            )
        };
        run(&plan("p1", "NULL")).await;
        run(&plan("p2", "5")).await;
        for (id, status) in [("e1", "pending"), ("e2", "paused"), ("e3", "succeeded")] {
            run(&executor(id, status)).await;
        }
        crate::migration::Migrator::up(&db, None).await.unwrap();
        assert_eq!(counted().await, (1, 2));

        run(&plan("p3", "NULL")).await;
        run("UPDATE plans SET deleted_at_us = NULL WHERE id = 'p2'").await;
        assert_eq!(counted().await, (3, 2));
        run("UPDATE plans SET deleted_at_us = 9 WHERE id IN ('p1', 'p3')").await;
        run("UPDATE plans SET name = 'renamed'").await;
        assert_eq!(counted().await, (1, 2));
        run(&executor("e4", "pending")
            .replace("VALUES (", "VALUES ('e5', 'p1', 1000, 'pending', 0, 60000, 1000, '[]', '[]'), ("))
        .await;
        assert_eq!(counted().await, (1, 4));
        run("UPDATE executors SET status = 'running' WHERE id IN ('e1', 'e4')").await;
        run("UPDATE executors SET status = 'pending' WHERE id = 'e3'").await;
        run("UPDATE executors SET status = 'paused' WHERE status = 'pending'").await;
        assert_eq!(counted().await, (1, 3));
        run("DELETE FROM executors WHERE id IN ('e2', 'e1')").await;
        run("DELETE FROM plans").await;
        assert_eq!(counted().await, (0, 2));
    }
}

fn new_plan(id: &str) -> (cme_engine::Plan, Vec<cme_engine::Executor>, cme_engine::AuditEvent) {
    let call = |reference: &str| cme_engine::PlannedCall {
        reference: reference.into(),
        plugin: "p@1.0.0".into(),
        args: serde_json::json!({}),
    };
    let plan = cme_engine::Plan {
        id: id.into(),
        name: format!("plan {id}"),
        created: chrono::Utc::now(),
        deleted: None,
        attack: call("api_request:ApiRequest"),
        planner: call("exact_planner:ExactPlanner"),
        dry_run: false,
        timezone: "UTC".into(),
        seed: 7,
        grace: std::time::Duration::from_secs(60),
        created_by: None,
        paused: None,
        planned_until: None,
        misfire: Default::default(),
        overlap: Default::default(),
        steady_state: Vec::new(),
        stop_conditions: Vec::new(),
        steps: Vec::new(),
        deadline: None,
    };
    let due = chrono::Utc::now() + chrono::Duration::days(1);
    let executors = vec![cme_engine::Executor::pending(format!("{id}-e"), &plan, due)];
    (plan, executors, cme_engine::AuditEvent::action("admin", "plan.create", id))
}

/// Many plans created at once share transactions (the SQLite writer, the PostgreSQL
/// batcher); each is still judged on its own: the caps count the ones before it in the
/// same transaction, a plan that cannot be stored fails alone, and every answered plan is
/// stored.
#[tokio::test(flavor = "multi_thread")]
async fn plans_created_at_once_commit_together_and_are_judged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.path().join("cme.db").display())];
    if let Ok(admin) = std::env::var("CME_TEST_POSTGRES_URL") {
        let name = format!("cme_store_batch_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let server = sea_orm::Database::connect(&admin).await.unwrap();
        server.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        urls.push(format!("{}/{name}", admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin)));
    }
    for url in urls {
        let store = std::sync::Arc::new(Store::connect(&StoreConfig::new(&url)).await.unwrap());
        assert!(store.writer.is_some() || store.batcher.is_some(), "{url}: inserts are grouped");
        // Inserts `ids` all at once under `max_plans`: (stored, over the cap, failed).
        let burst = |ids: Vec<String>, max_plans: u64| {
            let store = store.clone();
            async move {
                let caps = cme_engine::WorkCaps { max_plans, max_pending_executors: 1_000 };
                let tasks: Vec<_> = ids
                    .into_iter()
                    .map(|id| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let (plan, executors, audit) = new_plan(&id);
                            store.insert_plan(&plan, &executors, &audit, None, &caps).await
                        })
                    })
                    .collect();
                let mut outcome = (0, 0, 0);
                for task in tasks {
                    match task.await.unwrap() {
                        Ok(()) => outcome.0 += 1,
                        Err(cme_engine::InsertPlanError::OverCap(_)) => outcome.1 += 1,
                        Err(cme_engine::InsertPlanError::Storage(_)) => outcome.2 += 1,
                    }
                }
                outcome
            }
        };
        assert_eq!(burst(vec!["taken".into()], 1_000).await, (1, 0, 0), "{url}");
        let first: Vec<String> = (0..40).map(|n| format!("plan-{n}")).collect();
        assert_eq!(burst(first, 31).await, (30, 10, 0), "{url}: 30 more within the cap, 10 over it");
        // Alone, it would fit an empty database: the stored counts refuse it (on PostgreSQL
        // the one-statement path finds no room and leaves the verdict to the judged one).
        assert_eq!(burst(vec!["one-more".into()], 31).await, (0, 1, 0), "{url}: the cap is reached");
        // Room for all; one id is taken: its insert fails inside the shared transaction, alone.
        let mut second: Vec<String> = (0..9).map(|n| format!("late-{n}")).collect();
        second.insert(4, "taken".into());
        let (taken_stored, over, failed) = burst(second, 1_000).await;
        assert_eq!((taken_stored, over, failed), (9, 0, 1), "{url}: the taken id alone failed");

        // What was answered is what a fresh connection reads, executors and audit rows alike.
        drop(store);
        let reopened = Store::connect(&StoreConfig::new(&url)).await.unwrap();
        let count = |sql: &str| {
            let reopened = reopened.clone();
            let sql = sql.to_string();
            async move {
                let row = reopened
                    .db()
                    .query_one_raw(Statement::from_string(reopened.backend(), sql))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM plans").await, 40, "{url}");
        assert_eq!(count("SELECT COUNT(*) FROM executors WHERE status = 'pending'").await, 40, "{url}");
        assert_eq!(count("SELECT COUNT(*) FROM audit_events WHERE action = 'plan.create'").await, 40, "{url}");
        assert_eq!(count("SELECT CAST(SUM(waiting_executors) AS BIGINT) FROM work_counts").await, 40, "{url}");
    }
}

/// A store on each backend this machine has (SQLite in memory; PostgreSQL when
/// `CME_TEST_POSTGRES_URL` is set).
async fn stores(test: &str) -> Vec<Store> {
    let mut stores = vec![Store::connect(&StoreConfig::in_memory()).await.unwrap()];
    if let Some(url) = fresh_postgres(test) {
        stores.push(Store::connect(&StoreConfig::new(url)).await.unwrap());
    }
    stores
}

#[tokio::test]
async fn inventories_are_replaced_whole_and_undos_are_recorded_once() {
    use chrono::SubsecRound;
    use cme_engine::{AuditEvent, Inventory, InventoryHost, Undo, UndoState};
    let now = chrono::Utc::now().trunc_subsecs(6); // what the database keeps
    let host = |name: &str, zone: &str| InventoryHost {
        name: name.into(),
        address: "10.0.0.1".into(),
        port: 2222,
        user: String::new(),
        credential: Some("fleet".into()),
        tags: [("zone".to_string(), zone.to_string())].into(),
    };
    for store in stores("inventories").await {
        let web = Inventory {
            name: "web".into(),
            hosts: vec![host("web-1", "a"), host("web-2", "b")],
            updated: now,
            updated_by: "admin".into(),
        };
        store
            .put_inventories(std::slice::from_ref(&web), &AuditEvent::action("admin", "inventory.put", "web"))
            .await
            .unwrap();
        let replaced = Inventory { hosts: vec![host("web-3", "c")], ..web.clone() };
        store
            .put_inventories(std::slice::from_ref(&replaced), &AuditEvent::action("admin", "inventory.put", "web"))
            .await
            .unwrap();
        assert_eq!(store.inventory("web").await.unwrap().unwrap().hosts, replaced.hosts, "replaced whole");
        assert_eq!(store.inventories().await.unwrap().len(), 1);
        assert!(store.delete_inventory("web", &AuditEvent::action("admin", "inventory.delete", "web")).await.unwrap());
        assert!(!store.delete_inventory("web", &AuditEvent::action("admin", "inventory.delete", "web")).await.unwrap());
        assert!(store.inventory("web").await.unwrap().is_none());

        let undo = Undo {
            id: "u1".into(),
            run_id: "e1".into(),
            plan_id: "p1".into(),
            step: Some("stop web".into()),
            plugin: "stop-service@0.1.0".into(),
            address: "10.0.0.1".into(),
            port: 22,
            user: "root".into(),
            credential: "fleet".into(),
            command: "systemctl start nginx".into(),
            revert: Default::default(),
            plan_created_by: Some(cme_engine::Actor::new("ops", "operator")),
            armed: now,
            due: now + chrono::Duration::minutes(5),
            state: UndoState::Pending,
            attempts: 0,
            outcome: None,
            finished: None,
        };
        store.insert_undo(&undo).await.unwrap();
        assert_eq!(store.undos(true, 10).await.unwrap(), vec![undo.clone()]);
        assert_eq!(store.undos_of_run("e1").await.unwrap(), vec![undo.clone()], "a run's undos, with their step");
        assert!(store.undos_of_run("e2").await.unwrap().is_empty());
        let done = Undo {
            state: UndoState::Done,
            attempts: 1,
            outcome: Some("exit 0".into()),
            finished: Some(now),
            ..undo.clone()
        };
        let audit = AuditEvent::action("engine", "undo.run", "u1");
        assert!(store.update_undo(&done, &audit).await.unwrap(), "the first outcome is recorded");
        let failed = Undo { state: UndoState::Failed, ..done.clone() };
        assert!(!store.update_undo(&failed, &audit).await.unwrap(), "a second replica's outcome is not");
        assert_eq!(store.undo("u1").await.unwrap().unwrap().state, UndoState::Done);
        assert!(store.undos(true, 10).await.unwrap().is_empty());
        assert_eq!(store.undos(false, 10).await.unwrap().len(), 1);
    }
}

/// Horizon extension, on the SQLite writer (a few plans per write) and on PostgreSQL (one
/// transaction): an extension whose horizon moved meanwhile stores nothing; the others
/// store their executors; a round over the caps is refused and stores none of the
/// extensions it refused.
#[tokio::test(flavor = "multi_thread")]
async fn recurring_plans_extend_only_from_the_horizon_they_were_planned_from() {
    use chrono::SubsecRound;
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.path().join("cme.db").display())];
    urls.extend(fresh_postgres("extend"));
    let from = chrono::Utc::now().trunc_subsecs(6) + chrono::Duration::days(1);
    let until = from + chrono::Duration::days(1);
    let roomy = cme_engine::WorkCaps { max_plans: 1_000, max_pending_executors: 1_000 };
    for url in urls {
        let store = Store::connect(&StoreConfig::new(&url)).await.unwrap();
        // More plans than one SQLite write takes, so that the round spans several.
        let count = super::queries::EXTENSIONS_PER_WRITE * 2 + 5;
        let mut extensions = Vec::new();
        for n in 0..count {
            let (mut plan, executors, audit) = new_plan(&format!("daily-{n}"));
            plan.planned_until = Some(from);
            store.insert_plan(&plan, &executors, &audit, None, &roomy).await.unwrap();
            let mut next =
                cme_engine::Executor::pending(format!("daily-{n}-next"), &plan, from + chrono::Duration::hours(12));
            next.created = from;
            extensions.push(cme_engine::Extension {
                plan_id: plan.id.clone(),
                from,
                until: Some(until),
                executors: vec![next],
            });
        }
        // Another replica already moved plan 7's horizon.
        let moved = format!("UPDATE plans SET planned_until_us = {} WHERE id = 'daily-7'", until.timestamp_micros());
        store.db().execute_raw(Statement::from_string(store.backend(), moved)).await.unwrap();

        let stored = store.extend_plans(&extensions, &roomy).await.unwrap();
        let expected: Vec<bool> = (0..count).map(|n| n != 7).collect();
        assert_eq!(stored, expected, "{url}");
        assert!(
            store.executor("daily-7-next").await.unwrap().is_none(),
            "{url}: the lost extension stored no executor"
        );
        assert!(store.executor("daily-8-next").await.unwrap().is_some(), "{url}");
        assert!(store.executor(&format!("daily-{}-next", count - 1)).await.unwrap().is_some(), "{url}");
        // Asked again (a retry), every horizon has moved: nothing more is stored.
        assert_eq!(store.extend_plans(&extensions, &roomy).await.unwrap(), vec![false; count], "{url}");

        // A round with no room: refused, and the plans keep their horizons.
        let (mut plan, executors, audit) = new_plan("tight");
        plan.planned_until = Some(from);
        store.insert_plan(&plan, &executors, &audit, None, &roomy).await.unwrap();
        let next = cme_engine::Executor::pending("tight-next".into(), &plan, from + chrono::Duration::hours(12));
        let tight = cme_engine::Extension { plan_id: "tight".into(), from, until: Some(until), executors: vec![next] };
        let full = cme_engine::WorkCaps { max_plans: 1_000, max_pending_executors: count as u64 * 2 };
        assert!(
            matches!(
                store.extend_plans(std::slice::from_ref(&tight), &full).await,
                Err(cme_engine::InsertPlanError::OverCap(_))
            ),
            "{url}"
        );
        assert!(store.executor("tight-next").await.unwrap().is_none(), "{url}");
        assert_eq!(
            store.extend_plans(&[tight], &roomy).await.unwrap(),
            vec![true],
            "{url}: the horizon did not move when refused"
        );
    }
}

/// The plans due for extension page by `(planned_until, id)`: plans that wait (a full
/// frequent plan, a failing planner) never hide the ones behind them.
#[tokio::test]
async fn plans_due_for_extension_page_past_the_ones_that_wait() {
    use chrono::SubsecRound;
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.path().join("cme.db").display())];
    urls.extend(fresh_postgres("paging"));
    let soon = chrono::Utc::now().trunc_subsecs(6) + chrono::Duration::hours(1);
    let roomy = cme_engine::WorkCaps { max_plans: 1_000, max_pending_executors: 1_000 };
    for url in urls {
        let store = Store::connect(&StoreConfig::new(&url)).await.unwrap();
        for (id, hours) in [("b", 0), ("a", 0), ("c", 1), ("d", 2)] {
            let (mut plan, executors, audit) = new_plan(id);
            plan.planned_until = Some(soon + chrono::Duration::hours(hours));
            store.insert_plan(&plan, &executors, &audit, None, &roomy).await.unwrap();
        }
        let before = soon + chrono::Duration::days(1);
        let ids = |plans: Vec<cme_engine::Plan>| plans.into_iter().map(|p| p.id).collect::<Vec<_>>();
        let first = store.plans_to_extend(before, None, 2).await.unwrap();
        let cursor = (first[1].planned_until.unwrap(), first[1].id.clone());
        assert_eq!(ids(first), ["a", "b"], "{url}: soonest first, then by id");
        let rest = store.plans_to_extend(before, Some(&cursor), 10).await.unwrap();
        assert_eq!(ids(rest), ["c", "d"], "{url}");
        assert!(store.plans_to_extend(soon, None, 10).await.unwrap().is_empty(), "{url}: none due before the first");
    }
}

/// On PostgreSQL claims, leases and reaping read the database's clock: a replica whose
/// own clock runs two minutes ahead neither claims an executor early nor reaps a live
/// run, and one two minutes behind still sees its lease expire.
#[tokio::test]
async fn replicas_with_skewed_clocks_claim_and_reap_by_the_databases_clock() {
    let Some(url) = fresh_postgres("skew") else { return };
    let store = Store::connect(&StoreConfig::new(url)).await.unwrap();
    let caps = cme_engine::WorkCaps { max_plans: 10, max_pending_executors: 10 };
    let (plan, mut executors, audit) = new_plan("skew");
    executors[0].due = chrono::Utc::now() + chrono::Duration::seconds(60);
    store.insert_plan(&plan, &executors, &audit, None, &caps).await.unwrap();
    let skew = chrono::Duration::minutes(2);
    let claim = |now: chrono::DateTime<chrono::Utc>, owner: &str| cme_engine::Claim {
        now,
        due_by: now,
        owner: owner.into(),
        lease_until: now + chrono::Duration::seconds(30),
        limit: 10,
    };
    let ahead = chrono::Utc::now() + skew;
    assert!(store.claim_due(&claim(ahead, "fast")).await.unwrap().is_empty(), "due in a minute: not claimed early");
    // Due now: claimed, with a 30 s lease by the database's clock.
    store
        .db()
        .execute_unprepared(&format!(
            "UPDATE executors SET due_at_us = {}",
            crate::convert::us(chrono::Utc::now() - chrono::Duration::seconds(1))
        ))
        .await
        .unwrap();
    let claimed = store.claim_due(&claim(chrono::Utc::now() - skew, "slow")).await.unwrap();
    assert_eq!(claimed.len(), 1, "a replica behind still claims what the database says is due");
    let lease = claimed[0].lease.as_ref().unwrap().expires - chrono::Utc::now();
    assert!(lease > chrono::Duration::seconds(25) && lease <= chrono::Duration::seconds(30), "{lease}");
    assert_eq!(store.reap_expired(chrono::Utc::now() + skew, &[]).await.unwrap(), 0, "a live lease is not reaped");
    assert!(
        store
            .confirm_start(&claimed[0].id, "slow", chrono::Utc::now(), std::time::Duration::from_secs(30))
            .await
            .unwrap(),
        "the claim holds"
    );
    assert!(store.renew_lease(&claimed[0].id, "slow", std::time::Duration::ZERO).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        !store
            .confirm_start(&claimed[0].id, "slow", chrono::Utc::now(), std::time::Duration::from_secs(30))
            .await
            .unwrap(),
        "an expired lease does not"
    );
    assert_eq!(store.reap_expired(chrono::Utc::now() - skew, &[]).await.unwrap(), 1, "an expired lease is reaped");
}

/// A replica paused inside a capped claim holds the claim's advisory lock: every other
/// replica's claim fails after the lock timeout (and is retried by its scheduler) instead
/// of blocking for as long as the pause lasts.
#[tokio::test]
async fn a_claim_waits_for_the_advisory_lock_no_longer_than_the_lock_timeout() {
    let Some(url) = fresh_postgres("lock_timeout") else { return };
    let store = Store::connect(&StoreConfig::new(url.clone())).await.unwrap();
    // The paused replica: a transaction holding the lock, never ending.
    let paused = sea_orm::Database::connect(&url).await.unwrap();
    let txn = sea_orm::TransactionTrait::begin(&paused).await.unwrap();
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(7164494042832924275)").await.unwrap();
    let now = chrono::Utc::now();
    let claim = cme_engine::Claim { now, due_by: now, owner: "b".into(), lease_until: now, limit: 1 };
    let waited = std::time::Instant::now();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), store.claim_due_capped(&claim, 5)).await;
    assert!(matches!(answer, Ok(Err(StorageError::Unavailable(_)))), "{answer:?} after {:?}", waited.elapsed());
    drop(txn);
}

/// The reaping engine's own live runs are spared, however expired their leases look to
/// it (its wall clock stepped forward); the others are reaped.
#[tokio::test]
async fn the_reaper_spares_the_runs_its_engine_still_holds() {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let caps = cme_engine::WorkCaps { max_plans: 10, max_pending_executors: 10 };
    for id in ["a", "b"] {
        let (plan, mut executors, audit) = new_plan(id);
        executors[0].due = chrono::Utc::now() - chrono::Duration::seconds(1);
        store.insert_plan(&plan, &executors, &audit, None, &caps).await.unwrap();
    }
    let now = chrono::Utc::now();
    let claim = cme_engine::Claim { now, due_by: now, owner: "me".into(), lease_until: now, limit: 10 };
    assert_eq!(store.claim_due(&claim).await.unwrap().len(), 2);
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    assert_eq!(store.reap_expired(later, &["a-e".to_string()]).await.unwrap(), 1, "b-e only");
    let spared = store.executor("a-e").await.unwrap().unwrap();
    assert_eq!(spared.status, ExecutorStatus::Running);
}

/// Executors that fall due while halted are cancelled for good, and each is told to the
/// webhooks that want it, in the same transaction.
#[tokio::test]
async fn executors_cancelled_while_halted_are_told() {
    let store = Store::connect(&subscribed(&["executor.cancelled"])).await.unwrap();
    let caps = cme_engine::WorkCaps { max_plans: 10, max_pending_executors: 10 };
    let (plan, mut executors, audit) = new_plan("halted");
    executors[0].due = chrono::Utc::now() - chrono::Duration::seconds(1);
    store.insert_plan(&plan, &executors, &audit, None, &caps).await.unwrap();
    let now = chrono::Utc::now();
    assert_eq!(store.cancel_due_while_halted(now).await.unwrap(), 1);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let told = claim(&store, later, "a", 30).await;
    assert_eq!(told.len(), 1, "one executor.cancelled event: {told:?}");
    assert_eq!((told[0].event.kind, told[0].event.subject.as_str()), ("executor.cancelled", "halted-e"));
}

/// A run that starts late (its engine slowed between claim and start) gets a fresh lease
/// when it confirms its claim: no reaper takes it while its attack may still run.
#[tokio::test]
async fn a_confirmed_start_renews_the_lease_for_the_whole_run() {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let caps = cme_engine::WorkCaps { max_plans: 10, max_pending_executors: 10 };
    let (plan, mut executors, audit) = new_plan("late");
    executors[0].due = chrono::Utc::now() - chrono::Duration::seconds(1);
    store.insert_plan(&plan, &executors, &audit, None, &caps).await.unwrap();
    let now = chrono::Utc::now();
    let lease_until = now + chrono::Duration::milliseconds(300);
    let claim = cme_engine::Claim { now, due_by: now, owner: "me".into(), lease_until, limit: 1 };
    assert_eq!(store.claim_due(&claim).await.unwrap().len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let whole_run = std::time::Duration::from_secs(30);
    assert!(store.confirm_start("late-e", "me", chrono::Utc::now(), whole_run).await.unwrap());
    let after_the_claims_lease = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(store.reap_expired(after_the_claims_lease, &[]).await.unwrap(), 0, "its lease runs from its start");
}

/// A store subscribed to every event on each backend this machine has (SQLite in memory,
/// and PostgreSQL when `CME_TEST_POSTGRES_URL` is set).
async fn outbox_stores(name: &str) -> Vec<Store> {
    let mut stores = vec![Store::connect(&subscribed(&["*"])).await.unwrap()];
    if let Some(url) = fresh_postgres(name) {
        let config = StoreConfig { url, ..subscribed(&["*"]) };
        stores.push(Store::connect(&config).await.unwrap());
    }
    stores
}

fn within_a_second(at: chrono::DateTime<chrono::Utc>, expected: chrono::DateTime<chrono::Utc>) -> bool {
    (at - expected).num_milliseconds().abs() < 1_000
}

/// Events reach each webhook in outbox order: while an earlier event is held by a sender
/// or waits for its retry, later ones wait behind it, and the senders sleep until the
/// earlier one is due instead of polling for the later ones.
#[tokio::test]
async fn a_later_event_waits_behind_an_earlier_one_that_is_held_or_waits_for_its_retry() {
    for store in outbox_stores("order").await {
        store.insert_events(&[failed_event()]).await.unwrap();
        let now = chrono::Utc::now();
        let first = claim(&store, now, "a", 30).await;
        assert_eq!(first.len(), 1);
        store.insert_events(&[failed_event()]).await.unwrap();
        assert!(
            claim(&store, chrono::Utc::now(), "b", 30).await.is_empty(),
            "the second event waits while a holds the first"
        );
        let next = store.next_delivery(FURTHEST).await.unwrap().expect("pending");
        assert!(within_a_second(next, now + chrono::Duration::seconds(30)), "due when a's lease ends: {next}");

        let at = chrono::Utc::now();
        let retry_at = at + chrono::Duration::seconds(1);
        store
            .finish_delivery(first[0].id, "a", &cme_engine::Attempt::Failed { at, error: "503".into(), retry_at })
            .await
            .unwrap();
        assert!(claim(&store, chrono::Utc::now(), "b", 30).await.is_empty(), "the second waits for the first's retry");
        let next = store.next_delivery(FURTHEST).await.unwrap().expect("pending");
        assert!(within_a_second(next, retry_at), "due at the first's retry: {next} vs {retry_at}");

        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        let both = claim(&store, chrono::Utc::now(), "b", 30).await;
        let ids: Vec<i64> = both.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![first[0].id, first[0].id + 1], "both, in order");
    }
}

/// A lease or retry set further ahead than any sender sets one was dated by a clock that
/// has stepped back since (an engine's clock stepped days ahead, then corrected): it does
/// not hold the webhook's events for days.
#[tokio::test]
async fn a_lease_or_retry_dated_by_a_clock_that_stepped_back_does_not_hold_the_queue() {
    for store in outbox_stores("stepped").await {
        store.insert_events(&[failed_event()]).await.unwrap();
        store.insert_events(&[failed_event()]).await.unwrap();
        let now = chrono::Utc::now();
        let held = claim(&store, now, "ahead", 8 * 86_400).await;
        assert_eq!(held.len(), 2);
        let taken = claim(&store, now, "b", 30).await;
        assert_eq!(taken.len(), 2, "a lease eight days long is not one a sender sets");

        let at = chrono::Utc::now();
        let retry_at = at + chrono::Duration::days(8);
        let failed = cme_engine::Attempt::Failed { at, error: "503".into(), retry_at };
        store.finish_delivery(taken[0].id, "b", &failed).await.unwrap();
        store.finish_delivery(taken[1].id, "b", &failed).await.unwrap();
        let next = store.next_delivery(FURTHEST).await.unwrap().expect("pending");
        assert!(within_a_second(next, chrono::Utc::now()), "due now, not in eight days: {next}");
        assert_eq!(claim(&store, chrono::Utc::now(), "c", 30).await.len(), 2, "a retry eight days ahead does not hold");
    }
}

/// A capped claim never takes more than the cap leaves, on every backend: a burst of due
/// executors larger than the cap is claimed a cap's worth at a time.
#[tokio::test]
async fn a_capped_claim_takes_no_more_than_the_cap_leaves() {
    let mut stores = vec![Store::connect(&StoreConfig::in_memory()).await.unwrap()];
    if let Some(url) = fresh_postgres("capped") {
        stores.push(Store::connect(&StoreConfig::new(url)).await.unwrap());
    }
    for store in stores {
        let caps = cme_engine::WorkCaps { max_plans: 100, max_pending_executors: 100 };
        for i in 0..16 {
            let (plan, mut executors, audit) = new_plan(&format!("burst{i}"));
            executors[0].due = chrono::Utc::now() - chrono::Duration::milliseconds(10);
            store.insert_plan(&plan, &executors, &audit, None, &caps).await.unwrap();
        }
        let now = chrono::Utc::now();
        let claim = |limit| cme_engine::Claim {
            now,
            due_by: now + chrono::Duration::seconds(1),
            owner: "a".into(),
            lease_until: now + chrono::Duration::seconds(30),
            limit,
        };
        let (first, held_back) = store.claim_due_capped(&claim(64), 6).await.unwrap();
        assert_eq!((first.len(), held_back), (6, true), "a cap's worth");
        let (second, _) = store.claim_due_capped(&claim(64), 6).await.unwrap();
        assert!(second.is_empty(), "the cap is full: {}", second.len());
    }
}

/// The outbox claim takes no more than its limit on every backend (PostgreSQL once ran a
/// limited subquery again per row and took every due row).
#[tokio::test]
async fn an_outbox_claim_takes_no_more_than_its_limit() {
    for store in outbox_stores("limit").await {
        for _ in 0..16 {
            store.insert_events(&[failed_event()]).await.unwrap();
        }
        let claim = cme_engine::DeliveryClaim {
            now: chrono::Utc::now(),
            owner: "a",
            lease: std::time::Duration::from_secs(30),
            limit: 6,
            furthest: FURTHEST,
        };
        let taken = store.claim_deliveries(&claim).await.unwrap();
        assert_eq!(taken.len(), 6, "the limit holds");
        assert!(taken.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    }
}

/// A transaction SQLite rolled back by itself (as it does on a full disk) leaves sqlx
/// counting it open; the connection is not reused, so no later transaction on it can
/// hold the write lock against every other writer.
#[tokio::test]
async fn a_connection_whose_transaction_sqlite_ended_itself_never_holds_the_write_lock() {
    use sea_orm::TransactionTrait;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cme.db");
    let config =
        StoreConfig { max_connections: 2, ..StoreConfig::new(format!("sqlite://{}?mode=rwc", file.display())) };
    let store = Store::connect(&config).await.unwrap();
    for _ in 0..3 {
        let txn = store.db().begin().await.unwrap();
        // What SQLite does by itself on SQLITE_FULL: the transaction is gone.
        txn.execute_unprepared("ROLLBACK").await.unwrap();
        drop(txn);
        let txn = store.db().begin().await.unwrap();
        txn.execute_unprepared("INSERT INTO settings (key, value, updated_at_us) VALUES ('probe', 'x', 0)")
            .await
            .unwrap();
        drop(txn); // an error in the middle of a change: rolled back
    }
    let other = rusqlite::Connection::open(&file).unwrap();
    let mut free = false;
    for _ in 0..50 {
        if other.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            free = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(free, "another writer gets the write lock");
    let stored: Option<String> =
        other.query_row("SELECT value FROM settings WHERE key = 'probe'", [], |r| r.get(0)).ok();
    assert_eq!(stored, None, "nothing of the rolled-back changes was kept");
}

/// Ids of every page (by number, `size` a page) of `filter`, as the store lists them.
async fn pages_by_number(
    store: &Store,
    filter: &cme_engine::ExecutorFilter,
    size: u64,
    pages: &[u64],
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for page in pages {
        let listed = store.list_executors(filter, cme_engine::Page::new(*page, size).unwrap()).await.unwrap();
        out.push(listed.items.into_iter().map(|e| e.id).collect());
    }
    out
}

#[tokio::test]
async fn deep_pages_by_number_are_exact_before_and_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cme.db").display());
    let store = Store::connect(&StoreConfig::new(url)).await.unwrap();
    // 2,345 executors of two plans, four statuses, due times shared by threes (ties go
    // by id, and the ids run against the due order).
    let statuses = ["pending", "succeeded", "running", "failed"];
    let mut rows: Vec<(i64, String, &str, &str)> = (0..2_345i64)
        .map(|i| {
            (1_000 + i / 3, format!("e{:05}", 9_000 - i), ["p1", "p2"][(i % 2) as usize], statuses[(i % 4) as usize])
        })
        .collect();
    let insert = |rows: &[(i64, String, &str, &str)]| {
        let values: Vec<String> = rows
            .iter()
            .map(|(due, id, plan, status)| format!("('{id}', '{plan}', {due}, '{status}', 0, 60000, 1000, '[]', '[]')"))
            .collect();
        format!(
            "INSERT INTO executors (id, plan_id, due_at_us, status, attempts, grace_ms, created_at_us, targets, log) VALUES {}",
            values.join(", ")
        )
    };
    store.db().execute_unprepared(&insert(&rows)).await.unwrap();
    let filters = [
        cme_engine::ExecutorFilter { statuses: None, plan_id: None, after: None },
        cme_engine::ExecutorFilter { statuses: Some(ExecutorStatus::OPEN.to_vec()), plan_id: None, after: None },
        cme_engine::ExecutorFilter { statuses: Some(ExecutorStatus::TERMINAL.to_vec()), plan_id: None, after: None },
        cme_engine::ExecutorFilter { statuses: None, plan_id: Some("p2".into()), after: None },
        cme_engine::ExecutorFilter {
            statuses: Some(vec![ExecutorStatus::Failed, ExecutorStatus::Pending]),
            plan_id: Some("p1".into()),
            after: None,
        },
    ];
    let pages = [1, 5, 6, 7, 11, 12, 20, 24, 25, 40];
    let expected = |rows: &[(i64, String, &str, &str)], filter: &cme_engine::ExecutorFilter| -> Vec<Vec<String>> {
        let mut listed: Vec<&(i64, String, &str, &str)> = rows
            .iter()
            .filter(|(_, _, plan, status)| {
                filter.plan_id.as_deref().is_none_or(|p| p == *plan)
                    && filter.statuses.as_ref().is_none_or(|s| s.iter().any(|s| s.as_str() == *status))
            })
            .collect();
        listed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        pages
            .iter()
            .map(|page| listed.iter().skip(((page - 1) * 100) as usize).take(100).map(|r| r.1.clone()).collect())
            .collect()
    };
    for filter in &filters {
        assert_eq!(pages_by_number(&store, filter, 100, &pages).await, expected(&rows, filter), "{filter:?}");
        // Asked again: from the rank index built by the first pass.
        assert_eq!(pages_by_number(&store, filter, 100, &pages).await, expected(&rows, filter), "{filter:?}");
    }
    // Rows due before all others, and a status change: every deep page shifts.
    let early: Vec<(i64, String, &str, &str)> =
        (0..37).map(|i| (10 + i, format!("a{i:03}"), "p1", statuses[(i % 4) as usize])).collect();
    store.db().execute_unprepared(&insert(&early)).await.unwrap();
    rows.extend(early);
    store.db().execute_unprepared("UPDATE executors SET status = 'failed' WHERE id = 'e08990'").await.unwrap();
    rows.iter_mut().filter(|r| r.1 == "e08990").for_each(|r| r.3 = "failed");
    for filter in &filters {
        assert_eq!(pages_by_number(&store, filter, 100, &pages).await, expected(&rows, filter), "{filter:?}");
    }
    // Asked again: from the indexes built for the new data.
    for filter in &filters {
        assert_eq!(pages_by_number(&store, filter, 100, &pages).await, expected(&rows, filter), "{filter:?}");
        assert_eq!(pages_by_number(&store, filter, 100, &pages).await, expected(&rows, filter), "{filter:?}");
    }
}

#[tokio::test]
async fn plans_sharing_a_horizon_are_paged_once_each_in_id_order() {
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    // 450 recurring plans extended in one round (one horizon), and one further out; ids
    // inserted out of order.
    let values: Vec<String> = (0..451)
        .map(|i| {
            let until = if i == 450 { 9_000 } else { 5_000 };
            format!(
                "('p{:04}', 'n', 1, NULL, 'a:A', 'a@0.1.0', '{{}}', 'c:C', 'c@0.1.0', '{{}}', 0, 'UTC', 1, 60000, {until})",
                (i * 7919) % 451
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO plans (id, name, created_at_us, deleted_at_us, attack_ref, attack_plugin, attack_args, planner_ref, \
         planner_plugin, planner_args, dry_run, timezone, seed, grace_ms, planned_until_us) VALUES {}",
        values.join(", ")
    );
    store.db().execute_unprepared(&sql).await.unwrap();
    let before = chrono::DateTime::from_timestamp_micros(10_000).unwrap();
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = store.plans_to_extend(before, after.as_ref(), 200).await.unwrap();
        seen.extend(page.iter().map(|p| p.id.clone()));
        after = page.last().and_then(|p| Some((p.planned_until?, p.id.clone())));
        if page.len() < 200 {
            break;
        }
    }
    let mut expected: Vec<String> = (0..451).map(|i| format!("p{:04}", (i * 7919) % 451)).collect();
    // Horizon first, then id: the one further out comes last.
    let last = expected.remove(450);
    expected.sort();
    expected.push(last);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_claim_finds_its_picked_rows_by_id_not_by_reading_every_pending_row() {
    // Without statistics SQLite preferred the status index for the UPDATE's own status
    // check: every claim read every pending executor (90 ms with a million of them).
    let store = Store::connect(&StoreConfig::in_memory()).await.unwrap();
    let now = chrono::Utc::now();
    let claim = cme_engine::Claim {
        now,
        due_by: now,
        owner: "engine".into(),
        lease_until: now + chrono::Duration::seconds(60),
        limit: 10,
    };
    let statement = store.claim_statement(&claim, 10);
    let explain = Statement::from_sql_and_values(
        store.backend(),
        format!("EXPLAIN QUERY PLAN {}", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let plan: Vec<String> = store
        .db()
        .query_all_raw(explain)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(3).unwrap())
        .collect();
    assert!(plan.iter().any(|step| step.contains("(id=?)")), "{plan:#?}");
    assert!(!plan.iter().any(|step| step.ends_with("executors_by_status_due (status=?)")), "{plan:#?}");
}
