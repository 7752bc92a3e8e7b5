//! The access log: one line per request (method, route, status, duration, token name)
//! through `tracing`, target `cme::access` (filter it with `RUST_LOG=cme::access=off`).

use std::borrow::Cow;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;

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

/// Logs a request once its answer is ready, and counts it. The route is the matched
/// pattern (`/api/1/plans/{id}`), so that ids and query strings (which may carry secrets)
/// stay out.
pub(crate) fn record(response: &ServiceResponse, method: &Method, started: Instant) {
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
    let status = response.status().as_u16();
    count_request(route.clone(), status);
    let extensions = request.extensions();
    let token = extensions.get::<TokenName>().map_or("-", |t| t.0.as_str());
    tracing::info!(
        target: "cme::access",
        method = %method,
        route = %route,
        status,
        duration_us = started.elapsed().as_micros() as u64,
        token,
        "request"
    );
}
