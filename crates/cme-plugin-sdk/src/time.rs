//! Time for planners: the engine's rule is one rule for every input. A date with an
//! offset means exactly that instant; a date without one is wall time in the plan's
//! IANA time zone. The host compiles this very file into `cme-model` (`#[path]`): the
//! engine's time rules and the SDK's are one copy.
//!
//! ```
//! use cme_plugin_sdk::time::{parse_datetime, parse_hh_mm, parse_zone, schedule_instant, to_parts, from_parts};
//! let madrid = parse_zone("Europe/Madrid").unwrap();
//! // With an offset: that instant. Without: wall time in the zone (CEST is +02:00).
//! assert_eq!(parse_datetime("2030-06-21T10:00:00+00:00", madrid).unwrap().to_rfc3339(), "2030-06-21T10:00:00+00:00");
//! assert_eq!(parse_datetime("2030-06-21 10:00", madrid).unwrap().to_rfc3339(), "2030-06-21T08:00:00+00:00");
//! // 02:30 does not exist on 2030-03-31 in Madrid: a user's date is refused, a schedule moves.
//! assert!(parse_datetime("2030-03-31T02:30:00", madrid).is_err());
//! let gap = chrono::NaiveDate::from_ymd_opt(2030, 3, 31).unwrap().and_time(parse_hh_mm("02:30").unwrap());
//! assert_eq!(schedule_instant(gap, madrid).to_rfc3339(), "2030-03-31T01:00:00+00:00");
//! let t = parse_datetime("2030-01-01T00:00:00Z", madrid).unwrap();
//! assert_eq!(from_parts(to_parts(t).0, to_parts(t).1), t);
//! ```

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Seconds and nanoseconds since the Unix epoch, as the WIT `timestamp` carries them.
pub fn to_parts(t: DateTime<Utc>) -> (i64, u32) {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

/// The instant for WIT `timestamp` parts; out-of-range parts clamp to the epoch.
pub fn from_parts(seconds: i64, nanoseconds: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, nanoseconds).unwrap_or_default()
}

/// Parses an IANA zone name such as `Europe/Madrid`.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("unknown IANA time zone {name:?}"))
}

/// Parses a date-time: RFC 3339 with an offset (`2030-01-01T10:00:00+05:00`) is that
/// instant; without an offset (`2030-01-01T10:00:00`, `2030-01-01 10:00`) it is wall time
/// in `zone`. A wall time that does not exist in `zone` (skipped by a DST change) is an
/// error; one that exists twice resolves to the earlier instant.
pub fn parse_datetime(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    const NAIVE_FORMATS: [&str; 4] =
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!("{text:?} is not an RFC 3339 date-time (e.g. 2030-01-01T10:00:00+01:00, or without offset in the plan's time zone)")
        })?;
    localize(naive, zone)
}

/// The instant of wall time `naive` in `zone`.
pub fn localize(naive: NaiveDateTime, zone: Tz) -> Result<DateTime<Utc>, String> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => Err(format!("{naive} does not exist in {zone} (skipped by a DST change)")),
    }
}

/// The instant a schedule's wall time `naive` means in `zone`, always one: a time that a
/// spring-forward change skips moves to the first valid instant after the gap (the
/// change itself), and an ambiguous time (fall back) is the earlier of its two instants,
/// so a schedule fires once. (Unlike [`localize`], which refuses a skipped time a user
/// typed.)
pub fn schedule_instant(naive: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(naive, zone),
    }
}

/// The first instant whose wall time in `zone` is at or after `naive`, found by bisection
/// over the day around it (wall time only moves forward near a gap; offsets are within
/// ±18 h).
fn first_instant_at_or_after(naive: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let as_utc = naive.and_utc().timestamp();
    let (mut lo, mut hi) = (as_utc - 20 * 3600, as_utc + 20 * 3600);
    let wall = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default().with_timezone(&zone).naive_local();
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if wall(mid) >= naive { hi = mid } else { lo = mid + 1 }
    }
    DateTime::from_timestamp(lo, 0).unwrap_or_default()
}

/// Parses `HH:MM` (24-hour clock).
pub fn parse_hh_mm(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| format!("{text:?} is not a time of day HH:MM"))
}

/// The calendar date of `now` in `zone`.
pub fn today_in(now: DateTime<Utc>, zone: Tz) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// Parses a week day: `MON`..`SUN` (any case; `MONDAY` too).
pub fn parse_weekday(text: &str) -> Result<chrono::Weekday, String> {
    text.trim()
        .parse::<chrono::Weekday>()
        .map_err(|_| format!("{text:?} is not a day of the week (MON, TUE, WED, THU, FRI, SAT, SUN)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADRID: Tz = chrono_tz::Europe::Madrid;

    #[test]
    fn offset_is_honoured() {
        let t = parse_datetime("2030-01-01T10:00:00+05:00", MADRID).unwrap();
        assert_eq!(t.to_rfc3339(), "2030-01-01T05:00:00+00:00");
    }

    #[test]
    fn naive_date_is_wall_time_in_the_zone() {
        let t = parse_datetime("2030-01-01T10:00:00", MADRID).unwrap();
        assert_eq!(t.to_rfc3339(), "2030-01-01T09:00:00+00:00");
        let t = parse_datetime("2030-07-01 10:00", MADRID).unwrap();
        assert_eq!(t.to_rfc3339(), "2030-07-01T08:00:00+00:00");
    }

    #[test]
    fn skipped_wall_time_is_an_error() {
        // 2030-03-31 02:30 does not exist in Madrid: clocks jump from 02:00 to 03:00.
        assert!(parse_datetime("2030-03-31T02:30:00", MADRID).unwrap_err().contains("does not exist"));
    }

    #[test]
    fn garbage_is_an_error_with_an_example() {
        assert!(parse_datetime("garbage", MADRID).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn parts_round_trip() {
        let t = parse_datetime("2030-01-01T10:00:00.123456789Z", MADRID).unwrap();
        let (s, n) = to_parts(t);
        assert_eq!(from_parts(s, n), t);
    }

    #[test]
    fn skipped_schedule_times_move_to_the_change_and_repeated_ones_fire_once() {
        use chrono_tz::{America::New_York, Australia::Sydney, Europe::Madrid};
        let naive = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").unwrap();
        // Expected instants computed independently (Python zoneinfo).
        let cases = [
            (Madrid, "2026-03-29 02:30", "2026-03-29T01:00:00+00:00"),
            (New_York, "2026-03-08 02:30", "2026-03-08T07:00:00+00:00"),
            (Sydney, "2026-10-04 02:30", "2026-10-03T16:00:00+00:00"),
            (Madrid, "2027-03-28 02:15", "2027-03-28T01:00:00+00:00"),
            (New_York, "2027-03-14 02:59", "2027-03-14T07:00:00+00:00"),
            (Sydney, "2027-10-03 02:00", "2027-10-02T16:00:00+00:00"),
            (Madrid, "2026-10-25 02:30", "2026-10-25T00:30:00+00:00"),
            (New_York, "2026-11-01 01:30", "2026-11-01T05:30:00+00:00"),
            (Sydney, "2026-04-05 02:30", "2026-04-04T15:30:00+00:00"),
            (Madrid, "2027-10-31 02:00", "2027-10-31T00:00:00+00:00"),
            (New_York, "2027-11-07 01:00", "2027-11-07T05:00:00+00:00"),
            (Sydney, "2027-04-04 02:45", "2027-04-03T15:45:00+00:00"),
            (Madrid, "2026-07-01 10:00", "2026-07-01T08:00:00+00:00"),
        ];
        for (zone, wall, expected) in cases {
            assert_eq!(schedule_instant(naive(wall), zone).to_rfc3339(), expected, "{wall} in {zone}");
        }
    }
}
