//! Recurring plans, blackouts, forecasts and the misfire and overlap policies, over the
//! real store and the fake host (whose `{"every_ms": n}` planner recurs).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use cme_engine::storage::prelude::*;
use cme_engine::{EngineConfig, ExecutorStatus, Misfire, NewBlackout, Overlap};

use crate::support::*;

/// A horizon of 1.4 s: a plan is extended every 200 ms.
fn short_horizon() -> EngineConfig {
    EngineConfig { recurring_horizon: Duration::from_millis(1400), ..config() }
}

fn every(ms: u64) -> cme_engine::NewPlan {
    plan(json!({}), json!({"every_ms": ms}))
}

#[tokio::test]
async fn a_recurring_plan_is_extended_as_time_passes_exactly_once_across_two_engines() {
    let a = Rig::with(short_horizon()).await;
    let b = a.replica_with(short_horizon()).await;
    let (created, first) = a.engine.create_plan(every(100), &operator()).await.unwrap();
    let initial_horizon = created.plan.planned_until.expect("a recurring plan records its horizon");
    assert!(created.plan.is_recurring() && !created.executed);
    assert!((13..=14).contains(&first.len()), "the first window holds 1.4 s of firings: {}", first.len());
    a.engine.start();
    b.engine.start();
    let moved_on = initial_horizon + chrono::Duration::seconds(1);
    until("the horizon moving 1 s on and a firing", async || {
        let plan = a.store.plan(&created.plan.id).await.unwrap().unwrap();
        let executors = a.store.executors_of(&created.plan.id).await.unwrap();
        plan.planned_until.unwrap() > moved_on && executors.iter().any(|e| e.status == ExecutorStatus::Succeeded)
    })
    .await;
    let plan = a.store.plan(&created.plan.id).await.unwrap().unwrap();
    assert!(plan.planned_until.unwrap() > moved_on, "the horizon moved on: {:?}", plan.planned_until);
    let executors = a.store.executors_of(&created.plan.id).await.unwrap();
    let dues: Vec<_> = executors.iter().map(|e| e.due).collect();
    assert!(
        dues.windows(2).all(|w| w[1] - w[0] == chrono::Duration::milliseconds(100)),
        "no firing twice and none left out: {dues:?}"
    );
    assert!(executors.iter().any(|e| e.status == ExecutorStatus::Succeeded), "they fire");
    let ran: Vec<String> = a.runs().into_iter().chain(b.runs()).map(|c| c.run_id).collect();
    let mut unique = ran.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ran.len(), unique.len(), "each ran once");
}

#[tokio::test]
async fn a_paused_recurring_plan_is_not_extended_and_a_deleted_one_stops() {
    let rig = Rig::with(short_horizon()).await;
    let (paused, _) = rig.engine.create_plan(every(100), &operator()).await.unwrap();
    let (deleted, _) = rig.engine.create_plan(every(100), &operator()).await.unwrap();
    rig.engine.pause_plan(&paused.plan.id, "operator").await.unwrap();
    rig.engine.delete_plan(&deleted.plan.id, "operator").await.unwrap();
    rig.engine.start();
    // Several extension rounds (one per 200 ms) pass.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for made in [&paused.plan, &deleted.plan] {
        let stored = rig.store.plan(&made.id).await.unwrap().unwrap();
        assert_eq!(stored.planned_until, made.planned_until, "not extended");
    }
    assert!(rig.runs().is_empty(), "nothing of either fired");
    rig.engine.resume_plan(&paused.plan.id, "operator").await.unwrap();
    until("the resumed plan extended again", async || {
        let resumed = rig.store.plan(&paused.plan.id).await.unwrap().unwrap();
        resumed.planned_until > paused.plan.planned_until
    })
    .await;
}

#[tokio::test]
async fn a_firing_in_a_blackout_is_skipped_naming_it() {
    let rig = Rig::new().await;
    let now = Utc::now();
    let blackout = NewBlackout {
        description: None,
        name: "change freeze".into(),
        plan_id: None,
        start: (now - chrono::Duration::minutes(1)).to_rfc3339(),
        end: (now + chrono::Duration::hours(1)).to_rfc3339(),
        timezone: None,
        stop_running: false,
    };
    rig.engine.create_blackout(blackout, "operator").await.unwrap();
    let (_, executors) = rig.engine.create_plan(plan(json!({}), json!({"in_ms": [200]})), &operator()).await.unwrap();
    rig.engine.start();
    let done = finished(&rig.engine, &executors[0].id).await;
    assert_eq!(done.status, ExecutorStatus::Skipped);
    assert_eq!(done.reason.as_deref(), Some("blackout \"change freeze\""));
    assert!(rig.runs().is_empty(), "the attack never started");
    let (created, _) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [3_600_000]})), &operator()).await.unwrap();
    match rig.engine.run_plan_now(&created.plan.id, &operator()).await {
        Err(cme_engine::EngineError::InBlackout { name }) => assert_eq!(name, "blackout \"change freeze\""),
        other => panic!("run now in a blackout: {other:?}"),
    }
    let actions: Vec<String> = audited(&rig.engine).await.into_iter().map(|(a, _, _)| a).collect();
    assert!(actions.contains(&"blackout.create".to_string()), "{actions:?}");
}

#[tokio::test]
async fn a_plan_blackout_holds_its_plan_only() {
    let rig = Rig::new().await;
    let (held, held_executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [300]})), &operator()).await.unwrap();
    let (_, free_executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [300]})), &operator()).await.unwrap();
    let now = Utc::now();
    let blackout = NewBlackout {
        description: None,
        name: "this one".into(),
        plan_id: Some(held.plan.id.clone()),
        start: now.to_rfc3339(),
        end: (now + chrono::Duration::hours(1)).to_rfc3339(),
        timezone: None,
        stop_running: false,
    };
    rig.engine.create_blackout(blackout, "operator").await.unwrap();
    rig.engine.start();
    assert_eq!(finished(&rig.engine, &held_executors[0].id).await.status, ExecutorStatus::Skipped);
    assert_eq!(finished(&rig.engine, &free_executors[0].id).await.status, ExecutorStatus::Succeeded);
}

#[tokio::test]
async fn overlap_forbid_skips_a_firing_while_the_previous_run_runs_and_allow_runs_it() {
    let rig = Rig::new().await;
    let mut forbid = plan(json!({"sleep_ms": 600}), json!({"in_ms": [100, 300]}));
    forbid.overlap = Overlap::Forbid;
    let allow = plan(json!({"sleep_ms": 600}), json!({"in_ms": [100, 300]}));
    let (_, forbidden) = rig.engine.create_plan(forbid, &operator()).await.unwrap();
    let (_, allowed) = rig.engine.create_plan(allow, &operator()).await.unwrap();
    rig.engine.start();
    assert_eq!(finished(&rig.engine, &forbidden[0].id).await.status, ExecutorStatus::Succeeded);
    let second = finished(&rig.engine, &forbidden[1].id).await;
    assert_eq!(second.status, ExecutorStatus::Skipped);
    let reason = second.reason.unwrap();
    assert!(reason.contains(&forbidden[0].id) && reason.contains("overlap: forbid"), "{reason}");
    assert_eq!(
        finished(&rig.engine, &allowed[1].id).await.status,
        ExecutorStatus::Succeeded,
        "overlap allow runs both"
    );
}

#[tokio::test]
async fn misfire_run_once_catches_up_once_after_downtime_and_skip_does_not() {
    let rig = Rig::new().await;
    let late = |misfire| {
        let mut p = plan(json!({}), json!({"in_ms": [-10_000, -9_000, -8_000]}));
        p.grace_seconds = Some(1);
        p.misfire = misfire;
        p
    };
    let (once, _) = rig.engine.create_plan(late(Misfire::RunOnce), &operator()).await.unwrap();
    let (skip, _) = rig.engine.create_plan(late(Misfire::Skip), &operator()).await.unwrap();
    rig.engine.start();
    until("three missed firings and one catch-up run", async || {
        let executors = rig.store.executors_of(&once.plan.id).await.unwrap();
        executors.iter().filter(|e| e.status == ExecutorStatus::Missed).count() == 3 && executors.len() >= 4
    })
    .await;
    let caught_up = rig.store.executors_of(&once.plan.id).await.unwrap();
    assert_eq!(caught_up.iter().filter(|e| e.status == ExecutorStatus::Missed).count(), 3);
    let extra: Vec<_> = caught_up.iter().filter(|e| e.status != ExecutorStatus::Missed).collect();
    assert_eq!(extra.len(), 1, "one catch-up run, never a storm: {caught_up:?}");
    let run = finished(&rig.engine, &extra[0].id).await;
    assert_eq!(run.status, ExecutorStatus::Succeeded);
    assert_eq!(run.reason.as_deref(), Some("catch-up run for 3 firings missed (misfire: run_once)"));
    let skipped = rig.store.executors_of(&skip.plan.id).await.unwrap();
    assert!(skipped.iter().all(|e| e.status == ExecutorStatus::Missed) && skipped.len() == 3, "{skipped:?}");
    let actions: Vec<String> = audited(&rig.engine).await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(actions.iter().filter(|a| *a == "plan.catch_up").count(), 1);
}

#[tokio::test]
async fn a_forecast_lists_the_firings_the_engine_then_makes() {
    let rig = Rig::with(short_horizon()).await;
    let (created, _) = rig.engine.create_plan(every(100), &operator()).await.unwrap();
    let from = created.plan.created;
    let until = from + chrono::Duration::seconds(2);
    let forecast = rig.engine.forecast_plan(&created.plan.id, from, until).await.unwrap();
    assert!(forecast.recurring);
    assert!(forecast.firings.iter().any(|f| f.executor_id.is_none()), "the forecast reaches past the stored horizon");
    rig.engine.start();
    crate::support::until("the horizon passing the forecast's end", async || {
        let plan = rig.store.plan(&created.plan.id).await.unwrap().unwrap();
        plan.planned_until.is_some_and(|horizon| horizon >= until)
    })
    .await;
    let made: Vec<_> = rig
        .store
        .executors_between(&created.plan.id, from, until, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.due)
        .collect();
    let forecast_dues: Vec<_> = forecast.firings.iter().map(|f| f.due).collect();
    assert_eq!(made, forecast_dues, "the executors made are the forecast");
}

#[tokio::test]
async fn a_forecast_of_a_new_plan_shows_blackouts_and_explains_an_empty_span() {
    let rig = Rig::new().await;
    let now = Utc::now();
    let blackout = NewBlackout {
        description: None,
        name: "night".into(),
        plan_id: None,
        start: "22:00".into(),
        end: "06:00".into(),
        timezone: Some("UTC".into()),
        stop_running: false,
    };
    rig.engine.create_blackout(blackout, "operator").await.unwrap();
    let forecast = rig.engine.forecast_new(every(3_600_000), now, now + chrono::Duration::days(1)).await.unwrap();
    assert_eq!(forecast.firings.len(), 24);
    let skipped: Vec<_> = forecast.firings.iter().filter(|f| f.status == ExecutorStatus::Skipped).collect();
    assert_eq!(skipped.len(), 8, "22:00 to 06:00 holds 8 hourly firings");
    assert!(skipped.iter().all(|f| f.reason.as_deref() == Some("blackout \"night\"")));
    assert!(
        rig.store.plans_to_extend(now + chrono::Duration::days(30), None, 10).await.unwrap().is_empty(),
        "a forecast stores nothing"
    );
    let empty = rig
        .engine
        .forecast_new(
            plan(json!({}), json!({"in_ms": [10_000]})),
            now + chrono::Duration::days(2),
            now + chrono::Duration::days(3),
        )
        .await
        .unwrap();
    assert!(empty.firings.is_empty());
    assert!(empty.notes.iter().any(|n| n.contains("no firing")), "{:?}", empty.notes);
}

#[tokio::test]
async fn a_blackout_that_stops_running_attacks_cancels_the_runs_it_holds_when_it_starts() {
    let rig = Rig::new().await;
    let (held, held_runs) =
        rig.engine.create_plan(plan(json!({"sleep_ms": 8000}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    let (_, other_runs) =
        rig.engine.create_plan(plan(json!({"sleep_ms": 500}), json!({"in_ms": [100]})), &operator()).await.unwrap();
    rig.engine.start();
    reaches(&rig.engine, &held_runs[0].id, ExecutorStatus::Running).await;
    let now = Utc::now();
    let blackout = NewBlackout {
        description: None,
        name: "incident".into(),
        plan_id: Some(held.plan.id.clone()),
        start: now.to_rfc3339(),
        end: (now + chrono::Duration::hours(1)).to_rfc3339(),
        timezone: None,
        stop_running: true,
    };
    rig.engine.create_blackout(blackout, "operator").await.unwrap();
    let stopped = finished(&rig.engine, &held_runs[0].id).await;
    assert_eq!(stopped.status, ExecutorStatus::Cancelled);
    assert_eq!(stopped.error.as_deref(), Some("cancelled while running: blackout \"incident\" started"));
    assert!(
        stopped.finished.unwrap() - now < chrono::Duration::seconds(5),
        "stopped well before its 8 s run would end"
    );
    assert_eq!(
        finished(&rig.engine, &other_runs[0].id).await.status,
        ExecutorStatus::Succeeded,
        "a plan the blackout does not hold runs on"
    );
}

#[tokio::test]
async fn two_engines_racing_to_extend_one_plan_store_its_window_once() {
    let store = std::sync::Arc::new(cme_store::Store::connect(&cme_store::StoreConfig::in_memory()).await.unwrap());
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let outcomes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let racing = || {
        let mut storage = crate::slow::SlowClaims::fast(store.clone());
        storage.extend_race = Some((gate.clone(), outcomes.clone()));
        std::sync::Arc::new(storage).ports()
    };
    let a = Rig::over(store.clone(), racing(), short_horizon()).await;
    let (created, _) = a.engine.create_plan(every(100), &operator()).await.unwrap();
    // Started after the plan exists, both engines wake for its extension at the same time.
    let b = Rig::over(store.clone(), racing(), EngineConfig { engine_id: "replica-b".into(), ..short_horizon() }).await;
    a.engine.start();
    b.engine.start();
    until("both engines trying to extend", async || outcomes.lock().unwrap().len() >= 2).await;
    let outcomes = outcomes.lock().unwrap().clone();
    assert!(outcomes.len() >= 2, "both engines tried: {outcomes:?}");
    let mut race = outcomes[..2].to_vec();
    race.sort();
    assert_eq!(race, [false, true], "one engine stored the window, the other nothing: {outcomes:?}");
    let dues: Vec<_> = a.store.executors_of(&created.plan.id).await.unwrap().into_iter().map(|e| e.due).collect();
    assert!(
        dues.windows(2).all(|w| w[1] - w[0] == chrono::Duration::milliseconds(100)),
        "the loser stored nothing: {dues:?}"
    );
}

#[tokio::test]
async fn firings_a_clock_step_or_an_outage_jumped_past_are_told_once_with_their_span_and_count() {
    let a = Rig::with(short_horizon()).await;
    let b = a.replica_with(short_horizon()).await;
    let (created, _) = a.engine.create_plan(every(100), &operator()).await.unwrap();
    let horizon = created.plan.planned_until.unwrap();
    // Nothing plans for 3 s: to the engines, the clock has jumped 1.6 s past the horizon.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    a.engine.start();
    b.engine.start();
    until("the plan extended again", async || {
        a.store.plan(&created.plan.id).await.unwrap().unwrap().planned_until.unwrap() > Utc::now()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let told: Vec<_> = audited(&a.engine).await.into_iter().filter(|(a, _, _)| a == "plan.firings_skipped").collect();
    assert_eq!(told.len(), 1, "told once, by the replica whose extension was stored: {told:?}");
    let target = &told[0].1;
    let count: usize = target
        .split(": ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {target}"));
    assert!((10..=20).contains(&count), "about 1.6 s of firings every 100 ms: {target}");
    let from = horizon.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert!(target.starts_with(&created.plan.id) && target.contains(&format!("from {from} to ")), "{target}");
}
