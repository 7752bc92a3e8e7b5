//! Blackouts: spans of time in which no firing runs. A firing that falls in one becomes a
//! `skipped` executor naming it (never silently absent). A blackout is global or bound to
//! one plan, and is either one-off (`start`..`end`), recurring every week or every day
//! in wall time of a zone ("FRI 16:00" to "MON 08:00", "22:00" to "06:00"), or a
//! calendar's recurring event (an RRULE with its RDATEs and EXDATEs).

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A span of time in which nothing fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Blackout {
    pub id: String,
    pub name: String,
    /// What it is for (a calendar event's DESCRIPTION, or the operator's words).
    pub description: Option<String>,
    /// The one plan it holds; None: every plan.
    pub plan_id: Option<String>,
    pub when: BlackoutWhen,
    /// The calendar it was imported from (re-importing a calendar replaces its blackouts).
    pub calendar: Option<String>,
    /// When it starts, attacks of the plans it holds that are still running are cancelled
    /// (otherwise they finish; only new firings are skipped).
    pub stop_running: bool,
    pub created: DateTime<Utc>,
    pub created_by: String,
}

/// When a blackout holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BlackoutWhen {
    /// `[start, end)`.
    Once { start: DateTime<Utc>, end: DateTime<Utc> },
    /// Every week (both ends name a day) or every day (neither does), `[start, end)` in
    /// wall time of `timezone`; an end before its start wraps (Friday to Monday, 22:00 to
    /// 06:00).
    Recurring { start: WallTime, end: WallTime, timezone: String },
    /// Every occurrence of a calendar's recurring event (RRULE, RDATE, EXDATE).
    Rule(crate::recurrence::EventRule),
}

/// A wall time of a week (`FRI 16:00`) or of every day (`16:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallTime {
    pub day: Option<Weekday>,
    pub time: NaiveTime,
}

impl WallTime {
    /// Minutes since the start of the week (Monday 00:00) or of the day.
    pub(crate) fn minutes(self) -> u32 {
        let of_day = self.time.hour() * 60 + self.time.minute();
        match self.day {
            Some(day) => day.num_days_from_monday() * 24 * 60 + of_day,
            None => of_day,
        }
    }
}

impl std::str::FromStr for WallTime {
    type Err = String;

    fn from_str(text: &str) -> Result<WallTime, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (day, time) = match parts.as_slice() {
            [time] => (None, *time),
            [day, time] => (Some(cme_model::time::parse_weekday(day)?), *time),
            _ => {
                return Err(format!(
                    "{text:?} is not a wall time: use \"HH:MM\" (every day) or \"DAY HH:MM\" (every week), e.g. \"FRI 16:00\""
                ));
            }
        };
        Ok(WallTime { day, time: cme_model::time::parse_hh_mm(time)? })
    }
}

impl std::fmt::Display for WallTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.day {
            Some(day) => write!(f, "{} {}", day.to_string().to_uppercase(), self.time.format("%H:%M")),
            None => write!(f, "{}", self.time.format("%H:%M")),
        }
    }
}

impl Serialize for WallTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl BlackoutWhen {
    /// A recurring blackout, checked: both ends of one kind (week or day), not equal, a
    /// known zone.
    pub fn recurring(start: &str, end: &str, timezone: &str) -> Result<BlackoutWhen, (&'static str, String)> {
        let start: WallTime = start.parse().map_err(|m| ("start", m))?;
        let end: WallTime = end.parse().map_err(|m| ("end", m))?;
        if start.day.is_some() != end.day.is_some() {
            return Err(("end", "start and end must both name a day (every week) or neither (every day)".into()));
        }
        if start == end {
            return Err(("end", "the blackout is empty (end equals start)".into()));
        }
        timezone.parse::<Tz>().map_err(|_| ("timezone", format!("unknown IANA time zone {timezone:?}")))?;
        Ok(BlackoutWhen::Recurring { start, end, timezone: timezone.to_string() })
    }

    /// Whether `at` is in the blackout.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        match self {
            BlackoutWhen::Once { start, end } => *start <= at && at < *end,
            BlackoutWhen::Recurring { start, end, timezone } => {
                let zone: Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
                let local = at.with_timezone(&zone);
                let of_day = local.hour() * 60 + local.minute();
                let now = match start.day {
                    Some(_) => local.weekday().num_days_from_monday() * 24 * 60 + of_day,
                    None => of_day,
                };
                let (s, e) = (start.minutes(), end.minutes());
                if s < e { s <= now && now < e } else { now >= s || now < e }
            }
            // A rule that no longer compiles holds (fail closed); the index caches this.
            BlackoutWhen::Rule(rule) => rule.compile().map_or(true, |compiled| compiled.covers(at)),
        }
    }
}

impl Blackout {
    /// Whether it holds `plan_id`'s firing at `at`.
    pub fn holds(&self, plan_id: &str, at: DateTime<Utc>) -> bool {
        self.plan_id.as_deref().is_none_or(|p| p == plan_id) && self.when.covers(at)
    }

    /// What a skipped executor says.
    pub fn reason(&self) -> String {
        format!("blackout {:?}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_weekend_blackout_wraps_the_week_in_its_zone() {
        let weekend = BlackoutWhen::recurring("FRI 16:00", "MON 08:00", "Europe/Madrid").unwrap();
        // Friday 2026-12-04 16:00 in Madrid is 15:00 UTC.
        assert!(!weekend.covers(at("2026-12-04T14:59:00Z")));
        assert!(weekend.covers(at("2026-12-04T15:00:00Z")));
        assert!(weekend.covers(at("2026-12-06T12:00:00Z")));
        assert!(weekend.covers(at("2026-12-07T06:59:00Z")));
        assert!(!weekend.covers(at("2026-12-07T07:00:00Z")));
        assert!(!weekend.covers(at("2026-12-09T12:00:00Z")));
    }

    #[test]
    fn a_nightly_blackout_crosses_midnight() {
        let night = BlackoutWhen::recurring("22:00", "06:00", "UTC").unwrap();
        assert!(night.covers(at("2026-12-02T23:30:00Z")));
        assert!(night.covers(at("2026-12-03T05:59:00Z")));
        assert!(!night.covers(at("2026-12-03T06:00:00Z")));
        assert!(!night.covers(at("2026-12-03T21:59:00Z")));
    }

    #[test]
    fn mixed_or_empty_or_unzoned_recurring_blackouts_are_refused() {
        assert_eq!(BlackoutWhen::recurring("FRI 16:00", "08:00", "UTC").unwrap_err().0, "end");
        assert_eq!(BlackoutWhen::recurring("10:00", "10:00", "UTC").unwrap_err().0, "end");
        assert_eq!(BlackoutWhen::recurring("Funday 10:00", "11:00", "UTC").unwrap_err().0, "start");
        assert_eq!(BlackoutWhen::recurring("10:00", "11:00", "Mars/Olympus").unwrap_err().0, "timezone");
    }

    #[test]
    fn a_plan_blackout_holds_only_its_plan() {
        let b = Blackout {
            id: "b".into(),
            name: "freeze".into(),
            description: None,
            plan_id: Some("p1".into()),
            when: BlackoutWhen::Once { start: at("2026-01-01T00:00:00Z"), end: at("2026-01-02T00:00:00Z") },
            calendar: None,
            stop_running: false,
            created: at("2026-01-01T00:00:00Z"),
            created_by: "admin".into(),
        };
        assert!(b.holds("p1", at("2026-01-01T12:00:00Z")));
        assert!(!b.holds("p2", at("2026-01-01T12:00:00Z")));
        assert!(!b.holds("p1", at("2026-01-02T00:00:00Z")));
    }
}

/// A blackout to create. `start`/`end` are either two dates (RFC 3339; without an offset
/// in `timezone`) for a one-off blackout, or two wall times (`"FRI 16:00"` and
/// `"MON 08:00"` every week, `"22:00"` and `"06:00"` every day) for a recurring one.
#[derive(Debug, Clone)]
pub struct NewBlackout {
    pub name: String,
    /// What it is for (at most 2,000 characters).
    pub description: Option<String>,
    /// None: every plan.
    pub plan_id: Option<String>,
    pub start: String,
    pub end: String,
    /// None: the engine's zone.
    pub timezone: Option<String>,
    /// Cancel the plans' running attacks when it starts.
    pub stop_running: bool,
}

/// A calendar to import (`POST /api/1/calendars/?name=...`).
#[derive(Debug, Clone, Default)]
pub struct CalendarImport {
    /// Importing the same name again replaces that calendar's blackouts.
    pub name: String,
    /// The zone of floating times and dates; None: the file's `X-WR-TIMEZONE`, else the
    /// engine's.
    pub timezone: Option<String>,
    /// The one plan its blackouts hold; None: every plan.
    pub plan_id: Option<String>,
    pub stop_running: bool,
    /// Free (`TRANSP:TRANSPARENT`) events become blackouts too.
    pub include_free: bool,
    /// Any event that cannot be read refuses the file.
    pub strict: bool,
}

/// What an import stored, and what it left out.
#[derive(Debug, Clone)]
pub struct Imported {
    pub blackouts: Vec<Blackout>,
    pub skipped: Vec<crate::calendar::Skipped>,
    /// The zone floating times and dates were read in.
    pub zone: Tz,
}

/// The longest name a blackout may have.
const MAX_NAME: usize = 200;

/// The longest name a calendar may have (its events' blackouts are `<calendar>: <event>`).
pub const MAX_CALENDAR_NAME: usize = 100;

/// A calendar's name, checked: 1 to [`MAX_CALENDAR_NAME`] characters, none of them `/`,
/// `?` or `#` (it is a path segment of `/api/1/calendars/{name}`).
pub(crate) fn calendar_name(name: &str) -> Result<String, crate::EngineError> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > MAX_CALENDAR_NAME
        || name.contains(['/', '?', '#'])
        || name.chars().any(char::is_control)
    {
        return Err(crate::EngineError::invalid(
            "/name",
            format!("a calendar needs a name of 1 to {MAX_CALENDAR_NAME} characters, without / ? # (?name=)"),
        ));
    }
    Ok(name.to_string())
}

impl crate::Engine {
    /// Checks and stores a blackout, audited.
    pub async fn create_blackout(&self, new: NewBlackout, by: &str) -> Result<Blackout, crate::EngineError> {
        use crate::EngineError;
        let name = new.name.trim().to_string();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(EngineError::invalid(
                "/name",
                format!("a blackout needs a name of 1 to {MAX_NAME} characters"),
            ));
        }
        let zone = self.zone_named(new.timezone.as_deref())?;
        let when = if new.start.parse::<WallTime>().is_ok() {
            BlackoutWhen::recurring(&new.start, &new.end, zone.name())
                .map_err(|(field, m)| EngineError::invalid(&format!("/{field}"), m))?
        } else {
            let date = |field: &str, text: &str| {
                cme_model::time::parse_datetime(text, zone).map_err(|m| {
                    EngineError::invalid(
                        &format!("/{field}"),
                        format!("{m}; use a date (RFC 3339) or, for a recurring blackout, \"DAY HH:MM\" or \"HH:MM\""),
                    )
                })
            };
            let (start, end) = (date("start", &new.start)?, date("end", &new.end)?);
            if end <= start {
                return Err(EngineError::invalid("/end", "the blackout ends before it starts"));
            }
            BlackoutWhen::Once { start, end }
        };
        let description = new.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        if description.as_ref().is_some_and(|d| d.chars().count() > crate::calendar::MAX_DESCRIPTION) {
            return Err(EngineError::invalid(
                "/description",
                format!("a description may hold at most {} characters", crate::calendar::MAX_DESCRIPTION),
            ));
        }
        self.check_blackout_plan(new.plan_id.as_deref()).await?;
        let blackout = Blackout {
            id: crate::plans::new_id(),
            name,
            description,
            plan_id: new.plan_id,
            when,
            calendar: None,
            stop_running: new.stop_running,
            created: Utc::now(),
            created_by: by.to_string(),
        };
        let audit = crate::AuditEvent::action(by, "blackout.create", format!("{}: {}", blackout.id, blackout.name));
        self.ports
            .calendars
            .insert_blackouts(None, std::slice::from_ref(&blackout), &audit, self.config.max_blackouts)
            .await?;
        tracing::info!(blackout_id = %blackout.id, name = %blackout.name, by, "blackout created");
        Ok(blackout)
    }

    /// Imports an uploaded iCalendar file as blackouts named `<calendar>: <event>`, one
    /// per event, replacing what the same calendar imported before; all or nothing,
    /// audited. Events that cannot be blackouts come back as skipped, with why. The name
    /// of a subscription is refused (its blackouts come from its URL).
    pub async fn import_calendar(
        &self,
        import: CalendarImport,
        ics: &str,
        by: &str,
    ) -> Result<Imported, crate::EngineError> {
        let name = calendar_name(&import.name)?;
        if let Some(existing) = self.ports.feeds.feed(&name).await?
            && existing.url.is_some()
        {
            return Err(crate::EngineError::invalid(
                "/name",
                format!(
                    "calendar {name} is a subscription (its events come from its URL); delete it first, or upload under another name"
                ),
            ));
        }
        let imported = self.import_events(import.clone(), ics, by, true).await?;
        let feed = crate::feeds::CalendarFeed {
            name,
            url: None,
            refresh_seconds: 0,
            timezone: import.timezone,
            plan_id: import.plan_id,
            stop_running: import.stop_running,
            include_free: import.include_free,
            created: Utc::now(),
            created_by: by.to_string(),
            last_fetched: Some(Utc::now()),
            last_error: None,
            next_fetch: None,
        };
        self.ports.feeds.save_feed(&feed, None).await?;
        Ok(imported)
    }

    /// Reads `ics` and replaces calendar `import.name`'s blackouts with its events.
    pub(crate) async fn import_events(
        &self,
        import: CalendarImport,
        ics: &str,
        by: &str,
        log_it: bool,
    ) -> Result<Imported, crate::EngineError> {
        use crate::EngineError;
        let calendar = calendar_name(&import.name)?;
        let options = crate::calendar::ReadOptions {
            zone: import.timezone.as_deref().map(|name| self.zone_named(Some(name))).transpose()?,
            include_free: import.include_free,
            strict: import.strict,
        };
        let engine_zone = self.config.timezone;
        let text = ics.to_string();
        let read = crate::bounded::off_worker("the calendar", move || {
            crate::calendar::read(&text, engine_zone, options, Utc::now()).map_err(|refused| refused.0)
        })
        .await
        .map_err(|m| EngineError::invalid("/", m))?;
        self.check_blackout_plan(import.plan_id.as_deref()).await?;
        let now = Utc::now();
        let blackouts: Vec<Blackout> = read
            .events
            .into_iter()
            .map(|event| Blackout {
                id: crate::plans::new_id(),
                name: format!("{calendar}: {}", event.name),
                description: event.description,
                plan_id: import.plan_id.clone(),
                when: event.when,
                calendar: Some(calendar.clone()),
                stop_running: import.stop_running,
                created: now,
                created_by: by.to_string(),
            })
            .collect();
        let audit = crate::AuditEvent::action(
            by,
            "calendar.import",
            format!("{calendar}: {} events, {} skipped", blackouts.len(), read.skipped.len()),
        );
        self.ports.calendars.insert_blackouts(Some(&calendar), &blackouts, &audit, self.config.max_blackouts).await?;
        if log_it {
            tracing::info!(calendar, events = blackouts.len(), skipped = read.skipped.len(), by, "calendar imported");
        } else {
            tracing::debug!(calendar, events = blackouts.len(), skipped = read.skipped.len(), "calendar refreshed");
        }
        Ok(Imported { blackouts, skipped: read.skipped, zone: read.zone })
    }

    /// Up to `size` blackouts after `after`, oldest first, with whether more follow and
    /// how many are stored in all.
    pub async fn list_blackouts(
        &self,
        after: Option<&crate::storage::BlackoutCursor>,
        size: u64,
    ) -> Result<(crate::PageOf<Blackout>, u64), crate::EngineError> {
        let page = self.ports.calendars.blackouts_page(after, size).await?;
        Ok((page, self.ports.calendars.count_blackouts().await?))
    }

    pub async fn blackout(&self, id: &str) -> Result<Blackout, crate::EngineError> {
        self.ports
            .calendars
            .blackout(id)
            .await?
            .ok_or_else(|| crate::EngineError::not_found(crate::Resource::Blackout, id))
    }

    /// Deletes a blackout, audited.
    pub async fn delete_blackout(&self, id: &str, by: &str) -> Result<(), crate::EngineError> {
        let audit = crate::AuditEvent::action(by, "blackout.delete", id);
        if !self.ports.calendars.delete_blackout(id, &audit).await? {
            return Err(crate::EngineError::not_found(crate::Resource::Blackout, id));
        }
        tracing::info!(blackout_id = %id, by, "blackout deleted");
        Ok(())
    }

    /// A blackout's plan must be a live one (refused naming `/plan_id`).
    pub(crate) async fn check_blackout_plan(&self, plan_id: Option<&str>) -> Result<(), crate::EngineError> {
        let Some(plan_id) = plan_id else { return Ok(()) };
        match self.ports.plans.plan(plan_id).await? {
            Some(plan) if plan.deleted.is_none() => Ok(()),
            _ => Err(crate::EngineError::invalid("/plan_id", format!("plan {plan_id} not found"))),
        }
    }

    /// The zone named (checked), or the engine's.
    pub(crate) fn zone_named(&self, name: Option<&str>) -> Result<Tz, crate::EngineError> {
        match name {
            None => Ok(self.config.timezone),
            Some(name) => name.parse::<Tz>().map_err(|_| {
                crate::EngineError::invalid(
                    "/timezone",
                    format!("unknown IANA time zone {name:?} (e.g. Europe/Madrid, America/New_York)"),
                )
            }),
        }
    }
}
