//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// When to run.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Args {
    /// RFC 3339 date-time, e.g. 2030-06-21T15:30:00+02:00; without offset it is wall time in the plan's time zone
    #[schemars(length(min = 1))]
    pub date: String,
}
