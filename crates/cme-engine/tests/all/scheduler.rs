use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use cme_engine::storage::prelude::*;
use cme_engine::{AuditSource, EngineConfig, ExecutorStatus, Page, Ports};

use crate::support::{Rig, config, finished, operator, plan, reaches};

#[tokio::test]
async fn a_due_executor_runs_once_with_its_grant_and_its_result_is_recorded() {
    let rig = Rig::new().await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.report.as_ref().unwrap().targets, ["t1"]);
    assert_eq!(done.log.stdout, "ran");
    assert!(done.lease.is_none(), "the lease is released with the result");
    let runs = rig.runs();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].grant.scripts, "the built-in's configured grant is what it runs with");
    let audit = rig.engine.audit(Page::default()).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.event.source == AuditSource::Plugin && e.event.run_id.as_deref() == Some(&*executors[0].id))
    );
}

#[tokio::test]
async fn failures_are_recorded_with_their_reason() {
    let rig = Rig::new().await;
    rig.engine.start();
    let (_, executors) =
        rig.engine.create_plan(plan(json!({"fail": "boom"}), json!({"in_ms": [50]})), &operator()).await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("boom"));
}

#[tokio::test]
async fn executors_past_their_grace_are_missed_not_run() {
    let rig = Rig::new().await;
    let mut late = plan(json!({}), json!({"in_ms": [-5_000]}));
    late.grace_seconds = Some(1);
    let (_, executors) = rig.engine.create_plan(late, &operator()).await.unwrap();
    rig.engine.start();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Missed);
    assert!(rig.runs().is_empty());
}

#[tokio::test]
async fn two_engines_never_run_one_executor_twice() {
    let a = Rig::new().await;
    let b = a.replica().await;
    let (_, executors) = a.engine.create_plan(plan(json!({}), json!({"count": 40})), &operator()).await.unwrap();
    a.engine.start();
    b.engine.start();
    for executor in &executors {
        assert_eq!(finished(&a.engine, &executor.id).await.status, ExecutorStatus::Succeeded);
    }
    let mut ran: Vec<String> = a.runs().into_iter().chain(b.runs()).map(|c| c.run_id).collect();
    ran.sort();
    let before = ran.len();
    ran.dedup();
    assert_eq!(before, 40);
    assert_eq!(ran.len(), 40, "each executor ran exactly once");
}

#[tokio::test]
async fn expired_leases_are_reaped_as_outcome_unknown() {
    let rig = Rig::new().await;
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [-10]})), &operator()).await.unwrap();
    // Another engine claimed it and died: its lease has expired.
    let claimed = rig.store.claim_due(&claim("dead-engine", Utc::now() - chrono::Duration::seconds(1))).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.as_ref().unwrap().owner, "dead-engine");
    rig.engine.start();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Failed);
    assert!(done.error.unwrap().starts_with("outcome unknown"));
    assert!(rig.runs().is_empty(), "a destructive attack is never re-run blindly");
}

#[tokio::test]
async fn halt_cancels_running_attacks_and_executors_that_fall_due() {
    let rig = Rig::new().await;
    rig.engine.start();
    let (_, running) =
        rig.engine.create_plan(plan(json!({"sleep_ms": 30_000}), json!({"in_ms": [0]})), &operator()).await.unwrap();
    reaches(&rig.engine, &running[0].id, ExecutorStatus::Running).await;
    let (_, later) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [300]})), &operator()).await.unwrap();
    let state = rig.engine.halt(Some("game day over".into()), "operator").await.unwrap();
    assert!(state.state.halted && state.persisted);
    let cancelled = finished(&rig.engine, &running[0].id).await;
    assert_eq!(cancelled.status, ExecutorStatus::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some("cancelled while running: halted: game day over"));
    assert_eq!(cancelled.log.stdout, "ran", "a cancelled run keeps its partial log");
    let audit = rig.engine.audit(Page::default()).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.event.source == AuditSource::Plugin && e.event.run_id.as_deref() == Some(&*running[0].id)),
        "and the audit rows of the calls it made"
    );
    let skipped = finished(&rig.engine, &later[0].id).await;
    assert_eq!(skipped.status, ExecutorStatus::Cancelled);
    assert_eq!(rig.runs().len(), 1, "nothing started while halted");
    assert!(rig.engine.halt_state().await.unwrap().state.halted, "the switch is persisted");

    rig.engine.resume("operator").await.unwrap();
    let (_, after) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [50]})), &operator()).await.unwrap();
    assert_eq!(finished(&rig.engine, &after[0].id).await.status, ExecutorStatus::Succeeded);
    let actions: Vec<String> = crate::support::audited(&rig.engine)
        .await
        .into_iter()
        .map(|(a, _, _)| a)
        .filter(|a| a == "halt" || a == "resume")
        .collect();
    assert_eq!(actions, ["halt", "resume"]);
}

#[tokio::test]
async fn a_shutdown_while_claiming_neither_panics_nor_loses_the_claim() {
    // Claims are slow here; the shutdown takes every run slot while one is in flight.
    let store = Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let slow = Arc::new(crate::slow::SlowClaims::new(store.clone()));
    let rig = Rig::over(
        store,
        slow.ports(),
        EngineConfig { max_concurrent_runs: 2, shutdown_deadline: Duration::from_secs(5), ..config() },
    )
    .await;
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [0]})), &operator()).await.unwrap();
    rig.engine.start();
    slow.entered.notified().await;
    let engine = rig.engine.clone();
    let shutdown = tokio::spawn(async move { engine.shutdown().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    slow.release.notify_one();
    shutdown.await.expect("shutdown completes");
    let done = rig.engine.executor(&executors[0].id).await.unwrap().0;
    assert_eq!(
        done.status,
        ExecutorStatus::Succeeded,
        "the claimed run had its slot and finished before the engine stopped"
    );
}

#[tokio::test]
async fn a_leashed_engine_runs_every_plan_dry_whenever_it_was_made() {
    let unleashed = Rig::new().await;
    let (created, executors) =
        unleashed.engine.create_plan(plan(json!({}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    assert!(!created.plan.dry_run);
    // Only a leashed replica runs: it must not fire the plan for real.
    let store = unleashed.store.clone();
    let leashed = Rig::over(
        store.clone(),
        cme_engine::Ports::of(store),
        EngineConfig { dry_run: true, engine_id: "leashed".into(), ..config() },
    )
    .await;
    leashed.engine.start();
    let done = finished(&leashed.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded);
    assert_eq!(done.dry_run, Some(true));
    assert_eq!(leashed.runs().iter().map(|c| c.dry_run).collect::<Vec<_>>(), [true]);
}

#[tokio::test]
async fn a_halt_holds_and_cancels_runs_even_when_it_cannot_be_stored() {
    let store = Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let faulty = Arc::new(crate::slow::SlowClaims::fast(store.clone()));
    let rig = Rig::over(store.clone(), faulty.ports(), config()).await;
    rig.engine.start();
    let (_, running) =
        rig.engine.create_plan(plan(json!({"sleep_ms": 30_000}), json!({"in_ms": [0]})), &operator()).await.unwrap();
    reaches(&rig.engine, &running[0].id, ExecutorStatus::Running).await;
    faulty.fail_halt_writes.store(true, std::sync::atomic::Ordering::SeqCst);

    let halt = rig.engine.halt(Some("db trouble".into()), "operator").await.unwrap();
    assert!(halt.state.halted);
    assert!(!halt.persisted, "the answer says the halt is not stored");
    assert_eq!(
        finished(&rig.engine, &running[0].id).await.status,
        ExecutorStatus::Cancelled,
        "the running attack was cancelled anyway"
    );
    let (_, later) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    assert_eq!(
        finished(&rig.engine, &later[0].id).await.status,
        ExecutorStatus::Cancelled,
        "nothing starts while the halt holds here"
    );
    assert!(!rig.engine.halt_state().await.unwrap().persisted);
    assert_eq!(rig.runs().len(), 1);

    // Storage recovers: the retried write stores the halt for every replica.
    faulty.fail_halt_writes.store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..500 {
        if store.halt_state().await.unwrap().halted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.halt_state().await.unwrap().halted, "the halt was stored once storage answered");
    assert!(rig.engine.halt_state().await.unwrap().persisted);
}

/// A claimed run waits for its due time no longer than the claim-ahead window it was
/// claimed for: a wall clock stepped back two hours right after the claim does not hold
/// the run (its slot, its lease) for two hours.
#[tokio::test]
async fn a_claimed_run_waits_no_longer_than_its_claim_ahead_when_the_clock_steps_back() {
    let store = Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let stepped = Arc::new(crate::slow::SlowClaims::fast(store.clone()));
    stepped.due_shift_ms.store(2 * 3_600_000, std::sync::atomic::Ordering::SeqCst);
    let rig = Rig::over(store.clone(), stepped.ports(), config()).await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    assert_eq!(
        finished(&rig.engine, &executors[0].id).await.status,
        ExecutorStatus::Succeeded,
        "the run started within its claim-ahead window"
    );
}

/// A halt this engine stored is lifted by a resume on another replica: the engine does
/// not stay halted on its own, cancelling every replica's executors as they fall due.
#[tokio::test]
async fn a_resume_by_another_replica_lifts_a_halt_this_engine_stored() {
    let rig = Rig::new().await;
    rig.engine.start();
    assert!(rig.engine.halt(Some("drill".into()), "operator").await.unwrap().persisted);
    let resumed = cme_engine::AuditEvent::action("operator", "resume", "");
    rig.store.set_halt_state(&cme_engine::HaltState::default(), &resumed).await.unwrap();
    assert!(!rig.engine.halt_state().await.unwrap().state.halted, "the stored switch speaks once stored");
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    assert_eq!(
        finished(&rig.engine, &executors[0].id).await.status,
        ExecutorStatus::Succeeded,
        "resumed everywhere: the executor runs"
    );
}

#[tokio::test]
async fn a_claim_checks_the_stored_halt_in_the_same_statement() {
    let rig = Rig::new().await;
    rig.engine.create_plan(plan(json!({}), json!({"in_ms": [-10]})), &operator()).await.unwrap();
    // Another replica halted: a claim by any engine that has not looked yet finds nothing.
    let halted = cme_engine::HaltState { halted: true, since: Some(Utc::now()), reason: None };
    rig.store.set_halt_state(&halted, &cme_engine::AuditEvent::action("operator", "halt", "")).await.unwrap();
    let claimed = rig.store.claim_due(&claim("late-engine", Utc::now() + chrono::Duration::seconds(60))).await.unwrap();
    assert!(claimed.is_empty(), "nothing is claimed while the stored switch is on");
    rig.store
        .set_halt_state(&cme_engine::HaltState::default(), &cme_engine::AuditEvent::action("operator", "resume", ""))
        .await
        .unwrap();
    assert_eq!(
        rig.store.claim_due(&claim("late-engine", Utc::now() + chrono::Duration::seconds(60))).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_plan_fired_on_request_runs_at_once_and_is_audited_but_not_while_halted() {
    let rig = Rig::new().await;
    rig.engine.start();
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [3_600_000]})), &operator()).await.unwrap();
    let fired = rig.engine.run_plan_now(&created.plan.id, &operator()).await.unwrap();
    assert_ne!(fired.id, executors[0].id);
    let done = finished(&rig.engine, &fired.id).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded);
    assert_eq!(
        rig.engine.executor(&executors[0].id).await.unwrap().0.status,
        ExecutorStatus::Pending,
        "the planned run is untouched"
    );
    let audit = rig.engine.audit(Page::default()).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.event.action == "plan.run" && e.event.actor == "operator" && e.event.target.contains(&fired.id))
    );

    rig.engine.halt(None, "operator").await.unwrap();
    assert!(matches!(
        rig.engine.run_plan_now(&created.plan.id, &operator()).await,
        Err(cme_engine::EngineError::Halted)
    ));
    rig.engine.resume("operator").await.unwrap();
    assert!(matches!(
        rig.engine.run_plan_now("no-such-plan", &operator()).await,
        Err(cme_engine::EngineError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_paused_plan_does_not_fire_until_resumed() {
    let rig = Rig::new().await;
    rig.engine.start();
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [300]})), &operator()).await.unwrap();
    let id = created.plan.id.clone();
    let paused = rig.engine.pause_plan(&id, "operator").await.unwrap();
    assert!(paused.plan.paused.is_some());
    assert!(!paused.executed, "a paused plan still has work");
    assert_eq!(paused.next_execution, None, "nothing is due while paused");
    assert_eq!(
        rig.engine.pause_plan(&id, "operator").await.unwrap().plan.paused,
        paused.plan.paused,
        "pausing again changes nothing"
    );
    tokio::time::sleep(Duration::from_millis(550)).await;
    let waiting = rig.engine.executor(&executors[0].id).await.unwrap().0;
    assert_eq!(waiting.status, ExecutorStatus::Paused, "past its time, it did not fire");
    assert!(rig.runs().is_empty());

    let resumed = rig.engine.resume_plan(&id, "operator").await.unwrap();
    assert!(resumed.plan.paused.is_none());
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded, "within its grace it fires at resume");
    let audit = rig.engine.audit(Page::default()).await.unwrap();
    assert!(
        audit.items.iter().any(|e| e.event.action == "plan.pause")
            && audit.items.iter().any(|e| e.event.action == "plan.resume")
    );
    assert!(matches!(rig.engine.pause_plan("nope", "operator").await, Err(cme_engine::EngineError::NotFound { .. })));
}

/// A claim by `owner`, now, of up to ten executors due by now.
fn claim(owner: &str, lease_until: chrono::DateTime<Utc>) -> cme_engine::Claim {
    let now = Utc::now();
    cme_engine::Claim { now, due_by: now, owner: owner.into(), lease_until, limit: 10 }
}

#[tokio::test]
async fn executors_are_claimed_ahead_and_start_at_their_due_time() {
    let rig = Rig::with(EngineConfig { claim_ahead: Duration::from_millis(400), ..config() }).await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [600]})), &operator()).await.unwrap();
    let due = executors[0].due;
    // Claimed ahead: running (leased) before its due time, but its attack not started.
    reaches(&rig.engine, &executors[0].id, ExecutorStatus::Running).await;
    assert!(Utc::now() < due, "claimed before it is due");
    assert!(rig.runs().is_empty(), "the attack waits for its due time");
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded);
    let started = done.started.unwrap();
    assert!(started >= due, "recorded as started when it really started ({started}), not at its claim (due {due})");
    assert!(started - due < chrono::Duration::seconds(2), "and at its due time: {started} vs {due}");
}

#[tokio::test]
async fn a_halt_between_a_claim_ahead_and_the_due_time_cancels_the_run_unstarted() {
    let rig = Rig::with(EngineConfig { claim_ahead: Duration::from_millis(1_500), ..config() }).await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [2_000]})), &operator()).await.unwrap();
    reaches(&rig.engine, &executors[0].id, ExecutorStatus::Running).await;
    rig.engine.halt(Some("freeze".into()), "operator").await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Cancelled);
    assert_eq!(done.error.as_deref(), Some("cancelled before it started: halted: freeze"), "{done:?}");
    assert!(rig.runs().is_empty(), "the attack never ran");
}

/// A halt port that has not seen the stored halt yet: a replica that lost a NOTIFY, or
/// was paused between its last read of the switch and a run's due time.
struct StaleHalt(Arc<cme_store::Store>);

#[async_trait::async_trait]
impl HaltStore for StaleHalt {
    async fn halt_state(&self) -> cme_engine::storage::StorageResult<cme_engine::HaltState> {
        Ok(cme_engine::HaltState::default())
    }

    async fn set_halt_state(
        &self,
        state: &cme_engine::HaltState,
        audit: &cme_engine::AuditEvent,
    ) -> cme_engine::storage::StorageResult<()> {
        self.0.set_halt_state(state, audit).await
    }

    async fn probe_write(&self) -> cme_engine::storage::StorageResult<()> {
        self.0.probe_write().await
    }
}

#[tokio::test]
async fn a_halt_stored_by_another_replica_during_a_claim_ahead_keeps_the_run_unstarted() {
    let store = Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let ports = Ports { halt: Arc::new(StaleHalt(store.clone())), ..Ports::of(store.clone()) };
    let rig = Rig::over(store, ports, EngineConfig { claim_ahead: Duration::from_millis(1_500), ..config() }).await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [2_000]})), &operator()).await.unwrap();
    reaches(&rig.engine, &executors[0].id, ExecutorStatus::Running).await;
    // Another replica halts: stored, never seen by this engine's own switch.
    let other = rig.replica().await;
    other.engine.halt(Some("incident".into()), "operator").await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert!(rig.runs().is_empty(), "nothing fires while a stored halt is in force: {:?}", rig.runs());
    assert_eq!(done.status, ExecutorStatus::Cancelled);
    assert!(done.error.as_deref().unwrap_or_default().starts_with("cancelled before it started"), "{done:?}");
}

#[tokio::test]
async fn a_run_whose_lease_was_reaped_during_its_claim_ahead_never_starts() {
    let rig = Rig::with(EngineConfig { claim_ahead: Duration::from_millis(1_500), ..config() }).await;
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [2_000]})), &operator()).await.unwrap();
    reaches(&rig.engine, &executors[0].id, ExecutorStatus::Running).await;
    // As if this engine were paused past its lease: another engine's reaper took the run.
    assert_eq!(rig.store.reap_expired(Utc::now() + chrono::Duration::hours(1), &[]).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(rig.runs().is_empty(), "a reaped run never fires: {:?}", rig.runs());
    // And its record says so: the reaper's "outcome unknown" gives way to the truth.
    let (done, _) = rig.engine.executor(&executors[0].id).await.unwrap();
    assert_eq!(done.status, ExecutorStatus::Cancelled, "{done:?}");
    assert!(done.error.as_deref().unwrap_or_default().starts_with("cancelled before it started"), "{done:?}");
}

#[tokio::test]
async fn a_result_held_up_past_its_lease_by_a_database_outage_is_still_recorded_truthfully() {
    let store = Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let faulty = Arc::new(crate::slow::SlowClaims::fast(store.clone()));
    let short =
        EngineConfig { run_deadline: Duration::from_millis(500), lease_margin: Duration::from_millis(500), ..config() };
    let rig = Rig::over(store.clone(), faulty.ports(), short).await;
    // The database goes away before the run ends, for longer than the run's lease.
    faulty.fail_records.store(true, std::sync::atomic::Ordering::SeqCst);
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [0]})), &operator()).await.unwrap();
    crate::support::until("the attack ran", async || !rig.runs().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // Another replica's reaper sees the lapsed lease first.
    assert_eq!(store.reap_expired(Utc::now(), &[]).await.unwrap(), 1);
    faulty.fail_records.store(false, std::sync::atomic::Ordering::SeqCst);
    crate::support::until("the true result is recorded", async || {
        rig.engine.executor(&executors[0].id).await.unwrap().0.status == ExecutorStatus::Succeeded
    })
    .await;
    assert_eq!(rig.runs().len(), 1, "and the attack ran once");
}

#[tokio::test]
async fn a_plan_paused_during_a_claim_ahead_does_not_fire() {
    let rig = Rig::with(EngineConfig { claim_ahead: Duration::from_millis(1_500), ..config() }).await;
    rig.engine.start();
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [2_000]})), &operator()).await.unwrap();
    reaches(&rig.engine, &executors[0].id, ExecutorStatus::Running).await;
    rig.engine.pause_plan(&created.plan.id, "operator").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(rig.runs().is_empty(), "a paused plan's claimed run never fires: {:?}", rig.runs());
}
