//! A plan's steady state: probes asked right before each run, failing closed.

use serde_json::json;

use cme_engine::{ExecutorStatus, PluginCall};

use crate::support::*;

fn guarded(probes: &[serde_json::Value]) -> cme_engine::NewPlan {
    let mut new = plan(json!({}), json!({"in_ms": [50]}));
    new.steady_state =
        probes.iter().map(|args| PluginCall { reference: "fake_probe:FakeProbe".into(), args: args.clone() }).collect();
    new
}

async fn first_executor_after(rig: &Rig, new: cme_engine::NewPlan) -> cme_engine::Executor {
    rig.engine.start();
    let (_, executors) = rig.engine.create_plan(new, &operator()).await.unwrap();
    finished(&rig.engine, &executors[0].id).await
}

#[tokio::test]
async fn a_run_starts_only_when_every_probe_answers_healthy() {
    let rig = Rig::new().await;
    let done = first_executor_after(&rig, guarded(&[json!({"healthy": true}), json!({"healthy": true})])).await;
    assert_eq!(done.status, ExecutorStatus::Succeeded);
    assert_eq!(rig.host.checks.lock().unwrap().len(), 2, "both probes asked");
    assert_eq!(rig.runs().len(), 1);
}

#[tokio::test]
async fn an_unhealthy_probe_skips_the_run_with_its_reason_and_later_probes_are_not_asked() {
    let rig = Rig::new().await;
    let done = first_executor_after(
        &rig,
        guarded(&[json!({"healthy": false, "reason": "error rate 7%"}), json!({"healthy": true})]),
    )
    .await;
    assert_eq!(done.status, ExecutorStatus::Skipped);
    let reason = done.reason.unwrap();
    assert!(reason.contains("fake-probe@0.1.0 unhealthy: error rate 7%"), "{reason}");
    assert_eq!(rig.host.checks.lock().unwrap().len(), 1);
    assert!(rig.runs().is_empty(), "the attack never started");
}

#[tokio::test]
async fn a_probe_that_cannot_tell_counts_as_unhealthy() {
    let rig = Rig::new().await;
    let done = first_executor_after(&rig, guarded(&[json!({"cannot": "prometheus unreachable"})])).await;
    assert_eq!(done.status, ExecutorStatus::Skipped);
    assert!(done.reason.unwrap().contains("could not tell (counts as unhealthy): prometheus unreachable"));
    assert!(rig.runs().is_empty());
}

#[tokio::test]
async fn a_steady_state_naming_an_attack_or_too_many_probes_is_refused() {
    let rig = Rig::new().await;
    let mut new = plan(json!({}), json!({"in_ms": [50]}));
    new.steady_state = vec![PluginCall { reference: "noop:Noop".into(), args: json!({}) }];
    let refused = rig.engine.create_plan(new, &operator()).await.unwrap_err();
    assert!(refused.to_string().contains("probe"), "{refused}");
    let too_many = guarded(&vec![json!({}); cme_engine::MAX_STEADY_STATE_PROBES + 1]);
    assert!(rig.engine.create_plan(too_many, &operator()).await.is_err());
    assert!(
        rig.engine.list_plans(true, cme_engine::Page::first(10).unwrap()).await.unwrap().items.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn max_concurrent_attacks_holds_over_every_replica() {
    let config = cme_engine::EngineConfig {
        budgets: cme_engine::Budgets { max_concurrent_attacks: Some(1), groups: Vec::new() },
        ..config()
    };
    let a = Rig::with(config.clone()).await;
    let b = a.replica_with(config).await;
    a.engine.start();
    b.engine.start();
    let (_, executors) = a
        .engine
        .create_plan(plan(json!({"sleep_ms": 250}), json!({"in_ms": [50, 50, 50]})), &operator())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut most = 0;
    for executor in &executors {
        loop {
            let running = a.store.count_running().await.unwrap();
            most = most.max(running);
            let (e, _) = a.engine.executor(&executor.id).await.unwrap();
            if e.status.is_terminal() {
                assert_eq!(e.status, ExecutorStatus::Succeeded);
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "the runs did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(most, 1, "never two attacks at once over both engines");
}
