//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// A daily window and how many runs fall in it.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Args {
    /// window start, HH:MM
    #[schemars(regex(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub min_time: String,
    /// window end, HH:MM; before min_time wraps midnight
    #[schemars(regex(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub max_time: String,
    /// how many runs
    #[schemars(range(min = 1, max = 10_000))]
    pub times: u32,
    /// repeat every day (a recurring plan)
    #[serde(default)]
    pub every_day: bool,
}
