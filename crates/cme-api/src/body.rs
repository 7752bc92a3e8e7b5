//! Request bodies: JSON only, at most 1 MiB, read with our own errors (413, 415, 400).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde_json::Value;

use crate::problem::ApiError;

/// The largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Reads a JSON body. An empty body is `None` when `optional`.
pub async fn json_body(req: &HttpRequest, mut payload: web::Payload, optional: bool) -> Result<Option<Value>, ApiError> {
    if let Some(length) = req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()) {
        if length > MAX_JSON_BODY {
            return Err(too_large());
        }
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}"), None))?;
        if bytes.len() + chunk.len() > MAX_JSON_BODY {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if optional { Ok(None) } else { Err(ApiError::bad_request("payload must be a valid json (the body is empty)", None)) };
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be JSON with Content-Type: application/json (got {:?})", content_type),
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("payload must be a valid json: {e}"), None))
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} bytes", MAX_JSON_BODY))
}

/// Validates `value` against a JSON Schema; the error names the JSON pointer.
pub fn check_schema(validator: &jsonschema::Validator, value: &Value) -> Result<(), ApiError> {
    match validator.iter_errors(value).next() {
        None => Ok(()),
        Some(error) => {
            let pointer = error.instance_path().to_string();
            let at = if pointer.is_empty() { String::new() } else { format!(" at {pointer}") };
            Err(ApiError::bad_request(format!("invalid payload{at}: {error}"), Some(if pointer.is_empty() { "/".into() } else { pointer })))
        }
    }
}
