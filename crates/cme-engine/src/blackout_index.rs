//! The blackouts covering an instant, found without a scan of all of them.
//!
//! Every firing asks which blackout holds it, and up to `max_blackouts` (50,000 by
//! default) may be stored: the engine keeps them as a [`BlackoutIndex`], rebuilt only
//! when the store's blackout generation changes (one indexed read per claim batch, so a
//! blackout made on any replica holds at the next claim). One-off spans are sorted by
//! start with a running maximum of their ends; recurring ones are bucketed per zone by the
//! hours of the week (or day) they touch; a calendar's recurring events keep the spans of
//! their occurrences around the last instant asked (a window of [`RULE_WINDOW_DAYS`],
//! recomputed when a lookup falls outside it: firings are asked in time order). A lookup
//! looks at the spans that can cover the instant and confirms each with
//! [`BlackoutWhen::covers`], the one rule, or with the rule's own spans.

use cme_model::Locked;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::blackouts::{Blackout, BlackoutWhen};

/// Hours in a week: the buckets of weekly blackouts (daily ones use the first 24).
const WEEK_HOURS: usize = 7 * 24;

/// The days of occurrences a recurring event's window holds ahead of the instant that
/// filled it (and one day behind).
pub const RULE_WINDOW_DAYS: i64 = 92;

/// Blackouts, indexed by when they hold.
#[derive(Debug, Default)]
pub struct BlackoutIndex {
    /// One-off blackouts by start.
    once: Vec<Arc<Blackout>>,
    /// `once_max_end[i]`: the latest end among `once[..=i]`.
    once_max_end: Vec<DateTime<Utc>>,
    /// Recurring blackouts, by zone.
    zones: Vec<ZoneBuckets>,
    /// Calendars' recurring events.
    rules: Vec<RuleEntry>,
    /// How many blackouts it holds.
    count: usize,
}

/// A recurring event and the spans of its occurrences near the last lookup.
#[derive(Debug)]
struct RuleEntry {
    blackout: Arc<Blackout>,
    /// None: the stored rule no longer compiles (it holds always: fail closed).
    compiled: Option<crate::recurrence::CompiledRule>,
    state: std::sync::Mutex<Option<RuleState>>,
}

/// Where a rule's walk stands, and the window it last filled.
#[derive(Debug)]
struct RuleState {
    cursor: crate::recurrence::Cursor,
    window: Option<RuleWindow>,
}

#[derive(Debug)]
struct RuleWindow {
    /// `[from, to)`: every occurrence overlapping it is in `spans`.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// None: the rule could not be walked that far (it holds: fail closed).
    spans: Option<Vec<crate::recurrence::Span>>,
}

impl RuleEntry {
    fn covers(&self, at: DateTime<Utc>) -> bool {
        let Some(compiled) = &self.compiled else { return true };
        let mut state = self.state.locked();
        let state = state.get_or_insert_with(|| RuleState { cursor: compiled.cursor(), window: None });
        if !state.window.as_ref().is_some_and(|w| w.from <= at && at < w.to) {
            let (from, to) = (at - chrono::Duration::days(1), at + chrono::Duration::days(RULE_WINDOW_DAYS));
            let spans = state.cursor.spans(compiled, from, to).ok();
            state.window = Some(RuleWindow { from, to, spans });
        }
        match state.window.as_ref().and_then(|w| w.spans.as_ref()) {
            Some(spans) => spans.iter().any(|(start, end)| *start <= at && at < *end),
            None => true,
        }
    }
}

#[derive(Debug)]
struct ZoneBuckets {
    zone: Tz,
    /// Weekly blackouts by hour of the week they touch (Monday 00:00 = 0).
    weekly: Vec<Vec<Arc<Blackout>>>,
    /// Daily blackouts by hour of the day they touch.
    daily: Vec<Vec<Arc<Blackout>>>,
}

impl BlackoutIndex {
    pub fn new(blackouts: Vec<Blackout>) -> Self {
        let count = blackouts.len();
        let mut once: Vec<Arc<Blackout>> = Vec::new();
        let mut rules: Vec<RuleEntry> = Vec::new();
        let mut zones: HashMap<String, ZoneBuckets> = HashMap::new();
        for blackout in blackouts.into_iter().map(Arc::new) {
            match &blackout.when {
                BlackoutWhen::Once { .. } => once.push(blackout),
                BlackoutWhen::Rule(rule) => {
                    let compiled = rule
                        .compile()
                        .inspect_err(|error| tracing::error!(blackout_id = %blackout.id, %error, "a stored recurring blackout does not compile; it holds always"))
                        .ok();
                    rules.push(RuleEntry { blackout: blackout.clone(), compiled, state: std::sync::Mutex::new(None) });
                }
                BlackoutWhen::Recurring { start, end, timezone } => {
                    let zone: Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
                    let buckets = zones.entry(timezone.clone()).or_insert_with(|| ZoneBuckets {
                        zone,
                        weekly: vec![Vec::new(); WEEK_HOURS],
                        daily: vec![Vec::new(); 24],
                    });
                    let (list, period) =
                        if start.day.is_some() { (&mut buckets.weekly, WEEK_HOURS) } else { (&mut buckets.daily, 24) };
                    for hour in touched_hours(start.minutes(), end.minutes(), period) {
                        list[hour].push(blackout.clone());
                    }
                }
            }
        }
        once.sort_by_key(|b| start_of(b));
        let mut latest = DateTime::<Utc>::MIN_UTC;
        let once_max_end = once
            .iter()
            .map(|b| {
                latest = latest.max(end_of(b));
                latest
            })
            .collect();
        BlackoutIndex { once, once_max_end, zones: zones.into_values().collect(), rules, count }
    }

    /// An index in which everything is blacked out, by `name`: what the engine judges
    /// by when the blackouts cannot be read (fail closed).
    pub fn everything(name: String) -> Self {
        let always = Blackout {
            id: String::new(),
            name,
            description: None,
            plan_id: None,
            when: BlackoutWhen::Once { start: DateTime::<Utc>::MIN_UTC, end: DateTime::<Utc>::MAX_UTC },
            calendar: None,
            stop_running: false,
            created: Utc::now(),
            created_by: "scheduler".into(),
        };
        BlackoutIndex::new(vec![always])
    }

    /// Every blackout covering `at` (of any plan).
    pub fn covering(&self, at: DateTime<Utc>) -> Vec<&Blackout> {
        let mut found: Vec<&Blackout> = Vec::new();
        // Spans starting at or before `at`, walked back while one of them may still end after it.
        let started = self.once.partition_point(|b| start_of(b) <= at);
        for i in (0..started).rev() {
            if self.once_max_end[i] <= at {
                break;
            }
            if self.once[i].when.covers(at) {
                found.push(&self.once[i]);
            }
        }
        for buckets in &self.zones {
            let local = at.with_timezone(&buckets.zone);
            let hour_of_day = local.hour() as usize;
            let hour_of_week = local.weekday().num_days_from_monday() as usize * 24 + hour_of_day;
            for blackout in buckets.weekly[hour_of_week].iter().chain(&buckets.daily[hour_of_day]) {
                if blackout.when.covers(at) {
                    found.push(blackout);
                }
            }
        }
        found.extend(self.rules.iter().filter(|rule| rule.covers(at)).map(|rule| &*rule.blackout));
        found
    }

    /// The first blackout that holds `plan_id`'s firing at `at`.
    pub fn holding(&self, plan_id: &str, at: DateTime<Utc>) -> Option<&Blackout> {
        self.covering(at).into_iter().find(|b| b.plan_id.as_deref().is_none_or(|p| p == plan_id))
    }

    /// How many blackouts it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

fn start_of(blackout: &Blackout) -> DateTime<Utc> {
    match blackout.when {
        BlackoutWhen::Once { start, .. } => start,
        BlackoutWhen::Recurring { .. } | BlackoutWhen::Rule(_) => DateTime::<Utc>::MIN_UTC,
    }
}

fn end_of(blackout: &Blackout) -> DateTime<Utc> {
    match blackout.when {
        BlackoutWhen::Once { end, .. } => end,
        BlackoutWhen::Recurring { .. } | BlackoutWhen::Rule(_) => DateTime::<Utc>::MAX_UTC,
    }
}

/// The hours of a period of `period` hours that `[start, end)` (minutes into the period;
/// an end before the start wraps) touches.
fn touched_hours(start: u32, end: u32, period: usize) -> Vec<usize> {
    let minutes = (period * 60) as u32;
    let length = if end > start { end - start } else { minutes - start + end };
    let first = (start / 60) as usize;
    let last_minute = start + length - 1;
    let span = (last_minute / 60) as usize - first + 1;
    (0..span.min(period)).map(|h| (first + h) % period).collect()
}

impl crate::Engine {
    /// The blackouts as an index, rebuilt only when the stored blackouts changed (the
    /// generation is read every time: a blackout made on any replica holds at once).
    pub(crate) async fn blackout_index(&self) -> Result<Arc<BlackoutIndex>, crate::StorageError> {
        let generation = self.ports.calendars.blackouts_generation().await?;
        if let Some((known, index)) = self.blackout_cache.locked().as_ref()
            && *known == generation
        {
            return Ok(index.clone());
        }
        let index = Arc::new(BlackoutIndex::new(self.ports.calendars.blackouts().await?));
        tracing::debug!(blackouts = index.len(), %generation, "blackout index rebuilt");
        *self.blackout_cache.locked() = Some((generation, index.clone()));
        Ok(index)
    }

    /// The index, or on a read failure one that holds everything (fail closed: a blackout
    /// that cannot be read might be the one that forbids this run).
    pub(crate) async fn blackout_index_or_all(&self) -> Arc<BlackoutIndex> {
        match self.blackout_index().await {
            Ok(index) => index,
            Err(error) => {
                tracing::error!(%error, "cannot read the blackouts; skipping what falls due");
                Arc::new(BlackoutIndex::everything(format!("unreadable blackouts ({error})")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn blackout(id: &str, when: BlackoutWhen, plan_id: Option<&str>) -> Blackout {
        Blackout {
            id: id.into(),
            name: id.into(),
            description: None,
            plan_id: plan_id.map(str::to_string),
            when,
            calendar: None,
            stop_running: false,
            created: at("2026-01-01T00:00:00Z"),
            created_by: "t".into(),
        }
    }

    #[test]
    fn the_index_finds_exactly_what_a_scan_finds() {
        let mut all = Vec::new();
        for i in 0..300i64 {
            let start = at("2026-12-01T00:00:00Z") + chrono::Duration::minutes(i * 37);
            let end = start + chrono::Duration::minutes(5 + (i * 13) % 600);
            all.push(blackout(
                &format!("once-{i}"),
                BlackoutWhen::Once { start, end },
                if i % 3 == 0 { Some("p1") } else { None },
            ));
        }
        all.push(blackout(
            "long",
            BlackoutWhen::Once { start: at("2026-11-01T00:00:00Z"), end: at("2027-01-01T00:00:00Z") },
            Some("p2"),
        ));
        for (i, (s, e, zone)) in [
            ("FRI 16:00", "MON 08:00", "Europe/Madrid"),
            ("22:00", "06:00", "UTC"),
            ("SUN 23:30", "MON 00:30", "America/New_York"),
            ("12:15", "12:45", "Asia/Kolkata"),
        ]
        .iter()
        .enumerate()
        {
            all.push(blackout(&format!("recurring-{i}"), BlackoutWhen::recurring(s, e, zone).unwrap(), None));
        }
        let wall = |text: &str| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        use crate::recurrence::{EventRule, Length};
        let weekly = EventRule::new(
            wall("2026-01-06 09:00"),
            chrono_tz::Europe::Madrid,
            Some("FREQ=WEEKLY;BYDAY=TU,TH"),
            Length::Seconds(7200),
        )
        .unwrap();
        let last_friday = EventRule::new(
            wall("2026-01-30 00:00"),
            chrono_tz::America::New_York,
            Some("FREQ=MONTHLY;BYDAY=-1FR"),
            Length::Days(1),
        )
        .unwrap();
        all.push(blackout("rule-weekly", BlackoutWhen::Rule(weekly), Some("p1")));
        all.push(blackout("rule-last-friday", BlackoutWhen::Rule(last_friday), None));
        let index = BlackoutIndex::new(all.clone());
        assert_eq!(index.len(), all.len());
        let mut t = at("2026-11-28T00:00:00Z");
        while t < at("2026-12-12T00:00:00Z") {
            let mut scanned: Vec<&str> = all.iter().filter(|b| b.when.covers(t)).map(|b| b.id.as_str()).collect();
            let mut indexed: Vec<&str> = index.covering(t).iter().map(|b| b.id.as_str()).collect();
            scanned.sort();
            indexed.sort();
            assert_eq!(indexed, scanned, "at {t}");
            for plan in ["p1", "p2", "p3"] {
                assert_eq!(index.holding(plan, t).is_some(), all.iter().any(|b| b.holds(plan, t)), "{plan} at {t}");
            }
            t += chrono::Duration::minutes(7);
        }
    }

    #[test]
    fn everything_holds_when_the_blackouts_cannot_be_read() {
        let index = BlackoutIndex::everything("unreadable".into());
        assert_eq!(index.holding("any", Utc::now()).map(|b| b.name.as_str()), Some("unreadable"));
        assert!(BlackoutIndex::default().holding("any", Utc::now()).is_none());
    }
}
