use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::Result;
use crate::ApiState;
use crate::auth::Role;
use crate::hal::Hal;

/// The entry document: links to every collection.
pub async fn entry(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    // `dry_run`: the engine's leash; every run it starts is dry, whatever its plan says.
    Ok(Hal::new(json!({"name": "cme", "version": env!("CARGO_PKG_VERSION"), "dry_run": state.engine.config().dry_run}))
        .link("self", "/api/1/")
        .link("plans", "/api/1/plans/")
        .link("executors", "/api/1/executors/")
        .link("attacks", "/api/1/attacks/")
        .link("planners", "/api/1/planners/")
        .link("probes", "/api/1/probes/")
        .link("plugins", "/api/1/plugins/")
        .link("halt", "/api/1/halt")
        .link("resume", "/api/1/resume")
        .link("audit", "/api/1/audit/")
        .link("credentials", "/api/1/credentials/")
        .link("blackouts", "/api/1/blackouts/")
        .link("calendars", "/api/1/calendars/")
        .link("forecast", "/api/1/forecast")
        .link("webhooks", "/api/1/webhooks/")
        .link("openapi", "/api/1/openapi.json")
        .ok())
}

/// Every metric in the Prometheus text format (viewer), gauges read fresh from storage.
pub async fn metrics(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let Some(render) = &state.metrics else {
        return Err(crate::problem::ApiError::not_found("this engine serves no metrics"));
    };
    state.engine.refresh_gauges().await?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(render()))
}

/// Liveness: the process answers (nothing else is checked); no auth.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"alive"}"#)
}

/// Readiness: the database takes writes (false from the first failed storage call until
/// a write succeeds, probed at most once a second: a full disk or a read-only file system
/// shows here even while reads pass) and the engine is not shutting down (its wasm runtime
/// and built-in plugins are loaded before the API listens); no auth.
pub async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let database = state.engine.writable().await;
    let running = !state.engine.shutting_down();
    let body = serde_json::json!({"status": if database && running { "ready" } else { "not ready" }, "database": database, "scheduler": running});
    if database && running { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// Liveness and database reachability; no auth.
pub async fn healthz(state: web::Data<ApiState>) -> HttpResponse {
    if state.engine.healthy().await {
        HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
    } else {
        HttpResponse::ServiceUnavailable().content_type("application/json").body(r#"{"status":"database unavailable"}"#)
    }
}

/// The OpenAPI 3.1 document of this API (no token: it describes, it does not reveal).
pub async fn openapi() -> HttpResponse {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| crate::openapi::document(super::ENDPOINTS).to_string());
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}
