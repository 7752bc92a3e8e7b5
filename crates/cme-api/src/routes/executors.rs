use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::{Executor, ExecutorCursor, ExecutorFilter, ExecutorStatus};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::body::{check_schema, json_body};
use crate::hal::{Hal, page_of, query_pairs, seek_paged, self_href};
use crate::problem::ApiError;

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let page = page_of(&req)?;
    let filter = filter_of(&req)?;
    let seeking = filter.after.is_some();
    let listed = state.engine.list_executors(&filter, page).await?;
    let items: Vec<Value> = listed.items.iter().map(|e| executor_document(&state.secrets, e, None, false).into_value()).collect();
    let doc = Hal::new(json!({})).link("self", self_href(&req)).embed("executors", items);
    let cursor = listed.items.last().map(|e| ExecutorCursor::after(e).to_string());
    Ok(seek_paged(doc, &req, page, &listed, cursor, seeking).ok())
}

/// `executed=false` (default: pending or running), `true` (finished), `all`; `status=a,b`
/// narrows to those statuses; `plan_id` to one plan.
fn filter_of(req: &HttpRequest) -> std::result::Result<ExecutorFilter, ApiError> {
    let mut executed = "false".to_string();
    let mut statuses: Option<Vec<ExecutorStatus>> = None;
    let mut plan_id = None;
    let mut after = None;
    for (key, value) in query_pairs(req) {
        match key.as_str() {
            "after" => after = Some(value.parse::<ExecutorCursor>().map_err(|e| ApiError::bad_request(e, None))?),
            "executed" => executed = value.to_ascii_lowercase(),
            "status" => {
                let wanted = value
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<ExecutorStatus>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::bad_request(e.to_string(), None))?;
                statuses = Some(wanted);
            }
            "plan_id" => plan_id = Some(value),
            _ => {}
        }
    }
    let statuses = statuses.or(match executed.as_str() {
        "false" | "no" | "0" | "n" | "off" => Some(ExecutorStatus::OPEN.to_vec()),
        "true" | "yes" | "1" | "y" | "on" => Some(ExecutorStatus::TERMINAL.to_vec()),
        "all" => None,
        other => return Err(ApiError::bad_request(format!("executed must be true, false or all, not {other:?}"), None)),
    });
    Ok(ExecutorFilter { statuses, plan_id, after })
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (executor, plugin) = state.engine.executor(&id).await?;
    Ok(executor_document(&state.secrets, &executor, plugin.as_deref(), true).ok())
}

/// A reschedule body (the original's trigger shape): what the handler checks and the API
/// document shows.
pub(crate) fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "args"],
        "properties": {
            "type": {"type": "string", "description": "only \"date\" is supported"},
            "args": {"type": "object", "required": ["date"], "properties": {"date": {"type": "string"}}}
        }
    })
}

pub async fn reschedule(req: HttpRequest, id: web::Path<String>, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.reschedule, &body)?;
    if body["type"] != "date" {
        return Err(ApiError::bad_request("Invalid trigger type: only \"date\" is supported", Some("/type".into())));
    }
    let date_text = body["args"]["date"].as_str().unwrap_or_default();
    let executor = state.engine.reschedule(&id, date_text, caller.name()).await?;
    Ok(executor_document(&state.secrets, &executor, None, true).ok())
}

pub async fn cancel(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let executor = state.engine.cancel_executor(&id, caller.name()).await?;
    Ok(executor_document(&state.secrets, &executor, None, true).set("msg", json!(format!("Executor {id} successfully cancelled"))).ok())
}

/// An executor; the original's fields first (`id`, `next_run_time`, `plan_id`,
/// `executed`), then the new ones. The log (one shape: lines, stdout, stderr, dry-run
/// actions, elapsed) only in the executor's own document, with the plugin version it runs.
pub(crate) fn executor_document(secrets: &cme_secrets::Redactor, e: &Executor, plugin: Option<&str>, with_log: bool) -> Hal {
    let mut doc = Hal::new(json!({
        "id": e.id,
        "next_run_time": date(e.due),
        "plan_id": e.plan_id,
        "executed": e.executed(),
        "status": e.status,
        "attempts": e.attempts,
        "started_at": e.started.map(date),
        "finished_at": e.finished.map(date),
        "result": e.report.as_ref().map(|r| {
            let mut result = secrets.json(&serde_json::to_value(r).unwrap_or(Value::Null));
            result["dry_run"] = json!(e.dry_run.unwrap_or(false));
            result
        }),
        "error": cme_secrets::option_of(e.error.as_deref()),
        "reason": cme_secrets::option_of(e.reason.as_deref()),
        "dry_run": e.dry_run,
    }));
    if with_log {
        doc = doc.set("log", secrets.json(&serde_json::to_value(&e.log).unwrap_or(Value::Null)));
    }
    if let Some(plugin) = plugin {
        doc = doc.set("plugin", json!(plugin));
    }
    let href = format!("/api/1/executors/{}", e.id);
    doc.link("self", href.clone()).link("update", href.clone()).link("delete", href).link("plan", format!("/api/1/plans/{}", e.plan_id))
}
