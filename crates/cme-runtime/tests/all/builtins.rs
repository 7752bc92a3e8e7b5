//! The built-in plugins, loaded from the components embedded in cme-plugins.

use chrono::{Duration, NaiveTime, Timelike};
use chrono_tz::Tz;
use cme_runtime::{CallError, PlanContext, PluginKind};
use serde_json::json;

use crate::support::*;

/// A planner context asking about the week from `now`, as the engine does for a new plan.
pub fn ctx(now: &str, timezone: &str, seed: u64) -> PlanContext {
    PlanContext { now: at(now), timezone: timezone.into(), seed, window: (at(now), at(now) + Duration::days(7)) }
}

#[tokio::test]
async fn every_builtin_describes_itself_with_the_original_refs() {
    let runtime = runtime();
    let expected: [(&str, PluginKind, &[&str]); 28] = [
        ("exact-planner", PluginKind::Planner, &["exact_planner:ExactPlanner"]),
        ("simple-planner", PluginKind::Planner, &["simple_planner:SimplePlanner"]),
        ("cron-planner", PluginKind::Planner, &["cron_planner:CronPlanner"]),
        ("window-planner", PluginKind::Planner, &["window_planner:WindowPlanner"]),
        ("mtbf-planner", PluginKind::Planner, &["mtbf_planner:MtbfPlanner"]),
        ("api-request", PluginKind::Attack, &["api_request:ApiRequest"]),
        ("terminate-ec2-instance", PluginKind::Attack, &["terminate_ec2_instance:TerminateEC2Instance"]),
        (
            "terminate-ec2-instance-not-excluded",
            PluginKind::Attack,
            // The second is the ref the original's docs gave.
            &[
                "terminate_ec2_instance_not_excluded:TerminateEC2InstanceNotExcluded",
                "terminate_ec2_instance:TerminateEC2InstanceNotExcluded",
            ],
        ),
        ("run-script", PluginKind::Attack, &["run_script:RunScript"]),
        ("kill-process", PluginKind::Attack, &["kill_process:KillProcess"]),
        ("stop-service", PluginKind::Attack, &["stop_service:StopService"]),
        ("network-fault", PluginKind::Attack, &["network_fault:NetworkFault"]),
        ("cpu-stress", PluginKind::Attack, &["cpu_stress:CpuStress"]),
        ("memory-stress", PluginKind::Attack, &["memory_stress:MemoryStress"]),
        ("io-stress", PluginKind::Attack, &["io_stress:IoStress"]),
        ("disk-fill", PluginKind::Attack, &["disk_fill:DiskFill"]),
        ("dns-fault", PluginKind::Attack, &["dns_fault:DnsFault"]),
        ("time-skew", PluginKind::Attack, &["time_skew:TimeSkew"]),
        ("container-fault", PluginKind::Attack, &["container_fault:ContainerFault"]),
        ("stop-ec2-instances", PluginKind::Attack, &["stop_ec2_instances:StopEC2Instances"]),
        ("reboot-ec2-instances", PluginKind::Attack, &["reboot_ec2_instances:RebootEC2Instances"]),
        ("isolate-ec2-instances", PluginKind::Attack, &["isolate_ec2_instances:IsolateEC2Instances"]),
        ("az-outage", PluginKind::Attack, &["az_outage:AzOutage"]),
        ("terminate-random-node", PluginKind::Attack, &["terminate_random_node:TerminateRandomNode"]),
        ("stop-random-node", PluginKind::Attack, &["stop_random_node:StopRandomNode"]),
        ("reboot-random-node", PluginKind::Attack, &["reboot_random_node:RebootRandomNode"]),
        ("http-probe", PluginKind::Probe, &["http_probe:HttpProbe"]),
        ("prometheus-probe", PluginKind::Probe, &["prometheus_probe:PrometheusProbe"]),
    ];
    assert_eq!(cme_plugins::BUILTINS.len(), expected.len(), "every built-in is checked");
    for (name, kind, refs) in expected {
        let plugin = builtin(&runtime, name).await;
        assert_eq!(plugin.info().name, name);
        assert_eq!(plugin.kind(), kind);
        assert_eq!(plugin.info().refs, refs.iter().map(|r| r.to_string()).collect::<Vec<_>>());
        assert!(!plugin.info().description.is_empty());
        // The example validates against the schema (load checked it; check it here too).
        plugin.validate_args(&plugin.info().example_args).expect("example validates");
        semver::Version::parse(&plugin.info().version).expect("semver version");
    }
}

#[tokio::test]
async fn exact_planner_honours_the_offset() {
    let runtime = runtime();
    let planner = builtin(&runtime, "exact-planner").await;
    let outcome = runtime
        .plan(&planner, ctx("2030-01-01T00:00:00Z", "Europe/Madrid", 1), &json!({"date": "2030-01-01T10:00:00+05:00"}))
        .await;
    assert_eq!(outcome.result.unwrap().instants, vec![at("2030-01-01T05:00:00Z")]);
}

#[tokio::test]
async fn exact_planner_reads_a_date_without_offset_in_the_context_zone() {
    let runtime = runtime();
    let planner = builtin(&runtime, "exact-planner").await;
    let outcome = runtime
        .plan(&planner, ctx("2030-01-01T00:00:00Z", "Europe/Madrid", 1), &json!({"date": "2030-06-21T15:30:00"}))
        .await;
    assert_eq!(
        outcome.result.unwrap().instants,
        vec![at("2030-06-21T13:30:00Z")],
        "15:30 in Madrid in summer is 13:30 UTC"
    );
}

#[tokio::test]
async fn exact_planner_refuses_past_and_garbage_dates_naming_the_field() {
    let runtime = runtime();
    let planner = builtin(&runtime, "exact-planner").await;
    for (date, fragment) in [("2029-12-31T23:59:59Z", "in the past"), ("garbage", "not an RFC 3339")] {
        let args = json!({ "date": date });
        match runtime.plan(&planner, ctx("2030-01-01T00:00:00Z", "UTC", 1), &args).await.result {
            Err(CallError::InvalidArgs { message, .. }) => {
                assert!(message.starts_with("date: "), "{message}");
                assert!(message.contains(fragment), "{message}");
            }
            other => panic!("{date}: expected invalid args, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn schema_violations_carry_the_json_pointer() {
    let runtime = runtime();
    let planner = builtin(&runtime, "exact-planner").await;
    match runtime.plan(&planner, ctx("2030-01-01T00:00:00Z", "UTC", 1), &json!({"date": 5})).await.result {
        Err(CallError::InvalidArgs { pointer, .. }) => assert_eq!(pointer.as_deref(), Some("/date")),
        other => panic!("expected a schema violation, got {other:?}"),
    }
    match runtime.plan(&planner, ctx("2030-01-01T00:00:00Z", "UTC", 1), &json!({})).await.result {
        Err(CallError::InvalidArgs { message, .. }) => assert!(message.contains("date"), "{message}"),
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

async fn simple_plan(
    now: &str,
    zone: &str,
    seed: u64,
    min: &str,
    max: &str,
    times: u32,
) -> Result<Vec<chrono::DateTime<chrono::Utc>>, CallError> {
    let runtime = runtime();
    let planner = builtin(&runtime, "simple-planner").await;
    runtime
        .plan(&planner, ctx(now, zone, seed), &json!({"min_time": min, "max_time": max, "times": times}))
        .await
        .result
        .map(|planned| {
            assert!(!planned.recurring, "without every_day the plan is one-shot");
            planned.instants
        })
}

#[tokio::test]
async fn simple_planner_puts_one_instant_in_each_bucket_of_todays_window() {
    // 07:00 UTC is 08:00 in Madrid in winter: the whole 10:00-15:00 window is ahead.
    let times = simple_plan("2030-01-15T07:00:00Z", "Europe/Madrid", 7, "10:00", "15:00", 5).await.unwrap();
    assert_eq!(times.len(), 5);
    let madrid: Tz = "Europe/Madrid".parse().unwrap();
    for (i, t) in times.iter().enumerate() {
        let local = t.with_timezone(&madrid);
        assert_eq!(local.date_naive().to_string(), "2030-01-15");
        let hour_start = NaiveTime::from_hms_opt(10 + i as u32, 0, 0).unwrap();
        assert!(local.time() >= hour_start && local.time() < hour_start + Duration::hours(1), "instant {i} at {local}");
    }
    assert!(times.windows(2).all(|w| w[0] < w[1]), "ascending");
}

#[tokio::test]
async fn simple_planner_gives_the_same_plan_for_the_same_seed() {
    let a = simple_plan("2030-01-15T07:00:00Z", "UTC", 42, "10:00", "15:00", 20).await.unwrap();
    let b = simple_plan("2030-01-15T07:00:00Z", "UTC", 42, "10:00", "15:00", 20).await.unwrap();
    let c = simple_plan("2030-01-15T07:00:00Z", "UTC", 43, "10:00", "15:00", 20).await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c, "another seed gives another plan");
}

#[tokio::test]
async fn simple_planner_uses_only_the_part_of_the_window_still_ahead() {
    let times = simple_plan("2030-01-15T12:00:00Z", "UTC", 1, "10:00", "15:00", 30).await.unwrap();
    assert_eq!(times.len(), 30);
    assert!(times.iter().all(|t| *t >= at("2030-01-15T12:00:00Z") && *t < at("2030-01-15T15:00:00Z")));
}

#[tokio::test]
async fn simple_planner_wraps_windows_across_midnight() {
    // At 01:00, 22:00-02:00 is the window that began yesterday: 01:00-02:00 is left.
    let times = simple_plan("2030-01-15T01:00:00Z", "UTC", 1, "22:00", "02:00", 10).await.unwrap();
    assert!(times.iter().all(|t| *t >= at("2030-01-15T01:00:00Z") && *t < at("2030-01-15T02:00:00Z")), "{times:?}");
    // At 20:00 it is tonight's window, 22:00 today to 02:00 tomorrow.
    let times = simple_plan("2030-01-15T20:00:00Z", "UTC", 1, "22:00", "02:00", 4).await.unwrap();
    assert!(times.iter().all(|t| *t >= at("2030-01-15T22:00:00Z") && *t < at("2030-01-16T02:00:00Z")), "{times:?}");
    assert!(times.iter().any(|t| t.hour() < 2), "the window reaches past midnight: {times:?}");
}

#[tokio::test]
async fn simple_planner_refuses_a_window_already_over_today() {
    match simple_plan("2030-01-15T16:00:00Z", "UTC", 1, "10:00", "15:00", 3).await {
        Err(CallError::InvalidArgs { message, .. }) => {
            assert!(message.contains("window already over today"), "{message}")
        }
        other => panic!("expected invalid args, got {other:?}"),
    }
}

#[tokio::test]
async fn simple_planner_accepts_only_1_to_10000_times() {
    let runtime = runtime();
    let planner = builtin(&runtime, "simple-planner").await;
    for times in [json!(0), json!(10001), json!("3"), json!(2.5)] {
        let args = json!({"min_time": "10:00", "max_time": "15:00", "times": times});
        match runtime.plan(&planner, ctx("2030-01-15T07:00:00Z", "UTC", 1), &args).await.result {
            Err(CallError::InvalidArgs { pointer, .. }) => {
                assert_eq!(pointer.as_deref(), Some("/times"), "times = {times}")
            }
            other => panic!("times = {times}: expected invalid args, got {other:?}"),
        }
    }
    let args = json!({"min_time": "00:00", "max_time": "23:59", "times": 10000});
    assert_eq!(
        runtime.plan(&planner, ctx("2030-01-15T00:00:00Z", "UTC", 1), &args).await.result.unwrap().instants.len(),
        10000
    );
}

#[tokio::test]
async fn api_request_sends_a_form_encoded_payload_like_the_original() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let runtime = runtime();
    let attack = builtin(&runtime, "api-request").await;
    let args = json!({
        "endpoint": server.url("/hit?x=1"),
        "method": "post",
        "payload": {"terminate": 1, "n": "2"},
        "headers": {"X-CUSTOM-HEADER": "test"}
    });
    let grant = cme_runtime::grant::as_declared(&attack.info().capabilities);
    let outcome = runtime.run(&attack, run_request(args, grant)).await;
    let report = outcome.result.expect("the attack succeeds");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/hit?x=1");
    assert_eq!(seen.header("x-custom-header"), Some("test"));
    assert_eq!(seen.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(String::from_utf8_lossy(&seen.body), "n=2&terminate=1");
    assert_eq!(report.details["status"], 200);
    assert!(report.details["elapsed_ms"].is_u64());
    assert!(report.summary.contains("-> 200"), "{}", report.summary);
    assert_eq!(report.targets, vec![server.url("/hit?x=1")]);
    let audited: Vec<_> = outcome.record.audit.iter().map(|a| (a.action.as_str(), a.outcome.clone())).collect();
    assert_eq!(audited, vec![("http.send", Some("200".to_string()))]);
}

#[tokio::test]
async fn api_request_sends_json_when_asked_by_header_or_encoding() {
    let server = CaptureServer::start(|_| Reply::status(201)).await;
    let runtime = runtime();
    let attack = builtin(&runtime, "api-request").await;
    let grant = cme_runtime::grant::as_declared(&attack.info().capabilities);
    let by_header = json!({"endpoint": server.url("/a"), "method": "PUT", "payload": {"n": 2},
                           "headers": {"Content-Type": "application/json"}});
    let by_encoding = json!({"endpoint": server.url("/b"), "method": "PATCH", "payload": {"n": 2}, "encoding": "json"});
    for args in [by_header, by_encoding] {
        runtime.run(&attack, run_request(args, grant.clone())).await.result.expect("2xx succeeds");
    }
    for seen in server.requests() {
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(), json!({"n": 2}));
    }
}

#[tokio::test]
async fn api_request_fails_on_an_unexpected_status_and_honours_expected_status() {
    let server = CaptureServer::start(|req| Reply::status(if req.target == "/gone" { 410 } else { 500 })).await;
    let runtime = runtime();
    let attack = builtin(&runtime, "api-request").await;
    let grant = cme_runtime::grant::as_declared(&attack.info().capabilities);
    let args = json!({"endpoint": server.url("/boom"), "method": "GET", "payload": {}, "headers": {}});
    match runtime.run(&attack, run_request(args, grant.clone())).await.result {
        Err(CallError::Failed(message)) => {
            assert!(message.contains("500") && message.contains("expected 2xx"), "{message}")
        }
        other => panic!("expected failure, got {other:?}"),
    }
    let args = json!({"endpoint": server.url("/gone"), "method": "DELETE", "expected_status": [404, 410]});
    let report = runtime.run(&attack, run_request(args, grant)).await.result.expect("410 was expected");
    assert_eq!(report.details["status"], 410);
}

#[tokio::test]
async fn api_request_in_a_dry_run_sends_nothing_and_says_what_it_would_send() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let runtime = runtime();
    let attack = builtin(&runtime, "api-request").await;
    let grant = cme_runtime::grant::as_declared(&attack.info().capabilities);
    let args = json!({"endpoint": server.url("/kill"), "method": "POST", "payload": {"a": 1}, "headers": {}});
    let mut request = run_request(args, grant);
    request.dry_run = true;
    let outcome = runtime.run(&attack, request).await;
    let report = outcome.result.expect("a dry run succeeds");
    assert!(report.summary.starts_with("dry run: would send POST"), "{}", report.summary);
    assert_eq!(outcome.record.dry_run_actions, vec![format!("would send POST {} (3 body bytes)", server.url("/kill"))]);
    assert!(outcome.record.audit.iter().all(|a| a.dry_run));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn api_request_reports_a_refused_connection_as_failed() {
    // Bind then drop, so that the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let runtime = runtime();
    let attack = builtin(&runtime, "api-request").await;
    let grant = cme_runtime::grant::as_declared(&attack.info().capabilities);
    let args = json!({"endpoint": format!("http://127.0.0.1:{port}/"), "method": "GET"});
    let outcome = runtime.run(&attack, run_request(args, grant)).await;
    match outcome.result {
        Err(CallError::Failed(message)) => assert!(message.starts_with("upstream error:"), "{message}"),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_sdk_documentation_example_builds_loads_and_runs() {
    let server = CaptureServer::start(|req| Reply::status(if req.target == "/health" { 204 } else { 503 })).await;
    let runtime = runtime();
    let ping = runtime.load(cme_plugins::test_plugins::PING.wasm).await.expect("the example loads");
    assert_eq!(ping.info().name, "ping-attack");
    let grant = cme_runtime::grant::as_declared(&ping.info().capabilities);
    let outcome = runtime.run(&ping, run_request(json!({"url": server.url("/health")}), grant.clone())).await;
    assert_eq!(outcome.result.unwrap().summary, format!("GET {} -> 204", server.url("/health")));
    assert_eq!(outcome.record.log[0].message, format!("pinging {}", server.url("/health")));
    let outcome = runtime.run(&ping, run_request(json!({"url": server.url("/down")}), grant)).await;
    assert_eq!(outcome.result.unwrap_err(), CallError::Failed(format!("{} answered 503", server.url("/down"))));
}

/// Asks the built-in http probe with `args` on `runtime`, granted what it declares.
async fn probe_check(
    runtime: &cme_runtime::Runtime,
    args: serde_json::Value,
    dry_run: bool,
) -> cme_runtime::ProbeOutcome {
    let probe = builtin(runtime, "http-probe").await;
    let grant = cme_runtime::grant::as_declared(&probe.info().capabilities);
    let request = cme_runtime::ProbeRequest {
        check_id: "check-1".into(),
        now: chrono::Utc::now(),
        args,
        grant,
        deadline: std::time::Duration::from_secs(10),
        owner: Default::default(),
        dry_run,
    };
    runtime.check(&probe, request).await
}

/// Probes observe: the host's http capability lets a probe send only GET and HEAD
/// (whatever its args say), or what the operator's `[probes] allow_methods` allows; under
/// a dry run such an allowed method is recorded, not sent, while GET still is.
#[tokio::test]
async fn a_probe_may_only_observe_unless_the_operator_allows_more() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let plain = runtime();
    for method in ["DELETE", "POST", "PUT", "PATCH"] {
        let outcome = probe_check(&plain, json!({"url": server.url("/health"), "method": method}), false).await;
        let audited: Vec<_> = outcome
            .record
            .audit
            .iter()
            .map(|a| (a.action.clone(), format!("{:?} {:?}", a.decision, a.reason)))
            .collect();
        assert!(
            audited.iter().any(|(call, decision)| call == "http.send" && decision.contains("probes observe")),
            "{method}: {audited:?}"
        );
        let healthy = outcome.result.as_ref().map(|v| v.healthy).unwrap_or(false);
        assert!(!healthy, "{method}: a refused request is not health");
    }
    assert!(
        server.requests().is_empty(),
        "nothing but GET and HEAD left the host: {:?}",
        server.requests().iter().map(|r| r.method.clone()).collect::<Vec<_>>()
    );
    for method in ["GET", "HEAD"] {
        let outcome = probe_check(&plain, json!({"url": server.url("/health"), "method": method}), true).await;
        assert!(outcome.result.expect("answers").healthy, "{method} observes, dry run or not");
    }
    assert_eq!(server.requests().iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["GET", "HEAD"]);

    let allowing = runtime_with(|config| config.fences.probes.allow_methods = vec!["post".into()]);
    let sent = probe_check(&allowing, json!({"url": server.url("/health"), "method": "POST"}), false).await;
    assert!(sent.result.expect("answers").healthy);
    assert_eq!(server.requests().last().map(|r| r.method.as_str()), Some("POST"), "an allowed method is sent");
    let before = server.requests().len();
    let dry = probe_check(&allowing, json!({"url": server.url("/health"), "method": "POST"}), true).await;
    assert_eq!(server.requests().len(), before, "under a dry run an allowed POST is not sent");
    assert!(dry.record.dry_run_actions.iter().any(|a| a.contains("POST")), "{:?}", dry.record.dry_run_actions);
}
