//! `cron_planner:CronPlanner`: a recurring plan on a cron schedule in a time zone.
//!
//! Args: `{"cron": "0 */15 9-17 * * MON-FRI", "timezone": "Europe/Madrid",
//! "jitter_seconds": 300}`. Five fields (minute granularity) or six (seconds first),
//! parsed by the `croner` crate (names, ranges, steps, `L`, `#`, `W`). The pattern is read
//! in wall time of the zone (the plan's zone when `timezone` is absent): a wall time that
//! a spring-forward change skips fires at the change, one that a fall-back change repeats
//! fires once. `jitter_seconds` delays each firing by a random 0..jitter seconds, drawn
//! per tick from the plan's seed (so a forecast shows the same instants).

use cme_plugin_sdk::chrono::{DateTime, Duration, NaiveDateTime, Utc};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule};
use cme_plugin_sdk::{Describe, PluginError, json, time};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use rand_core::RngCore;

mod args;

use args::Args;

cme_plugin_sdk::built_args!(args::Args);

/// The most firings one window may hold (a `* * * * * *` pattern over a week is 604,800).
const MAX_FIRINGS: usize = 20_000;
/// The longest jitter: a day.
const MAX_JITTER: u32 = 86_400;

struct CronPlanner;

impl Planner for CronPlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("cron-planner", env!("CARGO_PKG_VERSION"))
            .refs(["cron_planner:CronPlanner"])
            .description("Runs the attack on a cron schedule (5 or 6 fields) in a time zone, DST-safe, with optional jitter; recurring.")
            .args_built::<Args>()
            .example(json!({"cron": "0 */15 9-17 * * MON-FRI", "timezone": "Europe/Madrid", "jitter_seconds": 300}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        let zone = ctx.zone_or(args.timezone.as_deref())?;
        if args.jitter_seconds > MAX_JITTER {
            return Err(PluginError::invalid("jitter_seconds", format!("at most {MAX_JITTER}")));
        }
        let cron = parse(&args.cron)?;
        let window = ctx.window;
        // Walk wall time from a little before the window to a little after it (a DST
        // change moves wall time by at most 2 hours); each tick maps to one instant, kept
        // when that instant is in the window.
        let wall = |t: DateTime<Utc>| t.with_timezone(&zone).naive_local();
        let start: NaiveDateTime = wall(window.from) - Duration::hours(3);
        let end: NaiveDateTime = wall(window.until) + Duration::hours(3);
        let mut firings: Vec<DateTime<Utc>> = Vec::new();
        for tick in cron.iter_from(start, croner::Direction::Forward) {
            if tick >= end {
                break;
            }
            let nominal = time::schedule_instant(tick, zone);
            if !window.contains(nominal) || firings.last() == Some(&nominal) {
                continue; // outside, or a skipped wall time that moved onto the previous tick
            }
            if firings.len() >= MAX_FIRINGS {
                return Err(PluginError::invalid(
                    "cron",
                    format!("fires more than {MAX_FIRINGS} times in one planning window; use a coarser pattern"),
                ));
            }
            firings.push(nominal);
        }
        firings.dedup();
        let jitter = |nominal: DateTime<Utc>| {
            if args.jitter_seconds == 0 {
                return nominal;
            }
            let mut rng = ctx.rng_for(nominal.timestamp());
            nominal + Duration::milliseconds((rng.next_u64() % (u64::from(args.jitter_seconds) * 1000)) as i64)
        };
        Ok(Schedule::recurring(firings.into_iter().map(jitter).collect()))
    }
}

/// Reads a cron pattern (5 or 6 fields, or an `@` nickname); the error names the field.
pub fn parse(pattern: &str) -> Result<Cron, PluginError> {
    let fields = pattern.split_whitespace().count();
    if !(fields == 5 || fields == 6 || pattern.trim_start().starts_with('@')) {
        return Err(PluginError::invalid(
            "cron",
            format!("{pattern:?} has {fields} fields; use 5 (minute hour day month weekday) or 6 (seconds first)"),
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| PluginError::invalid("cron", format!("{pattern:?} is not a cron pattern: {e}")))
}

cme_plugin_sdk::export_planner!(CronPlanner);

#[cfg(test)]
mod fuzz {
    //! Fuzz target: the cron parser and one window of planning, natively. Patterns are
    //! built from cron's own tokens mixed with noise; each is read or refused, never a
    //! panic, and an accepted one plans a day within the firing cap.
    use super::*;
    use cme_plugin_sdk::planner::Window;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            "[0-9]{1,2}",
            "[0-9]{1,2}-[0-9]{1,2}",
            "(\\*|[0-9]{1,2})/[0-9]{1,3}",
            "[0-9]{1,2}(,[0-9]{1,2}){1,4}",
            "(MON|TUE|WED|THU|FRI|SAT|SUN|JAN|DEC)(-(MON|FRI|DEC))?",
            "[0-9]?L(-[0-9])?",
            "[0-9]{1,2}W",
            "LW",
            "[0-7]#[0-9]",
            Just("?".to_string()),
            "[ -~]{0,6}",
        ]
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(field(), 4..8).prop_map(|f| f.join(" ")),
            "@(yearly|annually|monthly|weekly|daily|midnight|hourly|reboot|every [0-9a-z]{0,6})",
            "\\PC{0,60}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn cron_patterns_are_read_or_refused_and_plan_within_the_cap(pattern in pattern(), zone in prop_oneof![Just("UTC"), Just("Europe/Madrid"), Just("America/Sao_Paulo"), Just("Australia/Lord_Howe")]) {
            let parsed = parse(&pattern);
            if parsed.is_ok() {
                let from = DateTime::parse_from_rfc3339("2026-03-28T00:00:00Z").unwrap().with_timezone(&Utc);
                let ctx = PlanContext { now: from, timezone: time::parse_zone(zone).unwrap(), seed: 7, window: Window { from, until: from + Duration::days(1) } };
                let args = Args { cron: pattern.clone(), timezone: None, jitter_seconds: 0 };
                if let Ok(schedule) = CronPlanner::plan(&ctx, args) {
                    prop_assert!(schedule.instants.len() <= MAX_FIRINGS);
                }
            }
        }
    }
}
