//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// A cron pattern, read in a zone.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// 5 fields (minute hour day month weekday) or 6 (seconds first)
    #[schemars(length(min = 1, max = 200))]
    pub cron: String,
    /// IANA zone the pattern is read in; default: the plan's
    pub timezone: Option<String>,
    /// delay each firing by 0..jitter seconds (random, per tick)
    #[serde(default)]
    #[schemars(range(min = 0, max = 86_400))]
    pub jitter_seconds: u32,
}
