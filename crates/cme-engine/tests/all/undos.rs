//! The undo keeper: pending undos run at start, when due, at once when halted; an
//! unreachable target is retried with a back-off, not in a loop (halted or not).

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;

use cme_engine::storage::prelude::*;
use cme_engine::{Undo, UndoState};

use crate::support::*;

fn undo(id: &str, due_in: chrono::Duration) -> Undo {
    Undo {
        id: id.into(),
        run_id: format!("run-{id}"),
        plan_id: "p1".into(),
        step: None,
        plugin: "stop-service@0.1.0".into(),
        address: "10.0.0.1".into(),
        port: 22,
        user: String::new(),
        credential: "fleet".into(),
        command: "systemctl start app".into(),
        revert: Default::default(),
        plan_created_by: None,
        armed: Utc::now(),
        due: Utc::now() + due_in,
        state: UndoState::Pending,
        attempts: 0,
        outcome: None,
        finished: None,
    }
}

async fn state_of(rig: &Rig, id: &str) -> Undo {
    rig.store.undo(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn pending_undos_run_at_start_when_due_and_at_once_when_halted() {
    let rig = Rig::new().await;
    // Left by an engine that died: run as this one starts, however far off its time.
    rig.store.insert_undo(&undo("left", chrono::Duration::hours(1))).await.unwrap();
    rig.engine.start();
    until("the leftover undo", async || state_of(&rig, "left").await.state == UndoState::Done).await;

    // Armed now, due in a moment: waits for its time.
    rig.store.insert_undo(&undo("soon", chrono::Duration::milliseconds(300))).await.unwrap();
    rig.engine.config().undo_armed.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_of(&rig, "soon").await.state, UndoState::Pending, "not before its time");
    until("the undo when due", async || state_of(&rig, "soon").await.state == UndoState::Done).await;

    // Due in an hour: a halt runs it at once, audited.
    rig.store.insert_undo(&undo("later", chrono::Duration::hours(1))).await.unwrap();
    rig.engine.config().undo_armed.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_of(&rig, "later").await.state, UndoState::Pending);
    rig.engine.halt(Some("enough".into()), "ops").await.unwrap();
    until("the undo on halt", async || state_of(&rig, "later").await.state == UndoState::Done).await;
    let done = state_of(&rig, "later").await;
    assert_eq!((done.attempts, done.outcome.as_deref()), (1, Some("exit 0")));
    assert!(audited(&rig.engine).await.iter().filter(|(action, _, _)| action == "undo.run").count() >= 3);
    assert_eq!(*rig.host.undos.lock().unwrap(), ["left", "soon", "later"], "each ran once");
}

#[tokio::test]
async fn an_unreachable_target_is_retried_with_a_back_off_even_while_halted() {
    let rig = Rig::new().await;
    rig.host.undo_unreachable.store(true, Ordering::SeqCst);
    rig.engine.start();
    rig.engine.halt(None, "ops").await.unwrap();
    rig.store.insert_undo(&undo("far", chrono::Duration::hours(1))).await.unwrap();
    rig.engine.config().undo_armed.notify_one();
    until("the first attempt", async || state_of(&rig, "far").await.attempts == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = state_of(&rig, "far").await;
    assert_eq!(after.state, UndoState::Pending);
    assert_eq!(rig.host.undos.lock().unwrap().len(), 1, "not tried again before its back-off");
    assert!(after.due > Utc::now() + chrono::Duration::seconds(20), "next attempt {}", after.due);
    assert!(after.outcome.unwrap().contains("connection refused"));
}

#[tokio::test]
async fn a_revert_a_fence_refuses_is_shown_as_failed_and_retried_never_given_up() {
    let rig = Rig::new().await;
    rig.host.undo_refused.store(true, Ordering::SeqCst);
    let mut refused = undo("fenced", chrono::Duration::hours(1));
    // Already tried as often as an unreachable target is before it is given up.
    refused.attempts = cme_engine::undo::MAX_ATTEMPTS + 3;
    rig.store.insert_undo(&refused).await.unwrap();
    rig.engine.start();
    until("the attempt at start", async || state_of(&rig, "fenced").await.attempts > refused.attempts).await;
    let after = state_of(&rig, "fenced").await;
    assert_eq!(after.state, UndoState::Pending, "never dropped: {after:?}");
    let outcome = after.outcome.unwrap();
    assert!(outcome.starts_with("failed: refused") && outcome.contains("[ec2] fence"), "{outcome}");
    assert!(after.due > Utc::now(), "retried later, backing off");
    // The keeper goes on serving the other undos meanwhile.
    rig.host.undo_refused.store(false, Ordering::SeqCst);
    rig.engine.halt(None, "ops").await.unwrap();
    rig.store.insert_undo(&undo("other", chrono::Duration::hours(1))).await.unwrap();
    rig.engine.config().undo_armed.notify_one();
    until("another undo to run on halt", async || state_of(&rig, "other").await.state == UndoState::Done).await;
}

#[tokio::test]
async fn at_start_an_experiments_reverts_wait_while_another_replica_holds_its_run() {
    let rig = Rig::new().await;
    // Two runs claimed by other engines before this one starts: one alive (its lease
    // holds), one dead (its lease expired).
    let (_, executors) = rig
        .engine
        .create_plan(plan(serde_json::json!({}), serde_json::json!({"in_ms": [0, 0]})), &operator())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = Utc::now();
    let live_claim = cme_engine::Claim {
        now,
        due_by: now,
        owner: "replica-alive".into(),
        lease_until: now + chrono::Duration::hours(1),
        limit: 1,
    };
    let live = rig.store.claim_due(&live_claim).await.unwrap().remove(0);
    let dead_claim = cme_engine::Claim {
        owner: "replica-dead".into(),
        lease_until: now - chrono::Duration::seconds(1),
        ..live_claim.clone()
    };
    let dead = rig.store.claim_due(&dead_claim).await.unwrap().remove(0);
    assert_eq!(executors.len(), 2);
    for (id, run) in [("of-live", &live.id), ("of-dead", &dead.id)] {
        let mut armed = undo(id, chrono::Duration::hours(1));
        armed.run_id = run.clone();
        armed.step = Some("freeze".into());
        rig.store.insert_undo(&armed).await.unwrap();
    }
    rig.engine.start();
    until("the dead run's revert", async || state_of(&rig, "of-dead").await.state == UndoState::Done).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state_of(&rig, "of-live").await.state, UndoState::Pending, "a live replica's run is left to it");
    assert_eq!(*rig.host.undos.lock().unwrap(), ["of-dead"]);
}
