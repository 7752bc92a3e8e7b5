//! The engine's one rule for times in requests: RFC 3339 with an offset is that instant;
//! without an offset it is wall time in the engine's configured zone.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

pub fn parse_instant(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 date-time (e.g. 2031-06-01T12:00:00+02:00)"))?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => Err(format!("{naive} does not exist in {zone} (skipped by a DST change)")),
    }
}

pub fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub fn now_us() -> i64 {
    to_us(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_times_are_in_the_configured_zone_and_offsets_are_kept() {
        let madrid: Tz = "Europe/Madrid".parse().unwrap();
        assert_eq!(parse_instant("2031-06-01T12:00", madrid).unwrap().to_rfc3339(), "2031-06-01T10:00:00+00:00");
        assert_eq!(parse_instant("2031-06-01T12:00:00Z", madrid).unwrap().to_rfc3339(), "2031-06-01T12:00:00+00:00");
        assert!(parse_instant("tomorrow", madrid).is_err());
    }
}
