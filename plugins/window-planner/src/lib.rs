//! `window_planner:WindowPlanner`: a recurring plan with N random runs on chosen days,
//! inside a daily window that may cross midnight.
//!
//! Args: `{"days": ["MON","TUE","WED","THU","FRI"], "between": "22:00-02:00", "times": 2,
//! "min_gap_minutes": 30, "timezone": "America/New_York"}`. A window belongs to the day it
//! starts on (Friday 22:00-02:00 ends on Saturday). Its ends are wall times in the zone
//! (the plan's when `timezone` is absent); the runs are spread in real time between them,
//! at least `min_gap_minutes` apart, drawn per day from the plan's seed.

use cme_plugin_sdk::chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, days, json};

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const MAX_TIMES: u32 = 1_000;

struct WindowPlanner;

impl Planner for WindowPlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("window-planner", env!("CARGO_PKG_VERSION"))
            .refs(["window_planner:WindowPlanner"])
            .description("Runs the attack N times at random instants on chosen week days, inside a daily HH:MM-HH:MM window that may cross midnight, at least a minimum gap apart; recurring.")
            .args_built::<Args>()
            .example(json!({"days": ["MON", "TUE", "WED", "THU", "FRI"], "between": "22:00-02:00", "times": 2, "min_gap_minutes": 30, "timezone": "America/New_York"}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let zone = ctx.zone_or(args.timezone.as_deref())?;
        let chosen: Vec<Weekday> = days::parse_weekdays(&args.days, "days")?;
        let (start, end) = days::parse_between(&args.between).map_err(|m| PluginError::invalid("between", m))?;
        if !(1..=MAX_TIMES).contains(&args.times) {
            return Err(PluginError::invalid("times", format!("must be an integer from 1 to {MAX_TIMES}")));
        }
        let gap = Duration::minutes(i64::from(args.min_gap_minutes));
        // Refuse what can never fit, whatever the day (a DST day may be an hour shorter).
        let nominal = (end - start).num_minutes().rem_euclid(24 * 60);
        let needed = i64::from(args.min_gap_minutes) * i64::from(args.times - 1);
        if needed >= nominal {
            return Err(PluginError::invalid(
                "min_gap_minutes",
                format!(
                    "{} runs at least {} minutes apart do not fit in {} ({} minutes)",
                    args.times, args.min_gap_minutes, args.between, nominal
                ),
            ));
        }
        let mut runs: Vec<DateTime<Utc>> = Vec::new();
        for date in
            days::dates_around(ctx.window.from, ctx.window.until, zone).filter(|d| chosen.contains(&d.weekday()))
        {
            let (from, until) = days::span_on(date, start, end, zone);
            // A window a DST change shortens below the gaps gets the runs that fit.
            let mut times = args.times;
            let day_runs = loop {
                match days::spread(&mut ctx.rng_for(days::day_key(date)), from, until, times, gap) {
                    Ok(runs) => break runs,
                    Err(_) if times > 1 => times -= 1,
                    Err(_) => break Vec::new(),
                }
            };
            runs.extend(day_runs.into_iter().filter(|t| ctx.window.contains(*t)));
        }
        Ok(Schedule::recurring(runs))
    }
}

cme_plugin_sdk::export_planner!(WindowPlanner);
