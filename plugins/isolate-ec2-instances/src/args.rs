//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use ec2_terminate::TargetArgs;

/// Which instances, how many, and for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// The host registers their groups before it swaps them: always reverted.
#[schemars(extend("x-cme-reversible" = true))]
pub struct Args {
    #[serde(flatten)]
    pub target: TargetArgs,
    /// how long they stay isolated before the host gives them their security groups back (an experiment's step may end it sooner)
    #[schemars(range(min = 1, max = 604_800))]
    pub duration_seconds: u32,
}
