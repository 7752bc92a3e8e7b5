//! What a plugin says about itself, built fluently and converted to the WIT `plugin-info`.

use serde_json::Value;

use crate::PluginError;

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
    /// Stop, reboot and isolate EC2 instances and their subnets in these regions (empty:
    /// any); the host reverts what it can (0.3.0).
    Ec2Disrupt(Vec<String>),
    /// The `compute` interface on these clouds (empty: any) for these operations
    /// (`stop-node`, `start-node`, `reboot-node`, `destroy-node`; listing is implied)
    /// (0.4.0).
    Compute {
        /// The clouds, by the names of the operator's `[[clouds]]` (empty: any).
        clouds: Vec<String>,
        /// The operations besides `list-nodes`.
        operations: Vec<String>,
    },
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
    /// Kebab-case name, unique among the engine's plugins.
    pub name: String,
    /// Semantic version, e.g. `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// The refs plans select the plugin by, e.g. `api_request:ApiRequest`.
    pub refs: Vec<String>,
    /// One or two sentences for people choosing a plugin.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the args object.
    pub schema: Value,
    /// Example args; they must validate against `schema`.
    pub example: Value,
    /// What the plugin needs from the host; planners need nothing.
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

    /// One or two sentences for people choosing a plugin.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// JSON Schema (draft 2020-12) of the args object, written by hand. Prefer
    /// [`Describe::args`], which derives it from the type `run` receives.
    pub fn schema(mut self, schema: Value) -> Self {
        self.schema = schema;
        self
    }

    /// The args schema derived from `T` (`#[derive(Deserialize, JsonSchema)]`), so the
    /// schema the engine checks plans against and the struct the plugin parses cannot
    /// drift apart. Doc comments on fields become their `description`s. An `Option` field
    /// may be left out but not sent as `null` (see [`schema::schema_of`](crate::schema::schema_of)).
    ///
    /// ```
    /// use cme_plugin_sdk::{Describe, json};
    /// use schemars::JsonSchema;
    /// use serde::Deserialize;
    ///
    /// /// The attack's args.
    /// #[derive(Deserialize, JsonSchema)]
    /// struct Args {
    ///     /// The URL to call.
    ///     url: String,
    ///     /// Seconds to wait for an answer.
    ///     #[serde(default)]
    ///     timeout: Option<u32>,
    /// }
    ///
    /// let info = Describe::new("ping-attack", "1.0.0").args::<Args>().example(json!({"url": "http://svc/"}));
    /// assert_eq!(info.schema["required"], json!(["url"]));
    /// assert_eq!(info.schema["properties"]["url"]["description"], "The URL to call.");
    /// ```
    pub fn args<T: schemars::JsonSchema>(self) -> Self {
        self.schema(crate::schema::schema_of::<T>())
    }

    /// The args schema derived from `T` when the plugin was built, not when it runs: the
    /// same schema as [`Describe::args`], carried by the component as text instead of
    /// schemars' code (which adds a third to a small component's size). The plugin's
    /// `build.rs` writes it with [`build::write_args_schema`](crate::build::write_args_schema)
    /// from the very file that defines `T`, and [`built_args!`](crate::built_args)
    /// ties the two together:
    ///
    /// ```ignore
    /// // build.rs
    /// #[path = "src/args.rs"]
    /// #[allow(dead_code)]
    /// mod args;
    /// fn main() {
    ///     cme_plugin_sdk::build::write_args_schema::<args::Args>("Args");
    /// }
    ///
    /// // src/lib.rs
    /// mod args;
    /// cme_plugin_sdk::built_args!(args::Args);
    /// // in describe():
    /// Describe::new("my-attack", "1.0.0").args_built::<args::Args>()
    /// ```
    ///
    /// Under `cargo test` (not wasm) the schema is derived again and must equal the built
    /// one, so a stale build cannot pass.
    pub fn args_built<T: BuiltArgs>(self) -> Self {
        let built: Value = serde_json::from_str(T::SCHEMA).expect("the build script wrote JSON");
        #[cfg(not(target_arch = "wasm32"))]
        assert_eq!(built, crate::schema::schema_of::<T>(), "the built args schema is stale: rebuild the plugin");
        self.schema(built)
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

    /// Declares what an [`crate::aim::Aim`] uses: describing EC2 instances, listing the
    /// nodes of any cloud, and SSH (which inventories are reached by).
    pub fn aimed_over_ssh(self) -> Self {
        self.capability(Capability::Ec2Describe(vec![]))
            .capability(Capability::Compute { clouds: vec![], operations: vec!["list-nodes".into()] })
            .capability(Capability::Ssh)
    }
}

use crate::wit::cme::plugin::types as wit;

impl From<Describe> for wit::PluginInfo {
    fn from(d: Describe) -> Self {
        wit::PluginInfo {
            name: d.name,
            version: d.version,
            refs: d.refs,
            description: d.description,
            args_schema: d.schema.to_string(),
            example_args: d.example.to_string(),
            capabilities: d.capabilities.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Capability> for wit::Capability {
    fn from(c: Capability) -> Self {
        match c {
            Capability::Http(p) => wit::Capability::Http(p),
            Capability::Ec2Describe(r) => wit::Capability::Ec2Describe(r),
            Capability::Ec2Terminate(r) => wit::Capability::Ec2Terminate(r),
            Capability::Ssh => wit::Capability::Ssh,
            Capability::Scripts => wit::Capability::Scripts,
            Capability::Ec2Disrupt(r) => wit::Capability::Ec2Disrupt(r),
            Capability::Compute { clouds, operations } => {
                wit::Capability::Compute(wit::ComputeUse { clouds, operations })
            }
        }
    }
}

/// A refusal stays a refusal; every other host failure fails the call (an attack failed;
/// a probe could not tell, which counts as unhealthy).
impl From<wit::HostError> for PluginError {
    fn from(e: wit::HostError) -> Self {
        match e {
            wit::HostError::Denied(m) => PluginError::Denied(m),
            wit::HostError::Unavailable(m) => PluginError::Failed(format!("unavailable: {m}")),
            wit::HostError::InvalidArgument(m) => PluginError::Failed(format!("invalid argument: {m}")),
            wit::HostError::BudgetExhausted(m) => PluginError::Failed(format!("budget exhausted: {m}")),
            wit::HostError::Timeout(m) => PluginError::Failed(format!("timeout: {m}")),
            wit::HostError::Upstream(m) => PluginError::Failed(format!("upstream error: {m}")),
        }
    }
}

impl From<PluginError> for wit::PluginError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidArgs(m) => wit::PluginError::InvalidArgs(m),
            PluginError::Denied(m) => wit::PluginError::Denied(m),
            PluginError::Failed(m) => wit::PluginError::Failed(m),
        }
    }
}

/// An args type whose schema the plugin's build script derived ([`built_args!`](crate::built_args)).
pub trait BuiltArgs: schemars::JsonSchema {
    /// The schema's JSON text.
    const SCHEMA: &'static str;
}

/// Implements [`BuiltArgs`] for a type with the schema the plugin's `build.rs` wrote for
/// it ([`build::write_args_schema`](crate::build::write_args_schema), under the type's
/// name).
#[macro_export]
macro_rules! built_args {
    ($($path:ident)::+) => {
        impl $crate::BuiltArgs for $($path)::+ {
            const SCHEMA: &'static str =
                include_str!(concat!(env!("OUT_DIR"), "/", $crate::built_args!(@last $($path)::+), ".schema.json"));
        }
    };
    (@last $head:ident :: $($rest:ident)::+) => { $crate::built_args!(@last $($rest)::+) };
    (@last $last:ident) => { stringify!($last) };
}
