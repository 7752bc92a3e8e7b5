//! Routes, one module per resource.

mod audit;
pub(crate) mod blackouts;
pub(crate) mod calendars;
mod credentials;
mod executors;
mod halt;
pub(crate) mod inventories;
mod journals;
mod plans;
pub(crate) mod plugins;
mod root;
mod undos;
mod webhooks;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::ApiState;
use crate::problem::ApiError;

pub(crate) use plans::Schemas;

type Result<T = HttpResponse> = std::result::Result<T, ApiError>;

/// Every route and the engine's state; `crate::app` puts the front door before them.
pub(crate) fn configure(config: &mut web::ServiceConfig, state: web::Data<ApiState>) {
    config.app_data(state);
    routes(config);
}

fn routes(config: &mut web::ServiceConfig) {
    // One resource per path, with every method the table gives it; a path under /api/
    // ending in `/` is served without it too (the original's clients use both).
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in ENDPOINTS {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    for path in paths {
        let resource = |at: &'static str| {
            // The pattern travels with the matched resource: the access log reads it back
            // instead of matching the path against every route a second time.
            let mut resource = web::resource(at).app_data(crate::access::RoutePattern(at));
            for endpoint in ENDPOINTS.iter().filter(|e| e.path == path) {
                resource = resource.route((endpoint.handler)(web::method(endpoint.verb.method())));
            }
            resource.default_service(web::to(method_not_allowed))
        };
        config.service(resource(path));
        if let Some(bare) = path.strip_suffix('/').filter(|p| !p.is_empty() && p.starts_with("/api/")) {
            config.service(resource(bare));
        }
    }
    crate::dashboard::configure(config);
    config.default_service(web::to(not_found));
}

use crate::auth::Role::{Admin, Operator, Publisher, Viewer};
use crate::openapi::{Answer::*, Body, Endpoint, Param, Verb::*};

const PAGE: [Param; 2] =
    [Param::int("page", "the page, from 1 (default 1)"), Param::int("size", "items per page, 1 to 1000 (default 100)")];
/// A list paged by cursor only (it grows from input).
const CURSOR: [Param; 2] = [
    Param::int("size", "items per page, 1 to 1000 (default 100)"),
    Param::text("after", "a cursor from a `next` link: the items after it"),
];
const SPAN: [Param; 2] = [
    Param::text("from", "a date (RFC 3339; without an offset, in the engine's zone); default now"),
    Param::text("until", "a date; default a week after from"),
];

const FIRST_EXECUTOR: &str = "$response.body#/_embedded/executors/0/id";
const PLAN_LINKS: [crate::openapi::Link; 9] = [
    ("show", "showPlan", "id", "$response.body#/id"),
    ("run", "runPlan", "id", "$response.body#/id"),
    ("pause", "pausePlan", "id", "$response.body#/id"),
    ("resume", "resumePlan", "id", "$response.body#/id"),
    ("forecast", "forecastPlan", "id", "$response.body#/id"),
    ("delete", "deletePlan", "id", "$response.body#/id"),
    ("executor", "showExecutor", "id", FIRST_EXECUTOR),
    ("reschedule", "rescheduleExecutor", "id", FIRST_EXECUTOR),
    ("cancel", "cancelExecutor", "id", FIRST_EXECUTOR),
];

/// Every endpoint: the router above and the OpenAPI document (`crate::openapi`) are both
/// made from this table, so neither can miss one.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Get, "/healthz", "health", "Liveness and database reachability", None, |r| r.to(root::healthz))
        .answers(&[(200, Json("Status")), (503, Json("Status"))]),
    Endpoint::new(Get, "/livez", "liveness", "The process answers", None, |r| r.to(root::livez)).answers(&[(200, Json("Status"))]),
    Endpoint::new(Get, "/readyz", "readiness", "The database takes writes (probed at most once a second) and the engine is not shutting down", None, |r| r.to(root::readyz))
        .answers(&[(200, Json("Readiness")), (503, Json("Readiness"))]),
    Endpoint::new(Get, "/metrics", "metrics", "Every metric in the Prometheus text format", Some(Viewer), |r| r.to(root::metrics)).answers(&[(200, Text)]),
    Endpoint::new(Get, "/api/1/openapi.json", "openapi", "This document", None, |r| r.to(root::openapi)).answers(&[(200, Json("OpenApi"))]),
    Endpoint::new(Get, "/api/1/", "entry", "Links to every collection", Some(Viewer), |r| r.to(root::entry)).answers(&[(200, Hal("Entry"))]),
    Endpoint::new(Get, "/api/1/attacks/", "listAttacks", "The attack plugins, with their argument schemas", Some(Viewer), |r| r.to(plugins::attacks))
        .answers(&[(200, Hal("PluginList"))]),
    Endpoint::new(Get, "/api/1/planners/", "listPlanners", "The planner plugins, with their argument schemas", Some(Viewer), |r| r.to(plugins::planners))
        .answers(&[(200, Hal("PluginList"))]),
    Endpoint::new(Get, "/api/1/probes/", "listProbes", "The probe plugins (steady state), with their argument schemas", Some(Viewer), |r| r.to(plugins::probes))
        .answers(&[(200, Hal("PluginList"))]),
    Endpoint::new(Get, "/api/1/plugins/", "listPlugins", "Every plugin, built in or uploaded, with its grant and status", Some(Viewer), |r| r.to(plugins::list))
        .params(&CURSOR)
        .answers(&[(200, Hal("PluginList"))]),
    Endpoint::new(Post, "/api/1/plugins/", "uploadPlugin", "Uploads a component (disabled and ungranted until an admin acts)", Some(Publisher), |r| r.to(plugins::upload))
        .params(&[
            Param::text("sha256", "the component's expected SHA-256 (hex); refused when it differs"),
            Param::text("signature", "a detached SSH signature (ed25519, namespace cme-plugin) over the component, armored or in base64; checked against [registry] trusted_keys"),
        ])
        .body(Body::Wasm)
        .answers(&[(201, Hal("Plugin")), (200, Hal("Plugin"))])
        .links(&[("show", "showPlugin", "id", "$response.body#/id"), ("grant", "grantPlugin", "id", "$response.body#/id"), ("enable", "enablePlugin", "id", "$response.body#/id"), ("disable", "disablePlugin", "id", "$response.body#/id"), ("delete", "deletePlugin", "id", "$response.body#/id")]),
    Endpoint::new(Get, "/api/1/plugins/{id}", "showPlugin", "One plugin", Some(Viewer), |r| r.to(plugins::show)).answers(&[(200, Hal("Plugin"))]),
    Endpoint::new(Delete, "/api/1/plugins/{id}", "deletePlugin", "Deletes an uploaded plugin no live plan uses", Some(Admin), |r| r.to(plugins::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Put, "/api/1/plugins/{id}/grant", "grantPlugin", "Replaces what the plugin may do (within the operator's fences)", Some(Admin), |r| {
        r.to(plugins::grant)
    })
    .body(Body::Json("Grant"))
    .answers(&[(200, Hal("Plugin"))]),
    Endpoint::new(Post, "/api/1/plugins/{id}/enable", "enablePlugin", "Enables an uploaded plugin", Some(Admin), |r| r.to(plugins::enable))
        .answers(&[(200, Hal("Plugin"))]),
    Endpoint::new(Post, "/api/1/plugins/{id}/disable", "disablePlugin", "Disables an uploaded plugin (its plans stop firing)", Some(Admin), |r| r.to(plugins::disable))
        .answers(&[(200, Hal("Plugin"))]),
    Endpoint::new(Get, "/api/1/plans/", "listPlans", "Plans with executors still to run (all=true: every plan)", Some(Viewer), |r| r.to(plans::list))
        .params(&[PAGE[0], PAGE[1], Param::boolean("all", "every plan, also those with nothing left to run")])
        .answers(&[(200, Hal("PlanList"))]),
    Endpoint::new(Post, "/api/1/plans/", "createPlan", "Creates a plan: its planner is asked when to fire and the executors are stored", Some(Operator), |r| {
        r.to(plans::create)
    })
    .body(Body::Json("NewPlan"))
    .answers(&[(201, Hal("Plan"))])
        .links(&PLAN_LINKS),
    Endpoint::new(Get, "/api/1/plans/{id}", "showPlan", "One plan, with its first executors", Some(Viewer), |r| r.to(plans::show)).answers(&[(200, Hal("Plan"))]),
    Endpoint::new(Delete, "/api/1/plans/{id}", "deletePlan", "Deletes a plan and cancels its waiting executors", Some(Operator), |r| r.to(plans::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Post, "/api/1/plans/{id}/run", "runPlan", "Fires the plan once, now (refused while halted or in a blackout)", Some(Operator), |r| r.to(plans::run_now))
        .answers(&[(201, Hal("Executor"))])
        .links(&[("show", "showExecutor", "id", "$response.body#/id"), ("cancel", "cancelExecutor", "id", "$response.body#/id")]),
    Endpoint::new(Post, "/api/1/plans/{id}/pause", "pausePlan", "Pauses the plan: its pending executors wait", Some(Operator), |r| r.to(plans::pause))
        .answers(&[(200, Hal("Plan"))]),
    Endpoint::new(Post, "/api/1/plans/{id}/resume", "resumePlan", "Resumes a paused plan", Some(Operator), |r| r.to(plans::resume)).answers(&[(200, Hal("Plan"))]),
    Endpoint::new(Get, "/api/1/plans/{id}/forecast", "forecastPlan", "The firings the plan will make in a span, skipped ones with their reason", Some(Viewer), |r| {
        r.to(plans::forecast)
    })
    .params(&SPAN)
    .answers(&[(200, Hal("Forecast"))]),
    Endpoint::new(Get, "/api/1/schedule", "showSchedule", "Every live plan's firings (skipped ones with their reason) and every blackout's occurrences in a span of up to 31 days: the dashboard's calendar", Some(Viewer), |r| {
        r.to(plans::schedule)
    })
    .params(&SPAN)
    .answers(&[(200, Hal("Schedule"))]),
    Endpoint::new(Post, "/api/1/forecast", "forecastNewPlan", "The firings a plan body would make; nothing is stored", Some(Operator), |r| r.to(plans::forecast_new))
        .params(&SPAN)
        .body(Body::Json("NewPlan"))
        .answers(&[(200, Hal("Forecast"))]),
    Endpoint::new(Get, "/api/1/blackouts/", "listBlackouts", "Spans in which nothing fires", Some(Viewer), |r| r.to(blackouts::list))
        .params(&CURSOR)
        .answers(&[(200, Hal("BlackoutList"))]),
    Endpoint::new(Post, "/api/1/blackouts/", "createBlackout", "A one-off or weekly/daily span in which nothing fires", Some(Operator), |r| r.to(blackouts::create))
        .body(Body::Json("NewBlackout"))
        .answers(&[(201, Hal("Blackout"))])
        .links(&[("show", "showBlackout", "id", "$response.body#/id"), ("delete", "deleteBlackout", "id", "$response.body#/id")]),
    Endpoint::new(Get, "/api/1/blackouts/{id}", "showBlackout", "One blackout", Some(Viewer), |r| r.to(blackouts::show)).answers(&[(200, Hal("Blackout"))]),
    Endpoint::new(Delete, "/api/1/blackouts/{id}", "deleteBlackout", "Deletes a blackout", Some(Operator), |r| r.to(blackouts::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Get, "/api/1/calendars/", "listCalendars", "Every calendar the engine holds blackouts of, uploaded or subscribed to, with its fetch state", Some(Viewer), |r| r.to(calendars::list))
        .answers(&[(200, Hal("CalendarList"))]),
    Endpoint::new(Post, "/api/1/calendars/", "importCalendar", "Imports an iCalendar's events as blackouts (the same name again replaces them); with a JSON body, subscribes to a calendar's URL, fetched again every refresh_seconds", Some(Operator), |r| {
        r.to(calendars::create)
    })
    .params(&[
        Param::text("name", "the calendar's name (an upload)"),
        Param::text("timezone", "IANA zone of all-day events and floating times (default: the file's X-WR-TIMEZONE, else the engine's)"),
        Param::text("plan_id", "the one plan its blackouts hold (default: every plan)"),
        Param::boolean("stop_running", "cancel running attacks when a blackout starts"),
        Param::boolean("include_free", "free (TRANSP:TRANSPARENT) events become blackouts too"),
        Param::boolean("strict", "refuse the file if any event cannot be read (default: skip it, listed in skipped)"),
    ])
    .body(Body::CalendarOrSubscription)
    .answers(&[(201, Hal("CalendarCreated"))]),
    Endpoint::new(Get, "/api/1/calendars/{name}", "showCalendar", "One calendar: its kind, URL origin, refresh, last fetch and error, blackout count", Some(Viewer), |r| r.to(calendars::show))
        .answers(&[(200, Hal("Calendar"))]),
    Endpoint::new(Delete, "/api/1/calendars/{name}", "deleteCalendar", "Deletes a calendar and its blackouts", Some(Operator), |r| r.to(calendars::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Get, "/api/1/inventories/", "listInventories", "Named groups of hosts attacks reach over SSH", Some(Viewer), |r| r.to(inventories::list))
        .params(&CURSOR)
        .answers(&[(200, Hal("InventoryList"))]),
    Endpoint::new(Post, "/api/1/inventories/", "importInventories", "Imports an Ansible inventory (INI, YAML or ansible-inventory --list JSON): each group with hosts becomes the inventory of its name (replacing it); groups that cannot are skipped, saying why", Some(Admin), |r| {
        r.to(inventories::import)
    })
    .params(&[
        Param::text("format", "ini, yaml or json (default: the content type's, else sniffed from the text)"),
        Param::text("credential", "the stored SSH credential of every host that names none (cme_credential)"),
    ])
    .body(Body::Inventory)
    .answers(&[(201, Hal("InventoryImport"))]),
    Endpoint::new(Get, "/api/1/inventories/{name}", "showInventory", "One inventory, with its hosts", Some(Viewer), |r| r.to(inventories::show))
        .answers(&[(200, Hal("Inventory"))]),
    Endpoint::new(Put, "/api/1/inventories/{name}", "putInventory", "Creates or replaces an inventory", Some(Admin), |r| r.to(inventories::put))
        .body(Body::Json("NewInventory"))
        .answers(&[(200, Hal("Inventory"))]),
    Endpoint::new(Delete, "/api/1/inventories/{name}", "deleteInventory", "Deletes an inventory", Some(Admin), |r| r.to(inventories::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Get, "/api/1/undos/", "listUndos", "Undos attacks armed: pending ones soonest first, then the latest finished", Some(Viewer), |r| r.to(undos::list))
        .params(&[Param::text("limit", "how many (1-1000, default 100), as size"), CURSOR[0], CURSOR[1]])
        .answers(&[(200, Hal("UndoList"))]),
    Endpoint::new(Get, "/api/1/undos/{id}", "showUndo", "One undo and how it ran", Some(Viewer), |r| r.to(undos::show)).answers(&[(200, Hal("Undo"))]),
    Endpoint::new(Get, "/api/1/executors/", "listExecutors", "Executors, soonest first", Some(Viewer), |r| r.to(executors::list))
        .params(&[
            PAGE[0],
            PAGE[1],
            Param::text("executed", "false (default: pending, running or paused), true (finished) or all"),
            Param::text("status", "comma-separated statuses (overrides executed)"),
            Param::text("plan_id", "one plan's executors"),
            Param::text("after", "a cursor from a `next` link: the executors after it (seeks; as fast deep in the list as at its start)"),
        ])
        .answers(&[(200, Hal("ExecutorList"))]),
    Endpoint::new(Get, "/api/1/executors/{id}", "showExecutor", "One executor, with its result and log", Some(Viewer), |r| r.to(executors::show))
        .answers(&[(200, Hal("Executor"))]),
    Endpoint::new(Get, "/api/1/executors/{id}/journal", "showJournal", "A run's journal: each step's start, end and targets, probe readings, reverts and their outcomes (JSON; ?format=junit: JUnit XML; Accept: text/event-stream: Server-Sent Events while it runs here)", Some(Viewer), |r| r.to(journals::show))
        .params(&[Param::text("format", "json (default) or junit")])
        .answers(&[(200, Journal("Journal"))]),
    Endpoint::new(Put, "/api/1/executors/{id}", "rescheduleExecutor", "Moves a waiting executor to another time", Some(Operator), |r| r.to(executors::reschedule))
        .body(Body::Json("Reschedule"))
        .answers(&[(200, Hal("Executor"))]),
    Endpoint::new(Delete, "/api/1/executors/{id}", "cancelExecutor", "Cancels a waiting executor", Some(Operator), |r| r.to(executors::cancel))
        .answers(&[(200, Hal("Executor"))]),
    Endpoint::new(Get, "/api/1/halt", "showHalt", "The halt switch", Some(Viewer), |r| r.to(halt::show)).answers(&[(200, Hal("Halt"))]),
    Endpoint::new(Post, "/api/1/halt", "halt", "Halts everything: running attacks are cancelled, nothing fires until resumed", Some(Operator), |r| r.to(halt::halt))
        .body(Body::OptionalJson("HaltRequest"))
        .answers(&[(200, Hal("Halt"))]),
    Endpoint::new(Post, "/api/1/resume", "resume", "Lifts the halt", Some(Operator), |r| r.to(halt::resume)).answers(&[(200, Hal("Halt"))]),
    Endpoint::new(Get, "/api/1/audit/", "listAudit", "Audit events, newest first", Some(Admin), |r| r.to(audit::list))
        .params(&[PAGE[0], PAGE[1], Param::int("after", "the id of the last event seen (from a `next` link): the events before it (seeks)")])
        .answers(&[(200, Hal("AuditList"))]),
    Endpoint::new(Get, "/api/1/credentials/", "listCredentials", "SSH credentials by name, user and fingerprint (never the key)", Some(Admin), |r| {
        r.to(credentials::list)
    })
    .params(&CURSOR)
        .answers(&[(200, Hal("CredentialList"))]),
    Endpoint::new(Post, "/api/1/credentials/", "createCredential", "Stores an SSH key, sealed at rest", Some(Admin), |r| r.to(credentials::create))
        .body(Body::Json("NewCredential"))
        .answers(&[(201, Hal("Credential"))])
        .links(&[("delete", "deleteCredential", "name", "$response.body#/name")]),
    Endpoint::new(Delete, "/api/1/credentials/{name}", "deleteCredential", "Deletes a credential", Some(Admin), |r| r.to(credentials::delete))
        .answers(&[(200, Hal("Message"))]),
    Endpoint::new(Get, "/api/1/webhooks/", "listWebhooks", "The configured webhooks and their deliveries", Some(Admin), |r| r.to(webhooks::list))
        .answers(&[(200, Hal("WebhookList"))]),
];

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
    serde_json::Value::String(date_text(t))
}

/// The API's one date format: RFC 3339, UTC, microseconds.
fn date_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
