use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::{ApiAction, ExecutorFilter, ExecutorView, status};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::body::{check_schema, json_body};
use crate::hal::{Hal, page_of, paged, query_pairs, self_href};
use crate::problem::ApiError;

const STATUSES: [&str; 6] =
    [status::PENDING, status::RUNNING, status::SUCCEEDED, status::FAILED, status::MISSED, status::CANCELLED];

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let page = page_of(&req)?;
    let filter = filter_of(&req)?;
    let listed = state.engine.list_executors(&filter, page).await?;
    let items: Vec<Value> = listed.items.iter().map(|e| executor_document(e, false).into_value()).collect();
    let doc = Hal::new(json!({})).link("self", self_href(&req)).embed("executors", items);
    Ok(paged(doc, &req, page, &listed).ok())
}

/// `executed=false` (default: pending or running), `true` (finished), `all`; `status=a,b`
/// narrows to those statuses; `plan_id` to one plan.
fn filter_of(req: &HttpRequest) -> std::result::Result<ExecutorFilter, ApiError> {
    let mut executed = "false".to_string();
    let mut statuses: Option<Vec<String>> = None;
    let mut plan_id = None;
    for (key, value) in query_pairs(req) {
        match key.as_str() {
            "executed" => executed = value.to_ascii_lowercase(),
            "status" => {
                let wanted: Vec<String> = value.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect();
                if let Some(bad) = wanted.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                    return Err(ApiError::bad_request(format!("unknown status {bad:?}; statuses are {}", STATUSES.join(", ")), None));
                }
                statuses = Some(wanted);
            }
            "plan_id" => plan_id = Some(value),
            _ => {}
        }
    }
    let statuses = statuses.or(match executed.as_str() {
        "false" | "no" | "0" | "n" | "off" => Some(vec![status::PENDING.into(), status::RUNNING.into()]),
        "true" | "yes" | "1" | "y" | "on" => Some(status::TERMINAL.iter().map(|s| s.to_string()).collect()),
        "all" => None,
        other => return Err(ApiError::bad_request(format!("executed must be true, false or all, not {other:?}"), None)),
    });
    Ok(ExecutorFilter { statuses, plan_id })
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(executor_document(&state.engine.executor(&id).await?, true).ok())
}

pub async fn reschedule(req: HttpRequest, id: web::Path<String>, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let role = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.reschedule, &body)?;
    if body["type"] != "date" {
        return Err(ApiError::bad_request("Invalid trigger type: only \"date\" is supported", Some("/type".into())));
    }
    let date_text = body["args"]["date"].as_str().unwrap_or_default();
    let executor = state.engine.reschedule(&id, date_text).await?;
    state
        .engine
        .audit_api(ApiAction { actor: role.name().into(), action: "executor.reschedule".into(), target: id.to_string() })
        .await;
    Ok(executor_document(&executor, true).ok())
}

pub async fn cancel(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let role = state.auth.require(&req, Role::Operator)?;
    let executor = state.engine.cancel_executor(&id).await?;
    state
        .engine
        .audit_api(ApiAction { actor: role.name().into(), action: "executor.cancel".into(), target: id.to_string() })
        .await;
    Ok(executor_document(&executor, true).set("msg", json!(format!("Executor {id} successfully cancelled"))).ok())
}

/// An executor; the original's fields first (`id`, `next_run_time`, `plan_id`,
/// `executed`), then the new ones. The log only in the executor's own document.
pub(crate) fn executor_document(e: &ExecutorView, with_log: bool) -> Hal {
    let mut doc = Hal::new(json!({
        "id": e.id,
        "next_run_time": date(e.next_run_time),
        "plan_id": e.plan_id,
        "executed": e.executed,
        "status": e.status,
        "attempts": e.attempts,
        "started_at": e.started_at.map(date),
        "finished_at": e.finished_at.map(date),
        "result": e.result,
        "error": e.error,
    }));
    if with_log {
        doc = doc.set("log", e.log.clone());
    }
    if let Some(plugin) = &e.attack_plugin {
        doc = doc.set("plugin", json!(plugin));
    }
    let href = format!("/api/1/executors/{}", e.id);
    doc.link("self", href.clone()).link("update", href.clone()).link("delete", href).link("plan", format!("/api/1/plans/{}", e.plan_id))
}
