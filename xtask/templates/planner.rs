//! `{{module}}:{{class}}`: a planner. It runs the attack `times` times, `every_minutes`
//! apart, from `start`. A planner is a pure function of its args and context: the same
//! inputs give the same plan (use `ctx.rng()` for randomness). It is one-shot
//! (`Schedule::once`); a recurring planner answers `Schedule::recurring` with the firings
//! in `ctx.window`, drawing randomness per day or tick with `ctx.rng_for(key)`.

use cme_plugin_sdk::chrono::{DateTime, Duration, Utc};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, json, time};

#[derive(Debug, serde::Deserialize)]
pub struct Args {
    pub start: String,
    pub every_minutes: u32,
    pub times: u32,
}

pub struct Plugin;

impl Planner for Plugin {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .refs(["{{module}}:{{class}}"])
            .description("Runs the attack a number of times at a fixed interval from a start date.")
            .schema(json!({
                "type": "object",
                "required": ["start", "every_minutes", "times"],
                "additionalProperties": false,
                "properties": {
                    "start": {"type": "string", "description": "RFC 3339 date-time; without offset, wall time in the plan's zone"},
                    "every_minutes": {"type": "integer", "minimum": 1},
                    "times": {"type": "integer", "minimum": 1, "maximum": 1000}
                }
            }))
            .example(json!({"start": "2030-06-21T10:00:00Z", "every_minutes": 30, "times": 4}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let start = time::parse_datetime(&args.start, ctx.timezone).map_err(|m| PluginError::invalid("start", m))?;
        if start <= ctx.now {
            return Err(PluginError::invalid("start", format!("{} is in the past", start.to_rfc3339())));
        }
        Ok(Schedule::once(instants(start, args.every_minutes, args.times)))
    }
}

/// The plan itself, kept apart so that it can be tested on the build machine.
pub fn instants(start: DateTime<Utc>, every_minutes: u32, times: u32) -> Vec<DateTime<Utc>> {
    (0..times).map(|i| start + Duration::minutes(i64::from(every_minutes) * i64::from(i))).collect()
}

cme_plugin_sdk::export_planner!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_evenly_spaced_from_the_start() {
        let start = "2030-06-21T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let runs = instants(start, 30, 3);
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[2] - runs[0]).num_minutes(), 60);
    }

    #[test]
    fn the_example_args_parse() {
        let example = Plugin::describe().example;
        let args: Args = cme_plugin_sdk::serde_json::from_value(example).expect("the example matches Args");
        assert_eq!(args.times, 4);
    }
}
