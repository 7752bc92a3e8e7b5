//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::serde_json::{Map, Value};
use ec2_terminate::TargetArgs;

/// Which instances, how many of them, and which to spare.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Args {
    #[serde(flatten)]
    pub target: TargetArgs,
    /// instances to spare: EC2 filters and/or tag pairs, all of which must match; a list means any of its objects
    pub excluded: Excluded,
}

/// One exclusion, or a list of which any may match.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Excluded {
    One(#[schemars(with = "Exclusion")] Map<String, Value>),
    AnyOf(#[schemars(with = "Vec<Exclusion>", length(min = 1))] Vec<Map<String, Value>>),
}

/// EC2 filters and/or tag pairs, at least one.
#[derive(schemars::JsonSchema)]
#[schemars(extend("minProperties" = 1))]
#[schemars(transparent)]
struct Exclusion(#[schemars(with = "cme_plugin_sdk::targets::Ec2Filters")] ());
