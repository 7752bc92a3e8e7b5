//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use ec2_terminate::TargetArgs;

/// Which instances, and how many. A reboot leaves nothing to revert: an experiment's step
/// using it says `"irreversible": true`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Args {
    #[serde(flatten)]
    pub target: TargetArgs,
}
