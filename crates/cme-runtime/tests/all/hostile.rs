//! Hostile plugins: each ends its call with an error naming the limit, within the
//! deadline, and the next call on the same runtime works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cme_runtime::{CallError, Grant, Limits};
use serde_json::json;

use crate::support::*;

async fn misbehave(mode: serde_json::Value) -> CallError {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let outcome = run_hostile(&runtime, &plugin, mode, Grant::default()).await;
    assert_runtime_still_works(&runtime, &plugin).await;
    outcome.result.expect_err("a hostile call fails")
}

#[tokio::test]
async fn endless_loop_ends_at_the_deadline() {
    let error = misbehave(json!({"mode": "loop"})).await;
    assert_eq!(error, CallError::Deadline(RUN_DEADLINE));
    assert_eq!(error.to_string(), "deadline of 2000 ms exceeded");
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let error = misbehave(json!({"mode": "memory-bomb"})).await;
    match &error {
        CallError::MemoryLimit { limit, requested } => {
            assert_eq!(*limit, Limits::default().memory_bytes);
            assert!(requested > limit);
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(error.to_string().starts_with("memory limit of 67108864 bytes per call exceeded"), "{error}");
}

#[tokio::test]
async fn stack_overflow_is_reported_as_such() {
    assert_eq!(misbehave(json!({"mode": "stack-overflow"})).await, CallError::StackOverflow);
}

#[tokio::test]
async fn a_panic_reports_the_plugins_message() {
    match misbehave(json!({"mode": "panic"})).await {
        CallError::Panicked(message) => assert!(message.starts_with("plugin panicked on purpose (at "), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[tokio::test]
async fn a_log_flood_hits_the_log_line_limit() {
    assert_eq!(misbehave(json!({"mode": "log-flood"})).await, CallError::LogLimit(1000));
}

#[tokio::test]
async fn a_stdout_flood_hits_the_output_limit() {
    let error = misbehave(json!({"mode": "stdout-flood"})).await;
    assert_eq!(error, CallError::OutputLimit { what: "stdout", limit: 64 << 10 });
}

#[tokio::test]
async fn a_host_call_flood_hits_the_host_call_limit() {
    assert_eq!(misbehave(json!({"mode": "host-call-flood"})).await, CallError::HostCallLimit(1000));
}

#[tokio::test]
async fn a_huge_report_hits_the_output_limit() {
    let error = misbehave(json!({"mode": "huge-report", "bytes": 2 << 20})).await;
    assert_eq!(error, CallError::OutputLimit { what: "the report", limit: 1 << 20 });
}

#[tokio::test]
async fn files_are_out_of_reach() {
    match misbehave(json!({"mode": "read-file", "path": "/etc/passwd"})).await {
        CallError::Failed(message) => assert!(message.starts_with("cannot read /etc/passwd"), "{message}"),
        other => panic!("expected the read to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn sockets_are_out_of_reach() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match misbehave(json!({"mode": "connect", "addr": addr.to_string()})).await {
        CallError::Failed(message) => assert!(message.starts_with(&format!("cannot connect to {addr}")), "{message}"),
        other => panic!("expected the connection to fail, got {other:?}"),
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "the plugin must not have reached the listener");
}

#[tokio::test]
async fn the_environment_is_empty() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let report = run_hostile(&runtime, &plugin, json!({"mode": "env"}), Grant::default()).await.result.unwrap();
    assert_eq!(report.summary, "0 variables");
}

#[tokio::test]
async fn calls_are_isolated_from_each_other() {
    // A loop and a normal call at once: the normal call is not held up by the loop.
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let loop_ended = AtomicBool::new(false);
    let looping = async {
        let outcome = run_hostile(&runtime, &plugin, json!({"mode": "loop"}), Grant::default()).await;
        loop_ended.store(true, Ordering::SeqCst);
        outcome
    };
    let normal = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let outcome = run_hostile(&runtime, &plugin, json!({"mode": "noop"}), Grant::default()).await;
        (outcome, loop_ended.load(Ordering::SeqCst))
    };
    let (looped, (normal, loop_had_ended)) = tokio::join!(looping, normal);
    assert_eq!(looped.result.unwrap_err(), CallError::Deadline(RUN_DEADLINE));
    normal.result.expect("the normal call succeeds");
    assert!(!loop_had_ended, "the normal call finished while the loop still ran");
}

#[tokio::test]
async fn dropping_a_call_cancels_it() {
    // One call at a time and an hour's deadline: the next call can only run at all if
    // dropping the first (as a halt does) really ended it and gave its slot back.
    let runtime = runtime_with(|config| {
        config.max_concurrent_calls = 1;
        config.run_limits.deadline = Duration::from_secs(3600);
    });
    let plugin = hostile(&runtime).await;
    let looping = run_hostile(&runtime, &plugin, json!({"mode": "loop"}), Grant::default());
    assert!(tokio::time::timeout(Duration::from_millis(200), looping).await.is_err(), "the loop is still running");
    // A guard against hanging, not a measurement: a kept slot would block for an hour.
    let next = tokio::time::timeout(
        Duration::from_secs(600),
        run_hostile(&runtime, &plugin, json!({"mode": "noop"}), Grant::default()),
    );
    next.await.expect("the dropped call gave its slot back").result.expect("the next call runs");
}
