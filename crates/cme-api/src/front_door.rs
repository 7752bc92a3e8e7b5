//! The one middleware every request passes: the host and origin checks
//! ([`crate::browser`]), then the routes with a panic answered 500, then the access log
//! line and the request metric ([`crate::access`]).
//!
//! One layer instead of three: each `from_fn` layer costs a boxed future and a request
//! hand-off, and at tens of thousands of requests a second the three cost more than the
//! handler they wrapped.

use std::time::Instant;

use actix_web::ResponseError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use futures_util::FutureExt;

use crate::problem::ApiError;

pub(crate) async fn front_door(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    if let Some(refusal) = crate::browser::refusal(&req) {
        let response = req.into_response(refusal.error_response());
        crate::access::record(&response, &method, started);
        return Ok(response);
    }
    // The request itself cannot be kept (routing needs it unshared): a panic is answered
    // by actix through `ApiError`'s `error_response`.
    let uri = req.uri().clone();
    let response = match std::panic::AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(response) => response?.map_into_boxed_body(),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(path = %uri.path(), panic = %why, "a request handler panicked; answered 500");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the engine failed on this request (a bug: see its log)",
            )
            .into());
        }
    };
    crate::access::record(&response, &method, started);
    Ok(response)
}
