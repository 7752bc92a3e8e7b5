//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// Windows on some week days, and how many runs fall in each.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// week days the window starts on
    #[schemars(length(min = 1, max = 7), inner(regex(pattern = "^(?i)(MON|TUE|WED|THU|FRI|SAT|SUN)$")))]
    pub days: Vec<String>,
    /// HH:MM-HH:MM; an end before the start is the next day
    #[schemars(regex(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub between: String,
    /// runs per window
    #[schemars(range(min = 1, max = 1000))]
    pub times: u32,
    /// least time between two runs of one window
    #[serde(default)]
    #[schemars(range(min = 0, max = 1440))]
    pub min_gap_minutes: u32,
    /// IANA zone of the window; default: the plan's
    pub timezone: Option<String>,
}
