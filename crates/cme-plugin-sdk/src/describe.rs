//! What a plugin says about itself, built fluently and converted to the WIT `plugin-info`.

use serde_json::Value;

/// A capability a plugin asks for. The operator's grant may be narrower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// HTTP to URLs matching these patterns (`scheme://host[:port][/path]`, `*` wildcards;
    /// a lone `"*"` is any http(s) URL).
    Http(Vec<String>),
    /// Describe EC2 instances in these regions (empty: any).
    Ec2Describe(Vec<String>),
    /// Terminate EC2 instances in these regions (empty: any).
    Ec2Terminate(Vec<String>),
    /// SSH to instances the same run discovered.
    Ssh,
    /// Read scripts from the host's library.
    Scripts,
}

/// A plugin's self-description. `name` is kebab-case, `version` semver; the JSON Schema
/// and example must agree (the host checks both when the plugin is loaded).
///
/// ```
/// use cme_plugin_sdk::{Describe, json};
/// let info = Describe::new("wait-planner", "1.0.0")
///     .refs(["wait_planner:WaitPlanner"])
///     .description("Runs the attack once, N seconds from now.")
///     .schema(json!({"type": "object", "required": ["seconds"],
///                    "properties": {"seconds": {"type": "integer", "minimum": 1}}}))
///     .example(json!({"seconds": 60}));
/// assert_eq!(info.name, "wait-planner");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Describe {
    pub name: String,
    pub version: String,
    pub refs: Vec<String>,
    pub description: String,
    pub schema: Value,
    pub example: Value,
    pub capabilities: Vec<Capability>,
}

impl Describe {
    /// A description with no refs, an empty description, a schema accepting any object
    /// and `{}` as example.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Describe {
            name: name.into(),
            version: version.into(),
            refs: Vec::new(),
            description: String::new(),
            schema: serde_json::json!({"type": "object"}),
            example: serde_json::json!({}),
            capabilities: Vec::new(),
        }
    }

    /// The refs plans select this plugin by, e.g. `api_request:ApiRequest`.
    pub fn refs<I, S>(mut self, refs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.refs = refs.into_iter().map(Into::into).collect();
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// JSON Schema (draft 2020-12) of the args object.
    pub fn schema(mut self, schema: Value) -> Self {
        self.schema = schema;
        self
    }

    /// Example args; must validate against the schema.
    pub fn example(mut self, example: Value) -> Self {
        self.example = example;
        self
    }

    /// Adds a capability request.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }
}

/// Converts the SDK's description into one world's generated `plugin-info`; the same
/// code serves both worlds because their `types` interface is identical.
#[cfg(any(feature = "planner", feature = "attack", feature = "probe"))]
macro_rules! impl_into_plugin_info {
    () => {
        const _: () = {
        use self::bindings::cme::plugin::types as t;
        impl From<$crate::Describe> for t::PluginInfo {
            fn from(d: $crate::Describe) -> Self {
                use t::{Capability as C, PluginInfo};
                PluginInfo {
                    name: d.name,
                    version: d.version,
                    refs: d.refs,
                    description: d.description,
                    args_schema: d.schema.to_string(),
                    example_args: d.example.to_string(),
                    capabilities: d
                        .capabilities
                        .into_iter()
                        .map(|c| match c {
                            $crate::Capability::Http(p) => C::Http(p),
                            $crate::Capability::Ec2Describe(r) => C::Ec2Describe(r),
                            $crate::Capability::Ec2Terminate(r) => C::Ec2Terminate(r),
                            $crate::Capability::Ssh => C::Ssh,
                            $crate::Capability::Scripts => C::Scripts,
                        })
                        .collect(),
                }
            }
        }

        /// A refusal stays a refusal; every other host failure fails the call (an attack
        /// failed; a probe could not tell, which counts as unhealthy).
        impl From<t::HostError> for $crate::PluginError {
            fn from(e: t::HostError) -> Self {
                match e {
                    t::HostError::Denied(m) => $crate::PluginError::Denied(m),
                    t::HostError::Unavailable(m) => $crate::PluginError::Failed(format!("unavailable: {m}")),
                    t::HostError::InvalidArgument(m) => $crate::PluginError::Failed(format!("invalid argument: {m}")),
                    t::HostError::BudgetExhausted(m) => $crate::PluginError::Failed(format!("budget exhausted: {m}")),
                    t::HostError::Timeout(m) => $crate::PluginError::Failed(format!("timeout: {m}")),
                    t::HostError::Upstream(m) => $crate::PluginError::Failed(format!("upstream error: {m}")),
                }
            }
        }

        impl From<$crate::PluginError> for t::PluginError {
            fn from(e: $crate::PluginError) -> Self {
                match e {
                    $crate::PluginError::InvalidArgs(m) => t::PluginError::InvalidArgs(m),
                    $crate::PluginError::Denied(m) => t::PluginError::Denied(m),
                    $crate::PluginError::Failed(m) => t::PluginError::Failed(m),
                }
            }
        }
        };
    };
}
#[cfg(any(feature = "planner", feature = "attack", feature = "probe"))]
pub(crate) use impl_into_plugin_info;
