//! `{{module}}:{{class}}`: a planner. It runs the attack `times` times, `every_minutes`
//! apart, from `start`. A planner is a pure function of its args and context: the same
//! inputs give the same plan (use `ctx.rng()` for randomness). It is one-shot
//! (`Schedule::once`); a recurring planner answers `Schedule::recurring` with the firings
//! in `ctx.window`, drawing randomness per day or tick with `ctx.rng_for(key)`.

use cme_plugin_sdk::chrono::Duration;
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, json, time};
use schemars::JsonSchema;
use serde::Deserialize;

/// The planner's args: the engine checks every plan against the schema derived from
/// this type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The first run: RFC 3339; without an offset, wall time in the plan's zone.
    pub start: String,
    /// Minutes between runs.
    #[schemars(range(min = 1))]
    pub every_minutes: u32,
    /// How many runs.
    #[schemars(range(min = 1, max = 1000))]
    pub times: u32,
}

/// The plugin.
pub struct Plugin;

impl Planner for Plugin {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .refs(["{{module}}:{{class}}"])
            .description("Runs the attack a number of times at a fixed interval from a start date.")
            .args::<Args>()
            .example(json!({"start": "2030-06-21T10:00:00Z", "every_minutes": 30, "times": 4}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let start = time::parse_datetime(&args.start, ctx.timezone).map_err(|m| PluginError::invalid("start", m))?;
        if start <= ctx.now {
            return Err(PluginError::invalid("start", format!("{} is in the past", start.to_rfc3339())));
        }
        let every = Duration::minutes(i64::from(args.every_minutes));
        Ok(Schedule::once((0..args.times).map(|i| start + every * i as i32).collect()))
    }
}

cme_plugin_sdk::export_planner!(Plugin);

/// `cargo test` asks the planner through the SDK's mock host, as the engine would.
#[cfg(test)]
mod tests {
    use super::*;
    use cme_plugin_sdk::chrono::{TimeZone, Utc};
    use cme_plugin_sdk::testing::{MockHost, validate_describe};

    #[test]
    fn the_description_passes_the_uploads_checks() {
        assert_eq!(validate_describe(&Plugin::describe()), Ok(()));
    }

    #[test]
    fn runs_are_spaced_from_the_start_in_the_plans_zone() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let host = MockHost::new().now(now).plan_context(cme_plugin_sdk::chrono_tz::Europe::Madrid, 1, (now, now + Duration::days(7)));
        let schedule = host.plan::<Plugin>(json!({"start": "2030-06-21T10:00:00", "every_minutes": 30, "times": 3})).result.unwrap();
        let first = Utc.with_ymd_and_hms(2030, 6, 21, 8, 0, 0).unwrap(); // 10:00 in Madrid, summer time
        assert_eq!(schedule.instants, [first, first + Duration::minutes(30), first + Duration::minutes(60)]);
        assert!(!schedule.recurring);
    }

    #[test]
    fn a_start_in_the_past_names_the_field() {
        let outcome = MockHost::new().plan::<Plugin>(json!({"start": "2001-01-01T00:00:00Z", "every_minutes": 5, "times": 1}));
        assert!(matches!(&outcome.result, Err(PluginError::InvalidArgs(m)) if m.starts_with("start:")), "{:?}", outcome.result);
    }

    #[test]
    fn zero_runs_are_refused_by_the_schema() {
        let outcome = MockHost::new().plan::<Plugin>(json!({"start": "2030-06-21T10:00:00Z", "every_minutes": 5, "times": 0}));
        assert!(matches!(outcome.result, Err(PluginError::InvalidArgs(_))));
    }
}
