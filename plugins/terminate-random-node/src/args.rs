//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use node_attack::NodeTargetArgs;

/// Which cloud, which nodes, how many.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Args {
    #[serde(flatten)]
    pub target: NodeTargetArgs,
}
