//! Holiday calendars: an iCalendar file (RFC 5545) as its producers write it (Google,
//! Outlook and Exchange, Apple, Zimbra, Nextcloud, Mozilla) becomes blackouts, one per
//! event. A one-off event is a one-off span; a recurring one (RRULE, RDATE, with its
//! EXDATEs and its moved or cancelled instances) is a [`crate::recurrence::EventRule`],
//! evaluated when asked and never materialized. All-day events hold their whole days in
//! the calendar's zone; timed ones keep their instant (UTC, a TZID — see [`zones`] —
//! or floating in the calendar's zone).
//!
//! The calendar's zone is the import's (`?timezone=`), else the file's `X-WR-TIMEZONE`,
//! else the engine's. Cancelled events and instances are not blackouts; free
//! (`TRANSP:TRANSPARENT`) events are skipped unless asked for. An event that cannot be
//! understood is skipped with its reason and the rest imported, unless the import is
//! strict.

pub mod content;
pub mod zones;

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::blackouts::BlackoutWhen;
use crate::recurrence::{CHECKED_YEARS, EventRule, Length, MAX_CALENDAR_CHECK, MAX_CALENDAR_WALK};
use content::{Component, Property};
use zones::Zones;

/// The most events one calendar may hold.
pub const MAX_EVENTS: usize = 10_000;

/// The longest event name kept (SUMMARY; longer ones are cut).
pub const MAX_SUMMARY: usize = 150;

/// The longest description kept (DESCRIPTION; longer ones are cut).
pub const MAX_DESCRIPTION: usize = 2_000;

/// One event of a calendar, as a blackout.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarEvent {
    /// The event's SUMMARY (or its UID, or "event N").
    pub name: String,
    /// Its DESCRIPTION.
    pub description: Option<String>,
    pub when: BlackoutWhen,
}

/// An event left out of the import, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub event: String,
    pub reason: String,
}

/// How a calendar is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// The zone of floating times and dates; None: the file's `X-WR-TIMEZONE`, else the
    /// engine's.
    pub zone: Option<Tz>,
    /// Free (`TRANSP:TRANSPARENT`) events become blackouts too.
    pub include_free: bool,
    /// Any event that cannot be read refuses the file.
    pub strict: bool,
}

/// What a calendar holds.
#[derive(Debug, Clone)]
pub struct CalendarRead {
    pub events: Vec<CalendarEvent>,
    pub skipped: Vec<Skipped>,
    /// The zone floating times were read in.
    pub zone: Tz,
}

/// Reads every event of `text` with `zone` as the calendar's zone; an unreadable event
/// is skipped. What the fuzz targets drive.
pub fn parse_events(text: &str, zone: Tz) -> Result<Vec<CalendarEvent>, crate::bounded::DocumentRefused> {
    let options = ReadOptions { zone: Some(zone), ..ReadOptions::default() };
    read(text, zone, options, Utc::now()).map(|read| read.events)
}

/// Reads a calendar (see the module's doc). `engine_zone` is the last fallback zone;
/// `now` anchors the bound on recurring events.
pub fn read(
    text: &str,
    engine_zone: Tz,
    options: ReadOptions,
    now: DateTime<Utc>,
) -> Result<CalendarRead, crate::bounded::DocumentRefused> {
    read_text(text, engine_zone, options, now).map_err(crate::bounded::DocumentRefused)
}

fn read_text(text: &str, engine_zone: Tz, options: ReadOptions, now: DateTime<Utc>) -> Result<CalendarRead, String> {
    let trimmed = text.strip_prefix('\u{feff}').unwrap_or(text).trim_start();
    if !trimmed.get(..15).is_some_and(|head| head.eq_ignore_ascii_case("BEGIN:VCALENDAR")) {
        return Err("not an iCalendar file: it must start with BEGIN:VCALENDAR".into());
    }
    crate::bounded::check_ical_shape(text).map_err(|e| format!("not a valid iCalendar file: {e}"))?;
    let calendars = content::components(text);
    let mut read = CalendarRead { events: Vec::new(), skipped: Vec::new(), zone: options.zone.unwrap_or(engine_zone) };
    let mut any_event = false;
    for calendar in calendars.iter().filter(|c| c.name == "VCALENDAR") {
        let mut zones = Zones::new(calendar, now);
        let zone = match options.zone {
            Some(zone) => zone,
            None => {
                calendar.property("X-WR-TIMEZONE").and_then(|p| zones.resolve(&p.value).ok()).unwrap_or(engine_zone)
            }
        };
        read.zone = zone;
        let mut reader = EventReader {
            zones,
            zone,
            options,
            now,
            overrides: HashMap::new(),
            walked: 0,
            started: std::time::Instant::now(),
        };
        let events: Vec<&Component> = calendar.children("VEVENT").collect();
        any_event |= !events.is_empty();
        reader.index_overrides(&events);
        for (index, event) in events.iter().enumerate() {
            let label = label(event, index);
            match reader.event(event, &label) {
                Ok(Some(mut found)) => {
                    read.events.append(&mut found);
                    if read.events.len() > MAX_EVENTS {
                        return Err(format!("the calendar has more than {MAX_EVENTS} events"));
                    }
                }
                Ok(None) => {}
                Err(reason) => read.skipped.push(Skipped { event: label, reason }),
            }
        }
        read.skipped.append(&mut reader.cancelled());
    }
    if !any_event {
        return Err("the calendar has no events (VEVENT)".into());
    }
    if options.strict
        && let Some(first) =
            read.skipped.iter().find(|s| !s.reason.starts_with("cancelled") && !s.reason.starts_with("free"))
    {
        return Err(format!("event {:?}: {} (strict import: nothing was imported)", first.event, first.reason));
    }
    if read.events.is_empty() {
        let why: Vec<String> = read.skipped.iter().take(3).map(|s| format!("{:?}: {}", s.event, s.reason)).collect();
        return Err(format!("no event of the calendar can be a blackout ({})", why.join("; ")));
    }
    Ok(read)
}

/// SUMMARY, else UID, else "event N".
fn label(event: &Component, index: usize) -> String {
    let text = ["SUMMARY", "UID"]
        .iter()
        .filter_map(|name| event.property(name))
        .map(|p| p.text().trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| format!("event {}", index + 1));
    cut(&text, MAX_SUMMARY)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// A DTSTART, DTEND, RDATE or EXDATE: a wall time in a zone, or a date (all day).
#[derive(Debug, Clone, Copy)]
struct When {
    local: NaiveDateTime,
    zone: Tz,
    all_day: bool,
}

impl When {
    fn instant(&self) -> DateTime<Utc> {
        cme_model::time::schedule_instant(self.local, self.zone)
    }
}

/// `YYYYMMDDTHHMMSS` (a trailing `Z` ignored) or `YYYYMMDD` (midnight) as a wall time.
pub(crate) fn local_date_time(value: &str) -> Option<NaiveDateTime> {
    let value = value.trim();
    let value = value.strip_suffix(['Z', 'z']).unwrap_or(value);
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| date(value).map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")))
}

fn date(value: &str) -> Option<NaiveDate> {
    (value.len() == 8).then(|| NaiveDate::parse_from_str(value, "%Y%m%d").ok()).flatten()
}

struct EventReader<'a> {
    zones: Zones<'a>,
    /// The calendar's zone.
    zone: Tz,
    options: ReadOptions,
    now: DateTime<Utc>,
    /// Instances of recurring events by UID: (RECURRENCE-ID instant, cancelled, label).
    overrides: HashMap<String, Vec<(DateTime<Utc>, bool, String)>>,
    /// Occurrences walked by the checks of this calendar's recurring events so far.
    walked: usize,
    /// When the checks began.
    started: std::time::Instant,
}

impl<'a> EventReader<'a> {
    /// Notes every RECURRENCE-ID instance of an event the calendar holds a recurring
    /// master of, so that the master leaves that occurrence out.
    fn index_overrides(&mut self, events: &[&'a Component]) {
        let recurring: std::collections::HashSet<&str> = events
            .iter()
            .filter(|e| e.property("RECURRENCE-ID").is_none())
            .filter(|e| e.property("RRULE").is_some() || e.property("RDATE").is_some())
            .filter_map(|e| e.property("UID").map(|p| p.value.trim()))
            .collect();
        for (index, event) in events.iter().enumerate() {
            let (Some(uid), Some(id)) = (event.property("UID"), event.property("RECURRENCE-ID")) else { continue };
            if !recurring.contains(uid.value.trim()) {
                continue;
            }
            let Ok(when) = self.when(id, &id.value) else { continue };
            self.overrides.entry(uid.value.trim().to_string()).or_default().push((
                when.instant(),
                is_cancelled(event),
                label(event, index),
            ));
        }
    }

    /// The cancelled instances, as skipped.
    fn cancelled(&self) -> Vec<Skipped> {
        self.overrides
            .values()
            .flatten()
            .filter(|(_, cancelled, _)| *cancelled)
            .map(|(at, _, label)| Skipped {
                event: label.clone(),
                reason: format!("cancelled instance at {} (STATUS:CANCELLED)", at.to_rfc3339()),
            })
            .collect()
    }

    /// The blackouts one event makes; None for an instance its master already accounts
    /// for (cancelled); an error says why the event is skipped.
    fn event(&mut self, event: &Component, label: &str) -> Result<Option<Vec<CalendarEvent>>, String> {
        let instance = event.property("RECURRENCE-ID").is_some()
            && event.property("UID").is_some_and(|uid| self.overrides.contains_key(uid.value.trim()));
        if is_cancelled(event) {
            return if instance { Ok(None) } else { Err("cancelled (STATUS:CANCELLED)".into()) };
        }
        if !self.options.include_free
            && event.property("TRANSP").is_some_and(|t| t.value.trim().eq_ignore_ascii_case("TRANSPARENT"))
        {
            return Err("free time (TRANSP:TRANSPARENT); import with include_free=true to black it out".into());
        }
        let start_prop = event.property("DTSTART").ok_or("no DTSTART")?;
        let start = self.when(start_prop, &start_prop.value)?;
        let length = self.length(event, &start)?;
        let description =
            event.property("DESCRIPTION").map(|d| cut(d.text().trim(), MAX_DESCRIPTION)).filter(|d| !d.is_empty());
        let name = label.to_string();
        let recurring = !instance && (event.property("RRULE").is_some() || event.property("RDATE").is_some());
        if !recurring {
            let begins = start.instant();
            let when = BlackoutWhen::Once { start: begins, end: end_of(&start, begins, length) };
            return Ok(Some(vec![CalendarEvent { name, description, when }]));
        }
        let mut rule =
            EventRule::new(start.local, start.zone, event.property("RRULE").map(|p| p.value.as_str()), length)
                .map_err(|e| format!("a recurrence it cannot have: {e}"))?;
        let mut periods = Vec::new();
        for rdate in event.all("RDATE") {
            for value in rdate.value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                match value.split_once('/') {
                    Some((from, to)) => {
                        let from = self.when(rdate, from)?;
                        let begins = from.instant();
                        let end = match self.when(rdate, to) {
                            Ok(to) => to.instant(),
                            Err(_) => {
                                begins + duration(to).ok_or_else(|| format!("an unreadable RDATE period {value:?}"))?
                            }
                        };
                        if end > begins {
                            periods.push((begins, end));
                        }
                    }
                    None => rule.rdates.push(self.when(rdate, value)?.instant()),
                }
            }
        }
        for exdate in event.all("EXDATE") {
            for value in exdate.value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let mut excluded = self.when(exdate, value)?;
                if excluded.all_day && start.all_day {
                    // A date EXDATE removes the occurrence of that day in the rule's zone.
                    excluded.zone = start.zone;
                }
                rule.exdates.push(excluded.instant());
            }
        }
        if let Some(instances) = event.property("UID").and_then(|uid| self.overrides.get(uid.value.trim())) {
            rule.exdates.extend(instances.iter().map(|(at, _, _)| *at));
        }
        periods.retain(|(begins, _)| !rule.exdates.contains(begins));
        let compiled = rule.compile().map_err(|e| format!("a recurrence it cannot have: {e}"))?;
        let horizon = self.now + Duration::days(365 * CHECKED_YEARS);
        if self.walked > MAX_CALENDAR_WALK {
            return Err(format!(
                "the calendar's recurring events before it already repeat more than {MAX_CALENDAR_WALK} times in all"
            ));
        }
        if self.started.elapsed() > MAX_CALENDAR_CHECK {
            return Err(format!(
                "the calendar's recurring events before it already took more than {} s to check",
                MAX_CALENDAR_CHECK.as_secs()
            ));
        }
        match compiled.walk(horizon) {
            // An endless rule with no date from now to the horizon matches no date in
            // practice (February 30th); finding that out costs the crate its whole loop
            // limit at every evaluation, so it is not kept.
            Ok(_) if rule.endless() && !compiled.rule_gives_a_date(self.now, horizon) => {
                return Err(format!("its RRULE gives no date in the next {CHECKED_YEARS} years"));
            }
            Ok((walked, _)) => self.walked += walked,
            Err(e) => {
                self.walked += crate::recurrence::MAX_WALK;
                return Err(format!("it repeats too often to evaluate: {e}"));
            }
        }
        let mut found = vec![CalendarEvent {
            name: name.clone(),
            description: description.clone(),
            when: BlackoutWhen::Rule(rule),
        }];
        found.extend(periods.into_iter().map(|(start, end)| CalendarEvent {
            name: name.clone(),
            description: description.clone(),
            when: BlackoutWhen::Once { start, end },
        }));
        Ok(Some(found))
    }

    /// How long the event holds: DTEND, else DURATION, else a day (all day) — a timed
    /// event with neither has no length and is refused.
    fn length(&mut self, event: &Component, start: &When) -> Result<Length, String> {
        let length = if let Some(end) = event.property("DTEND") {
            let end = self.when(end, &end.value)?;
            if start.all_day && end.all_day {
                Length::Days((end.local.date() - start.local.date()).num_days().clamp(0, u32::MAX as i64) as u32)
            } else {
                Length::Seconds((end.instant() - start.instant()).num_seconds())
            }
        } else if let Some(text) = event.property("DURATION") {
            let length = duration(&text.value).ok_or_else(|| format!("an unreadable DURATION {:?}", text.value))?;
            let whole_days = length.num_seconds() % 86_400 == 0;
            if start.all_day && whole_days {
                Length::Days((length.num_days()).clamp(0, u32::MAX as i64) as u32)
            } else {
                Length::Seconds(length.num_seconds())
            }
        } else if start.all_day {
            Length::Days(1)
        } else {
            Length::Seconds(0)
        };
        match length {
            Length::Days(0) | Length::Seconds(i64::MIN..=0) => {
                Err("it ends before it starts (or has no length: no DTEND or DURATION)".into())
            }
            length => Ok(length),
        }
    }

    /// One date or date-time value of `prop` (its TZID and VALUE parameters apply).
    fn when(&mut self, prop: &Property, value: &str) -> Result<When, String> {
        let value = value.trim();
        let unreadable = || format!("an unreadable {} {value:?}", prop.name);
        let is_date = prop.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8;
        let zone = match prop.param("TZID") {
            Some(tzid) => self.zones.resolve(tzid).map_err(|unknown| unknown.0)?,
            None => self.zone,
        };
        if is_date {
            let day = date(value).ok_or_else(unreadable)?;
            return Ok(When { local: day.and_hms_opt(0, 0, 0).expect("midnight"), zone, all_day: true });
        }
        let local = local_date_time(value).ok_or_else(unreadable)?;
        let zone = if value.ends_with(['Z', 'z']) { chrono_tz::UTC } else { zone };
        Ok(When { local, zone, all_day: false })
    }
}

fn is_cancelled(event: &Component) -> bool {
    event.property("STATUS").is_some_and(|s| s.value.trim().eq_ignore_ascii_case("CANCELLED"))
}

fn end_of(start: &When, begins: DateTime<Utc>, length: Length) -> DateTime<Utc> {
    match length {
        Length::Seconds(seconds) => begins + Duration::seconds(seconds),
        Length::Days(days) => cme_model::time::schedule_instant(start.local + Duration::days(days as i64), start.zone),
    }
}

/// An RFC 5545 DURATION (`P1D`, `PT1H30M`, `P2W`, `+P1DT12H`); a negative one is none.
fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let mut rest = text.strip_prefix(['P', 'p'])?;
    let mut total: i64 = 0;
    let mut in_time = false;
    let mut any = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(['T', 't']) {
            in_time = true;
            rest = after;
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?.to_ascii_uppercase();
        let seconds = match (unit, in_time) {
            ('W', false) => 7 * 86_400,
            ('D', false) => 86_400,
            ('H', true) => 3_600,
            ('M', true) => 60,
            ('S', true) => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(seconds)?)?;
        any = true;
        rest = &rest[digits + 1..];
    }
    any.then(|| Duration::seconds(total))
}

#[cfg(test)]
mod tests;
