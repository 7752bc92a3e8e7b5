//! `mtbf_planner:MtbfPlanner`: Netflix Chaos Monkey (v2) semantics as a recurring plan.
//!
//! Args: `{"mean_days_between": 5, "min_days_between": 2, "work_days": ["MON",...,"FRI"],
//! "between": "09:00-15:00", "timezone": "America/Los_Angeles"}`. Each work day fires with
//! probability 1 / `mean_days_between`, never fewer than `min_days_between` work days after
//! the previous firing (the "minimum time between kills"), at a random instant inside the
//! work hours. Days are decided in order from a fixed epoch (2000-01-03) with a per-day
//! draw from the plan's seed, so the answer for a day never depends on which window is
//! asked: a forecast and the real schedule agree.

use cme_plugin_sdk::chrono::{Datelike, Duration, NaiveDate, Weekday};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, days, json, time};
use rand_core::RngCore;

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

/// Day 0 of every decision chain (a Monday). Windows before it are refused.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 3).expect("a valid date")
}

struct MtbfPlanner;

impl Planner for MtbfPlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("mtbf-planner", env!("CARGO_PKG_VERSION"))
            .refs(["mtbf_planner:MtbfPlanner"])
            .description("Netflix Chaos Monkey semantics: each work day fires with probability 1/mean_days_between, at least min_days_between work days apart, inside work hours; recurring.")
            .args_built::<Args>()
            .example(json!({"mean_days_between": 5, "min_days_between": 2, "work_days": ["MON", "TUE", "WED", "THU", "FRI"], "between": "09:00-15:00", "timezone": "America/Los_Angeles"}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let zone = ctx.zone_or(args.timezone.as_deref())?;
        if !(args.mean_days_between >= 1.0 && args.mean_days_between.is_finite()) {
            return Err(PluginError::invalid("mean_days_between", "must be at least 1"));
        }
        let work_days: Vec<Weekday> = days::parse_weekdays(&args.work_days, "work_days")?;
        let (start, end) = days::parse_between(&args.between).map_err(|m| PluginError::invalid("between", m))?;
        let last = time::today_in(ctx.window.until, zone);
        if last < epoch() {
            return Ok(Schedule::recurring(Vec::new()));
        }
        let probability = 1.0 / args.mean_days_between;
        let mut runs = Vec::new();
        // Work days since the last firing; the first one is always eligible.
        let mut since_last = u32::MAX;
        for date in epoch().iter_days().take_while(|d| *d <= last) {
            if !work_days.contains(&date.weekday()) {
                continue;
            }
            since_last = since_last.saturating_add(1);
            if since_last <= args.min_days_between {
                continue;
            }
            let mut rng = ctx.rng_for(days::day_key(date));
            let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if draw >= probability {
                continue;
            }
            since_last = 0;
            let (from, until) = days::span_on(date, start, end, zone);
            let span = (until - from).num_microseconds().unwrap_or(0).max(1) as u64;
            let at = from + Duration::microseconds((rng.next_u64() % span) as i64);
            if ctx.window.contains(at) {
                runs.push(at);
            }
        }
        Ok(Schedule::recurring(runs))
    }
}

cme_plugin_sdk::export_planner!(MtbfPlanner);
