//! Derived args schemas accept and refuse exactly what the hand-written ones they replaced
//! did, with the same problem pointers. `fixtures/args-schemas/<plugin>.json` keeps each
//! built-in's hand-written schema (and the examples' ones) as it was before the plugins
//! derived theirs with `Describe::args::<T>()`; every plugin's example args, and a corpus
//! of known-bad args made from it, are judged by both.

use std::path::PathBuf;

use cme_test_peers::schema_corpus::assert_same_judgement;
use serde_json::{Value, json};

use crate::support::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/all/fixtures/args-schemas");

/// Every built-in plus the SDK's examples.
fn plugins() -> Vec<&'static cme_plugins::EmbeddedPlugin> {
    let mut all: Vec<_> = cme_plugins::BUILTINS.iter().collect();
    all.push(&cme_plugins::test_plugins::PING);
    all.push(&cme_plugins::test_plugins::GCE_STOP);
    all
}

#[tokio::test]
async fn derived_args_schemas_judge_as_the_hand_written_ones_did() {
    let runtime = runtime();
    let dump = std::env::var_os("CME_DUMP_ARGS_SCHEMAS").is_some();
    let mut compared = 0;
    for embedded in plugins() {
        let plugin = runtime.load(embedded.wasm).await.expect("loads");
        let info = plugin.info();
        let path = PathBuf::from(FIXTURES).join(format!("{}.json", info.name));
        if dump {
            let text = serde_json::to_string_pretty(&info.args_schema).unwrap();
            std::fs::write(&path, text + "\n").unwrap();
            continue;
        }
        let before: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e}", path.display());
        }))
        .unwrap();
        compared +=
            assert_same_judgement(&info.name, &before, &info.args_schema, &info.example_args, &known_bad(&info.name));
    }
    assert!(dump || compared > 1000, "only {compared} args compared");
}

/// Args each plugin's docs or tests name as refused.
fn known_bad(plugin: &str) -> Vec<Value> {
    match plugin {
        "api-request" => vec![
            json!({"endpoint": "ftp://x/", "method": "GET"}),
            json!({"endpoint": "http://x/", "method": "GE T"}),
            json!({"endpoint": "http://x/", "method": "GET", "expected_status": []}),
            json!({"endpoint": "http://x/", "method": "GET", "expected_status": [99]}),
            json!({"endpoint": "http://x/", "method": "GET", "expected_status": 600}),
            json!({"endpoint": "http://x/", "method": "GET", "headers": {"a": [1]}}),
            json!({"endpoint": "http://x/", "method": "GET", "headers": {"a": null}}),
            json!({"endpoint": "http://x/", "method": "GET", "encoding": "xml"}),
            json!({"endpoint": "http://x/", "method": "GET", "timeout_ms": 600001}),
        ],
        "kill-process" => vec![
            json!({"target": {"inventory": "web"}, "process": "nginx", "pattern": "ngin.*"}),
            json!({"target": {"inventory": "web"}}),
            json!({"target": {"inventory": "web"}, "region": "eu-west-1", "process": "nginx"}),
            json!({"region": "eu-west-1", "filters": {}, "process": "nginx"}),
            json!({"target": {"inventory": "web"}, "process": "a-name-longer-than-15"}),
            json!({"target": {"inventory": "web"}, "process": "nginx", "signal": "CONT"}),
            json!({"region": "r", "filters": {"k": [null]}, "ssh": {"credential": "c"}, "process": "nginx"}),
            json!({"region": "r", "filters": {}, "ssh": {"credential": "c", "address": "elastic"}, "process": "x"}),
            json!({"region": "r", "filters": {}, "ssh": {"credential": "c", "port": 0}, "process": "x"}),
            json!({"region": "r", "filters": {}, "ssh": {"credential": "c", "key": "k"}, "process": "x"}),
            json!({"target": {"inventory": "web", "group": "g"}, "process": "x"}),
        ],
        "network-fault" => vec![
            json!({"target": {"inventory": "web"}, "fault": "latency", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "loss", "loss_percent": 0, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "blackhole", "ports": [22, 22], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "blackhole", "ports": [], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "dns", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "partition", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "partition", "peers": ["10.0.0.0/8;reboot"], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "corrupt", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "fault": "duplicate", "duplicate_percent": 0, "duration_seconds": 60}),
        ],
        "cpu-stress" => vec![
            json!({"target": {"inventory": "web"}, "cores": 0, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "load_percent": 101, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}}),
        ],
        "memory-stress" => vec![
            json!({"target": {"inventory": "web"}, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "mib": 64, "percent": 10, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "percent": 0, "duration_seconds": 60}),
        ],
        "io-stress" => vec![
            json!({"target": {"inventory": "web"}, "bytes": 1, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "path": "relative", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "workers": 65, "duration_seconds": 60}),
        ],
        "disk-fill" => vec![
            json!({"target": {"inventory": "web"}, "path": "/var/tmp", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "path": "/var/tmp", "bytes": 1, "percent": 5, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "path": "/var/tmp; rm -rf /", "bytes": 1, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "path": "/var/tmp", "percent": 101, "duration_seconds": 60}),
        ],
        "dns-fault" => vec![
            json!({"target": {"inventory": "web"}, "names": [], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "names": ["a b"], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "names": ["x';reboot;'"], "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "names": ["db"], "redirect_to": "$(reboot)", "duration_seconds": 60}),
        ],
        "time-skew" => vec![
            json!({"target": {"inventory": "web"}, "offset_seconds": 0, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "offset_seconds": 31_536_001i64, "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "duration_seconds": 60}),
        ],
        "container-fault" => vec![
            json!({"target": {"inventory": "web"}, "action": "stop", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "action": "stop", "name": "db"}),
            json!({"target": {"inventory": "web"}, "action": "restart", "name": "db", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "action": "stop", "name": "db;reboot", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "action": "stop", "name": "db", "label": "a=b", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "action": "delete", "name": "db", "duration_seconds": 60}),
            json!({"target": {"inventory": "web"}, "action": "stop", "name": "db", "runtime": "lxc", "duration_seconds": 60}),
        ],
        "terminate-ec2-instance-not-excluded" => vec![
            json!({"region": "r", "filters": {}, "excluded": {}}),
            json!({"region": "r", "filters": {}, "excluded": []}),
            json!({"region": "r", "filters": {}, "excluded": [{}]}),
            json!({"region": "r", "filters": {}, "excluded": [{"k": [null]}]}),
        ],
        "http-probe" => vec![
            json!({"url": "http://x/", "json_pointer": "/a"}),
            json!({"url": "http://x/", "json_equals": 1}),
            json!({"url": "http://x/", "json_pointer": "a", "json_equals": 1}),
        ],
        _ => Vec::new(),
    }
}

/// The host fault attacks were born with derived schemas (their fixtures are snapshots):
/// what their docs name as refused is refused by the schema itself, before any run.
#[tokio::test]
async fn host_fault_args_refuse_bad_sizes_paths_names_and_offsets() {
    let runtime = runtime();
    for name in [
        "cpu-stress",
        "memory-stress",
        "io-stress",
        "disk-fill",
        "dns-fault",
        "time-skew",
        "network-fault",
        "container-fault",
    ] {
        let embedded = cme_plugins::BUILTINS.iter().find(|p| p.crate_name == name).expect("a built-in");
        let plugin = runtime.load(embedded.wasm).await.expect("loads");
        plugin.validate_args(&plugin.info().example_args).expect("the example validates");
        let bad = known_bad(name);
        assert!(bad.len() >= 3, "{name}");
        for args in bad {
            assert!(plugin.validate_args(&args).is_err(), "{name} accepted {args}");
        }
    }
}
