//! Errors as RFC 9457 problem documents (`application/problem+json`), carrying also the
//! original engine's `msg` field. Never HTML, never a 500 for a client's mistake.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use cme_engine::EngineError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// JSON pointer of the offending value in the request body.
    pub pointer: Option<String>,
    /// For 401: ask for a bearer token.
    pub challenge: bool,
    /// For 503 from storage: what failed (the problem's `type`, and `Retry-After`).
    pub storage: Option<cme_engine::StorageCause>,
}

/// Left on an answer that storage failed, for the access layer to tell the engine (which
/// then reports not ready until a write succeeds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StorageFailed;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), pointer: None, challenge: false, storage: None }
    }

    pub fn bad_request(detail: impl Into<String>, pointer: Option<String>) -> Self {
        ApiError { pointer, ..ApiError::new(StatusCode::BAD_REQUEST, detail) }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
}

/// The one place engine errors become HTTP: a status per variant, and the wording about
/// routes and configuration that only the API knows.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let pointer = e.field().map(str::to_string);
        let status = match &e {
            EngineError::Invalid { .. }
            | EngineError::UnknownRef { .. }
            | EngineError::NoSuchVersion { .. }
            | EngineError::PluginPending { .. }
            | EngineError::PluginDisabled { .. }
            | EngineError::NoRunTime
            | EngineError::TooManyRunTimes { .. }
            | EngineError::DigestMismatch { .. }
            | EngineError::NotAPlugin(_)
            | EngineError::InvalidGrant(_)
            | EngineError::Signature(cme_engine::SignatureError::Malformed(_)) => StatusCode::BAD_REQUEST,
            EngineError::Signature(_) => StatusCode::FORBIDDEN,
            EngineError::NotFound { .. } | EngineError::JournalMissing { .. } => StatusCode::NOT_FOUND,
            EngineError::NotPending { .. }
            | EngineError::BuiltinPlugin { .. }
            | EngineError::NoGrant { .. }
            | EngineError::PluginInUse { .. }
            | EngineError::VersionTaken { .. }
            | EngineError::BuiltinName { .. }
            | EngineError::RefTaken { .. }
            | EngineError::CredentialExists(_)
            | EngineError::Halted
            | EngineError::InBlackout { .. } => StatusCode::CONFLICT,
            EngineError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EngineError::OverCap(_) | EngineError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            // The plugin's fault, not the client's: a server-side error.
            EngineError::PlannerFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let detail = match &e {
            EngineError::PluginPending { id, .. } => format!("{e} (PUT /api/1/plugins/{id}/grant)"),
            EngineError::PluginDisabled { id, .. } => format!("{e} (POST /api/1/plugins/{id}/enable)"),
            EngineError::NoGrant { id } => {
                format!("{id} has no grant yet: PUT /api/1/plugins/{id}/grant approves and enables it")
            }
            EngineError::BuiltinPlugin { .. } => format!("{e} here (configure its limits under [ec2] and [ssh])"),
            EngineError::TooLarge { .. } => format!("{e} ([registry] max_plugin_bytes)"),
            EngineError::OverCap(over) => format!("{e} ({} in the config)", over.what.config_key()),
            EngineError::Storage(_) => {
                tracing::error!(error = %e, "storage error");
                e.to_string()
            }
            _ => e.to_string(),
        };
        let storage = match &e {
            EngineError::Storage(error) => Some(error.cause()),
            _ => None,
        };
        ApiError { pointer, storage, ..ApiError::new(status, detail) }
    }
}

/// The longest detail a problem document carries: a refusal that quotes the input (a
/// schema error names the offending value) must not echo a megabyte back.
pub const MAX_DETAIL: usize = 1_000;

/// `text` cut to at most `max` bytes (on a character boundary), marked when cut.
fn shortened(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [cut: {} bytes in all]", &text[..end], text.len())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let detail = shortened(&cme_secrets::text_of(&self.detail), MAX_DETAIL);
        let mut body = json!({
            "type": self.storage.map_or("about:blank", |cause| cause.problem_type()),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": detail,
            "msg": detail,
        });
        if let Some(pointer) = &self.pointer {
            body["pointer"] = json!(shortened(pointer, MAX_DETAIL));
        }
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/problem+json");
        if self.challenge {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(cause) = self.storage {
            response.insert_header(("Retry-After", cause.retry_after_seconds().to_string()));
        }
        let mut response = response.body(body.to_string());
        if self.storage.is_some() {
            response.extensions_mut().insert(StorageFailed);
        }
        response
    }
}
