//! Experiments: steps in the order of their `after`, verified, always reverted (newest
//! first when aborted), with a journal.

use std::time::Duration;

use serde_json::{Value, json};

use cme_engine::{
    EngineError, ExecutorStatus, JournalView, NewStep, NewStepAction, Outcome, Phase, PluginCall, StepStatus, UndoState,
};

use crate::support::*;

fn attack(name: &str, after: &[&str], args: Value, duration_seconds: Option<u64>) -> NewStep {
    NewStep {
        name: name.into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        action: NewStepAction::Attack {
            call: PluginCall { reference: "noop:Noop".into(), args },
            duration_seconds,
            irreversible: false,
        },
    }
}

fn verify(name: &str, after: &[&str], healthy: bool) -> NewStep {
    NewStep {
        name: name.into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        action: NewStepAction::Verify(vec![PluginCall {
            reference: "fake_probe:FakeProbe".into(),
            args: json!({"healthy": healthy, "reason": "p99 latency 2.3 s"}),
        }]),
    }
}

fn wait(name: &str, after: &[&str], seconds: u64) -> NewStep {
    NewStep {
        name: name.into(),
        after: after.iter().map(|s| s.to_string()).collect(),
        action: NewStepAction::Wait { seconds },
    }
}

fn experiment(steps: Vec<NewStep>) -> cme_engine::NewPlan {
    let mut new = plan(json!({}), json!({"in_ms": [50]}));
    new.name = "checkout survives".into();
    new.attack = steps
        .iter()
        .find_map(|s| match &s.action {
            NewStepAction::Attack { call, .. } => Some(call.clone()),
            _ => None,
        })
        .unwrap_or(PluginCall { reference: "noop:Noop".into(), args: json!({}) });
    new.steps = steps;
    new
}

async fn rig_with_undos() -> Rig {
    let rig = Rig::new().await;
    let store: std::sync::Arc<dyn cme_engine::SshTargetStore> = rig.store.clone();
    rig.host.undo_store.set(store).ok();
    rig.engine.start();
    rig
}

async fn run(rig: &Rig, new: cme_engine::NewPlan) -> (cme_engine::Executor, cme_engine::Journal) {
    let (_, executors) = rig.engine.create_plan(new, &operator()).await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    let (_, _, view) = rig.engine.journal(&done.id).await.unwrap();
    let JournalView::Stored(journal) = view else { panic!("a finished run's journal is stored") };
    (done, journal)
}

fn undo_commands(rig: &Rig) -> Vec<String> {
    rig.host.undos.lock().unwrap().iter().map(|id| id.rsplit('-').next().unwrap().to_string()).collect()
}

#[tokio::test]
async fn lanes_run_in_the_order_of_after_and_every_fault_is_reverted_when_its_duration_ends() {
    let rig = rig_with_undos().await;
    let (done, journal) = run(
        &rig,
        experiment(vec![
            attack("stop a", &[], json!({"arm": "starta"}), Some(1)),
            attack("stop b", &[], json!({"arm": "startb"}), Some(1)),
            verify("still up", &["stop a"], true),
            wait("settle", &["still up", "stop b"], 1),
        ]),
    )
    .await;
    assert_eq!(done.status, ExecutorStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.outcome, Some(Outcome::Held));
    assert_eq!(journal.outcome, Some(Outcome::Held));
    assert!(journal.steps.iter().all(|s| s.status == StepStatus::Succeeded), "{journal:?}");
    let step = |name: &str| journal.steps.iter().find(|s| s.name == name).unwrap().clone();
    assert!(step("still up").started.unwrap() >= step("stop a").ended.unwrap(), "verify after its fault ended");
    assert!(step("settle").started.unwrap() >= step("stop b").ended.unwrap());
    assert!(step("stop a").started.unwrap() < step("stop b").ended.unwrap(), "the lanes overlap");
    let mut undone = undo_commands(&rig);
    undone.sort();
    assert_eq!(undone, ["starta", "startb"], "each fault reverted once");
    assert!(journal.reverts.iter().all(|r| r.state == "done" && r.why == "step ended"), "{:?}", journal.reverts);
    // The reading was taken after stop a's fault was reverted (stop b may still hold).
    assert_eq!(journal.readings.len(), 1);
    assert!(journal.readings[0].healthy);
    assert_ne!(journal.readings[0].phase, Phase::Before);
    let xml = journal.junit(&done.id, "checkout survives");
    assert!(xml.contains("tests=\"4\" failures=\"0\" errors=\"0\" skipped=\"0\""), "{xml}");
}

#[tokio::test]
async fn a_refuted_verify_aborts_the_run_and_reverts_every_fault_newest_first() {
    let rig = rig_with_undos().await;
    let (done, journal) = run(
        &rig,
        experiment(vec![
            attack("first", &[], json!({"arm": "one"}), None),
            attack("second", &["first"], json!({"arm": "two"}), None),
            attack("third", &["second"], json!({"arm": "three"}), None),
            verify("healthy", &["third"], false),
            attack("never", &["healthy"], json!({"arm": "four"}), Some(1)),
        ]),
    )
    .await;
    assert_eq!(done.status, ExecutorStatus::Failed);
    assert_eq!(done.outcome, Some(Outcome::Refuted));
    assert_eq!(undo_commands(&rig), ["three", "two", "one"], "reverted in reverse order");
    let status = |name: &str| journal.steps.iter().find(|s| s.name == name).unwrap().status;
    assert_eq!(status("healthy"), StepStatus::Failed);
    assert_eq!(status("never"), StepStatus::NotRun);
    assert!(journal.aborted.as_deref().unwrap().contains("p99 latency 2.3 s"), "{:?}", journal.aborted);
    let reverted: Vec<&str> = journal.reverts.iter().map(|r| r.step.as_deref().unwrap()).collect();
    assert_eq!(reverted, ["third", "second", "first"]);
    assert!(journal.reverts.iter().all(|r| r.why.starts_with("aborted: ")));
    assert_eq!(journal.readings[0].phase, Phase::During, "read while the faults held");
    for undo in rig.engine.undos(10).await.unwrap() {
        assert_eq!(undo.state, UndoState::Done, "{undo:?}");
    }
    let xml = journal.junit(&done.id, "checkout survives");
    assert!(xml.contains("tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\""), "{xml}");
}

#[tokio::test]
async fn the_deadline_aborts_a_run_and_its_faults_are_reverted() {
    let rig = rig_with_undos().await;
    let mut new = experiment(vec![attack("hold", &[], json!({"arm": "back"}), Some(30)), wait("long", &[], 30)]);
    new.deadline_seconds = Some(1);
    let started = std::time::Instant::now();
    let (done, journal) = run(&rig, new).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(done.status, ExecutorStatus::Failed);
    assert_eq!(done.outcome, Some(Outcome::Aborted));
    assert!(journal.aborted.as_deref().unwrap().contains("deadline"), "{:?}", journal.aborted);
    assert_eq!(undo_commands(&rig), ["back"]);
    assert!(journal.steps.iter().all(|s| s.status == StepStatus::Cancelled), "{:?}", journal.steps);
}

#[tokio::test]
async fn a_halt_cancels_the_run_and_reverts_its_faults() {
    let rig = rig_with_undos().await;
    let (_, executors) = rig
        .engine
        .create_plan(experiment(vec![attack("hold", &[], json!({"arm": "back"}), Some(30))]), &operator())
        .await
        .unwrap();
    until("the fault to be made", async || !rig.engine.undos(10).await.unwrap().is_empty()).await;
    rig.engine.halt(Some("game day over".into()), "operator").await.unwrap();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Cancelled);
    assert_eq!(done.outcome, Some(Outcome::Aborted));
    until("the revert", async || rig.engine.undos(10).await.unwrap()[0].state == UndoState::Done).await;
}

#[tokio::test]
async fn a_one_attack_run_has_a_one_step_journal() {
    let rig = rig_with_undos().await;
    let (done, journal) = run(&rig, plan(json!({}), json!({"in_ms": [50]}))).await;
    assert_eq!(done.outcome, Some(Outcome::Held));
    assert_eq!(journal.steps.len(), 1);
    assert_eq!(journal.steps[0].targets, ["t1"]);
    assert_eq!(journal.steps[0].status, StepStatus::Succeeded);
}

fn refused(result: Result<impl std::fmt::Debug, EngineError>) -> (String, String) {
    match result {
        Err(EngineError::Invalid { field, message }) => (field, message),
        other => panic!("not refused as invalid: {other:?}"),
    }
}

#[tokio::test]
async fn plans_with_bad_steps_are_refused_naming_the_step_and_nothing_is_stored() {
    let rig = rig_with_undos().await;
    let engine = &rig.engine;
    let cycle = experiment(vec![
        attack("a", &["b"], json!({"arm": "x"}), None),
        attack("b", &["a"], json!({"arm": "y"}), None),
    ]);
    assert!(refused(engine.create_plan(cycle, &operator()).await).0.ends_with("/after"));
    let unknown = experiment(vec![attack("a", &["nope"], json!({"arm": "x"}), None)]);
    assert_eq!(refused(engine.create_plan(unknown, &operator()).await).0, "/steps/0/after/0");
    let bad_args = experiment(vec![wait("w", &[], 1), attack("a", &[], json!({"arm": "x", "bad": 1}), None)]);
    assert_eq!(refused(engine.create_plan(bad_args, &operator()).await).0, "/steps/1/attack/args/bad");
    let mut unknown_ref = experiment(vec![attack("a", &[], json!({"arm": "x"}), None)]);
    if let NewStepAction::Attack { call, .. } = &mut unknown_ref.steps[0].action {
        call.reference = "nope:Nope".into();
    }
    assert!(
        matches!(engine.create_plan(unknown_ref, &operator()).await, Err(EngineError::UnknownRef { field, .. }) if field == "/steps/0/attack/ref")
    );
    // Without an undo the fake attack cannot revert its fault: the step must say so.
    let (field, message) =
        refused(engine.create_plan(experiment(vec![attack("kill", &[], json!({}), None)]), &operator()).await);
    assert_eq!(field, "/steps/0/irreversible");
    assert!(message.contains("\"irreversible\": true"), "{message}");
    let mut flagged = experiment(vec![attack("kill", &[], json!({}), None)]);
    if let NewStepAction::Attack { irreversible, .. } = &mut flagged.steps[0].action {
        *irreversible = true;
    }
    engine.create_plan(flagged, &operator()).await.expect("an irreversible step said so");
    let mut too_long = experiment(vec![attack("a", &[], json!({"arm": "x"}), None)]);
    too_long.deadline_seconds = Some(3601);
    assert_eq!(refused(engine.create_plan(too_long, &operator()).await).0, "/deadline_seconds");
    let plans = engine.list_plans(true, cme_engine::Page::first(100).unwrap()).await.unwrap();
    assert_eq!(plans.items.len(), 1, "only the flagged plan was stored");
}

#[tokio::test]
async fn max_concurrent_attacks_counts_each_attack_step_in_flight() {
    let budgets = cme_engine::Budgets { max_concurrent_attacks: Some(2), ..Default::default() };
    let rig = Rig::with(cme_engine::EngineConfig { budgets, ..config() }).await;
    let store: std::sync::Arc<dyn cme_engine::SshTargetStore> = rig.store.clone();
    rig.host.undo_store.set(store).ok();
    rig.engine.start();
    let slow = |name: &str| attack(name, &[], json!({"arm": name, "sleep_ms": 600}), Some(1));
    let (done, journal) = run(&rig, experiment(vec![slow("a"), slow("b"), slow("c")])).await;
    assert_eq!(done.outcome, Some(Outcome::Held), "{:?}", done.error);
    // The three overlap pairwise at most: one started only after another ended.
    let spans: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        journal.steps.iter().map(|s| (s.started.unwrap(), s.ended.unwrap())).collect();
    for (i, (start, _)) in spans.iter().enumerate() {
        let overlapping = spans.iter().filter(|(s, e)| s <= start && start < e).count();
        assert!(overlapping <= 2, "step {i} started while {overlapping} attacks ran: {spans:?}");
    }
    assert!(spans.iter().any(|(s, _)| spans.iter().any(|(_, e)| e <= s)), "one waited for a slot: {spans:?}");
}
