//! Choosing EC2 targets the way the built-in attacks do: filters written as a JSON
//! object (as the original engine's plans carry them), only running instances, and a
//! random pick of one, `count` or `percent` of the candidates.
//!
//! ```
//! use cme_plugin_sdk::targets::{Selection, choose, filters_from_json, running_only, shell_quote};
//! use cme_plugin_sdk::json;
//! let object = json!({"tag:Chaos": "true", "instance-type": ["t3.micro", "t3.small"]});
//! let filters = running_only("filters", filters_from_json("filters", object.as_object().unwrap()).unwrap()).unwrap();
//! assert!(filters.iter().any(|f| f.name == "instance-state-name" && f.values == ["running"]));
//! let half = Selection::from_args(None, Some(50)).unwrap();
//! assert_eq!(half.size(4), 2);
//! let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(7);
//! assert_eq!(choose(&mut rng, vec!["i-1", "i-2", "i-3", "i-4"], 2).len(), 2);
//! assert_eq!(shell_quote("it's"), "'it'\\''s'");
//! ```

use rand_core::RngCore;
use serde_json::{Map, Value};

use crate::PluginError;
use crate::ec2::Filter;

/// `{"tag:Chaos": "true", "instance-type": ["t3.micro", "t3.small"]}` as EC2 filters.
/// Values may be strings, numbers, booleans or lists of those; `field` names the args
/// field in errors.
pub fn filters_from_json(field: &str, object: &Map<String, Value>) -> Result<Vec<Filter>, PluginError> {
    let scalar = |name: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PluginError::invalid(
            &format!("{field}.{name}"),
            "values are strings, numbers, booleans or lists of those",
        )),
    };
    object
        .iter()
        .map(|(name, value)| {
            let values = match value {
                Value::Array(items) if items.is_empty() => {
                    return Err(PluginError::invalid(&format!("{field}.{name}"), "an empty list matches nothing"));
                }
                Value::Array(items) => items.iter().map(|v| scalar(name, v)).collect::<Result<Vec<_>, _>>()?,
                other => vec![scalar(name, other)?],
            };
            Ok(Filter { name: name.clone(), values })
        })
        .collect()
}

/// The JSON Schema of EC2 filters as [`filters_from_json`] reads them: an object whose
/// values are strings, numbers, booleans or lists of those. Args keep the object as
/// JSON and say so with `#[schemars(with = "cme_plugin_sdk::targets::Ec2Filters")]`.
pub struct Ec2Filters;

impl schemars::JsonSchema for Ec2Filters {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ec2Filters".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // One `type` list with `items` (not an `anyOf` per shape), so that a bad list
        // item is reported at its own pointer.
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "array"], "items": {"type": ["string", "number", "boolean"]}}
        })
    }
}

/// Adds `instance-state-name = running` to `filters`; a filter that asks for another
/// state is refused, since only running instances are targets.
pub fn running_only(field: &str, mut filters: Vec<Filter>) -> Result<Vec<Filter>, PluginError> {
    match filters.iter().find(|f| f.name == "instance-state-name") {
        Some(state) if state.values != ["running"] => Err(PluginError::invalid(
            &format!("{field}.instance-state-name"),
            "only running instances can be targets; drop this filter or set it to \"running\"",
        )),
        Some(_) => Ok(filters),
        None => {
            filters.push(Filter { name: "instance-state-name".into(), values: vec!["running".into()] });
            Ok(filters)
        }
    }
}

/// How many of the candidates to pick, like AWS FIS target selection modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// `COUNT(n)`: n of them (all when fewer match).
    Count(u32),
    /// `PERCENT(p)`: p % of them, rounded up, at least one.
    Percent(u32),
}

impl Selection {
    /// From optional `count` and `percent` args (at most one may be given; default one).
    pub fn from_args(count: Option<u32>, percent: Option<u32>) -> Result<Selection, PluginError> {
        match (count, percent) {
            (Some(_), Some(_)) => Err(PluginError::invalid("count", "give count or percent, not both")),
            (Some(0), None) => Err(PluginError::invalid("count", "must be at least 1")),
            (Some(n), None) => Ok(Selection::Count(n)),
            (None, Some(p)) if !(1..=100).contains(&p) => Err(PluginError::invalid("percent", "must be 1-100")),
            (None, Some(p)) => Ok(Selection::Percent(p)),
            (None, None) => Ok(Selection::Count(1)),
        }
    }

    /// The number to pick out of `candidates`.
    pub fn size(self, candidates: usize) -> usize {
        match self {
            Selection::Count(n) => (n as usize).min(candidates),
            Selection::Percent(p) => (candidates * p as usize).div_ceil(100).max(1).min(candidates),
        }
    }
}

/// `n` distinct items picked uniformly at random (a partial Fisher-Yates shuffle).
pub fn choose<T>(rng: &mut impl RngCore, mut items: Vec<T>, n: usize) -> Vec<T> {
    let n = n.min(items.len());
    for i in 0..n {
        let remaining = (items.len() - i) as u64;
        let j = i + (rng.next_u64() % remaining) as usize;
        items.swap(i, j);
    }
    items.truncate(n);
    items
}

/// Single-quotes a word for a POSIX shell, for commands sent over `ssh::exec`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn filters_accept_scalars_and_lists() {
        let object = serde_json::json!({"tag:Chaos": "true", "instance-type": ["t3.micro", "t3.small"], "tag:Tier": 2});
        let filters = filters_from_json("filters", object.as_object().unwrap()).unwrap();
        let pairs: Vec<(String, Vec<String>)> = filters.into_iter().map(|f| (f.name, f.values)).collect();
        assert!(pairs.contains(&("tag:Chaos".into(), vec!["true".into()])));
        assert!(pairs.contains(&("instance-type".into(), vec!["t3.micro".into(), "t3.small".into()])));
        assert!(pairs.contains(&("tag:Tier".into(), vec!["2".into()])));
        let bad = serde_json::json!({"tag:X": {"nested": 1}});
        assert!(
            filters_from_json("filters", bad.as_object().unwrap()).unwrap_err().to_string().contains("filters.tag:X")
        );
    }

    #[test]
    fn running_only_adds_the_state_and_refuses_others() {
        let added = running_only("filters", vec![]).unwrap();
        assert_eq!(added[0].name, "instance-state-name");
        let stopped = vec![Filter { name: "instance-state-name".into(), values: vec!["stopped".into()] }];
        assert!(running_only("filters", stopped).is_err());
    }

    #[test]
    fn selection_sizes_follow_count_and_percent() {
        assert_eq!(Selection::from_args(None, None).unwrap().size(10), 1);
        assert_eq!(Selection::Count(3).size(2), 2);
        assert_eq!(Selection::Percent(50).size(5), 3);
        assert_eq!(Selection::Percent(1).size(3), 1);
        assert_eq!(Selection::Percent(100).size(0), 0);
        assert!(Selection::from_args(Some(1), Some(5)).is_err());
        assert!(Selection::from_args(None, Some(0)).is_err());
    }

    #[test]
    fn choose_picks_distinct_items() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let picked = choose(&mut rng, (0..10).collect(), 4);
        let mut unique = picked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert_eq!(choose(&mut rng, vec![1, 2], 5).len(), 2);
    }
}
