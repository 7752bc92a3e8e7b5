//! The calendar view: over a span of at most [`MAX_VIEW_DAYS`] days, every live plan's
//! forecast firings (skipped ones with their reason) and every blackout's occurrences,
//! the data of the dashboard's week page. Firings come from the same forecasts as
//! `/plans/{id}/forecast`; occurrences from the same rules the scheduler judges by.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;

use crate::blackouts::{Blackout, BlackoutWhen};
use crate::forecast::Firing;
use crate::{Engine, EngineError, Page};

/// The longest span one view covers.
pub const MAX_VIEW_DAYS: i64 = 31;
/// The most plans one view forecasts (the earliest made first).
pub const MAX_VIEW_PLANS: usize = 200;
/// The most firings and the most blackout occurrences one view lists.
pub const MAX_VIEW_ITEMS: usize = 5_000;

/// A firing of a plan in the view.
#[derive(Debug, Clone)]
pub struct PlanFiring {
    pub plan_id: String,
    pub plan_name: String,
    pub firing: Firing,
}

/// One occurrence of a blackout.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub blackout: std::sync::Arc<Blackout>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What the view holds, and what it left out.
#[derive(Debug, Clone, Default)]
pub struct CalendarView {
    pub firings: Vec<PlanFiring>,
    pub blackouts: Vec<Occurrence>,
    pub notes: Vec<String>,
}

impl Engine {
    /// Every live plan's firings and every blackout's occurrences in `[from, until)`.
    pub async fn calendar_view(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<CalendarView, EngineError> {
        if until <= from || until - from > Duration::days(MAX_VIEW_DAYS) {
            return Err(EngineError::invalid("/until", format!("a span of up to {MAX_VIEW_DAYS} days after from")));
        }
        let mut view = CalendarView::default();
        let mut plans = Vec::new();
        let mut page = Page::first(200).map_err(|e| EngineError::invalid("/", e.to_string()))?;
        loop {
            let listed = self.list_plans(false, page).await?;
            plans.extend(listed.items);
            if !listed.has_more || plans.len() >= MAX_VIEW_PLANS {
                break;
            }
            page = Page::new(page.number() + 1, page.size()).map_err(|e| EngineError::invalid("/", e.to_string()))?;
        }
        if plans.len() > MAX_VIEW_PLANS {
            view.notes.push(format!("only the first {MAX_VIEW_PLANS} plans are shown"));
            plans.truncate(MAX_VIEW_PLANS);
        }
        for summary in &plans {
            let plan = &summary.plan;
            match self.forecast_plan(&plan.id, from, until).await {
                Ok(forecast) => {
                    if forecast.truncated {
                        view.notes.push(format!("{}: only the first firings are shown", plan.name));
                    }
                    view.firings.extend(forecast.firings.into_iter().map(|firing| PlanFiring {
                        plan_id: plan.id.clone(),
                        plan_name: plan.name.clone(),
                        firing,
                    }));
                }
                Err(error) => view.notes.push(format!("{}: no forecast ({error})", plan.name)),
            }
        }
        view.firings.sort_by_key(|f| f.firing.due);
        if view.firings.len() > MAX_VIEW_ITEMS {
            view.firings.truncate(MAX_VIEW_ITEMS);
            view.notes.push(format!("only the first {MAX_VIEW_ITEMS} firings are shown"));
        }
        for blackout in self.ports.calendars.blackouts().await? {
            let blackout = std::sync::Arc::new(blackout);
            for (start, end) in blackout.when.spans_between(from, until) {
                view.blackouts.push(Occurrence { blackout: blackout.clone(), start, end });
            }
            if view.blackouts.len() > MAX_VIEW_ITEMS {
                view.notes.push(format!("only the first {MAX_VIEW_ITEMS} blackout occurrences are shown"));
                break;
            }
        }
        view.blackouts.sort_by_key(|o| o.start);
        view.blackouts.truncate(MAX_VIEW_ITEMS);
        Ok(view)
    }
}

impl BlackoutWhen {
    /// The spans it holds that overlap `[from, until)` (a span of days: the walk is per
    /// day). A calendar rule that cannot be walked holds the whole span (fail closed, as
    /// the scheduler judges it).
    pub fn spans_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            BlackoutWhen::Once { start, end } => {
                if *start < until && *end > from {
                    vec![(*start, *end)]
                } else {
                    Vec::new()
                }
            }
            BlackoutWhen::Rule(rule) => match rule.compile().and_then(|compiled| compiled.spans(from, until)) {
                Ok(spans) => spans.into_iter().filter(|(s, e)| *s < until && *e > from).collect(),
                Err(_) => vec![(from, until)],
            },
            BlackoutWhen::Recurring { start, end, timezone } => {
                let zone: Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
                let period = if start.day.is_some() { 7 * 1440 } else { 1440 };
                let length = (i64::from(end.minutes()) - i64::from(start.minutes())).rem_euclid(period);
                if length == 0 {
                    return Vec::new();
                }
                let mut spans = Vec::new();
                let mut date = (from - Duration::days(8)).with_timezone(&zone).date_naive();
                let last = (until + Duration::days(1)).with_timezone(&zone).date_naive();
                while date <= last {
                    if start.day.is_none_or(|day| date.weekday() == day) {
                        let wall = date.and_time(start.time);
                        let (s, e) = (
                            cme_model::time::schedule_instant(wall, zone),
                            cme_model::time::schedule_instant(wall + Duration::minutes(length), zone),
                        );
                        if s < until && e > from {
                            spans.push((s, e));
                        }
                    }
                    let Some(next) = date.succ_opt() else { break };
                    date = next;
                }
                spans
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blackouts::WallTime;
    use chrono::{NaiveTime, TimeZone, Weekday};

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn a_weekly_blackout_occurs_once_a_week_in_its_zone_and_wraps() {
        let when = BlackoutWhen::Recurring {
            start: WallTime { day: Some(Weekday::Fri), time: NaiveTime::from_hms_opt(22, 0, 0).unwrap() },
            end: WallTime { day: Some(Weekday::Mon), time: NaiveTime::from_hms_opt(6, 0, 0).unwrap() },
            timezone: "Europe/Madrid".into(),
        };
        let spans = when.spans_between(at(2027, 1, 4, 0), at(2027, 1, 18, 0));
        assert_eq!(spans.len(), 3, "the weekend before reaches into Monday the 4th: {spans:?}");
        assert_eq!(spans[1], (at(2027, 1, 8, 21), at(2027, 1, 11, 5)));
    }

    #[test]
    fn a_daily_blackout_and_a_one_off() {
        let daily = BlackoutWhen::Recurring {
            start: WallTime { day: None, time: NaiveTime::from_hms_opt(12, 0, 0).unwrap() },
            end: WallTime { day: None, time: NaiveTime::from_hms_opt(13, 0, 0).unwrap() },
            timezone: "UTC".into(),
        };
        assert_eq!(daily.spans_between(at(2027, 1, 4, 0), at(2027, 1, 11, 0)).len(), 7);
        let once = BlackoutWhen::Once { start: at(2027, 1, 1, 0), end: at(2027, 1, 5, 0) };
        assert_eq!(once.spans_between(at(2027, 1, 4, 0), at(2027, 1, 11, 0)).len(), 1);
        assert!(once.spans_between(at(2027, 1, 5, 0), at(2027, 1, 11, 0)).is_empty());
    }
}
