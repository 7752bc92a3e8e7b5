//! `exact_planner:ExactPlanner`: runs the attack once, at the given date.
//!
//! Args: `{"date": "<RFC 3339>"}`. A date with an offset is that instant (the original
//! engine dropped the offset); one without an offset is wall time in the plan's time zone.
//! A past date or an unparsable one is `invalid-args` naming `date`.

use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, json, time};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

struct ExactPlanner;

impl Planner for ExactPlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("exact-planner", env!("CARGO_PKG_VERSION"))
            .refs(["exact_planner:ExactPlanner"])
            .description(
                "Runs the attack once at an exact date. A date without offset is read in the plan's time zone.",
            )
            .args_built::<Args>()
            .example(json!({"date": "2030-06-21T15:30:00+02:00"}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let at = time::parse_datetime(&args.date, ctx.timezone).map_err(|m| PluginError::invalid("date", m))?;
        if at <= ctx.now {
            return Err(PluginError::invalid(
                "date",
                format!("{} is in the past (now is {})", at.to_rfc3339(), ctx.now.to_rfc3339()),
            ));
        }
        Ok(Schedule::once(vec![at]))
    }
}

cme_plugin_sdk::export_planner!(ExactPlanner);
