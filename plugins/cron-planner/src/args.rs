//! The planner's args: the type `plan` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

/// A cron line, read in a zone.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// the line: 5 fields (minute hour day month weekday), 6 (seconds first), a nickname
    /// (@daily, @midnight, @every 90m), rate(5 minutes), cron(...) of AWS; an optional
    /// CRON_TZ=Zone or TZ=Zone prefix
    #[schemars(length(min = 1, max = 200))]
    pub cron: String,
    /// how to read the line: unix (default), spring, quartz, aws or jenkins
    #[serde(default)]
    pub dialect: Dialect,
    /// IANA zone the line is read in; default: the line's CRON_TZ=, else the plan's
    pub timezone: Option<String>,
    /// the first instant the plan may fire, and the anchor of @every and rate()
    /// intervals; written by the engine when the plan is made (default: that time)
    #[schemars(length(min = 1, max = 64), extend("x-cme-stamp" = "created"))]
    pub start: Option<String>,
    /// delay each firing by 0..jitter seconds (random, per tick)
    #[serde(default)]
    #[schemars(range(min = 0, max = 86_400))]
    pub jitter_seconds: u32,
}

/// The dialects a line may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Unix,
    Spring,
    Quartz,
    Aws,
    Jenkins,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [Dialect::Unix, Dialect::Spring, Dialect::Quartz, Dialect::Aws, Dialect::Jenkins];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Unix => "unix",
            Dialect::Spring => "spring",
            Dialect::Quartz => "quartz",
            Dialect::Aws => "aws",
            Dialect::Jenkins => "jenkins",
        }
    }
}
