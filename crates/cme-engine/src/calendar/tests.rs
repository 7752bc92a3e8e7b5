//! Calendars as their producers write them (fixtures in tests/e2e/fixtures/calendars,
//! written for this project from RFC 5545 and each producer's documented output).

use super::*;
use crate::blackout_index::BlackoutIndex;
use crate::blackouts::Blackout;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/e2e/fixtures/calendars/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn now() -> DateTime<Utc> {
    at("2026-12-06T12:00:00Z")
}

fn read_fixture(name: &str, options: ReadOptions) -> CalendarRead {
    read(&fixture(name), chrono_tz::UTC, options, now()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The calendar's blackouts as the engine indexes them.
fn indexed(read: &CalendarRead) -> BlackoutIndex {
    BlackoutIndex::new(
        read.events
            .iter()
            .enumerate()
            .map(|(i, event)| Blackout {
                id: i.to_string(),
                name: event.name.clone(),
                description: event.description.clone(),
                plan_id: None,
                when: event.when.clone(),
                calendar: Some("test".into()),
                stop_running: false,
                created: now(),
                created_by: "test".into(),
            })
            .collect(),
    )
}

fn holding(index: &BlackoutIndex, when: &str) -> Vec<String> {
    let mut names: Vec<String> = index.covering(at(when)).iter().map(|b| b.name.clone()).collect();
    names.sort();
    names
}

fn skipped(read: &CalendarRead) -> Vec<(String, String)> {
    read.skipped.iter().map(|s| (s.event.clone(), s.reason.clone())).collect()
}

#[test]
fn google_recurring_holidays_hold_every_year_with_their_exceptions() {
    let read = read_fixture("google.ics", ReadOptions::default());
    assert_eq!(read.zone, chrono_tz::America::New_York, "X-WR-TIMEZONE is the calendar's zone");
    let index = indexed(&read);
    // Presidents' Day, the third Monday of February, all day in New York, every year.
    assert_eq!(holding(&index, "2027-02-15T05:00:00Z"), ["Presidents' Day"]);
    assert!(holding(&index, "2027-02-15T04:59:59Z").is_empty());
    assert_eq!(holding(&index, "2031-02-17T12:00:00Z"), ["Presidents' Day"]);
    let presidents = read.events.iter().find(|e| e.name == "Presidents' Day").unwrap();
    assert_eq!(
        presidents.description.as_deref(),
        Some("Washington's Birthday, observed on the third Monday of February.")
    );
    // Thanksgiving and the day after (fourth Thursday, two days), but not in 2027 (EXDATE).
    assert_eq!(holding(&index, "2026-11-27T20:00:00Z"), ["Thanksgiving (and the Friday after)"]);
    assert!(holding(&index, "2027-11-25T20:00:00Z").is_empty());
    assert_eq!(holding(&index, "2028-11-24T20:00:00Z"), ["Thanksgiving (and the Friday after)"]);
    // A weekly window; one instance moved to the morning, one cancelled; UNTIL ends it.
    assert_eq!(holding(&index, "2026-12-07T21:30:00Z"), ["Release window"]);
    assert!(holding(&index, "2026-12-14T21:30:00Z").is_empty(), "the moved instance left its slot");
    assert_eq!(holding(&index, "2026-12-14T15:30:00Z"), ["Release window (moved to the morning)"]);
    assert!(holding(&index, "2026-12-21T21:30:00Z").is_empty(), "the cancelled instance");
    assert_eq!(holding(&index, "2027-01-04T21:30:00Z"), ["Release window"]);
    assert!(holding(&index, "2027-01-11T21:30:00Z").is_empty(), "after UNTIL");
    // Free and cancelled events are not blackouts, and say so.
    let skipped = skipped(&read);
    assert!(
        skipped.iter().any(|(e, r)| e == "New Year's Eve (optional)" && r.contains("TRANSP:TRANSPARENT")),
        "{skipped:?}"
    );
    assert!(skipped.iter().any(|(e, r)| e == "Office party (cancelled)" && r.starts_with("cancelled")), "{skipped:?}");
    assert!(skipped.iter().any(|(_, r)| r.starts_with("cancelled instance at 2026-12-21T21:00:00")), "{skipped:?}");
    assert!(holding(&index, "2026-12-31T12:00:00Z").is_empty());
    let with_free = read_fixture("google.ics", ReadOptions { include_free: true, ..ReadOptions::default() });
    assert_eq!(holding(&indexed(&with_free), "2026-12-31T12:00:00Z"), ["New Year's Eve (optional)"]);
}

#[test]
fn outlook_windows_zone_ids_and_durations_are_read() {
    let read = read_fixture("outlook-2010.ics", ReadOptions::default());
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    let index = indexed(&read);
    // The last Friday of every third month from March, 09:00-17:00 Pacific (PDT in June).
    assert_eq!(holding(&index, "2026-06-26T16:00:00Z"), ["Quarter close"]);
    assert!(holding(&index, "2026-06-26T15:59:59Z").is_empty());
    assert!(holding(&index, "2026-07-31T18:00:00Z").is_empty(), "not a quarter month");
    // PST in December: 09:00 is 17:00 UTC.
    assert_eq!(holding(&index, "2026-12-25T17:00:00Z"), ["Quarter close"]);
    // DURATION:PT48H from Monday 00:00 Pacific.
    assert_eq!(holding(&index, "2026-11-24T12:00:00Z"), ["Black Friday freeze"]);
    assert!(holding(&index, "2026-11-25T08:00:00Z").is_empty());
}

#[test]
fn outlook_display_names_resolve_through_the_embedded_vtimezone() {
    let read = read_fixture("outlook-owa.ics", ReadOptions::default());
    let index = indexed(&read);
    // The last weekday of each month, 22:00-02:00 Eastern: Friday 2027-01-29 22:00 EST.
    assert_eq!(holding(&index, "2027-01-30T03:30:00Z"), ["Month-end batch"]);
    // In July (EDT) the same wall time is an hour earlier in UTC: Friday 2027-07-30.
    assert_eq!(holding(&index, "2027-07-31T02:30:00Z"), ["Month-end batch"]);
    // "(UTC+01:00) Amsterdam, Berlin, ..." in winter: 01:00 is 00:00 UTC.
    assert_eq!(holding(&index, "2026-12-12T00:00:00Z"), ["Berlin DC maintenance"]);
    assert!(holding(&index, "2026-12-11T23:59:59Z").is_empty());
    let skipped = skipped(&read);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().any(|(e, r)| e == "Broken start" && r.contains("unreadable DTSTART")), "{skipped:?}");
    assert!(skipped.iter().any(|(e, r)| e == "Somewhere else" && r.contains("no VTIMEZONE")), "{skipped:?}");
    let strict = super::read(
        &fixture("outlook-owa.ics"),
        chrono_tz::UTC,
        ReadOptions { strict: true, ..ReadOptions::default() },
        now(),
    );
    assert!(strict.unwrap_err().0.contains("strict import"));
}

#[test]
fn apple_count_rdates_folding_and_bare_line_feeds_are_read() {
    let read =
        read_fixture("apple.ics", ReadOptions { zone: Some(chrono_tz::Europe::Madrid), ..ReadOptions::default() });
    let index = indexed(&read);
    // Ten weekdays from Monday 14 December, 09:00-09:30 Madrid (08:00 UTC).
    for day in ["14", "15", "18", "21", "25"] {
        assert_eq!(holding(&index, &format!("2026-12-{day}T08:10:00Z")), ["Stand-up freeze"], "{day}");
    }
    assert!(holding(&index, "2026-12-19T08:10:00Z").is_empty(), "a Saturday");
    assert!(holding(&index, "2026-12-28T08:10:00Z").is_empty(), "after COUNT");
    // RDATEs add a weekend.
    assert_eq!(holding(&index, "2026-12-26T08:10:00Z"), ["Stand-up freeze"]);
    assert_eq!(holding(&index, "2026-12-27T08:10:00Z"), ["Stand-up freeze"]);
    assert_eq!(holding(&index, "2026-12-08T12:00:00Z"), ["Inmaculada Concepción"]);
}

#[test]
fn zimbra_quoted_zones_cancelled_events_and_other_components() {
    let read = read_fixture("zimbra.ics", ReadOptions::default());
    let index = indexed(&read);
    assert_eq!(holding(&index, "2026-12-19T07:00:00Z"), ["Datacenter move"]);
    assert!(holding(&index, "2026-12-01T10:00:00Z").is_empty(), "cancelled");
    assert_eq!(read.events.len(), 1, "the VTODO is not an event");
    assert_eq!(read.events[0].description.as_deref(), Some("Racks 4-7"));
}

#[test]
fn nextcloud_durations_and_floating_times_use_the_calendars_zone() {
    let read = read_fixture("nextcloud.ics", ReadOptions::default());
    assert_eq!(read.zone, chrono_tz::Europe::Paris);
    let index = indexed(&read);
    assert_eq!(holding(&index, "2029-01-01T12:00:00Z"), ["Jour de l'An"]);
    assert_eq!(holding(&index, "2028-12-31T23:00:00Z"), ["Jour de l'An"], "midnight in Paris");
    assert_eq!(holding(&index, "2026-12-15T21:30:00Z"), ["Floating maintenance"]);
    // The import's own zone wins over X-WR-TIMEZONE.
    let utc = read_fixture("nextcloud.ics", ReadOptions { zone: Some(chrono_tz::UTC), ..ReadOptions::default() });
    assert_eq!(holding(&indexed(&utc), "2026-12-15T22:30:00Z"), ["Floating maintenance"]);
}

#[test]
fn mozilla_prefixed_zones_and_rdate_periods() {
    let read = read_fixture("mozilla.ics", ReadOptions::default());
    let index = indexed(&read);
    assert_eq!(holding(&index, "2026-12-08T17:30:00Z"), ["Patch days"]);
    assert_eq!(holding(&index, "2026-12-15T22:30:00Z"), ["Patch days"]);
    assert_eq!(holding(&index, "2026-12-22T19:30:00Z"), ["Patch days"]);
    assert!(holding(&index, "2026-12-22T20:30:00Z").is_empty(), "PT3H from 17:00");
}

const HOLIDAYS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:Navidad\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:2\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=America/New_York:20261231T180000\r\nDTEND;TZID=America/New_York:20261231T235900\r\nSUMMARY:Party\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

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
fn garbage_empty_calendars_and_hopeless_rules_are_refused_or_skipped() {
    assert!(parse_events("hello", chrono_tz::UTC).unwrap_err().to_string().contains("BEGIN:VCALENDAR"));
    let no_events = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
    assert!(parse_events(no_events, chrono_tz::UTC).unwrap_err().to_string().contains("no events"));
    let minutely = HOLIDAYS.replace("SUMMARY:Navidad", "SUMMARY:Navidad\r\nRRULE:FREQ=MINUTELY");
    let read = super::read(&minutely, chrono_tz::UTC, ReadOptions::default(), now()).unwrap();
    assert_eq!(read.events.len(), 1);
    assert!(read.skipped[0].reason.contains("every second or minute"), "{:?}", read.skipped);
    // Hourly since 2000 cannot be evaluated five years ahead within the walk.
    let hourly = HOLIDAYS.replace(
        "DTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226",
        "DTSTART:20000101T000000Z\r\nDTEND:20000101T000100Z\r\nRRULE:FREQ=HOURLY",
    );
    let read = super::read(&hourly, chrono_tz::UTC, ReadOptions::default(), now()).unwrap();
    assert!(read.skipped[0].reason.contains("too often"), "{:?}", read.skipped);
    // An endless rule that matches no date (February 30th) is not kept.
    let never = HOLIDAYS.replace("SUMMARY:Navidad", "SUMMARY:Navidad\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30");
    let read = super::read(&never, chrono_tz::UTC, ReadOptions::default(), now()).unwrap();
    assert!(read.skipped[0].reason.contains("no date in the next 5 years"), "{:?}", read.skipped);
    let only_bad = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert!(parse_events(only_bad, chrono_tz::UTC).unwrap_err().to_string().contains("no DTSTART"));
}

#[test]
fn durations_read_as_rfc_5545_writes_them() {
    assert_eq!(duration("P1D"), Some(Duration::days(1)));
    assert_eq!(duration("PT1H30M"), Some(Duration::minutes(90)));
    assert_eq!(duration("P2W"), Some(Duration::days(14)));
    assert_eq!(duration("+P1DT12H"), Some(Duration::hours(36)));
    assert_eq!(duration("-PT1H"), None);
    assert_eq!(duration("P"), None);
    assert_eq!(duration("PT1D"), None);
    assert_eq!(duration("P99999999999D"), None);
}
