//! Request bodies, read by actix's own capped reader with our errors (413, 415, 400):
//! JSON of at most 1 MiB, and raw uploads of the registry's size.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::Value;

use crate::problem::ApiError;

/// The largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Reads a JSON body. An empty body is `None` when `optional`.
pub async fn json_body(req: &HttpRequest, payload: web::Payload, optional: bool) -> Result<Option<Value>, ApiError> {
    let bytes = read_limited(payload, MAX_JSON_BODY, too_large).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if optional {
            Ok(None)
        } else {
            Err(ApiError::bad_request("payload must be a valid json (the body is empty)", None))
        };
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

/// The whole body, refused with `too_large()` past `max` bytes (a larger Content-Length is
/// refused before reading).
pub async fn read_limited(
    payload: web::Payload,
    max: usize,
    too_large: impl FnOnce() -> ApiError,
) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(max).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("could not read the body: {e}"), None)),
        Err(_) => Err(too_large()),
    }
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
            Err(ApiError::bad_request(
                format!("invalid payload{at}: {error}"),
                Some(if pointer.is_empty() { "/".into() } else { pointer }),
            ))
        }
    }
}
