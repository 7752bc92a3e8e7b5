#![recursion_limit = "256"]
//! # cme-api: the HAL+JSON API
//!
//! Every endpoint of the original engine at the same paths (with and without the trailing
//! slash), plus the entry document, halt/resume, the audit log and `/healthz`. Documents
//! are HAL (`application/hal+json`); errors are problem+json with the original's `msg`.
//!
//! Invariant: the API never touches the database; it speaks to `cme_engine::Engine`.

mod access;
mod auth;
mod bodies;
mod body;
mod browser;
mod dashboard;
mod front_door;
mod hal;
mod openapi;
mod problem;
mod rendered;
mod routes;

/// The bounds the API puts on what it reads, in one place: the README's security table
/// states them and a test keeps the two equal.
pub mod limits {
    pub use crate::body::MAX_JSON_BODY;
    pub use crate::problem::MAX_DETAIL;
    pub use crate::routes::calendars::MAX_CALENDAR_BYTES;
    pub use crate::routes::inventories::MAX_INVENTORY_BYTES;
    pub use crate::routes::plugins::MAX_SIGNATURE_BYTES;
}

use std::sync::Arc;

use actix_web::web;

pub use access::describe_metrics;
pub use auth::{Auth, Caller, MIN_TOKEN_LENGTH, Role, Token, TokenSecret};
pub use body::MAX_JSON_BODY;
pub use browser::HostPolicy;
pub use dashboard::page_weight as dashboard_page_weight;
pub use problem::ApiError;

/// Shared by every request.
pub struct ApiState {
    pub engine: Arc<cme_engine::Engine>,
    pub auth: Auth,
    /// The hosts this engine answers for (DNS-rebinding and cross-site defence).
    pub hosts: HostPolicy,
    /// What every document shows as `***`.
    pub secrets: cme_secrets::Redactor,
    schemas: routes::Schemas,
    /// Rendered lists by request URL, with the version of the data they show.
    rendered: rendered::Rendered,
    /// Renders every metric in the Prometheus text format; None: `/metrics` answers 404.
    metrics: Option<MetricsRender>,
}

/// Renders the process's metrics (the binary's Prometheus recorder).
pub type MetricsRender = Box<dyn Fn() -> String + Send + Sync>;

impl ApiState {
    pub fn new(
        engine: Arc<cme_engine::Engine>,
        auth: Auth,
        hosts: HostPolicy,
        secrets: cme_secrets::Redactor,
    ) -> web::Data<ApiState> {
        ApiState::with_metrics(engine, auth, hosts, secrets, None)
    }

    /// The state, with `/metrics` served by `metrics`.
    pub fn with_metrics(
        engine: Arc<cme_engine::Engine>,
        auth: Auth,
        hosts: HostPolicy,
        secrets: cme_secrets::Redactor,
        metrics: Option<MetricsRender>,
    ) -> web::Data<ApiState> {
        web::Data::new(ApiState {
            engine,
            auth,
            hosts,
            secrets,
            schemas: routes::Schemas::new(),
            rendered: Default::default(),
            metrics,
        })
    }
}

/// The API as an actix-web app: `HttpServer::new(move || cme_api::app(state.clone()))`.
///
/// Every route sits behind the front door ([`front_door`]): the host and origin checks
/// before any handler, a panic answered 500 (never a dead worker), and one access log
/// line per request.
pub fn app(
    state: web::Data<ApiState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(actix_web::middleware::from_fn(front_door::front_door))
        .configure(move |config| routes::configure(config, state))
}
