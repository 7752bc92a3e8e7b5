//! Forecasts: the firings a plan will make in a span of time, with the ones that will be
//! skipped and why, from the same planner calls and blackouts the scheduler uses (a
//! recurring planner answers the same for any split of time into windows, so the
//! forecast is what the executors will be).

use chrono::{DateTime, SubsecRound, Utc};

use crate::blackout_index::BlackoutIndex;
use crate::model::{ExecutorStatus, Plan};
use crate::plans::NewPlan;
use crate::{Engine, EngineError};

/// The longest span one forecast covers.
pub const MAX_FORECAST_DAYS: i64 = 366;
/// The most firings one forecast lists.
pub const MAX_FORECAST_FIRINGS: usize = 10_000;
/// The most times one forecast asks a planner again from where its last answer stopped
/// (a planner answers a frequent plan's earliest firings only).
const MAX_FORECAST_ASKS: usize = 20;
/// How long before a span's start planners are also asked about: a firing whose nominal
/// time is earlier may be delayed into the span (cron jitter is at most a day).
fn look_back() -> chrono::Duration {
    chrono::Duration::days(1)
}

/// One firing of a forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub due: DateTime<Utc>,
    /// `pending` (it will run), `skipped` (a blackout holds it), `paused` (its plan is
    /// paused); a firing already stored shows its executor's status.
    pub status: ExecutorStatus,
    pub reason: Option<String>,
    /// The executor, once stored.
    pub executor_id: Option<String>,
}

/// A forecast of one plan over `[from, until)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub firings: Vec<Firing>,
    /// How many firings fall in the span (the first [`MAX_FORECAST_FIRINGS`] are listed).
    pub count: usize,
    /// More firings than [`MAX_FORECAST_FIRINGS`] fell in the span.
    pub truncated: bool,
    pub recurring: bool,
    /// Why fewer firings than expected will run, in words ("the engine is halted").
    pub notes: Vec<String>,
}

/// A planner's firings over a span: the first of them, how many, whether that count is
/// exact (a span of more firings than the forecast asks about is counted in part).
pub(crate) struct Span {
    pub(crate) instants: Vec<DateTime<Utc>>,
    pub(crate) count: usize,
    pub(crate) exact: bool,
    pub(crate) recurring: bool,
}

impl Engine {
    /// The firings of a stored plan in `[from, until)`: its executors stored so far, then
    /// (recurring) what its planner will answer for the rest.
    pub async fn forecast_plan(
        &self,
        id: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Forecast, EngineError> {
        check_span(from, until)?;
        let plan = self.live_plan(id).await?;
        let blackouts = self.blackout_index().await?;
        let mut firings: Vec<Firing> = self
            .ports
            .executors
            .executors_between(id, from, until, MAX_FORECAST_FIRINGS as u64 + 1)
            .await?
            .into_iter()
            .map(|e| {
                let mut firing =
                    Firing { due: e.due, status: e.status, reason: e.reason.clone(), executor_id: Some(e.id.clone()) };
                if e.status == ExecutorStatus::Pending {
                    firing = judge(firing, &plan, &blackouts);
                }
                firing
            })
            .collect();
        let (mut extra, mut exact) = (0, true);
        if let Some(planned_until) = plan.planned_until.filter(|p| *p < until) {
            // Firings before the horizon are stored (and listed above).
            let window = ((from - look_back()).max(planned_until), until);
            let planner = self.planner_of(&plan).await?;
            let span = self.planned_span(&planner, &plan.planner.args, &plan.timezone, plan.seed, window, from).await?;
            extra = span.count - span.instants.len();
            exact = span.exact;
            firings.extend(span.instants.into_iter().map(|due| {
                judge(
                    Firing { due, status: ExecutorStatus::Pending, reason: None, executor_id: None },
                    &plan,
                    &blackouts,
                )
            }));
        }
        let count = firings.len() + extra;
        Ok(self.finish(&plan, from, until, firings, count, exact).await)
    }

    /// The firings a plan body not yet created would make in `[from, until)` (from now at
    /// the earliest), with its `seed` when it names one: creating it with the same seed
    /// makes these.
    pub async fn forecast_new(
        &self,
        mut new: NewPlan,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Forecast, EngineError> {
        check_span(from, until)?;
        let draft = self.draft(&new).await?;
        let now = Utc::now().trunc_subsecs(6);
        crate::plans::stamp_creation_time(&draft.planner.loaded.description.args_schema, &mut new.planner.args, now);
        let from = from.max(now);
        let window = if until > from { ((from - look_back()).max(now), until) } else { (from, from) };
        let span = self
            .planned_span(&draft.planner, &new.planner.args, draft.timezone.name(), draft.seed, window, from)
            .await?;
        let blackouts = self.blackout_index().await?;
        // Judged as a plan of its own: global blackouts hold it, plan blackouts cannot yet.
        let plan = Plan {
            id: String::new(),
            name: new.name.clone(),
            created: now,
            deleted: None,
            attack: crate::model::PlannedCall {
                reference: new.attack.reference.clone(),
                plugin: draft.attack.loaded.description.id.clone(),
                args: new.attack.args.clone(),
            },
            planner: crate::model::PlannedCall {
                reference: new.planner.reference.clone(),
                plugin: draft.planner.loaded.description.id.clone(),
                args: new.planner.args.clone(),
            },
            dry_run: new.dry_run || self.config.dry_run,
            timezone: draft.timezone.name().to_string(),
            seed: draft.seed,
            grace: self.config.default_grace,
            created_by: None,
            paused: None,
            planned_until: span.recurring.then_some(window.1),
            misfire: new.misfire,
            overlap: new.overlap,
            steady_state: draft
                .probes
                .iter()
                .zip(&new.steady_state)
                .map(|(probe, call)| crate::model::PlannedCall {
                    reference: call.reference.clone(),
                    plugin: probe.loaded.description.id.clone(),
                    args: call.args.clone(),
                })
                .collect(),
            stop_conditions: Vec::new(),
            steps: Vec::new(),
            deadline: None,
        };
        let (count, exact) = (span.count, span.exact);
        let firings = span
            .instants
            .into_iter()
            .map(|due| {
                judge(
                    Firing { due, status: ExecutorStatus::Pending, reason: None, executor_id: None },
                    &plan,
                    &blackouts,
                )
            })
            .collect();
        let mut forecast = self.finish(&plan, from, until, firings, count, exact).await;
        forecast
            .notes
            .push(format!("seed {} (pass it as \"seed\" when creating the plan to get these firings)", draft.seed));
        Ok(forecast)
    }

    /// What a planner answers for `window`, asked again from just after its last answer
    /// while it answers (a planner answers a frequent plan's earliest firings only): the
    /// first [`MAX_FORECAST_FIRINGS`] + 1 at or after `from`, and how many in all.
    pub(crate) async fn planned_span(
        &self,
        planner: &crate::registry::Entry,
        args: &serde_json::Value,
        timezone: &str,
        seed: u64,
        window: (DateTime<Utc>, DateTime<Utc>),
        from: DateTime<Utc>,
    ) -> Result<Span, EngineError> {
        let mut span = Span { instants: Vec::new(), count: 0, exact: true, recurring: false };
        let (mut start, until) = window;
        for ask in 0.. {
            if ask == MAX_FORECAST_ASKS {
                span.exact = false;
                break;
            }
            let planned = self.ask_planner(planner, args, timezone, seed, (start, until)).await?;
            span.recurring = planned.recurring;
            let Some(last) = planned.instants.last().copied() else { break };
            for due in planned.instants.into_iter().filter(|t| *t >= from && *t < until && *t >= start) {
                span.count += 1;
                if span.instants.len() <= MAX_FORECAST_FIRINGS {
                    span.instants.push(due);
                }
            }
            start = last + chrono::Duration::microseconds(1);
            if !span.recurring || start >= until {
                break;
            }
        }
        Ok(span)
    }

    /// Sorts, caps and explains.
    async fn finish(
        &self,
        plan: &Plan,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        mut firings: Vec<Firing>,
        count: usize,
        exact: bool,
    ) -> Forecast {
        firings.sort_by_key(|f| f.due);
        let truncated = firings.len() > MAX_FORECAST_FIRINGS || count > firings.len();
        firings.truncate(MAX_FORECAST_FIRINGS);
        let mut notes = Vec::new();
        if truncated {
            notes.push(format!(
                "{}{count} firings fall in this span; the first {} are listed",
                if exact { "" } else { "at least " },
                firings.len()
            ));
        }
        if firings.is_empty() {
            notes.push("no firing falls in this span".to_string());
        }
        let skipped = firings.iter().filter(|f| f.status == ExecutorStatus::Skipped).count();
        if skipped > 0 {
            notes.push(format!("{skipped} firings fall in blackouts and will be skipped"));
        }
        if plan.paused.is_some() {
            notes.push("the plan is paused: nothing fires until it is resumed".into());
        }
        if matches!(self.halt_state().await, Ok(view) if view.state.halted) {
            notes.push("the engine is halted: nothing fires until it is resumed".into());
        }
        if plan.dry_run || self.config.dry_run {
            notes.push("runs are dry: capabilities record what they would do".into());
        }
        if !plan.steady_state.is_empty() {
            let probes: Vec<&str> = plan.steady_state.iter().map(|p| p.plugin.as_str()).collect();
            notes.push(format!("each firing runs only if its steady state holds then ({})", probes.join(", ")));
        }
        let count = count.max(firings.len());
        Forecast { from, until, firings, count, truncated, recurring: plan.is_recurring(), notes }
    }
}

/// A pending firing as the scheduler will see it: paused with its plan, or skipped by a
/// blackout.
fn judge(mut firing: Firing, plan: &Plan, blackouts: &BlackoutIndex) -> Firing {
    if plan.paused.is_some() {
        firing.status = ExecutorStatus::Paused;
        firing.reason = Some("the plan is paused".into());
    } else if let Some(blackout) = blackouts.holding(&plan.id, firing.due) {
        firing.status = ExecutorStatus::Skipped;
        firing.reason = Some(blackout.reason());
    }
    firing
}

fn check_span(from: DateTime<Utc>, until: DateTime<Utc>) -> Result<(), EngineError> {
    if until <= from {
        return Err(EngineError::invalid("/until", "until must be after from"));
    }
    if until - from > chrono::Duration::days(MAX_FORECAST_DAYS) {
        return Err(EngineError::invalid("/until", format!("a forecast covers at most {MAX_FORECAST_DAYS} days")));
    }
    Ok(())
}
