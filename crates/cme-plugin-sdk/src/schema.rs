//! JSON Schemas derived from types, as the engine reads them: draft 2020-12, every
//! subschema inline (a schema can be placed anywhere in a larger document, the API's
//! OpenAPI document included), and optional means absent: an `Option` field may be left
//! out, not sent as `null`. This is what hand-written schemas always said; the engine
//! derives its request schemas with this very function, so a plugin's args and the API's
//! bodies follow one rule.

use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::Value;

/// The schema of `T`, derived (`#[derive(JsonSchema)]`, with `#[schemars(...)]` bounds
/// such as `range`, `length` and `regex`). Doc comments become `description`s.
pub fn schema_of<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|settings| {
        settings.inline_subschemas = true;
        settings.meta_schema = None;
    });
    let mut schema = SchemaGenerator::new(settings).into_root_schema_for::<T>();
    AbsentNotNull.transform(&mut schema);
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        // The type's Rust name says nothing to a reader of the document.
        object.remove("title");
    }
    value
}

/// Removes `null` from what a schema accepts wherever something else is accepted too:
/// what `Option<T>` adds (`"type": [T, "null"]`, an `anyOf` branch, a `null` enum value).
#[derive(Debug, Clone, Copy)]
struct AbsentNotNull;

impl Transform for AbsentNotNull {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            // An absent `Option` is not a null value to show as the default.
            if object.get("default").is_some_and(Value::is_null) {
                object.remove("default");
            }
            if let Some(Value::Array(types)) = object.get_mut("type")
                && types.iter().any(|t| t != "null")
            {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(values)) = object.get_mut("enum")
                && values.iter().any(|v| !v.is_null())
            {
                values.retain(|v| !v.is_null());
            }
            let lone_branch = match object.get_mut("anyOf") {
                Some(Value::Array(branches)) if branches.iter().any(|b| !is_null_only(b)) => {
                    branches.retain(|b| !is_null_only(b));
                    (branches.len() == 1).then(|| branches.remove(0))
                }
                _ => None,
            };
            if let Some(Value::Object(branch)) = lone_branch {
                // `anyOf` of one: its keywords join the schema (a description beside it stays).
                object.remove("anyOf");
                for (key, value) in branch {
                    object.entry(key).or_insert(value);
                }
            }
        }
        transform_subschemas(self, schema);
    }
}

fn is_null_only(schema: &Value) -> bool {
    schema.get("type").is_some_and(|t| t == "null") || schema.get("const").is_some_and(Value::is_null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Args {
        /// The URL.
        url: String,
        #[schemars(range(min = 1, max = 600))]
        timeout: Option<u32>,
        mode: Option<Mode>,
        inner: Option<Inner>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn optional_fields_may_be_absent_but_not_null() {
        let schema = schema_of::<Args>();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&json!({"url": "x"})));
        assert!(validator.is_valid(&json!({"url": "x", "timeout": 5, "mode": "fast", "inner": {"n": 1}})));
        for null in ["timeout", "mode", "inner"] {
            let mut args = json!({"url": "x"});
            args[null] = Value::Null;
            assert!(!validator.is_valid(&args), "{null}: null accepted by {schema}");
        }
        assert!(!validator.is_valid(&json!({"url": "x", "timeout": 0})), "the range holds");
        assert!(!validator.is_valid(&json!({"timeout": 5})), "url is required");
        assert_eq!(schema["properties"]["url"]["description"], "The URL.");
        assert!(schema.get("title").is_none() && schema.get("$defs").is_none(), "{schema}");
    }
}
