//! `cron_planner:CronPlanner`: a recurring plan on a cron schedule in a time zone.
//!
//! Args: `{"cron": "0 */15 9-17 * * MON-FRI", "timezone": "Europe/Madrid",
//! "jitter_seconds": 300}`, and `dialect` (unix by default; spring, quartz, aws, jenkins:
//! see [`line`]) and `start`. The line is read in wall time of the zone (its `CRON_TZ=`
//! prefix, else `timezone`, else the plan's): a wall time that a spring-forward change
//! skips fires at the change, one that a fall-back change repeats fires once. Intervals
//! (`@every 90m`, `rate(5 minutes)`) count from `start`, which the engine writes when the
//! plan is made; no firing comes before it. `jitter_seconds` delays each firing by a random
//! 0..jitter seconds, drawn per tick from the plan's seed (so a forecast shows the same
//! instants).
//!
//! A window answers at most [`MAX_FIRINGS`] firings, the earliest: the engine keeps fewer
//! ahead than that and asks again from the last one it kept.

use cme_plugin_sdk::chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use cme_plugin_sdk::planner::{PlanContext, Planner, Schedule, Window};
use cme_plugin_sdk::{Describe, PluginError, json, time};
use rand_core::RngCore;

mod args;
pub mod line;

use args::Args;
use line::{Line, Timing, Years};

cme_plugin_sdk::built_args!(args::Args);

/// The most firings one window answers (the earliest of them).
pub const MAX_FIRINGS: usize = 20_000;
/// The most pattern ticks one window walks (an `L-3` on a seconds pattern walks every
/// second of the days it does not fire on).
const MAX_TICKS: usize = 3_000_000;
/// The longest jitter: a day.
const MAX_JITTER: u32 = 86_400;

struct CronPlanner;

impl Planner for CronPlanner {
    type Args = Args;

    fn describe() -> Describe {
        Describe::new("cron-planner", env!("CARGO_PKG_VERSION"))
            .refs(["cron_planner:CronPlanner"])
            .description("Runs the attack on a cron schedule (unix, spring, quartz, aws or jenkins lines; @every and rate() intervals) in a time zone, DST-safe, with optional jitter; recurring.")
            .args_built::<Args>()
            .example(json!({"cron": "0 */15 9-17 * * MON-FRI", "timezone": "Europe/Madrid", "jitter_seconds": 300}))
    }

    fn plan(ctx: &PlanContext, args: Args) -> Result<Schedule, PluginError> {
        if args.jitter_seconds > MAX_JITTER {
            return Err(PluginError::invalid("jitter_seconds", format!("at most {MAX_JITTER}")));
        }
        let Line { timing, zone: prefixed } =
            line::read(&args.cron, args.dialect, ctx.seed, Years::around(ctx.window.from, ctx.window.until))?;
        let zone = match (prefixed, args.timezone.as_deref()) {
            (Some(line_zone), Some(name)) => {
                let given = ctx.zone_or(Some(name))?;
                if given != line_zone {
                    return Err(PluginError::invalid(
                        "timezone",
                        format!("the line's prefix names {line_zone} and timezone {given}: give the zone once"),
                    ));
                }
                given
            }
            (Some(line_zone), None) => line_zone,
            (None, name) => ctx.zone_or(name)?,
        };
        let start = match args.start.as_deref() {
            Some(text) => Some(time::parse_datetime(text, zone).map_err(|m| PluginError::invalid("start", m))?),
            None => None,
        };
        let window =
            Window { from: start.map_or(ctx.window.from, |s| s.max(ctx.window.from)), until: ctx.window.until };
        let firings = match timing {
            Timing::Every(interval) => every(start.unwrap_or(DateTime::UNIX_EPOCH), interval, window),
            Timing::Cron { cron, last_day_offset } => ticks(&cron, last_day_offset, zone, window)?,
        };
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

/// `anchor + k * interval` within the window, the earliest [`MAX_FIRINGS`].
fn every(anchor: DateTime<Utc>, interval: Duration, window: Window) -> Vec<DateTime<Utc>> {
    let step = interval.num_seconds().max(1);
    let behind = (window.from - anchor).num_seconds();
    let mut k = if behind <= 0 { 0 } else { behind.div_euclid(step) };
    let mut firings = Vec::new();
    while firings.len() < MAX_FIRINGS {
        let t = anchor + Duration::seconds(k * step);
        if t >= window.until {
            break;
        }
        if window.contains(t) {
            firings.push(t);
        }
        k += 1;
    }
    firings
}

/// The pattern's ticks within the window, the earliest [`MAX_FIRINGS`]. Wall time is
/// walked from a little before the window to a little after it (a DST change moves wall
/// time by at most 2 hours); each tick maps to one instant, kept when in the window.
fn ticks(
    cron: &croner::Cron,
    last_day_offset: Option<u32>,
    zone: cme_plugin_sdk::chrono_tz::Tz,
    window: Window,
) -> Result<Vec<DateTime<Utc>>, PluginError> {
    let wall = |t: DateTime<Utc>| t.with_timezone(&zone).naive_local();
    let start: NaiveDateTime = wall(window.from) - Duration::hours(3);
    let end: NaiveDateTime = wall(window.until) + Duration::hours(3);
    let mut firings: Vec<DateTime<Utc>> = Vec::new();
    for (walked, tick) in cron.iter_from(start, croner::Direction::Forward).enumerate() {
        if tick >= end || firings.len() >= MAX_FIRINGS {
            break;
        }
        if walked >= MAX_TICKS {
            return Err(PluginError::invalid(
                "cron",
                format!(
                    "walks more than {MAX_TICKS} ticks in one planning window without firing; use a coarser pattern"
                ),
            ));
        }
        if let Some(offset) = last_day_offset
            && tick.day() + offset != last_day(tick.date())
        {
            continue;
        }
        let nominal = time::schedule_instant(tick, zone);
        if !window.contains(nominal) || firings.last() == Some(&nominal) {
            continue; // outside, or a skipped wall time that moved onto the previous tick
        }
        firings.push(nominal);
    }
    firings.dedup();
    Ok(firings)
}

/// The month's last day (28 to 31).
fn last_day(date: NaiveDate) -> u32 {
    let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

/// Reads a unix cron line (5 or 6 fields, a nickname, an interval); the error names the
/// field.
pub fn parse(pattern: &str) -> Result<Line, PluginError> {
    line::read(pattern, line::Dialect::Unix, 0, Years::ALL)
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
            "rate\\([0-9]{0,4} ?(minutes?|hours?|days?|[a-z]{0,5})\\)",
            "(CRON_TZ|TZ)=[A-Za-z/_]{0,20} [0-9*/ ]{0,20}",
            proptest::collection::vec(field(), 5..8).prop_map(|f| format!("cron({})", f.join(" "))),
            proptest::collection::vec(prop_oneof![field(), "H(\\([0-9]{1,2}-[0-9]{1,2}\\))?(/[0-9]{1,2})?"], 5..6)
                .prop_map(|f| f.join(" ")),
            "\\PC{0,60}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn cron_patterns_are_read_or_refused_and_plan_within_the_cap(pattern in pattern(), zone in prop_oneof![Just("UTC"), Just("Europe/Madrid"), Just("America/Sao_Paulo"), Just("Australia/Lord_Howe")], dialect in proptest::sample::select(line::Dialect::ALL.to_vec())) {
            let parsed = line::read(&pattern, dialect, 7, line::Years::ALL);
            if parsed.is_ok() {
                let from = DateTime::parse_from_rfc3339("2026-03-28T00:00:00Z").unwrap().with_timezone(&Utc);
                let ctx = PlanContext { now: from, timezone: time::parse_zone(zone).unwrap(), seed: 7, window: Window { from, until: from + Duration::days(1) } };
                let args = Args { cron: pattern.clone(), dialect, timezone: None, start: Some("2026-03-27T23:59:59Z".into()), jitter_seconds: 0 };
                if let Ok(schedule) = CronPlanner::plan(&ctx, args) {
                    prop_assert!(schedule.instants.len() <= MAX_FIRINGS);
                }
            }
        }
    }
}

#[cfg(test)]
mod dialects {
    //! Lines as crontab(5), Kubernetes, GitHub Actions, Quartz, Spring, AWS EventBridge
    //! and Jenkins document them, planned natively from Monday 2026-12-07 00:00 UTC.
    use super::*;
    use cme_plugin_sdk::chrono::TimeZone;
    use line::Dialect;

    fn plan(cron: &str, dialect: Dialect, start: Option<&str>, seed: u64, days: i64) -> Result<Vec<String>, String> {
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        let ctx = PlanContext {
            now: from,
            timezone: cme_plugin_sdk::chrono_tz::UTC,
            seed,
            window: Window { from, until: from + Duration::days(days) },
        };
        let args =
            Args { cron: cron.into(), dialect, timezone: None, start: start.map(str::to_string), jitter_seconds: 0 };
        CronPlanner::plan(&ctx, args)
            .map(|s| s.instants.iter().map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()).collect())
            .map_err(|e| e.to_string())
    }

    fn first(cron: &str, dialect: Dialect, n: usize) -> Vec<String> {
        let all = plan(cron, dialect, None, 7, 400).unwrap_or_else(|e| panic!("{cron:?} ({dialect:?}): {e}"));
        all.into_iter().take(n).collect()
    }

    #[test]
    fn a_line_read_for_the_windows_years_fires_as_the_whole_line_does() {
        // Across a new year, in a zone a day from UTC, with Quartz's and AWS's own year.
        let from = Utc.with_ymd_and_hms(2026, 12, 30, 0, 0, 0).unwrap();
        let until = from + Duration::days(5);
        let zone: cme_plugin_sdk::chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
        for (text, dialect) in [
            ("0 0 12 * * *", Dialect::Unix),
            ("*/30 * * * *", Dialect::Unix),
            ("0 0 0 1 1 ?", Dialect::Quartz),
            ("0 0 0 ? * * 2027", Dialect::Quartz),
            ("0 0 * * ? *", Dialect::Aws),
        ] {
            let ticks_for = |years| {
                let Timing::Cron { cron, last_day_offset } = line::read(text, dialect, 7, years).unwrap().timing else {
                    panic!("{text} is a cron line")
                };
                ticks(&cron, last_day_offset, zone, Window { from, until }).unwrap()
            };
            let whole = ticks_for(Years::ALL);
            assert!(!whole.is_empty(), "{text}");
            assert_eq!(ticks_for(Years::around(from, until)), whole, "{text}");
        }
    }

    #[test]
    fn cronie_reads_a_step_from_a_single_value_to_the_fields_end() {
        assert_eq!(
            first("20/15 * * * *", Dialect::Unix, 4),
            ["2026-12-07T00:20:00", "2026-12-07T00:35:00", "2026-12-07T00:50:00", "2026-12-07T01:20:00"]
        );
        assert_eq!(first("0/5 * * * *", Dialect::Unix, 2), ["2026-12-07T00:00:00", "2026-12-07T00:05:00"]);
        assert_eq!(first("23 0-23/2 * * *", Dialect::Unix, 2), ["2026-12-07T00:23:00", "2026-12-07T02:23:00"]);
    }

    #[test]
    fn nicknames_intervals_and_zone_prefixes() {
        assert_eq!(first("@midnight", Dialect::Unix, 2), ["2026-12-07T00:00:00", "2026-12-08T00:00:00"]);
        assert_eq!(first("5 4 * * sun", Dialect::Unix, 1), ["2026-12-13T04:05:00"]);
        let every = plan("@every 1h30m", Dialect::Unix, Some("2026-12-06T23:10:00Z"), 7, 1).unwrap();
        assert_eq!(&every[..3], ["2026-12-07T00:40:00", "2026-12-07T02:10:00", "2026-12-07T03:40:00"]);
        let rate = plan("rate(5 minutes)", Dialect::Aws, Some("2026-12-07T00:00:00Z"), 7, 1).unwrap();
        assert_eq!((rate.len(), rate[1].as_str()), (288, "2026-12-07T00:05:00"));
        let later = plan("@every 10s", Dialect::Unix, Some("2026-12-07T12:00:00Z"), 7, 1).unwrap();
        assert_eq!(later[0], "2026-12-07T12:00:00", "nothing before start");
        assert_eq!(later.len(), 12 * 360);
        assert_eq!(first("CRON_TZ=America/New_York 0 9 * * *", Dialect::Unix, 1), ["2026-12-07T14:00:00"]);
        assert_eq!(first("TZ=Asia/Tokyo 0 9 * * *", Dialect::Unix, 1), ["2026-12-07T00:00:00"]);
        let every_minute = plan("* * * * *", Dialect::Unix, None, 7, 1).unwrap();
        assert_eq!(every_minute.len(), 1440);
    }

    #[test]
    fn lines_copied_with_their_quotes_or_their_crontab_command_read_as_cron_reads_them() {
        assert_eq!(first("'30 5 * * 1,3'", Dialect::Unix, 1), ["2026-12-07T05:30:00"]);
        assert_eq!(first("\"*/30 * * * *\"", Dialect::Unix, 2), ["2026-12-07T00:00:00", "2026-12-07T00:30:00"]);
        assert_eq!(first("0 5 * * * /usr/local/bin/backup.sh --full", Dialect::Unix, 1), ["2026-12-07T05:00:00"]);
        assert_eq!(
            first("17 * * * * root cd / && run-parts --report /etc/cron.hourly", Dialect::Unix, 1),
            ["2026-12-07T00:17:00"]
        );
        // A sixth field stays a field: seconds first.
        assert_eq!(first("30 0 5 * * MON", Dialect::Unix, 1), ["2026-12-07T05:00:30"]);
        let refused = plan("0 25 * * * /bin/true", Dialect::Unix, None, 7, 1).unwrap_err();
        assert!(refused.contains("hour"), "{refused}");
        let every = plan("@every 1.5h", Dialect::Unix, Some("2026-12-07T00:00:00Z"), 7, 1).unwrap();
        assert_eq!(&every[..2], ["2026-12-07T00:00:00", "2026-12-07T01:30:00"]);
        let at = plan("at(2027-01-01T10:00:00)", Dialect::Aws, None, 7, 1).unwrap_err();
        assert!(at.contains("exact_planner"), "{at}");
    }

    #[test]
    fn last_days_and_weekdays_of_the_month() {
        assert_eq!(first("0 0 L-3 * *", Dialect::Unix, 2), ["2026-12-28T00:00:00", "2027-01-28T00:00:00"]);
        assert_eq!(first("0 0 L * *", Dialect::Unix, 2), ["2026-12-31T00:00:00", "2027-01-31T00:00:00"]);
        assert_eq!(first("0 0 LW * *", Dialect::Unix, 2), ["2026-12-31T00:00:00", "2027-01-29T00:00:00"]);
        assert_eq!(first("0 0 0 L-1 2 ?", Dialect::Spring, 1), ["2027-02-27T00:00:00"]);
    }

    #[test]
    fn quartz_counts_weekdays_from_sunday_one() {
        assert_eq!(first("0 0 12 ? * 6L", Dialect::Quartz, 2), ["2026-12-25T12:00:00", "2027-01-29T12:00:00"]);
        assert_eq!(first("0 0 12 ? * 6#3", Dialect::Quartz, 1), ["2026-12-18T12:00:00"]);
        assert_eq!(first("0 15 10 ? * MON-FRI", Dialect::Quartz, 2), ["2026-12-07T10:15:00", "2026-12-08T10:15:00"]);
        assert_eq!(first("0 0 12 * * ? 2027", Dialect::Quartz, 1), ["2027-01-01T12:00:00"]);
        assert_eq!(first("0 0/30 8-9 ? * 2", Dialect::Quartz, 2), ["2026-12-07T08:00:00", "2026-12-07T08:30:00"]);
        let refused = plan("0 0 12 1 * 6", Dialect::Quartz, None, 7, 1).unwrap_err();
        assert!(refused.contains("'?'"), "{refused}");
    }

    #[test]
    fn aws_lines_with_or_without_their_wrapper() {
        assert_eq!(first("cron(0 12 * * ? *)", Dialect::Aws, 1), ["2026-12-07T12:00:00"]);
        assert_eq!(first("cron(15 10 ? * 6L 2026)", Dialect::Aws, 1), ["2026-12-25T10:15:00"]);
        assert_eq!(first("0/15 * * * ? *", Dialect::Aws, 2), ["2026-12-07T00:00:00", "2026-12-07T00:15:00"]);
        assert_eq!(
            first("cron(0 18 ? * MON-FRI *)", Dialect::Unix, 1),
            ["2026-12-07T18:00:00"],
            "the wrapper says aws"
        );
    }

    #[test]
    fn spring_ands_the_day_fields() {
        assert_eq!(first("0 0 0 13 * FRI", Dialect::Spring, 1), ["2027-08-13T00:00:00"]);
        assert_eq!(first("0 0 9-17 * * MON-FRI", Dialect::Spring, 1), ["2026-12-07T09:00:00"]);
        // Vixie cron ORs them: the 13th, and every Friday.
        assert_eq!(first("0 0 13 * 5", Dialect::Unix, 2), ["2026-12-11T00:00:00", "2026-12-13T00:00:00"]);
    }

    #[test]
    fn jenkins_hashes_h_from_the_seed_the_same_every_time() {
        let a = plan("H/15 * * * *", Dialect::Jenkins, None, 7, 1).unwrap();
        assert_eq!(a, plan("H/15 * * * *", Dialect::Jenkins, None, 7, 1).unwrap(), "stable");
        assert_eq!(a.len(), 96);
        let minute: u32 = a[0][14..16].parse().unwrap();
        assert!(minute < 15, "{a:?}");
        let spread: std::collections::BTreeSet<String> =
            (0..20).map(|seed| plan("H H * * *", Dialect::Jenkins, None, seed, 1).unwrap()[0].clone()).collect();
        assert!(spread.len() > 10, "seeds spread the load: {spread:?}");
        for seed in 0..20 {
            let midnight = plan("@midnight", Dialect::Jenkins, None, seed, 1).unwrap();
            let hour: u32 = midnight[0][11..13].parse().unwrap();
            assert!(hour <= 2, "{midnight:?}");
        }
        assert_eq!(plan("H(0-29)/10 * * * *", Dialect::Jenkins, None, 3, 1).unwrap().len(), 24 * 3);
    }

    #[test]
    fn refusals_name_the_field_and_the_dialect_that_reads_the_line() {
        let refused = plan("0 25 * * *", Dialect::Unix, None, 7, 1).unwrap_err();
        assert!(refused.contains("field 2 (hour)"), "{refused}");
        let refused = plan("0 0 12 ? * 6L 2027", Dialect::Unix, None, 7, 1).unwrap_err();
        assert!(refused.contains("\"dialect\": \"quartz\""), "{refused}");
        let refused = plan("H * * * *", Dialect::Unix, None, 7, 1).unwrap_err();
        assert!(refused.contains("jenkins"), "{refused}");
        let refused = plan("@reboot", Dialect::Unix, None, 7, 1).unwrap_err();
        assert!(refused.contains("a plan has no boot"), "{refused}");
        assert!(plan("@every 0s", Dialect::Unix, None, 7, 1).unwrap_err().contains("at least"));
        assert!(plan("@every 5x", Dialect::Unix, None, 7, 1).unwrap_err().contains("not a unit"));
        assert!(plan("rate(5 fortnights)", Dialect::Aws, None, 7, 1).unwrap_err().contains("minutes, hours or days"));
        assert!(
            plan("CRON_TZ=Mars/Olympus 0 9 * * *", Dialect::Unix, None, 7, 1)
                .unwrap_err()
                .contains("CRON_TZ=Mars/Olympus")
        );
    }

    #[test]
    fn a_frequent_line_answers_the_earliest_firings_up_to_the_cap() {
        let all = plan("* * * * * *", Dialect::Unix, None, 7, 7).unwrap();
        assert_eq!(all.len(), MAX_FIRINGS);
        assert_eq!((all[0].as_str(), all[1].as_str()), ("2026-12-07T00:00:00", "2026-12-07T00:00:01"));
    }
}
