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
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), pointer: None, challenge: false }
    }

    pub fn bad_request(detail: impl Into<String>, pointer: Option<String>) -> Self {
        ApiError { pointer, ..ApiError::new(StatusCode::BAD_REQUEST, detail) }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid { message, pointer } => ApiError::bad_request(message, pointer),
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            EngineError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            EngineError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "msg": self.detail,
        });
        if let Some(pointer) = &self.pointer {
            body["pointer"] = json!(pointer);
        }
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/problem+json");
        if self.challenge {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.body(body.to_string())
    }
}
