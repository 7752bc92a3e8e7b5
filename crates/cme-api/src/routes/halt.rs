use actix_web::{HttpRequest, web};
use serde_json::json;

use cme_engine::Halt;

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{HaltBody, typed};
use crate::body::json_body;
use crate::hal::Hal;
use crate::problem::ApiError;

pub async fn show(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(document(&state.engine.halt_state().await?).ok())
}

/// Body optional: `{"reason": "..."}`.
pub async fn halt(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, true).await?;
    // Anything but an object carries no reason (as before bodies were typed).
    let reason = match body {
        Some(body @ serde_json::Value::Object(_)) => {
            typed::<HaltBody>(body)
                .map_err(|_| ApiError::bad_request("reason must be a string", Some("/reason".into())))?
                .reason
        }
        _ => None,
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
