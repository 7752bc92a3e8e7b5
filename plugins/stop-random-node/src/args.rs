//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use node_attack::NodeTargetArgs;

/// Which cloud, which nodes, how many, and for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// The host registers the start before it stops them: always reverted.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub target: NodeTargetArgs,
    /// how long they stay stopped before the host starts them again (an experiment's step may end it sooner)
    #[schemars(range(min = 1, max = 604_800))]
    pub duration_seconds: u32,
}
