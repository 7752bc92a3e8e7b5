//! Derived args schemas accept and refuse exactly what the hand-written ones they replaced
//! did, with the same problem pointers. `fixtures/args-schemas/<plugin>.json` keeps each
//! built-in's hand-written schema (and the examples' ones) as it was before the plugins
//! derived theirs with `Describe::args::<T>()`; every plugin's example args, and a corpus
//! of known-bad args made from it, are judged by both.

use std::collections::BTreeSet;
use std::path::PathBuf;

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

/// Args made from a valid example that a schema may judge either way: each property
/// left out, set to null, to a value of each other type, to numbers at and past the
/// usual bounds, to odd strings; an unknown property; the wrong document type.
fn corpus(example: &Value) -> Vec<Value> {
    let mut cases = vec![example.clone(), json!(null), json!([]), json!("x"), json!({}), json!(1)];
    let Some(object) = example.as_object() else { return cases };
    let mut extra = object.clone();
    extra.insert("unknown_property".into(), json!(1));
    cases.push(Value::Object(extra));
    let odd_values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1),
        json!(1.5),
        json!(65536),
        json!(4294967296u64),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("https://example.com/"),
        json!("* * * * *"),
        json!("2026-01-01T00:00:00Z"),
        json!([]),
        json!(["x"]),
        json!([1]),
        json!({}),
        json!({"k": "v"}),
    ];
    for key in object.keys() {
        let mut without = object.clone();
        without.remove(key);
        cases.push(Value::Object(without));
        for value in &odd_values {
            let mut changed = object.clone();
            changed.insert(key.clone(), value.clone());
            cases.push(Value::Object(changed));
        }
    }
    cases
}

/// The example with each property (and each property of an object property) set at and
/// across every bound a schema names: numbers either side of `minimum`/`maximum`, strings
/// and arrays either side of their length bounds.
fn boundaries(example: &Value, schema: &Value) -> Vec<Value> {
    let mut cases = Vec::new();
    let Some(object) = example.as_object() else { return cases };
    let Some(properties) = schema["properties"].as_object() else { return cases };
    for (key, property) in properties {
        for value in values_across_bounds(property, object.get(key)) {
            let mut changed = object.clone();
            changed.insert(key.clone(), value);
            cases.push(Value::Object(changed));
        }
        if let (Some(inner), Some(current)) = (property["properties"].as_object(), object.get(key)) {
            let Some(current) = current.as_object() else { continue };
            for (inner_key, inner_property) in inner {
                for value in values_across_bounds(inner_property, current.get(inner_key)) {
                    let mut changed_inner = current.clone();
                    changed_inner.insert(inner_key.clone(), value);
                    let mut changed = object.clone();
                    changed.insert(key.clone(), Value::Object(changed_inner));
                    cases.push(Value::Object(changed));
                }
            }
        }
    }
    cases
}

fn values_across_bounds(property: &Value, current: Option<&Value>) -> Vec<Value> {
    let mut values = Vec::new();
    let mut bounds: Vec<&Value> = Vec::new();
    for branch in std::iter::once(property)
        .chain(property["anyOf"].as_array().into_iter().flatten())
        .chain(property["oneOf"].as_array().into_iter().flatten())
    {
        bounds.extend(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].iter().map(|k| &branch[*k]));
        for key in ["minLength", "maxLength"] {
            if let Some(n) = branch[key].as_u64() {
                for len in [n.saturating_sub(1), n, n + 1] {
                    values.push(json!("a".repeat(len as usize)));
                }
            }
        }
        for key in ["minItems", "maxItems"] {
            if let Some(n) = branch[key].as_u64() {
                let item = current.and_then(|c| c.as_array()).and_then(|a| a.first()).cloned().unwrap_or(json!(1));
                for len in [n.saturating_sub(1), n, n + 1] {
                    values.push(Value::Array(vec![item.clone(); len as usize]));
                }
            }
        }
        if let Some(items) = branch.get("items") {
            for value in values_across_bounds(items, None) {
                values.push(json!([value]));
            }
        }
    }
    for bound in bounds.into_iter().filter_map(Value::as_f64) {
        for n in [bound - 1.0, bound - 0.5, bound, bound + 0.5, bound + 1.0] {
            values.push(json!(n));
            if n.fract() == 0.0 && n.abs() < 1e15 {
                values.push(json!(n as i64));
            }
        }
    }
    values
}

fn pointers(validator: &jsonschema::Validator, args: &Value) -> BTreeSet<String> {
    validator.iter_errors(args).map(|e| e.instance_path().to_string()).collect()
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
        let old = jsonschema::validator_for(&before).unwrap();
        let new = jsonschema::validator_for(&info.args_schema).unwrap();
        let mut cases = corpus(&info.example_args);
        cases.extend(boundaries(&info.example_args, &before));
        cases.extend(boundaries(&info.example_args, &info.args_schema));
        cases.extend(known_bad(&info.name));
        for args in cases {
            assert_eq!(
                (old.is_valid(&args), pointers(&old, &args)),
                (new.is_valid(&args), pointers(&new, &args)),
                "{}: the derived schema judges {args} otherwise than the hand-written one\nderived: {}",
                info.name,
                info.args_schema
            );
            compared += 1;
        }
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
