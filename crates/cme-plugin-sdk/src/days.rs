//! Calendar helpers for recurring planners: week days, daily windows that may cross
//! midnight, and spreading N instants over a span with a minimum gap. Pure functions of
//! their inputs, so plans built on them replay exactly.
//!
//! ```
//! use cme_plugin_sdk::days::{day_key, parse_between, parse_weekday, span_on, spread};
//! use cme_plugin_sdk::time::parse_zone;
//! use chrono::{NaiveDate, Weekday};
//! assert_eq!(parse_weekday("mon"), Ok(Weekday::Mon));
//! let (start, end) = parse_between("22:00-02:00").unwrap(); // crosses midnight
//! let date = NaiveDate::from_ymd_opt(2030, 1, 7).unwrap();
//! let (from, until) = span_on(date, start, end, parse_zone("UTC").unwrap());
//! assert_eq!((until - from).num_hours(), 4);
//! // Three instants in the window, 30 minutes apart at least, the same for the same day.
//! let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(day_key(date) as u64);
//! let picks = spread(&mut rng, from, until, 3, chrono::Duration::minutes(30)).unwrap();
//! assert_eq!(picks.len(), 3);
//! assert!(picks.windows(2).all(|w| (w[1] - w[0]).num_minutes() >= 30));
//! ```

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use rand_core::RngCore;

use crate::time;

pub use crate::time::parse_weekday;

/// Parses a list of week days; an error names the item (`days/2: ...`).
pub fn parse_weekdays(list: &[String], field: &str) -> Result<Vec<Weekday>, crate::PluginError> {
    list.iter()
        .enumerate()
        .map(|(i, d)| parse_weekday(d).map_err(|m| crate::PluginError::invalid(&format!("{field}/{i}"), m)))
        .collect()
}

/// Parses `HH:MM-HH:MM`; an end at or before the start crosses midnight (`22:00-02:00`).
pub fn parse_between(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let (start, end) = text.split_once('-').ok_or_else(|| format!("{text:?} is not a window HH:MM-HH:MM"))?;
    let (start, end) = (time::parse_hh_mm(start)?, time::parse_hh_mm(end)?);
    if start == end {
        return Err(format!("{text:?} is an empty window"));
    }
    Ok((start, end))
}

/// The local dates whose daily window may overlap `[from, until)`: from the day before
/// `from` (a window that started then may still run) through the day of `until`.
pub fn dates_around(from: DateTime<Utc>, until: DateTime<Utc>, zone: Tz) -> impl Iterator<Item = NaiveDate> {
    let first = time::today_in(from, zone).pred_opt().unwrap_or(NaiveDate::MIN);
    let last = time::today_in(until, zone);
    first.iter_days().take_while(move |d| *d <= last)
}

/// The span of `date`'s window `[start, end)` in `zone`; an end at or before the start
/// is on the next day. Wall times a DST change skips move to the change, repeated ones
/// are their first instant (see [`time::schedule_instant`]).
pub fn span_on(date: NaiveDate, start: NaiveTime, end: NaiveTime, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let end_date = if end <= start { date.succ_opt().unwrap_or(date) } else { date };
    (time::schedule_instant(date.and_time(start), zone), time::schedule_instant(end_date.and_time(end), zone))
}

/// A stable key for a date (days since 0001-01-01), for `PlanContext::rng_for`.
pub fn day_key(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// `times` instants in `[start, end)`, at least `min_gap` apart, uniformly at random
/// (sorted). Refused when they cannot fit.
pub fn spread(
    rng: &mut impl RngCore,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    times: u32,
    min_gap: Duration,
) -> Result<Vec<DateTime<Utc>>, String> {
    let length = (end - start).num_microseconds().unwrap_or(i64::MAX);
    let gaps = min_gap.num_microseconds().unwrap_or(i64::MAX).saturating_mul(i64::from(times.saturating_sub(1)));
    let free = length.saturating_sub(gaps);
    if times == 0 || length <= 0 || free <= 0 {
        return Err(format!(
            "{times} runs at least {} minutes apart do not fit in a window of {} minutes",
            min_gap.num_minutes(),
            (end - start).num_minutes()
        ));
    }
    // Draw the free offsets, sort them, then push the i-th one i gaps later.
    let mut offsets: Vec<i64> = (0..times).map(|_| (rng.next_u64() % free as u64) as i64).collect();
    offsets.sort_unstable();
    let gap = min_gap.num_microseconds().unwrap_or(0);
    Ok(offsets
        .into_iter()
        .enumerate()
        .map(|(i, offset)| start + Duration::microseconds(offset + gap * i as i64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_window_that_crosses_midnight_ends_the_next_day() {
        let (start, end) = parse_between("22:00-02:00").unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let (from, until) = span_on(date, start, end, chrono_tz::America::New_York);
        assert_eq!(from, at("2026-03-03T03:00:00Z"));
        assert_eq!(until, at("2026-03-03T07:00:00Z"));
    }

    #[test]
    fn spread_keeps_the_gap_and_stays_inside() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (start, end) = (at("2026-01-01T10:00:00Z"), at("2026-01-01T11:00:00Z"));
        for _ in 0..200 {
            let times = spread(&mut rng, start, end, 3, Duration::minutes(25)).unwrap();
            assert!(times.windows(2).all(|w| w[1] - w[0] >= Duration::minutes(25)), "{times:?}");
            assert!(times.iter().all(|t| *t >= start && *t < end), "{times:?}");
        }
        let error = spread(&mut rng, start, end, 3, Duration::minutes(30)).unwrap_err();
        assert!(error.contains("do not fit"), "{error}");
    }

    #[test]
    fn week_days_parse_in_any_case_and_others_are_named() {
        assert_eq!(parse_weekday("mon").unwrap(), Weekday::Mon);
        assert_eq!(parse_weekday("FRI").unwrap(), Weekday::Fri);
        assert!(parse_weekday("Funday").unwrap_err().contains("Funday"));
    }

    #[test]
    fn dates_around_include_the_day_before() {
        let dates: Vec<_> =
            dates_around(at("2026-01-02T12:00:00Z"), at("2026-01-03T12:00:00Z"), chrono_tz::UTC).collect();
        assert_eq!(dates.first().unwrap().to_string(), "2026-01-01");
        assert_eq!(dates.last().unwrap().to_string(), "2026-01-03");
    }
}
