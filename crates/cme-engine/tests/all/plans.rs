use serde_json::json;

use cme_engine::storage::prelude::*;
use cme_engine::{AuditDecision, EngineError, ExecutorFilter, ExecutorStatus, Page};

use crate::support::{Rig, audited, operator, plan};

#[tokio::test]
async fn a_plan_is_stored_with_its_executors_and_its_audit_event() {
    let rig = Rig::new().await;
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [60_000, 30_000]})), &operator()).await.unwrap();
    assert_eq!(created.executors_count, 2);
    assert_eq!(created.plan.attack.plugin, "noop@0.1.0");
    assert_eq!(created.plan.planner.reference, "exact_planner:ExactPlanner");
    assert!(executors[0].due < executors[1].due, "executors come sorted by due time");
    assert!(executors.iter().all(|e| e.status == ExecutorStatus::Pending));

    let (shown, stored) = rig.engine.plan(&created.plan.id).await.unwrap();
    assert_eq!(shown.plan, created.plan);
    assert_eq!(shown.next_execution, Some(executors[0].due));
    assert_eq!(stored.items, executors);
    assert!(!stored.has_more);
    assert_eq!(
        audited(&rig.engine).await,
        vec![("plan.create".to_string(), created.plan.id.clone(), AuditDecision::Allowed)]
    );
}

#[tokio::test]
async fn refused_plans_say_why_and_store_nothing() {
    let rig = Rig::new().await;
    let mut unknown = plan(json!({}), json!({"in_ms": [1000]}));
    unknown.attack.reference = "nope:Nope".into();
    let mut dotted_unknown = plan(json!({}), json!({"in_ms": [1000]}));
    dotted_unknown.planner.reference = "exact_planner.Nope".into();
    type Case = (&'static str, cme_engine::NewPlan, fn(&EngineError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "an unknown attack ref",
            unknown,
            |e| matches!(e, EngineError::UnknownRef { field, known, .. } if field == "/attack/ref" && known == &["noop:Noop".to_string()]),
        ),
        (
            "an unknown planner ref",
            dotted_unknown,
            |e| matches!(e, EngineError::UnknownRef { field, .. } if field == "/planner/ref"),
        ),
        ("attack args the schema refuses", plan(json!({"bad": 1}), json!({"in_ms": [1000]})), |e| {
            e.field() == Some("/attack/args/bad")
        }),
        ("planner args the planner refuses", plan(json!({}), json!({"fail": "invalid"})), |e| {
            e.field() == Some("/planner/args/date")
        }),
        (
            "a planner that traps",
            plan(json!({}), json!({"fail": "trap"})),
            |e| matches!(e, EngineError::PlannerFailed { plugin, .. } if plugin == "exact-planner@0.1.0"),
        ),
        ("no run time", plan(json!({}), json!({"in_ms": []})), |e| matches!(e, EngineError::NoRunTime)),
        ("too many run times", plan(json!({}), json!({"count": 10_001})), |e| {
            matches!(e, EngineError::TooManyRunTimes { count: 10_001, .. })
        }),
    ];
    for (what, new, expected) in cases {
        let error = rig.engine.create_plan(new, &operator()).await.unwrap_err();
        assert!(expected(&error), "{what}: {error:?}");
    }
    assert!(rig.engine.list_plans(true, Page::default()).await.unwrap().items.is_empty());
    assert!(rig.engine.list_executors(&ExecutorFilter::default(), Page::default()).await.unwrap().items.is_empty());
    assert!(audited(&rig.engine).await.is_empty(), "nothing refused was audited as created");
}

#[tokio::test]
async fn a_planner_fault_is_not_the_callers_mistake() {
    let rig = Rig::new().await;
    let error = rig.engine.create_plan(plan(json!({}), json!({"fail": "trap"})), &operator()).await.unwrap_err();
    assert!(matches!(error, EngineError::PlannerFailed { .. }), "{error:?}");
    assert_eq!(error.field(), None, "a fault does not point at the caller's input");
    assert!(error.to_string().contains("plugin trapped"), "{error}");
}

#[tokio::test]
async fn listing_plans_reads_their_figures_in_one_query() {
    let rig = Rig::new().await;
    for _ in 0..20 {
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [60_000, 120_000]})), &operator()).await.unwrap();
    }
    let before = rig.store.statements();
    let listed = rig.engine.list_plans(true, Page::new(1, 100).unwrap()).await.unwrap();
    let statements = rig.store.statements() - before;
    assert_eq!(listed.items.len(), 20);
    assert!(listed.items.iter().all(|p| p.executors_count == 2 && p.next_execution.is_some() && !p.executed));
    assert_eq!(statements, 2, "one query for the page of plans, one for all their figures");
}

#[tokio::test]
async fn deleting_a_plan_cancels_its_pending_executors_and_is_audited_with_it() {
    let rig = Rig::new().await;
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [60_000]})), &operator()).await.unwrap();
    rig.engine.delete_plan(&created.plan.id, "admin").await.unwrap();
    assert!(matches!(rig.engine.plan(&created.plan.id).await, Err(EngineError::NotFound { .. })));
    let (executor, plugin) = rig.engine.executor(&executors[0].id).await.unwrap();
    assert_eq!(executor.status, ExecutorStatus::Cancelled);
    assert_eq!(plugin.as_deref(), Some("noop@0.1.0"), "history keeps the plugin version");
    assert!(audited(&rig.engine).await.contains(&(
        "plan.delete".into(),
        created.plan.id.clone(),
        AuditDecision::Allowed
    )));
    assert!(matches!(rig.engine.delete_plan(&created.plan.id, "admin").await, Err(EngineError::NotFound { .. })));
    assert!(rig.store.plan(&created.plan.id).await.unwrap().unwrap().deleted.is_some(), "the plan row stays");
}

#[tokio::test]
async fn executors_can_be_rescheduled_and_cancelled_only_while_pending() {
    let rig = Rig::new().await;
    let (_, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"in_ms": [60_000]})), &operator()).await.unwrap();
    let id = &executors[0].id;
    let dates = cme_test_peers::Dates::like(2031);
    let moved = rig.engine.reschedule(id, &dates.at("2031-06-01T12:00:00+02:00"), "operator").await.unwrap();
    assert_eq!(moved.due.to_rfc3339(), dates.at("2031-06-01T10:00:00+00:00"));
    assert!(
        matches!(rig.engine.reschedule(id, "tomorrow", "operator").await, Err(EngineError::Invalid { field, .. }) if field == "/args/date")
    );
    rig.engine.cancel_executor(id, "operator").await.unwrap();
    let again = rig.engine.cancel_executor(id, "operator").await.unwrap_err();
    assert!(matches!(again, EngineError::NotPending { status: ExecutorStatus::Cancelled, .. }), "{again:?}");
    assert!(matches!(rig.engine.cancel_executor("nope", "operator").await, Err(EngineError::NotFound { .. })));
    let actions: Vec<String> = audited(&rig.engine).await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(
        actions,
        ["plan.create", "executor.reschedule", "executor.cancel"],
        "refused changes are not audited as done"
    );
}

#[tokio::test]
async fn a_plan_shows_a_bounded_first_page_of_its_executors() {
    let rig = Rig::new().await;
    let (created, executors) =
        rig.engine.create_plan(plan(json!({}), json!({"count": 150})), &operator()).await.unwrap();
    assert_eq!(executors.len(), 150);
    let (summary, first) = rig.engine.plan(&created.plan.id).await.unwrap();
    assert_eq!(summary.executors_count, 150);
    assert_eq!(first.items.len() as u64, cme_engine::EMBEDDED_EXECUTORS);
    assert!(first.has_more, "the rest page through the executor list");
}

#[tokio::test]
async fn a_cursor_walks_executors_due_at_the_same_instant_once_each_in_order() {
    let rig = Rig::new().await;
    rig.engine.create_plan(plan(json!({}), json!({"count": 5})), &operator()).await.unwrap();
    let page = cme_engine::Page::first(2).unwrap();
    for statuses in [None, Some(cme_engine::ExecutorStatus::OPEN.to_vec())] {
        let mut filter = cme_engine::ExecutorFilter { statuses, plan_id: None, after: None };
        let mut walked = Vec::new();
        loop {
            let listed = rig.engine.list_executors(&filter, page).await.unwrap();
            walked.extend(listed.items.iter().map(|e| e.id.clone()));
            match (listed.has_more, listed.items.last()) {
                (true, Some(last)) => filter.after = Some(cme_engine::ExecutorCursor::after(last)),
                _ => break,
            }
        }
        let mut sorted = walked.clone();
        sorted.sort();
        assert_eq!(walked.len(), 5);
        assert_eq!(walked, sorted, "same due time: by id, none twice");
    }
    let cursor: cme_engine::ExecutorCursor = "1700000000000000.0123abcd".parse().unwrap();
    assert_eq!(cursor.to_string(), "1700000000000000.0123abcd");
    assert!("1700000000000000".parse::<cme_engine::ExecutorCursor>().is_err());
    assert!("x.y".parse::<cme_engine::ExecutorCursor>().is_err());
}
