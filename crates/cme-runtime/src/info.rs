//! What a plugin says about itself, checked before the engine accepts it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use cme_model::PluginKind;

/// A capability as a plugin requests it in `describe()` (the WIT `capability`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Capability {
    /// HTTP to URLs matching these patterns.
    Http { urls: Vec<String> },
    /// Describe EC2 instances in these regions (empty: any).
    Ec2Describe { regions: Vec<String> },
    /// Terminate EC2 instances in these regions (empty: any).
    Ec2Terminate { regions: Vec<String> },
    /// SSH to instances the run discovered.
    Ssh,
    /// Read from the script library.
    Scripts,
    /// Stop, reboot and isolate EC2 instances and subnets in these regions (empty: any).
    Ec2Disrupt { regions: Vec<String> },
    /// `compute` on these clouds (empty: any) for these operations (listing is implied).
    Compute { clouds: Vec<String>, operations: Vec<String> },
}

/// A plugin's self-description, as returned by `describe()` and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub refs: Vec<String>,
    pub description: String,
    pub args_schema: Value,
    pub example_args: Value,
    pub capabilities: Vec<Capability>,
}

impl PluginInfo {
    /// Checks the rules every plugin must meet and compiles the args schema: a kebab-case
    /// name, a semver version, at least one well-formed ref, a JSON Schema that compiles,
    /// example args that validate, and parsable URL patterns.
    pub(crate) fn validate(&self) -> Result<jsonschema::Validator, String> {
        if !cme_model::is_plugin_name(&self.name) {
            return Err(format!(
                "name {:?} is not kebab-case (lowercase words joined by '-', e.g. api-request)",
                self.name
            ));
        }
        semver::Version::parse(&self.version)
            .map_err(|e| format!("version {:?} is not a semantic version (e.g. 1.2.0): {e}", self.version))?;
        if self.refs.is_empty() {
            return Err("refs is empty: a plugin needs at least one ref, e.g. my_attack:MyAttack".into());
        }
        for r in &self.refs {
            if canonical_ref(r).is_none() {
                return Err(format!("ref {r:?} is not of the form module:Class (letters, digits, '_', '-', '.')"));
            }
        }
        let validator =
            jsonschema::validator_for(&self.args_schema).map_err(|e| format!("args schema does not compile: {e}"))?;
        if let Some(error) = validator.iter_errors(&self.example_args).next() {
            return Err(format!(
                "example args do not validate against the args schema at {:?}: {error}",
                error.instance_path().to_string()
            ));
        }
        for capability in &self.capabilities {
            if let Capability::Http { urls } = capability {
                for url in urls {
                    cme_cloud::http::UrlPattern::parse(url).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(validator)
    }
}

/// The canonical `module:Class` spelling of a ref; the original engine's documented
/// `module.Class` spelling maps to it (the last `.` becomes `:`). None when malformed.
pub fn canonical_ref(text: &str) -> Option<String> {
    let (module, class) = match text.split_once(':') {
        Some(pair) => pair,
        None => text.rsplit_once('.')?,
    };
    let valid = |s: &str, extra: &[char]| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    };
    (valid(module, &['.', '-']) && valid(class, &[])).then(|| format!("{module}:{class}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "api-request".into(),
            version: "1.0.0".into(),
            refs: vec!["api_request:ApiRequest".into()],
            description: String::new(),
            args_schema: json!({"type": "object", "required": ["x"]}),
            example_args: json!({"x": 1}),
            capabilities: vec![Capability::Http { urls: vec!["*".into()] }],
        }
    }

    #[test]
    fn both_ref_spellings_are_canonical() {
        assert_eq!(canonical_ref("api_request:ApiRequest").as_deref(), Some("api_request:ApiRequest"));
        assert_eq!(canonical_ref("api_request.ApiRequest").as_deref(), Some("api_request:ApiRequest"));
        assert_eq!(canonical_ref("test.attacks.attack1:Attack1").as_deref(), Some("test.attacks.attack1:Attack1"));
        assert_eq!(canonical_ref("nope"), None);
        assert_eq!(canonical_ref("a:b:c"), None);
        assert_eq!(canonical_ref(":B"), None);
        assert_eq!(canonical_ref("a b:C"), None);
    }

    #[test]
    fn a_valid_info_passes() {
        assert!(info().validate().is_ok());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases: Vec<(PluginInfo, &str)> = vec![
            (PluginInfo { name: "ApiRequest".into(), ..info() }, "kebab-case"),
            (PluginInfo { name: "api--request".into(), ..info() }, "kebab-case"),
            (PluginInfo { version: "1.0".into(), ..info() }, "semantic version"),
            (PluginInfo { refs: vec![], ..info() }, "refs is empty"),
            (PluginInfo { refs: vec!["nope".into()], ..info() }, "module:Class"),
            (PluginInfo { args_schema: json!({"type": 5}), ..info() }, "does not compile"),
            (PluginInfo { example_args: json!({}), ..info() }, "example args do not validate"),
            (
                PluginInfo { capabilities: vec![Capability::Http { urls: vec!["nope".into()] }], ..info() },
                "invalid URL pattern",
            ),
        ];
        for (info, expected) in cases {
            let err = info.validate().unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }
}
