use actix_web::{HttpRequest, web};
use serde_json::json;

use cme_engine::Halt;

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::body::json_body;
use crate::hal::Hal;
use crate::problem::ApiError;

pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(document(&state.engine.halt_state().await?).ok())
}

/// The optional halt body, as the API document shows it (the handler reads `reason`).
pub(crate) fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {"reason": {"type": ["string", "null"], "description": "why; shown with the switch and in the audit log"}}
    })
}

/// Body optional: `{"reason": "..."}`.
pub async fn halt(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, true).await?;
    let reason = match body.as_ref().map(|b| &b["reason"]) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("reason must be a string", Some("/reason".into()))),
    };
    Ok(document(&state.engine.halt(reason, caller.name()).await?).ok())
}

pub async fn resume(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    Ok(document(&state.engine.resume(caller.name()).await?).ok())
}

/// The switch; `persisted` is false while a halt holds on this engine only (storage did
/// not answer; the engine keeps trying).
fn document(halt: &Halt) -> Hal {
    Hal::new(json!({
        "halted": halt.state.halted,
        "since": halt.state.since.map(date),
        "reason": halt.state.reason,
        "persisted": halt.persisted,
    }))
    .link("self", "/api/1/halt")
    .link("halt", "/api/1/halt")
    .link("resume", "/api/1/resume")
}
