//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// A mean time between failures over work days.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// mean work days between firings (probability per work day is 1/mean)
    #[schemars(range(min = 1, max = 3650))]
    pub mean_days_between: f64,
    /// least work days between two firings
    #[serde(default)]
    #[schemars(range(min = 0, max = 3650))]
    pub min_days_between: u32,
    #[serde(default = "default_work_days")]
    #[schemars(length(min = 1, max = 7), inner(regex(pattern = "^(?i)(MON|TUE|WED|THU|FRI|SAT|SUN)$")))]
    pub work_days: Vec<String>,
    /// work hours HH:MM-HH:MM
    #[serde(default = "default_hours")]
    #[schemars(regex(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub between: String,
    /// IANA zone of the work hours; default: the plan's
    pub timezone: Option<String>,
}

fn default_work_days() -> Vec<String> {
    ["MON", "TUE", "WED", "THU", "FRI"].map(String::from).to_vec()
}

fn default_hours() -> String {
    "09:00-15:00".into()
}
