//! The zone a TZID names, read as the producers that write them mean it:
//!
//! 1. an IANA name, in any case, also behind the path prefix old Mozilla and libical
//!    builds write (`/mozilla.org/20050126_1/Europe/Berlin`);
//! 2. a Windows zone ID (`Pacific Standard Time`, what Exchange writes), mapped through
//!    CLDR's windowsZones table (world-wide default, territory `001`; the `localzone`
//!    crate carries the table);
//! 3. anything else (Outlook's display names, `(UTC-05:00) Eastern Time (US & Canada)`)
//!    through the calendar's own VTIMEZONE of that TZID: its STANDARD and DAYLIGHT
//!    onsets give its offset on every day of the year, and the IANA zone with the same
//!    offset on every one of them is the zone (a zone whose city the TZID names first,
//!    then CLDR's default for its Windows zone).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::content::Component;

/// Onsets read from one STANDARD or DAYLIGHT rule, at most (a yearly rule since 1970 has
/// about 60 up to now).
const MAX_ONSETS: usize = 1_000;

/// Why a TZID names no zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownZone(pub String);

/// The zones of one calendar: its VTIMEZONEs by TZID, and what each TZID resolved to.
pub struct Zones<'a> {
    vtimezones: HashMap<String, &'a Component>,
    resolved: HashMap<String, Result<Tz, UnknownZone>>,
    /// The year whose offsets a VTIMEZONE is matched on.
    year: i32,
}

impl<'a> Zones<'a> {
    pub fn new(calendar: &'a Component, now: DateTime<Utc>) -> Self {
        let vtimezones = calendar
            .children("VTIMEZONE")
            .filter_map(|vtz| Some((vtz.property("TZID")?.value.trim().to_string(), vtz)))
            .collect();
        Zones { vtimezones, resolved: HashMap::new(), year: now.year() }
    }

    /// The zone `tzid` names (see the module's doc), or why none.
    pub fn resolve(&mut self, tzid: &str) -> Result<Tz, UnknownZone> {
        let tzid = tzid.trim();
        if let Some(known) = self.resolved.get(tzid) {
            return known.clone();
        }
        let found = named(tzid).map(Ok).unwrap_or_else(|| match self.vtimezones.get(tzid) {
            Some(vtz) => from_vtimezone(tzid, vtz, self.year).map_err(UnknownZone),
            None => Err(UnknownZone(format!(
                "unknown time zone TZID={tzid:?}: not an IANA or Windows zone name, and the calendar has no VTIMEZONE for it"
            ))),
        });
        self.resolved.insert(tzid.to_string(), found.clone());
        found
    }
}

/// An IANA name (any case, behind a path prefix or not) or a Windows zone ID.
pub fn named(tzid: &str) -> Option<Tz> {
    let tzid = tzid.trim().trim_matches('"');
    if let Some(zone) = iana(tzid) {
        return Some(zone);
    }
    // `/mozilla.org/20050126_1/Europe/Berlin`, `/softwarestudio.org/Olson_20011030_5/America/New_York`:
    // the longest tail that is a zone name.
    let parts: Vec<&str> = tzid.split('/').collect();
    for skip in 1..parts.len() {
        if let Some(zone) = iana(&parts[skip..].join("/")) {
            return Some(zone);
        }
    }
    let windows = localzone::win_zone_to_iana(tzid, Some("001"))?;
    iana(windows)
}

fn iana(name: &str) -> Option<Tz> {
    name.parse::<Tz>()
        .ok()
        .or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|zone| zone.name().eq_ignore_ascii_case(name)))
}

/// The IANA zone whose offsets agree with `vtz`'s on every day of `year`.
fn from_vtimezone(tzid: &str, vtz: &Component, year: i32) -> Result<Tz, String> {
    let refuse = |why: &str| format!("time zone TZID={tzid:?}: its VTIMEZONE {why}");
    let onsets = onsets(vtz, year).map_err(|e| refuse(&e))?;
    let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| refuse("has no usable year"))?;
    let days: Vec<NaiveDateTime> =
        (0..365).map(|d| (first + Duration::days(d)).and_hms_opt(12, 0, 0).expect("noon")).collect();
    let offsets: Vec<i32> = days.iter().map(|day| offset_at(&onsets, *day)).collect();
    let mut matching: Vec<Tz> = chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .filter(|zone| {
            days.iter()
                .zip(&offsets)
                .all(|(day, offset)| zone.offset_from_utc_datetime(day).fix().local_minus_utc() == *offset)
        })
        .collect();
    if matching.is_empty() {
        return Err(refuse(&format!("matches no IANA zone over {year}")));
    }
    let mentioned = |zone: &Tz| {
        let city = zone.name().rsplit('/').next().unwrap_or("").replace('_', " ");
        !city.is_empty() && tzid.contains(&city)
    };
    let windows_default = |zone: &Tz| {
        localzone::iana_to_win_zone(zone.name())
            .and_then(|(windows, _)| localzone::win_zone_to_iana(windows, Some("001")))
            .is_some_and(|default| default == zone.name())
    };
    let regional = |zone: &Tz| zone.name().contains('/') && !zone.name().starts_with("Etc/");
    matching.sort_by_key(|zone| (!mentioned(zone), !windows_default(zone), !regional(zone), zone.name()));
    Ok(matching[0])
}

/// Every onset of `vtz`'s STANDARD and DAYLIGHT rules up to the end of `year`: the
/// instant (UTC) and the offset from then on (seconds east of UTC).
fn onsets(vtz: &Component, year: i32) -> Result<Vec<(NaiveDateTime, i32)>, String> {
    let end =
        NaiveDate::from_ymd_opt(year + 1, 1, 1).ok_or("has no usable year")?.and_hms_opt(0, 0, 0).expect("midnight");
    let mut all = Vec::new();
    for rule in vtz.components.iter().filter(|c| c.name == "STANDARD" || c.name == "DAYLIGHT") {
        let offset = |name: &str| {
            let value = rule.property(name).ok_or(format!("has a {} without {name}", rule.name))?;
            parse_offset(&value.value).ok_or(format!("has an unreadable {name} {:?}", value.value))
        };
        let (from, to) = (offset("TZOFFSETFROM")?, offset("TZOFFSETTO")?);
        let start = rule.property("DTSTART").ok_or(format!("has a {} without DTSTART", rule.name))?;
        let local =
            super::local_date_time(&start.value).ok_or(format!("has an unreadable DTSTART {:?}", start.value))?;
        // Onsets are wall times before the change: the instant is the wall time minus the
        // offset in force until then.
        let mut walls = vec![local];
        if let Some(rrule) = rule.property("RRULE") {
            let rule = crate::recurrence::EventRule::floating(local, &rrule.value).map_err(|e| format!("has {e}"))?;
            walls = rule.floating_starts_before(end + Duration::days(2), MAX_ONSETS).map_err(|e| format!("has {e}"))?;
        }
        for rdate in rule.all("RDATE") {
            walls.extend(rdate.value.split(',').filter_map(super::local_date_time));
        }
        all.extend(walls.into_iter().map(|wall| (wall - Duration::seconds(from as i64), to)));
    }
    if all.is_empty() {
        return Err("has no STANDARD or DAYLIGHT rule".into());
    }
    all.sort();
    Ok(all)
}

/// The offset in force at `at` (UTC): the latest onset's, or before the first onset the
/// first one's.
fn offset_at(onsets: &[(NaiveDateTime, i32)], at: NaiveDateTime) -> i32 {
    let after = onsets.partition_point(|(when, _)| *when <= at);
    onsets[after.saturating_sub(1)].1
}

/// `+HHMM`, `-HHMM` or `+HHMMSS`, in seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<i32>().ok()).unwrap_or(0);
    let (hours, minutes, seconds) = (n(0..2), n(2..4), n(4..6));
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_windows_and_prefixed_names_are_known() {
        assert_eq!(named("Europe/Madrid"), Some(chrono_tz::Europe::Madrid));
        assert_eq!(named("europe/madrid"), Some(chrono_tz::Europe::Madrid));
        assert_eq!(named("/mozilla.org/20050126_1/Europe/Berlin"), Some(chrono_tz::Europe::Berlin));
        assert_eq!(named("Pacific Standard Time"), Some(chrono_tz::America::Los_Angeles));
        assert_eq!(named("W. Europe Standard Time"), Some(chrono_tz::Europe::Berlin));
        assert_eq!(named("Romance Standard Time"), Some(chrono_tz::Europe::Paris));
        assert_eq!(named("(UTC-05:00) Eastern Time (US & Canada)"), None);
    }

    #[test]
    fn offsets_parse_in_both_lengths() {
        assert_eq!(parse_offset("-0500"), Some(-5 * 3600));
        assert_eq!(parse_offset("+0545"), Some(5 * 3600 + 45 * 60));
        assert_eq!(parse_offset("+013000"), Some(5400));
        assert_eq!(parse_offset("0100"), None);
        assert_eq!(parse_offset("+2500"), None);
    }
}
