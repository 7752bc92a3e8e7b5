//! The recurring planners (cron, window, MTBF, simple every_day) and components built
//! against cme:plugin@0.1.0, as real components.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use cme_runtime::{CallError, Grant, PlanContext, Planned, Plugin, Runtime};
use serde_json::{Value, json};

use crate::support::*;

fn window(seed: u64, zone: &str, from: DateTime<Utc>, until: DateTime<Utc>) -> PlanContext {
    PlanContext { now: from, timezone: zone.into(), seed, window: (from, until) }
}

async fn plan(runtime: &Runtime, planner: &Plugin, ctx: PlanContext, args: &Value) -> Planned {
    runtime.plan(planner, ctx, args).await.result.expect("the planner answers")
}

/// The firings of `[from, until)` asked in one window, and asked as `parts` windows.
async fn whole_and_split(
    runtime: &Runtime,
    planner: &Plugin,
    args: &Value,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    parts: i32,
) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let whole = plan(runtime, planner, window(99, "UTC", from, until), args).await;
    assert!(whole.recurring);
    let step = (until - from) / parts;
    let mut split = Vec::new();
    for i in 0..parts {
        let end = if i == parts - 1 { until } else { from + step * (i + 1) };
        split.extend(plan(runtime, planner, window(99, "UTC", from + step * i, end), args).await.instants);
    }
    let (mut whole, mut split) = (whole.instants, split);
    whole.sort();
    split.sort();
    (whole, split)
}

#[tokio::test]
async fn cron_planner_fires_on_its_pattern_in_its_zone() {
    let runtime = runtime();
    let planner = builtin(&runtime, "cron-planner").await;
    let args = json!({"cron": "0 */15 9-17 * * MON-FRI", "timezone": "Europe/Madrid"});
    // Monday 2026-12-07 and Saturday 2026-12-12, whole UTC days.
    let monday =
        plan(&runtime, &planner, window(1, "UTC", at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z")), &args).await;
    assert!(monday.recurring);
    assert_eq!(monday.instants.len(), 9 * 4, "every quarter hour from 09:00 to 17:45");
    assert_eq!(monday.instants.iter().min().unwrap(), &at("2026-12-07T08:00:00Z"), "09:00 in Madrid in winter");
    assert_eq!(monday.instants.iter().max().unwrap(), &at("2026-12-07T16:45:00Z"));
    let saturday =
        plan(&runtime, &planner, window(1, "UTC", at("2026-12-12T00:00:00Z"), at("2026-12-13T00:00:00Z")), &args).await;
    assert!(saturday.instants.is_empty(), "MON-FRI only");
}

#[tokio::test]
async fn cron_planner_moves_skipped_times_to_the_change_and_fires_repeated_ones_once() {
    let runtime = runtime();
    let planner = builtin(&runtime, "cron-planner").await;
    // (zone, pattern, the one instant the wall time means that day), 2026 and 2027, from
    // Python's zoneinfo. Spring forward: 02:30 does not exist and fires at the change.
    // Fall back: the wall time happens twice and fires once, at its first instant.
    let cases = [
        ("Europe/Madrid", "30 2 * * *", "2026-03-29T01:00:00Z"),
        ("Europe/Madrid", "30 2 * * *", "2026-10-25T00:30:00Z"),
        ("Europe/Madrid", "30 2 * * *", "2027-03-28T01:00:00Z"),
        ("Europe/Madrid", "30 2 * * *", "2027-10-31T00:30:00Z"),
        ("America/New_York", "30 2 * * *", "2026-03-08T07:00:00Z"),
        ("America/New_York", "30 1 * * *", "2026-11-01T05:30:00Z"),
        ("America/New_York", "30 2 * * *", "2027-03-14T07:00:00Z"),
        ("America/New_York", "30 1 * * *", "2027-11-07T05:30:00Z"),
        ("Australia/Sydney", "30 2 * * *", "2026-10-03T16:00:00Z"),
        ("Australia/Sydney", "30 2 * * *", "2026-04-04T15:30:00Z"),
        ("Australia/Sydney", "30 2 * * *", "2027-10-02T16:00:00Z"),
        ("Australia/Sydney", "30 2 * * *", "2027-04-03T15:30:00Z"),
    ];
    for (zone, cron, expected) in cases {
        let expected = at(expected);
        let ctx = window(1, zone, expected - Duration::hours(6), expected + Duration::hours(6));
        let planned = plan(&runtime, &planner, ctx, &json!({"cron": cron})).await;
        assert_eq!(planned.instants, vec![expected], "{zone} {cron} around {expected}");
    }
}

#[tokio::test]
async fn cron_planner_gives_the_same_firings_whatever_the_windows_with_jitter_inside_it() {
    let runtime = runtime();
    let planner = builtin(&runtime, "cron-planner").await;
    let args = json!({"cron": "*/20 * * * *", "jitter_seconds": 300});
    let (whole, split) =
        whole_and_split(&runtime, &planner, &args, at("2026-12-01T00:00:00Z"), at("2026-12-04T00:00:00Z"), 7).await;
    assert_eq!(whole.len(), 3 * 24 * 3);
    assert_eq!(whole, split, "a forecast over the span equals the windows the scheduler asks for");
    let ticks = whole.iter().map(|t| t.timestamp() - t.timestamp() % 1200);
    assert!(whole.iter().zip(ticks).all(|(t, tick)| t.timestamp() - tick < 300), "each firing is within its jitter");
    assert!(whole.iter().any(|t| t.minute() % 20 != 0 || t.second() != 0), "jitter moves firings");
}

#[tokio::test]
async fn cron_planner_refuses_a_bad_pattern_naming_the_field() {
    let runtime = runtime();
    let planner = builtin(&runtime, "cron-planner").await;
    for cron in ["61 * * * *", "* * *", "every minute"] {
        match runtime
            .plan(
                &planner,
                window(1, "UTC", at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z")),
                &json!({"cron": cron}),
            )
            .await
            .result
        {
            Err(CallError::InvalidArgs { message, .. }) => assert!(message.starts_with("cron:"), "{cron}: {message}"),
            other => panic!("{cron}: expected invalid args, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn window_planner_crosses_midnight_keeps_the_gap_and_its_days() {
    let runtime = runtime();
    let planner = builtin(&runtime, "window-planner").await;
    let args = json!({"days": ["MON", "TUE", "WED", "THU", "FRI"], "between": "22:00-02:00", "times": 3, "min_gap_minutes": 30, "timezone": "America/New_York"});
    let ny: Tz = "America/New_York".parse().unwrap();
    // Two whole weeks.
    let (whole, split) =
        whole_and_split(&runtime, &planner, &args, at("2026-12-07T00:00:00Z"), at("2026-12-21T00:00:00Z"), 5).await;
    assert_eq!(whole, split);
    // The windows of Sun 6th and of Sat 12th/Sun 13th are not chosen; Mon 7th..Fri 11th
    // and Mon 14th..Fri 18th are (the Friday windows end on Saturday).
    assert_eq!(whole.len(), 10 * 3, "{whole:?}");
    for t in &whole {
        let local = t.with_timezone(&ny);
        let (hour, day) = (local.hour(), local.weekday());
        let window_day = if hour < 2 { day.pred() } else { day };
        assert!(!(2..22).contains(&hour), "{local} is inside 22:00-02:00");
        assert!(!matches!(window_day, Weekday::Sat | Weekday::Sun), "{local} belongs to a chosen day");
    }
    for runs in whole.chunks(3) {
        assert!(runs.windows(2).all(|w| w[1] - w[0] >= Duration::minutes(30)), "{runs:?}");
    }
    let too_many = json!({"days": ["MON"], "between": "22:00-23:00", "times": 3, "min_gap_minutes": 30});
    match runtime
        .plan(&planner, window(1, "UTC", at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z")), &too_many)
        .await
        .result
    {
        Err(CallError::InvalidArgs { message, .. }) => assert!(message.contains("do not fit"), "{message}"),
        other => panic!("expected invalid args, got {other:?}"),
    }
}

#[tokio::test]
async fn mtbf_planner_fires_once_per_mean_on_average_never_closer_than_its_minimum() {
    let runtime = runtime();
    let planner = builtin(&runtime, "mtbf-planner").await;
    let args = json!({"mean_days_between": 5, "min_days_between": 2, "between": "09:00-15:00", "timezone": "America/Los_Angeles"});
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let (whole, split) =
        whole_and_split(&runtime, &planner, &args, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), 12).await;
    assert_eq!(whole, split, "a day's draw never depends on the window");
    // 261 work days at 1/5, fewer with the 2-day minimum: about 40 to 52.
    assert!((25..=60).contains(&whole.len()), "{} firings in 2026", whole.len());
    let work_days: Vec<_> = whole.iter().map(|t| t.with_timezone(&la)).collect();
    for local in &work_days {
        assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun), "{local}");
        assert!((9..15).contains(&local.hour()), "{local} inside work hours");
    }
    for pair in work_days.windows(2) {
        let days = (pair[1].date_naive() - pair[0].date_naive()).num_days();
        assert!(days >= 3, "two firings {days} days apart: {pair:?}");
    }
}

#[tokio::test]
async fn simple_planner_every_day_recurs_in_its_window() {
    let runtime = runtime();
    let planner = builtin(&runtime, "simple-planner").await;
    let args = json!({"min_time": "10:00", "max_time": "11:00", "times": 2, "every_day": true});
    let (whole, split) =
        whole_and_split(&runtime, &planner, &args, at("2026-12-01T00:00:00Z"), at("2026-12-08T00:00:00Z"), 3).await;
    assert_eq!(whole, split);
    assert_eq!(whole.len(), 14, "two runs on each of 7 days");
    assert!(whole.iter().all(|t| t.hour() == 10), "{whole:?}");
}

#[tokio::test]
async fn a_planner_built_against_0_1_0_loads_and_plans_once() {
    let runtime = runtime();
    let planner = runtime.load(cme_plugins::test_plugins::LEGACY_PLANNER.wasm).await.expect("a 0.1.0 planner loads");
    assert_eq!(planner.contract(), "0.1.0");
    let ctx = window(1, "UTC", at("2026-12-01T00:00:00Z"), at("2026-12-08T00:00:00Z"));
    let outcome = runtime.plan(&planner, ctx, &json!({"in_seconds": 60})).await;
    assert_eq!(outcome.result.unwrap(), Planned { instants: vec![at("2026-12-01T00:01:00Z")], recurring: false });
    assert_eq!(
        outcome.record.log[0].message, "planning with the 0.1.0 contract",
        "its 0.1.0 log import reaches the run's log"
    );
}

#[tokio::test]
async fn an_attack_built_against_0_1_0_runs_within_the_same_grant() {
    let server = CaptureServer::start(|_| Reply::status(204)).await;
    let runtime = runtime();
    let attack = runtime.load(cme_plugins::test_plugins::LEGACY_ATTACK.wasm).await.expect("a 0.1.0 attack loads");
    assert_eq!(attack.contract(), "0.1.0");
    let args = json!({"url": server.url("/poke")});
    let denied = runtime.run(&attack, run_request(args.clone(), Grant::default())).await;
    match denied.result {
        Err(CallError::Denied(message)) => assert!(message.contains("http is not granted"), "{message}"),
        other => panic!("expected denied, got {other:?}"),
    }
    assert!(server.requests().is_empty());
    let grant = Grant {
        http: Some(cme_runtime::grant::HttpGrant { urls: vec!["http://127.0.0.1:*".into()], ..Default::default() }),
        ..Grant::default()
    };
    let outcome = runtime.run(&attack, run_request(args, grant)).await;
    assert_eq!(
        outcome.result.expect("the granted request is sent").summary,
        format!("GET {} -> 204", server.url("/poke"))
    );
    assert_eq!(server.requests().len(), 1);
    assert_eq!(outcome.record.audit.len(), 1, "audited like any call");
}

#[tokio::test]
async fn a_planner_built_against_0_2_0_loads_and_plans_its_window() {
    let runtime = runtime();
    let planner = runtime.load(cme_plugins::test_plugins::V2_PLANNER.wasm).await.expect("a 0.2.0 planner loads");
    assert_eq!(planner.contract(), "0.2.0");
    let ctx = window(1, "UTC", at("2026-12-01T00:00:00Z"), at("2026-12-08T00:00:00Z"));
    let outcome = runtime.plan(&planner, ctx, &json!({"in_seconds": 60})).await;
    assert_eq!(outcome.result.unwrap(), Planned { instants: vec![at("2026-12-01T00:01:00Z")], recurring: false });
    assert_eq!(outcome.record.log[0].message, "planning with the 0.2.0 contract");
}

#[tokio::test]
async fn a_probe_built_against_0_2_0_checks_within_the_same_grant() {
    let server = CaptureServer::start(|_| Reply::status(503)).await;
    let runtime = runtime();
    let probe = runtime.load(cme_plugins::test_plugins::V2_PROBE.wasm).await.expect("a 0.2.0 probe loads");
    assert_eq!(probe.contract(), "0.2.0");
    let request = |grant: Grant| cme_runtime::ProbeRequest {
        check_id: "check-1".into(),
        now: Utc::now(),
        args: json!({"url": server.url("/health")}),
        grant,
        deadline: std::time::Duration::from_secs(10),
        owner: Default::default(),
        dry_run: false,
    };
    let denied = runtime.check(&probe, request(Grant::default())).await;
    assert!(
        matches!(denied.result, Err(CallError::Denied(ref m)) if m.contains("http is not granted")),
        "{:?}",
        denied.result
    );
    assert!(server.requests().is_empty());
    let outcome = runtime.check(&probe, request(cme_runtime::grant::as_declared(&probe.info().capabilities))).await;
    let verdict = outcome.result.expect("the granted request is sent");
    assert!(!verdict.healthy);
    assert_eq!(verdict.reason, format!("GET {} -> 503", server.url("/health")));
    assert_eq!(outcome.record.audit.len(), 1, "audited like any call");
}

#[tokio::test]
async fn an_attack_built_against_0_3_0_loads_and_runs_within_the_same_grant() {
    let server = CaptureServer::start(|_| Reply::status(204)).await;
    let runtime = runtime();
    let attack = runtime.load(cme_plugins::test_plugins::V3_ATTACK.wasm).await.expect("a 0.3.0 attack loads");
    assert_eq!(attack.contract(), "0.3.0");
    assert!(
        attack.info().capabilities.contains(&cme_runtime::Capability::Ec2Disrupt { regions: vec!["eu-west-1".into()] }),
        "its 0.3.0 declaration reads as today's: {:?}",
        attack.info().capabilities
    );
    let args = json!({"url": server.url("/poke")});
    let denied = runtime.run(&attack, run_request(args.clone(), Grant::default())).await;
    assert!(
        matches!(&denied.result, Err(CallError::Denied(m)) if m.contains("http is not granted")),
        "{:?}",
        denied.result
    );
    assert!(server.requests().is_empty());
    let grant = Grant {
        http: Some(cme_runtime::grant::HttpGrant { urls: vec!["http://127.0.0.1:*".into()], ..Default::default() }),
        ..Grant::default()
    };
    let outcome = runtime.run(&attack, run_request(args, grant)).await;
    assert_eq!(server.requests().len(), 1, "the granted GET is sent");
    // Its 0.3.0 undo.arm-http reaches today's host function, which has no ledger here.
    let failed = format!("{:?}", outcome.result);
    assert!(failed.contains("no revert ledger") || failed.contains("undo"), "{failed}");
    let calls: Vec<&str> = outcome.record.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(calls, ["http.send", "undo.arm-http"], "audited like any call");
}
