//! A recurring calendar event as a blackout: its DTSTART, RRULE, RDATEs and EXDATEs,
//! stored as data and evaluated when asked (the `rrule` crate), never materialized
//! without end — a yearly holiday blacks out every year.
//!
//! Evaluation is bounded: `FREQ=SECONDLY` and `MINUTELY` are refused, the crate's own
//! loop limit is on (a rule that can never match ends instead of spinning), and a lookup
//! walks at most [`MAX_WALK`] occurrences from the first; a rule that would need more
//! to reach [`CHECKED_YEARS`] ahead is refused when it is imported, and a lookup past
//! that point that still runs out answers "covered" (a blackout fails closed). One
//! calendar's checks walk at most [`MAX_CALENDAR_WALK`] occurrences and take at most
//! [`MAX_CALENDAR_CHECK`]; the events past either are skipped, named.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Why a recurrence rule cannot be kept or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleRefused(pub String);

impl From<String> for RuleRefused {
    fn from(message: String) -> Self {
        RuleRefused(message)
    }
}

/// An occurrence: `[start, end)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// The most occurrences one lookup walks from the first.
pub const MAX_WALK: usize = 100_000;

/// How far ahead of its import a rule must stay evaluable within [`MAX_WALK`].
pub const CHECKED_YEARS: i64 = 5;

/// The most occurrences the checks of one calendar's recurring events may walk in all
/// (a file of many rules each near [`MAX_WALK`] is cut off here, not evaluated for minutes).
pub const MAX_CALENDAR_WALK: usize = 1_000_000;

/// The longest the checks of one calendar's recurring events may take in all: a rule
/// that can never match costs the `rrule` crate's whole loop limit to find out, and a
/// file of thousands of them is cut off here.
pub const MAX_CALENDAR_CHECK: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest RRULE value read.
const MAX_RULE_TEXT: usize = 1_000;

/// A recurring event's occurrences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRule {
    /// DTSTART: the first occurrence, as wall time of `timezone`.
    pub start: NaiveDateTime,
    pub timezone: String,
    /// The RRULE's parts the `rrule` crate reads (`FREQ=YEARLY;BYMONTH=2;BYDAY=3MO`),
    /// UNTIL and `X-` parts taken out; None: only DTSTART and the RDATEs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// The RRULE's UNTIL, as an instant (a date UNTIL includes its whole day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Further occurrences' starts (RDATE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<DateTime<Utc>>,
    /// Occurrences taken out (EXDATE, cancelled or moved instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<DateTime<Utc>>,
    /// How long each occurrence holds.
    pub length: Length,
}

/// How long an occurrence holds: whole days of its zone's calendar (an all-day event;
/// a day across a DST change is 23 or 25 hours) or an exact number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Length {
    Days(u32),
    Seconds(i64),
}

impl EventRule {
    /// A rule from an event's DTSTART (wall time of `zone`) and RRULE value (a date-only
    /// UNTIL includes its whole day in `zone`).
    pub fn new(start: NaiveDateTime, zone: Tz, rrule: Option<&str>, length: Length) -> Result<EventRule, RuleRefused> {
        let (rrule, until) = match rrule {
            Some(text) => {
                let (parts, until) = prepare(text)?;
                let until = until.map(|u| until_instant(&u, zone)).transpose()?;
                (Some(parts), until)
            }
            None => (None, None),
        };
        let rule = EventRule {
            start,
            timezone: zone.name().to_string(),
            rrule,
            until,
            rdates: Vec::new(),
            exdates: Vec::new(),
            length,
        };
        rule.compile()?;
        Ok(rule)
    }

    /// A rule over wall times with no zone (a VTIMEZONE's onsets).
    pub fn floating(start: NaiveDateTime, rrule: &str) -> Result<EventRule, RuleRefused> {
        EventRule::new(start, chrono_tz::UTC, Some(rrule), Length::Seconds(0))
    }

    /// The wall times of its occurrences before `end`, at most `cap` of them.
    pub fn floating_starts_before(&self, end: NaiveDateTime, cap: usize) -> Result<Vec<NaiveDateTime>, RuleRefused> {
        let compiled = self.compile()?;
        let end = end.and_utc();
        Ok(compiled
            .starts()
            .take(cap)
            .map(|start| start.with_timezone(&Utc))
            .take_while(|start| *start < end)
            .map(|start| start.naive_utc())
            .collect())
    }

    /// Whether its RRULE repeats without end (no COUNT, no UNTIL).
    pub fn endless(&self) -> bool {
        self.rrule
            .as_deref()
            .is_some_and(|rule| self.until.is_none() && !rule.split(';').any(|p| p.starts_with("COUNT=")))
    }

    pub fn zone(&self) -> Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The rule ready to evaluate; refused when the stored text no longer reads.
    pub fn compile(&self) -> Result<CompiledRule, RuleRefused> {
        let zone = self.zone();
        let tz = rrule::Tz::Tz(zone);
        let start = cme_model::time::schedule_instant(self.start, zone).with_timezone(&tz);
        let at = |instant: &DateTime<Utc>| instant.with_timezone(&tz);
        let mut set = rrule::RRuleSet::new(start);
        let mut bare = None;
        if let Some(text) = &self.rrule {
            let mut rule: rrule::RRule<rrule::Unvalidated> =
                text.parse().map_err(|e| format!("an unreadable RRULE {text:?} ({e})"))?;
            if let Some(until) = &self.until {
                rule = rule.until(until.with_timezone(&rrule::Tz::UTC));
            }
            let rule = rule.validate(start).map_err(|e| format!("an invalid RRULE {text:?} ({e})"))?;
            if matches!(rule.get_freq(), rrule::Frequency::Secondly | rrule::Frequency::Minutely) {
                return Err(RuleRefused(format!(
                    "an RRULE repeating every second or minute ({text:?}), too often for a blackout"
                )));
            }
            bare = Some(rrule::RRuleSet::new(start).rrule(rule.clone()).limit());
            set = set.rrule(rule);
        }
        // DTSTART is always an occurrence (RFC 5545 3.8.5.3), matching the rule or not.
        set = set.rdate(start);
        for rdate in &self.rdates {
            set = set.rdate(at(rdate));
        }
        for exdate in &self.exdates {
            set = set.exdate(at(exdate));
        }
        Ok(CompiledRule { set: set.limit(), bare, zone, length: self.length })
    }
}

/// A walk through a rule's occurrences that keeps its place: windows asked in time order
/// each walk only the occurrences since the one before (the blackout index keeps one per
/// rule, so a rule since 1990 is not walked from 1990 at every lookup, and a rule that
/// can never match more pays its exhausted search once). A window earlier than the last
/// starts the walk again.
#[derive(Debug, Clone)]
pub struct Cursor {
    iter: rrule::RRuleSetIter,
    /// The last occurrence pulled (the set may yield DTSTART twice).
    last: Option<DateTime<rrule::Tz>>,
    /// Pulled, starting at or after the last window's end.
    pending: Option<Span>,
    /// Pulled spans that may still overlap a later window.
    recent: std::collections::VecDeque<Span>,
    /// The last window's start.
    base: DateTime<Utc>,
}

impl Cursor {
    /// The spans overlapping `[from, to)`, in order; refused when this window walks more
    /// than [`MAX_WALK`] occurrences.
    pub fn spans(
        &mut self,
        rule: &CompiledRule,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Span>, RuleRefused> {
        if from < self.base {
            *self = rule.cursor();
        }
        self.base = from;
        self.recent.retain(|(_, end)| *end > from);
        let mut walked = 0usize;
        while let Some(span) = self.pending.take().or_else(|| rule.pull(self)) {
            if span.0 >= to {
                self.pending = Some(span);
                break;
            }
            walked += 1;
            if walked > MAX_WALK {
                self.pending = Some(span);
                return Err(RuleRefused(format!("it repeats more than {MAX_WALK} times before {to}")));
            }
            if span.1 > from {
                self.recent.push_back(span);
            }
        }
        Ok(self.recent.iter().filter(|(start, end)| *start < to && *end > from).copied().collect())
    }
}

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    set: rrule::RRuleSet,
    /// The RRULE alone (no DTSTART, RDATEs or EXDATEs).
    bare: Option<rrule::RRuleSet>,
    zone: Tz,
    length: Length,
}

impl CompiledRule {
    /// The spans (`[start, end)`) of the occurrences overlapping `[from, to)`, in order;
    /// refused when reaching `to` walks more than [`MAX_WALK`] occurrences.
    pub fn spans(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Span>, RuleRefused> {
        self.cursor().spans(self, from, to)
    }

    /// A walk from the first occurrence that keeps its place between windows.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            iter: (&self.set).into_iter(),
            last: None,
            pending: None,
            recent: std::collections::VecDeque::new(),
            base: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The cursor's next occurrence (each once: DTSTART is also an RDATE), as a span.
    fn pull(&self, cursor: &mut Cursor) -> Option<Span> {
        loop {
            let start = cursor.iter.next()?;
            if cursor.last.as_ref() == Some(&start) {
                continue;
            }
            cursor.last = Some(start);
            let start_utc = start.with_timezone(&Utc);
            return Some((start_utc, self.end_of(start.naive_local(), start_utc)));
        }
    }

    /// How many occurrences start before `to`, and the last of them; refused past
    /// [`MAX_WALK`].
    pub fn walk(&self, to: DateTime<Utc>) -> Result<(usize, Option<DateTime<Utc>>), RuleRefused> {
        let mut walked = 0;
        let mut last = None;
        for start in self.starts() {
            let start = start.with_timezone(&Utc);
            if start >= to {
                break;
            }
            walked += 1;
            last = Some(start);
            if walked > MAX_WALK {
                return Err(RuleRefused(format!("it repeats more than {MAX_WALK} times before {to}")));
            }
        }
        Ok((walked, last))
    }

    /// Whether the RRULE itself gives a date in `[from, to)` (within [`MAX_WALK`] dates;
    /// a rule that needs more counts as giving one).
    pub fn rule_gives_a_date(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        let Some(bare) = &self.bare else { return false };
        for (walked, start) in bare.into_iter().enumerate() {
            let start = start.with_timezone(&Utc);
            if walked >= MAX_WALK || start >= from {
                return start < to || walked >= MAX_WALK;
            }
        }
        false
    }

    /// Whether an occurrence holds `at`; a lookup that runs out of its walk answers yes.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.spans(at, at + Duration::seconds(1)).map_or(true, |spans| !spans.is_empty())
    }

    /// The first `n` occurrences ending after `from`.
    pub fn next(&self, from: DateTime<Utc>, n: usize) -> Vec<Span> {
        let mut found = Vec::new();
        for (walked, start) in self.starts().enumerate() {
            if walked >= MAX_WALK || found.len() >= n {
                break;
            }
            let start_utc = start.with_timezone(&Utc);
            let end = self.end_of(start.naive_local(), start_utc);
            if end > from {
                found.push((start_utc, end));
            }
        }
        found
    }

    /// The occurrences' starts in order, each once (DTSTART is added as an RDATE and the
    /// rule usually yields it too).
    fn starts(&self) -> impl Iterator<Item = DateTime<rrule::Tz>> + '_ {
        let mut last: Option<DateTime<rrule::Tz>> = None;
        (&self.set).into_iter().filter(move |start| {
            let repeated = last.as_ref() == Some(start);
            last = Some(*start);
            !repeated
        })
    }

    fn end_of(&self, local_start: NaiveDateTime, start: DateTime<Utc>) -> DateTime<Utc> {
        match self.length {
            Length::Seconds(seconds) => start + Duration::seconds(seconds),
            Length::Days(days) => {
                let end = local_start.date() + Duration::days(days as i64);
                cme_model::time::schedule_instant(end.and_hms_opt(0, 0, 0).expect("midnight"), self.zone)
            }
        }
    }
}

/// The RRULE's parts the crate reads, in upper case, and its UNTIL (taken out). `X-`
/// parts (Evolution's `X-EVOLUTION-ENDDATE`) are dropped.
fn prepare(text: &str) -> Result<(String, Option<String>), String> {
    if text.len() > MAX_RULE_TEXT {
        return Err(format!("an RRULE longer than {MAX_RULE_TEXT} characters"));
    }
    let mut parts = Vec::new();
    let mut until = None;
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("an unreadable RRULE part {part:?}"))?;
        let key = key.trim().to_ascii_uppercase();
        match key.as_str() {
            "UNTIL" => until = Some(value.trim().to_ascii_uppercase()),
            k if k.starts_with("X-") => {}
            _ => parts.push(format!("{key}={}", value.trim().to_ascii_uppercase())),
        }
    }
    if !parts.iter().any(|p| p.starts_with("FREQ=")) {
        return Err(format!("an RRULE without FREQ ({text:?})"));
    }
    Ok((parts.join(";"), until))
}

/// An UNTIL as an instant: `...Z` is UTC, a date-time without it is wall time of `zone`,
/// a date includes its whole day.
fn until_instant(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let unreadable = || format!("an unreadable UNTIL {text:?}");
    if let Some(utc) = text.strip_suffix('Z') {
        let naive = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| unreadable())?;
        return Ok(Utc.from_utc_datetime(&naive));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S") {
        return Ok(cme_model::time::schedule_instant(naive, zone));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|_| unreadable())?;
    let next = (date + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight");
    Ok(cme_model::time::schedule_instant(next, zone) - Duration::seconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn wall(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_yearly_holiday_holds_every_year_in_its_zone() {
        // Presidents' Day: the third Monday of February, all day in New York.
        let rule = EventRule::new(
            wall("2010-02-15 00:00"),
            chrono_tz::America::New_York,
            Some("FREQ=YEARLY;BYMONTH=2;BYDAY=3MO"),
            Length::Days(1),
        )
        .unwrap()
        .compile()
        .unwrap();
        // 2027-02-15 is the third Monday; midnight in New York is 05:00 UTC.
        assert!(rule.covers(at("2027-02-15T05:00:00Z")));
        assert!(rule.covers(at("2027-02-16T04:59:59Z")));
        assert!(!rule.covers(at("2027-02-16T05:00:00Z")));
        assert!(!rule.covers(at("2027-02-08T12:00:00Z")));
        assert!(rule.covers(at("2040-02-20T12:00:00Z")), "the third Monday of 2040");
    }

    #[test]
    fn ordinals_setpos_count_until_and_exdates_are_honoured() {
        let zone = chrono_tz::Europe::Madrid;
        let last_sunday =
            EventRule::new(wall("2026-01-25 10:00"), zone, Some("FREQ=MONTHLY;BYDAY=-1SU"), Length::Seconds(3600))
                .unwrap()
                .compile()
                .unwrap();
        assert!(last_sunday.covers(at("2026-03-29T08:30:00Z")), "the last Sunday of March, after the DST change");
        let setpos = EventRule::new(
            wall("2026-01-30 09:00"),
            zone,
            Some("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
            Length::Seconds(60),
        )
        .unwrap()
        .compile()
        .unwrap();
        assert!(setpos.covers(at("2026-02-27T08:00:30Z")), "the last weekday of February");
        let counted =
            EventRule::new(wall("2026-01-01 00:00"), zone, Some("FREQ=DAILY;COUNT=3"), Length::Days(1)).unwrap();
        let compiled = counted.compile().unwrap();
        assert_eq!(compiled.next(at("2025-01-01T00:00:00Z"), 10).len(), 3);
        let until =
            EventRule::new(wall("2026-01-01 00:00"), zone, Some("FREQ=DAILY;UNTIL=20260105"), Length::Days(1)).unwrap();
        assert_eq!(until.compile().unwrap().next(at("2025-01-01T00:00:00Z"), 10).len(), 5);
        let mut without = counted.clone();
        without.exdates.push(at("2026-01-01T23:00:00Z"));
        assert_eq!(without.compile().unwrap().next(at("2025-01-01T00:00:00Z"), 10).len(), 2);
    }

    #[test]
    fn too_frequent_or_unreadable_rules_are_refused() {
        let zone = chrono_tz::UTC;
        let start = wall("2026-01-01 00:00");
        assert!(
            EventRule::new(start, zone, Some("FREQ=MINUTELY"), Length::Seconds(1)).unwrap_err().0.contains("minute")
        );
        assert!(EventRule::new(start, zone, Some("FREQ=SECONDLY"), Length::Seconds(1)).is_err());
        assert!(EventRule::new(start, zone, Some("BYDAY=MO"), Length::Seconds(1)).unwrap_err().0.contains("FREQ"));
        assert!(EventRule::new(start, zone, Some("FREQ=FORTNIGHTLY"), Length::Seconds(1)).is_err());
        assert!(EventRule::new(start, zone, Some(&"FREQ=DAILY;".repeat(200)), Length::Seconds(1)).is_err());
        let x_part =
            EventRule::new(start, zone, Some("FREQ=WEEKLY;X-EVOLUTION-ENDDATE=20270101T000000Z"), Length::Seconds(1));
        assert_eq!(x_part.unwrap().rrule.as_deref(), Some("FREQ=WEEKLY"));
    }

    #[test]
    fn an_impossible_rule_ends_instead_of_spinning() {
        let rule = EventRule::new(
            wall("2026-01-01 00:00"),
            chrono_tz::UTC,
            Some("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            Length::Days(1),
        )
        .unwrap()
        .compile()
        .unwrap();
        // Only DTSTART itself.
        assert_eq!(rule.next(at("2000-01-01T00:00:00Z"), 5).len(), 1);
    }

    #[test]
    fn an_hourly_rule_runs_out_of_its_walk_and_fails_closed() {
        let rule = EventRule::new(wall("2000-01-01 00:00"), chrono_tz::UTC, Some("FREQ=HOURLY"), Length::Seconds(60))
            .unwrap()
            .compile()
            .unwrap();
        // 00:30 is in no occurrence (each lasts a minute), but the walk cannot reach it.
        assert!(rule.covers(at("2030-01-01T00:30:00Z")), "unsure: covered");
    }
}
