//! The access log: one line per request (method, route, status, duration, token name)
//! through `tracing`, target `cme::access` (filter it with `RUST_LOG=cme::access=off`).

use std::borrow::Cow;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The name of the token a request was authorised with, left by `Auth::require`.
#[derive(Debug, Clone)]
pub(crate) struct TokenName(pub String);

/// The route pattern of a resource (`/api/1/plans/{id}`), kept in its app data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoutePattern(pub &'static str);

thread_local! {
    /// This worker thread's handles on `cme_http_requests_total`, by (route, status): a
    /// request costs a map lookup and an atomic add, not a registration in the recorder.
    static REQUESTS: std::cell::RefCell<std::collections::HashMap<(Cow<'static, str>, u16), metrics::Counter>> = Default::default();
}

fn count_request(route: Cow<'static, str>, status: u16) {
    REQUESTS.with_borrow_mut(|counters| {
        if let Some(counter) = counters.get(&(route.clone(), status)) {
            counter.increment(1);
            return;
        }
        let counter =
            metrics::counter!("cme_http_requests_total", "route" => route.to_string(), "status" => status.to_string());
        counter.increment(1);
        counters.insert((route, status), counter);
    });
}

/// Gives the API's metrics their help text (call once a recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!("cme_http_requests_total", "HTTP requests answered, by route pattern and status.");
}

/// Logs each request once its answer is ready. The route is the matched pattern
/// (`/api/1/plans/{id}`), so that ids and query strings (which may carry secrets) stay out.
pub(crate) async fn log_access(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if response.response().extensions().get::<crate::problem::StorageFailed>().is_some()
        && let Some(state) = response.request().app_data::<actix_web::web::Data<crate::ApiState>>()
    {
        state.engine.note_storage_failure();
    }
    let request = response.request();
    let route: Cow<'static, str> = match request.app_data::<RoutePattern>() {
        Some(pattern) => Cow::Borrowed(pattern.0),
        // The dashboard's and the unmatched: found the slow way.
        None => Cow::Owned(request.match_pattern().unwrap_or_else(|| "(no route)".into())),
    };
    let token = request.extensions().get::<TokenName>().map(|t| t.0.clone());
    count_request(route.clone(), response.status().as_u16());
    tracing::info!(
        target: "cme::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        duration_us = started.elapsed().as_micros() as u64,
        token = token.as_deref().unwrap_or("-"),
        "request"
    );
    Ok(response)
}
