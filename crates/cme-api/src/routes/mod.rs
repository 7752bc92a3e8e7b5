//! Routes, one module per resource.

mod audit;
mod blackouts;
mod credentials;
mod executors;
mod halt;
mod plans;
mod plugins;
mod root;
mod webhooks;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::ApiState;
use crate::problem::ApiError;

pub(crate) use plans::Schemas;

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

/// Registers a resource at `path` and at `path` without its trailing slash.
fn both(config: &mut web::ServiceConfig, path: &str, build: impl Fn(actix_web::Resource) -> actix_web::Resource) {
    config.service(build(web::resource(path)).default_service(web::to(method_not_allowed)));
    if let Some(bare) = path.strip_suffix('/').filter(|p| !p.is_empty()) {
        config.service(build(web::resource(bare)).default_service(web::to(method_not_allowed)));
    }
}

pub(crate) fn configure(config: &mut web::ServiceConfig, state: web::Data<ApiState>) {
    config.app_data(state);
    // Every route sits behind the host and origin checks; every request is logged.
    config.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(crate::browser::refuse_foreign))
            .wrap(actix_web::middleware::from_fn(crate::access::log_access))
            .configure(routes),
    );
}

fn routes(config: &mut web::ServiceConfig) {
    config.route("/healthz", web::get().to(root::healthz));
    config.route("/livez", web::get().to(root::livez));
    config.route("/metrics", web::get().to(root::metrics));
    config.route("/readyz", web::get().to(root::readyz));
    both(config, "/api/1/", |r| r.route(web::get().to(root::entry)));
    both(config, "/api/1/attacks/", |r| r.route(web::get().to(plugins::attacks)));
    both(config, "/api/1/planners/", |r| r.route(web::get().to(plugins::planners)));
    both(config, "/api/1/plugins/", |r| r.route(web::get().to(plugins::list)).route(web::post().to(plugins::upload)));
    config.service(
        web::resource("/api/1/plugins/{id}")
            .route(web::get().to(plugins::show))
            .route(web::delete().to(plugins::delete))
            .default_service(web::to(method_not_allowed)),
    );
    config.service(web::resource("/api/1/plugins/{id}/grant").route(web::put().to(plugins::grant)).default_service(web::to(method_not_allowed)));
    config.service(web::resource("/api/1/plugins/{id}/enable").route(web::post().to(plugins::enable)).default_service(web::to(method_not_allowed)));
    config.service(web::resource("/api/1/plugins/{id}/disable").route(web::post().to(plugins::disable)).default_service(web::to(method_not_allowed)));
    both(config, "/api/1/plans/", |r| r.route(web::get().to(plans::list)).route(web::post().to(plans::create)));
    config.service(
        web::resource("/api/1/plans/{id}")
            .route(web::get().to(plans::show))
            .route(web::delete().to(plans::delete))
            .default_service(web::to(method_not_allowed)),
    );
    config.service(web::resource("/api/1/plans/{id}/run").route(web::post().to(plans::run_now)).default_service(web::to(method_not_allowed)));
    config.service(web::resource("/api/1/plans/{id}/pause").route(web::post().to(plans::pause)).default_service(web::to(method_not_allowed)));
    config.service(web::resource("/api/1/plans/{id}/resume").route(web::post().to(plans::resume)).default_service(web::to(method_not_allowed)));
    config.service(web::resource("/api/1/plans/{id}/forecast").route(web::get().to(plans::forecast)).default_service(web::to(method_not_allowed)));
    both(config, "/api/1/forecast", |r| r.route(web::post().to(plans::forecast_new)));
    both(config, "/api/1/blackouts/", |r| r.route(web::get().to(blackouts::list)).route(web::post().to(blackouts::create)));
    config.service(
        web::resource("/api/1/blackouts/{id}")
            .route(web::get().to(blackouts::show))
            .route(web::delete().to(blackouts::delete))
            .default_service(web::to(method_not_allowed)),
    );
    both(config, "/api/1/calendars/", |r| r.route(web::post().to(blackouts::import)));
    both(config, "/api/1/executors/", |r| r.route(web::get().to(executors::list)));
    config.service(
        web::resource("/api/1/executors/{id}")
            .route(web::get().to(executors::show))
            .route(web::put().to(executors::reschedule))
            .route(web::delete().to(executors::cancel))
            .default_service(web::to(method_not_allowed)),
    );
    both(config, "/api/1/halt", |r| r.route(web::get().to(halt::show)).route(web::post().to(halt::halt)));
    both(config, "/api/1/resume", |r| r.route(web::post().to(halt::resume)));
    both(config, "/api/1/audit/", |r| r.route(web::get().to(audit::list)));
    both(config, "/api/1/webhooks/", |r| r.route(web::get().to(webhooks::list)));
    both(config, "/api/1/credentials/", |r| r.route(web::get().to(credentials::list)).route(web::post().to(credentials::create)));
    config.service(
        web::resource("/api/1/credentials/{name}")
            .route(web::delete().to(credentials::delete))
            .default_service(web::to(method_not_allowed)),
    );
    config.default_service(web::to(not_found));
}

async fn method_not_allowed(req: HttpRequest) -> Result {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

async fn not_found(req: HttpRequest) -> Result {
    Err(ApiError::not_found(format!("no resource at {}; start at /api/1/", req.path())))
}

/// RFC 3339 in UTC with a `Z`, the API's one date format.
fn date(t: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}
