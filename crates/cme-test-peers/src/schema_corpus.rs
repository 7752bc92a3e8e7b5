//! Documents to judge two JSON Schemas by: when a schema is rewritten (derived from a
//! type instead of written by hand), both must accept and refuse the same documents with
//! the same problem pointers. The documents are made from a valid example: each property
//! left out, nulled, set to values of other types, and set at and across every bound
//! either schema names.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Asserts that `old` and `new` judge every document alike (validity and the set of
/// error pointers); returns how many documents were judged.
pub fn assert_same_judgement(what: &str, old: &Value, new: &Value, example: &Value, extra: &[Value]) -> usize {
    let old_validator = jsonschema::validator_for(old).unwrap_or_else(|e| panic!("{what}: the old schema: {e}"));
    let new_validator = jsonschema::validator_for(new).unwrap_or_else(|e| panic!("{what}: the new schema: {e}"));
    let mut cases = corpus(example);
    cases.extend(boundaries(example, old));
    cases.extend(boundaries(example, new));
    cases.extend(extra.iter().cloned());
    for document in &cases {
        assert_eq!(
            (old_validator.is_valid(document), pointers(&old_validator, document)),
            (new_validator.is_valid(document), pointers(&new_validator, document)),
            "{what}: the new schema judges {document} otherwise than the old one\nnew: {new}"
        );
    }
    cases.len()
}

/// Args made from a valid example that a schema may judge either way: each property
/// left out, set to null, to a value of each other type, to numbers at and past the
/// usual bounds, to odd strings; an unknown property; the wrong document type.
pub fn corpus(example: &Value) -> Vec<Value> {
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
pub fn boundaries(example: &Value, schema: &Value) -> Vec<Value> {
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

pub fn pointers(validator: &jsonschema::Validator, args: &Value) -> BTreeSet<String> {
    validator.iter_errors(args).map(|e| e.instance_path().to_string()).collect()
}
