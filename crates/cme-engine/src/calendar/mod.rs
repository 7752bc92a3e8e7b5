//! Holiday calendars: an iCalendar file (RFC 5545, parsed by the `icalendar` crate)
//! becomes one one-off blackout per event. All-day events hold their whole days in the
//! calendar's zone; timed events keep their instant (UTC, a TZID the zone database knows,
//! or floating in the calendar's zone).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, CalendarComponent, CalendarDateTime, Component, DatePerhapsTime};

use crate::blackouts::BlackoutWhen;

/// The most events one calendar may hold.
pub const MAX_EVENTS: usize = 10_000;

/// One event of a calendar, as a blackout span.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarEvent {
    /// The event's SUMMARY (or its UID, or "event N").
    pub name: String,
    pub when: BlackoutWhen,
}

/// Reads every VEVENT of `text`; any event that cannot be read refuses the whole file,
/// naming it.
pub fn parse_events(text: &str, zone: Tz) -> Result<Vec<CalendarEvent>, crate::bounded::DocumentRefused> {
    calendar_events(text, zone).map_err(crate::bounded::DocumentRefused)
}

pub(crate) fn calendar_events(text: &str, zone: Tz) -> Result<Vec<CalendarEvent>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with("BEGIN:VCALENDAR") {
        return Err("not an iCalendar file: it must start with BEGIN:VCALENDAR".into());
    }
    crate::bounded::check_ical_shape(text).map_err(|e| format!("not a valid iCalendar file: {e}"))?;
    let calendar: Calendar =
        text.parse().map_err(|e: String| format!("not a valid iCalendar file: {}", e.lines().next().unwrap_or("")))?;
    let mut events = Vec::new();
    for (index, component) in calendar.components.iter().enumerate() {
        let CalendarComponent::Event(event) = component else { continue };
        let name = event
            .get_summary()
            .or_else(|| event.get_uid())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("event {}", index + 1));
        let refuse = |what: &str| format!("event {name:?}: {what}");
        if event.property_value("RRULE").is_some() || event.property_value("RDATE").is_some() {
            return Err(refuse(
                "recurring events (RRULE, RDATE) are not supported; list each occurrence, or add a recurring blackout through /api/1/blackouts/",
            ));
        }
        let start = event.get_start().ok_or_else(|| refuse("no DTSTART"))?;
        let (start, all_day) = instant(&start, zone).map_err(|e| refuse(&e))?;
        let end = match event.get_end() {
            Some(end) => instant(&end, zone).map_err(|e| refuse(&e))?.0,
            // RFC 5545: without DTEND an all-day event lasts one day, a timed one no time.
            None if all_day => start + Duration::days(1),
            None => start,
        };
        if end <= start {
            return Err(refuse("it ends before it starts (or has no length)"));
        }
        events.push(CalendarEvent { name, when: BlackoutWhen::Once { start, end } });
        if events.len() > MAX_EVENTS {
            return Err(format!("the calendar has more than {MAX_EVENTS} events"));
        }
    }
    if events.is_empty() {
        return Err("the calendar has no events (VEVENT)".into());
    }
    Ok(events)
}

/// The instant of a DTSTART/DTEND, and whether it was a date (all day).
fn instant(value: &DatePerhapsTime, zone: Tz) -> Result<(DateTime<Utc>, bool), String> {
    let local = |naive: NaiveDateTime, zone: Tz| cme_model::time::schedule_instant(naive, zone);
    Ok(match value {
        DatePerhapsTime::Date(date) => (local(midnight(*date), zone), true),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => (*t, false),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(naive)) => (local(*naive, zone), false),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            let tz: Tz = tzid
                .parse()
                .map_err(|_| format!("unknown time zone TZID={tzid} (use an IANA name such as Europe/Madrid)"))?;
            (local(*date_time, tz), false)
        }
    })
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).expect("midnight exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLIDAYS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:Navidad\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:2\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=America/New_York:20261231T180000\r\nDTEND;TZID=America/New_York:20261231T235900\r\nSUMMARY:Party\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn all_day_events_hold_their_days_in_the_calendars_zone() {
        let events = parse_events(HOLIDAYS, chrono_tz::Europe::Madrid).unwrap();
        assert_eq!(events[0].name, "Navidad");
        assert_eq!(
            events[0].when,
            BlackoutWhen::Once { start: at("2026-12-24T23:00:00Z"), end: at("2026-12-25T23:00:00Z") }
        );
        assert_eq!(
            events[1].when,
            BlackoutWhen::Once { start: at("2026-12-31T23:00:00Z"), end: at("2027-01-01T04:59:00Z") }
        );
    }

    #[test]
    fn recurring_events_and_garbage_are_refused_with_their_name() {
        let rrule = HOLIDAYS.replace("SUMMARY:Navidad", "SUMMARY:Navidad\r\nRRULE:FREQ=YEARLY");
        assert!(parse_events(&rrule, chrono_tz::UTC).unwrap_err().to_string().contains("\"Navidad\""));
        assert!(parse_events("hello", chrono_tz::UTC).unwrap_err().to_string().contains("BEGIN:VCALENDAR"));
        let no_events = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
        assert!(parse_events(no_events, chrono_tz::UTC).unwrap_err().to_string().contains("no events"));
    }
}
