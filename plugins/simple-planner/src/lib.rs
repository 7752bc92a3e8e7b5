//! `simple_planner:SimplePlanner`: runs the attack N times at random instants in today's
//! window, one instant in each of N equal buckets.
//!
//! Args: `{"min_time": "HH:MM", "max_time": "HH:MM", "times": N}`, read in the plan's time
//! zone. A window whose end is before its start wraps midnight (22:00–02:00). Only the part
//! of the window still ahead is used: at 01:00, 22:00–02:00 means 01:00–02:00 (the window
//! that began yesterday). A window already over today is `invalid-args`. Randomness comes
//! from the context's seed, so the same seed gives the same times.
//!
//! With `"every_day": true` the plan is recurring: the same window every day (the window
//! belongs to the day it starts on), N runs in each, drawn per day so that any split of
//! time into windows gives the same runs.

use cme_plugin_sdk::chrono::{DateTime, Duration, NaiveTime, Utc};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, days, json, time};
use rand_core::RngCore;

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

const MAX_TIMES: u32 = 10_000;

struct SimplePlanner;

impl Planner for SimplePlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("simple-planner", env!("CARGO_PKG_VERSION"))
            .refs(["simple_planner:SimplePlanner"])
            .description(
                "Runs the attack N times at random instants within today's HH:MM window (one per equal slice), in the plan's time zone; with every_day, in that window every day.",
            )
            .args_built::<Args>()
            .example(json!({"min_time": "10:00", "max_time": "15:00", "times": 4}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let min = time::parse_hh_mm(&args.min_time).map_err(|m| PluginError::invalid("min_time", m))?;
        let max = time::parse_hh_mm(&args.max_time).map_err(|m| PluginError::invalid("max_time", m))?;
        if !(1..=MAX_TIMES).contains(&args.times) {
            return Err(PluginError::invalid("times", format!("must be an integer from 1 to {MAX_TIMES}")));
        }
        if min == max {
            return Err(PluginError::invalid("max_time", "the window is empty (max_time equals min_time)"));
        }
        if args.every_day {
            return Ok(Schedule::recurring(every_day(ctx, min, max, args.times)));
        }
        let (start, end) = window_ahead(ctx, min, max)?;
        Ok(Schedule::once(spread(&mut ctx.rng(), start, end, args.times)))
    }
}

/// The part of today's window [min, max) that is still ahead of `ctx.now`.
fn window_ahead(
    ctx: &PlanContext,
    min: NaiveTime,
    max: NaiveTime,
) -> Result<(DateTime<Utc>, DateTime<Utc>), PluginError> {
    let today = time::today_in(ctx.now, ctx.timezone);
    let at = |date: cme_plugin_sdk::chrono::NaiveDate, t: NaiveTime| {
        time::localize(date.and_time(t), ctx.timezone).map_err(|m| PluginError::invalid("min_time", m))
    };
    let candidates = if min < max {
        vec![(at(today, min)?, at(today, max)?)]
    } else {
        // Wraps midnight: the window that started yesterday and ends today, then the one
        // that starts today and ends tomorrow.
        let yesterday = today.pred_opt().unwrap_or(today);
        let tomorrow = today.succ_opt().unwrap_or(today);
        vec![(at(yesterday, min)?, at(today, max)?), (at(today, min)?, at(tomorrow, max)?)]
    };
    candidates
        .into_iter()
        .map(|(start, end)| (start.max(ctx.now), end))
        .find(|(start, end)| start < end)
        .ok_or_else(|| PluginError::invalid("max_time", "window already over today"))
}

/// `times` instants, one uniformly at random inside each of `times` equal buckets of
/// [start, end), in ascending order.
fn spread(rng: &mut impl RngCore, start: DateTime<Utc>, end: DateTime<Utc>, times: u32) -> Vec<DateTime<Utc>> {
    let total = (end - start).num_microseconds().unwrap_or(i64::MAX) as u128;
    (0..times as u128)
        .map(|i| {
            let bucket_start = total * i / times as u128;
            let bucket_len = (total * (i + 1) / times as u128 - bucket_start).max(1);
            let offset = bucket_start + (rng.next_u64() as u128 % bucket_len);
            start + Duration::microseconds(offset as i64)
        })
        .collect()
}

/// The runs of every day's window whose time is in the asked window, each day's drawn
/// from that day's own generator.
fn every_day(ctx: &PlanContext, min: NaiveTime, max: NaiveTime, times: u32) -> Vec<DateTime<Utc>> {
    days::dates_around(ctx.window.from, ctx.window.until, ctx.timezone)
        .flat_map(|date| {
            let (start, end) = days::span_on(date, min, max, ctx.timezone);
            spread(&mut ctx.rng_for(days::day_key(date)), start, end, times)
        })
        .filter(|t| ctx.window.contains(*t))
        .collect()
}

cme_plugin_sdk::export_planner!(SimplePlanner);
