use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::{Executor, Forecast, NewPlan, PlanSummary};

use super::executors::executor_document;
use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{InventoryBody, NewBlackoutBody, NewCredentialBody, NewPlanBody, RescheduleBody, schema, typed};
use crate::body::{check_schema, json_body};
use crate::hal::{Hal, page_of, paged, query_pairs, self_href};

/// A body type's derived schema, compiled.
fn compiled<T: schemars::JsonSchema>() -> jsonschema::Validator {
    jsonschema::validator_for(&schema::<T>()).expect("a derived request schema compiles")
}

/// The request schemas, compiled once.
pub(crate) struct Schemas {
    pub plan: jsonschema::Validator,
    pub reschedule: jsonschema::Validator,
    pub credential: jsonschema::Validator,
    pub blackout: jsonschema::Validator,
    pub subscription: jsonschema::Validator,
    pub inventory: jsonschema::Validator,
}

impl Schemas {
    pub fn new() -> Self {
        Schemas {
            plan: compiled::<NewPlanBody>(),
            reschedule: compiled::<RescheduleBody>(),
            credential: compiled::<NewCredentialBody>(),
            blackout: compiled::<NewBlackoutBody>(),
            subscription: compiled::<crate::bodies::SubscriptionBody>(),
            inventory: compiled::<InventoryBody>(),
        }
    }
}

/// A plan body, checked against the schema.
fn new_plan(state: &ApiState, body: &Value) -> std::result::Result<NewPlan, crate::problem::ApiError> {
    check_schema(&state.schemas.plan, body)?;
    typed::<NewPlanBody>(body.clone())?.into_new()
}

pub async fn create(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    // Its secrets are masked from now on, wherever they would show (errors included).
    state.secrets.remember_secrets_in(&body);
    let new = new_plan(&state, &body)?;
    let (plan, executors) = state.engine.create_plan(new, &caller.actor()).await?;
    let location = format!("/api/1/plans/{}", plan.plan.id);
    let shown = executors.len().min(cme_engine::EMBEDDED_EXECUTORS as usize);
    let doc = plan_document(&state.secrets, &plan, Some((&executors[..shown], executors.len() > shown)))
        .set("msg", json!("ok"));
    Ok(doc.respond_at(StatusCode::CREATED, &location))
}

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let all = query_pairs(&req)
        .iter()
        .any(|(k, v)| k == "all" && matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y" | "1"));
    let page = page_of(&req)?;
    let listed = state.engine.list_plans(all, page).await?;
    let items: Vec<Value> = listed.items.iter().map(|p| plan_document(&state.secrets, p, None).into_value()).collect();
    let doc = Hal::new(json!({ "plans": items })).link("self", self_href(&req));
    Ok(paged(doc, &req, page, &listed).ok())
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (plan, executors) = state.engine.plan(&id).await?;
    Ok(plan_document(&state.secrets, &plan, Some((&executors.items, executors.has_more))).ok())
}

pub async fn delete(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    state.engine.delete_plan(&id, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Plan {id} successfully deleted")}))
        .link("plans", "/api/1/plans/")
        .link("executors", format!("/api/1/executors/?plan_id={id}&executed=all"))
        .ok())
}

/// Fires the plan once, now (operator): the new executor, 201, its `Location`; 409 while
/// halted.
pub async fn run_now(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let executor = state.engine.run_plan_now(&id, &caller.actor()).await?;
    let location = format!("/api/1/executors/{}", executor.id);
    Ok(super::executors::executor_document(&state.secrets, &executor, None, false)
        .respond_at(StatusCode::CREATED, &location))
}

/// Pauses the plan (operator): its pending executors become `paused`.
pub async fn pause(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    Ok(plan_document(&state.secrets, &state.engine.pause_plan(&id, caller.name()).await?, None).ok())
}

/// Resumes the plan (operator): its paused executors are pending again.
pub async fn resume(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    Ok(plan_document(&state.secrets, &state.engine.resume_plan(&id, caller.name()).await?, None).ok())
}

/// `from` and `until` of a forecast (dates; without an offset in the engine's zone):
/// default now and a week later.
pub(crate) fn span(
    req: &HttpRequest,
    state: &ApiState,
) -> std::result::Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), crate::problem::ApiError> {
    let pairs = query_pairs(req);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let from = match get("from") {
        Some(text) => state.engine.parse_time(&text, "/from")?,
        None => chrono::Utc::now(),
    };
    let until = match get("until") {
        Some(text) => state.engine.parse_time(&text, "/until")?,
        None => from + chrono::Duration::days(7),
    };
    Ok((from, until))
}

/// Every live plan's firings and every blackout's occurrences in `?from=&until=` (default:
/// the coming week; at most 31 days): the dashboard's calendar.
pub async fn schedule(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (from, until) = span(&req, &state)?;
    let view = state.engine.calendar_view(from, until).await?;
    let firings: Vec<Value> = view
        .firings
        .iter()
        .map(|f| {
            json!({
                "plan_id": f.plan_id, "plan": f.plan_name, "due": date(f.firing.due),
                "status": f.firing.status.as_str(), "reason": f.firing.reason, "executor_id": f.firing.executor_id,
            })
        })
        .collect();
    let blackouts: Vec<Value> = view
        .blackouts
        .iter()
        .map(|o| {
            json!({
                "id": o.blackout.id, "name": o.blackout.name, "plan_id": o.blackout.plan_id,
                "calendar": o.blackout.calendar, "start": date(o.start), "end": date(o.end),
            })
        })
        .collect();
    Ok(Hal::new(json!({
        "from": date(from), "until": date(until), "firings": firings, "blackouts": blackouts, "notes": view.notes,
    }))
    .link("self", self_href(&req))
    .link("calendars", "/api/1/calendars/")
    .ok())
}

/// The firings of a plan in `?from=&until=` (default: the coming week), with the skipped
/// ones and why.
pub async fn forecast(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (from, until) = span(&req, &state)?;
    let forecast = state.engine.forecast_plan(&id, from, until).await?;
    Ok(forecast_document(&forecast).link("self", self_href(&req)).link("plan", format!("/api/1/plans/{id}")).ok())
}

/// The firings a plan body would make (operator: it runs the planner), nothing stored.
pub async fn forecast_new(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    let new = new_plan(&state, &body)?;
    let (from, until) = span(&req, &state)?;
    let forecast = state.engine.forecast_new(new, from, until).await?;
    Ok(forecast_document(&forecast).link("self", self_href(&req)).link("plans", "/api/1/plans/").ok())
}

fn forecast_document(forecast: &Forecast) -> Hal {
    let firings: Vec<Value> = forecast
        .firings
        .iter()
        .map(|f| {
            let mut firing = json!({"due": date(f.due), "status": f.status.as_str(), "reason": f.reason});
            if let Some(id) = &f.executor_id {
                firing["executor_id"] = json!(id);
                firing["_links"] = json!({"executor": {"href": format!("/api/1/executors/{id}")}});
            }
            firing
        })
        .collect();
    Hal::new(json!({
        "from": date(forecast.from),
        "until": date(forecast.until),
        "recurring": forecast.recurring,
        "count": forecast.count,
        "truncated": forecast.truncated,
        "notes": forecast.notes,
        "firings": firings,
    }))
}

/// An experiment's step as its body gave it, with the plugin versions it resolved to.
fn step_document(secrets: &cme_secrets::Redactor, step: &cme_engine::Step) -> serde_json::Value {
    let call =
        |c: &cme_engine::PlannedCall| json!({"ref": c.reference, "plugin": c.plugin, "args": secrets.json(&c.args)});
    let mut doc = json!({"name": step.name, "after": step.after, "kind": step.action.kind()});
    match &step.action {
        cme_engine::StepAction::Attack { call: attack, duration, irreversible } => {
            doc["attack"] = call(attack);
            doc["duration_seconds"] = json!(duration.map(|d| d.as_secs()));
            doc["irreversible"] = json!(irreversible);
        }
        cme_engine::StepAction::Verify(probes) => doc["verify"] = probes.iter().map(call).collect(),
        cme_engine::StepAction::Wait(wait) => doc["wait_seconds"] = json!(wait.as_secs()),
    }
    doc
}

/// A plan; with `executors`, the first of them embedded, and whether there are more (the
/// `executors` link pages through all of them).
fn plan_document(
    secrets: &cme_secrets::Redactor,
    summary: &PlanSummary,
    executors: Option<(&[Executor], bool)>,
) -> Hal {
    let plan = &summary.plan;
    let href = format!("/api/1/plans/{}", plan.id);
    let doc = Hal::new(json!({
        "id": plan.id,
        "name": plan.name,
        "created": date(plan.created),
        "executors_count": summary.executors_count,
        "next_execution": summary.next_execution.map(date),
        "executed": summary.executed,
        "dry_run": plan.dry_run,
        "paused": plan.paused.is_some(),
        "paused_since": plan.paused.map(date),
        "timezone": plan.timezone,
        "grace_seconds": plan.grace.as_secs(),
        "recurring": plan.is_recurring(),
        "planned_until": plan.planned_until.map(date),
        "misfire": plan.misfire.as_str(),
        "overlap": plan.overlap.as_str(),
        "seed": plan.seed,
        "attack": {"ref": plan.attack.reference, "plugin": plan.attack.plugin, "args": secrets.json(&plan.attack.args)},
        "planner": {"ref": plan.planner.reference, "plugin": plan.planner.plugin, "args": secrets.json(&plan.planner.args)},
        "steady_state": plan.steady_state.iter().map(|p| json!({"ref": p.reference, "plugin": p.plugin, "args": secrets.json(&p.args)})).collect::<Vec<_>>(),
        "stop_conditions": plan.stop_conditions.iter().map(|c| json!({
            "ref": c.probe.reference, "plugin": c.probe.plugin, "args": secrets.json(&c.probe.args),
            "interval_seconds": c.interval.as_secs(), "settle_seconds": c.settle.as_secs(), "on_failure": c.on_failure.as_str(),
        })).collect::<Vec<_>>(),
        "steps": plan.steps.iter().map(|step| step_document(secrets, step)).collect::<Vec<_>>(),
        "deadline_seconds": plan.deadline.map(|d| d.as_secs()),
    }))
    .link("self", href.clone())
    .link("run", format!("{href}/run"))
    .link("pause", format!("{href}/pause"))
    .link("resume", format!("{href}/resume"))
    .link("forecast", format!("{href}/forecast"))
    .link("delete", href)
    .link("executors", format!("/api/1/executors/?plan_id={}&executed=all", plan.id));
    match executors {
        Some((executors, more)) => {
            doc.set("executors_embedded", json!(executors.len())).set("executors_truncated", json!(more)).embed(
                "executors",
                executors.iter().map(|e| executor_document(secrets, e, None, false).into_value()).collect(),
            )
        }
        None => doc,
    }
}
