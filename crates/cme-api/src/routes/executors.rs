use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use cme_engine::{Executor, ExecutorCursor, ExecutorFilter, ExecutorStatus};

use super::{Result, date_text};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{RescheduleBody, typed};
use crate::body::{check_schema, json_body};
use crate::hal::{HAL, Hal, page_of, query_pairs, seek_paged, self_href};
use crate::problem::ApiError;
use crate::rendered::Source;

/// A page is rendered once per request URL and version of the stored data: a dashboard
/// polling the same page while nothing changes is answered from memory.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let page = page_of(&req)?;
    let filter = filter_of(&req)?;
    // Asked before reading: a commit landing meanwhile changes the version the next
    // request sees, so this page is never kept under a version newer than its data.
    let version = state.engine.data_version();
    let href = self_href(&req);
    if let Some(body) = version.and_then(|version| state.rendered.get(Source::Store, &href, version)) {
        return Ok(HttpResponse::Ok().content_type(HAL).body(body));
    }
    let seeking = filter.after.is_some();
    let listed = state.engine.list_executors(&filter, page).await?;
    let items: Vec<ListedExecutor> = listed.items.iter().map(|e| ListedExecutor::of(&state.secrets, e)).collect();
    let doc = Hal::new(json!({})).link("self", href.clone());
    let cursor = listed.items.last().map(|e| ExecutorCursor::after(e).to_string());
    let body =
        web::Bytes::from(seek_paged(doc, &req, page, &listed, cursor, seeking).embedding_body("executors", &items)?);
    if let Some(version) = version {
        state.rendered.put(Source::Store, href, version, body.clone());
    }
    Ok(HttpResponse::Ok().content_type(HAL).body(body))
}

/// `executed=false` (default: pending or running), `true` (finished), `all`; `status=a,b`
/// narrows to those statuses; `plan_id` to one plan.
fn filter_of(req: &HttpRequest) -> std::result::Result<ExecutorFilter, ApiError> {
    let mut executed = "false".to_string();
    let mut statuses: Option<Vec<ExecutorStatus>> = None;
    let mut plan_id = None;
    let mut after = None;
    for (key, value) in query_pairs(req) {
        match key.as_str() {
            "after" => after = Some(value.parse::<ExecutorCursor>().map_err(|e| ApiError::bad_request(e, None))?),
            "executed" => executed = value.to_ascii_lowercase(),
            "status" => {
                let wanted = value
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<ExecutorStatus>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::bad_request(e.to_string(), None))?;
                statuses = Some(wanted);
            }
            "plan_id" => plan_id = Some(value),
            _ => {}
        }
    }
    let statuses = statuses.or(match executed.as_str() {
        "false" | "no" | "0" | "n" | "off" => Some(ExecutorStatus::OPEN.to_vec()),
        "true" | "yes" | "1" | "y" | "on" => Some(ExecutorStatus::TERMINAL.to_vec()),
        "all" => None,
        other => {
            return Err(ApiError::bad_request(format!("executed must be true, false or all, not {other:?}"), None));
        }
    });
    Ok(ExecutorFilter { statuses, plan_id, after })
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (executor, plugin) = state.engine.executor(&id).await?;
    Ok(executor_document(&state.secrets, &executor, plugin.as_deref(), true).ok())
}

pub async fn reschedule(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.reschedule, &body)?;
    let body: RescheduleBody = typed(body)?;
    if body.kind != "date" {
        return Err(ApiError::bad_request("Invalid trigger type: only \"date\" is supported", Some("/type".into())));
    }
    let executor = state.engine.reschedule(&id, &body.args.date, caller.name()).await?;
    Ok(executor_document(&state.secrets, &executor, None, true).ok())
}

pub async fn cancel(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let executor = state.engine.cancel_executor(&id, caller.name()).await?;
    Ok(executor_document(&state.secrets, &executor, None, true)
        .set("msg", json!(format!("Executor {id} successfully cancelled")))
        .ok())
}

/// An executor; the original's fields first (`id`, `next_run_time`, `plan_id`,
/// `executed`), then the new ones. The log (one shape: lines, stdout, stderr, dry-run
/// actions, elapsed) only in the executor's own document, with the plugin version it runs.
pub(crate) fn executor_document(
    secrets: &cme_secrets::Redactor,
    e: &Executor,
    plugin: Option<&str>,
    with_log: bool,
) -> Hal {
    let mut doc = Hal::new(serde_json::to_value(ListedExecutor::of(secrets, e)).unwrap_or(Value::Null));
    if with_log {
        doc = doc.set("log", secrets.json(&serde_json::to_value(&e.log).unwrap_or(Value::Null)));
    }
    if let Some(plugin) = plugin {
        doc = doc.set("plugin", json!(plugin));
    }
    doc
}

/// An executor as lists show it (no log), serialised straight to JSON: lists write these
/// without building a tree of values per executor (a page of 100 is what a dashboard
/// polls), and `executor_document` starts from it. Fields are in sorted order, as a JSON
/// object's keys are written.
#[derive(serde::Serialize)]
pub(crate) struct ListedExecutor<'a> {
    _links: ExecutorLinks<'a>,
    attempts: u32,
    dry_run: Option<bool>,
    error: Option<String>,
    executed: bool,
    finished_at: Option<String>,
    id: &'a str,
    next_run_time: String,
    /// held, refuted or aborted, once it ran
    outcome: Option<cme_engine::Outcome>,
    plan_id: &'a str,
    reason: Option<String>,
    result: Option<Value>,
    started_at: Option<String>,
    status: ExecutorStatus,
}

impl<'a> ListedExecutor<'a> {
    pub(crate) fn of(secrets: &cme_secrets::Redactor, e: &'a Executor) -> Self {
        ListedExecutor {
            _links: ExecutorLinks {
                delete: Href::executor(&e.id),
                journal: Href("/api/1/executors/", &e.id, "/journal"),
                plan: Href("/api/1/plans/", &e.plan_id, ""),
                this: Href::executor(&e.id),
                update: Href::executor(&e.id),
            },
            attempts: e.attempts,
            dry_run: e.dry_run,
            error: cme_secrets::option_of(e.error.as_deref()),
            executed: e.executed(),
            finished_at: e.finished.map(date_text),
            id: &e.id,
            next_run_time: date_text(e.due),
            outcome: e.outcome,
            plan_id: &e.plan_id,
            reason: cme_secrets::option_of(e.reason.as_deref()),
            result: e.report.as_ref().map(|r| {
                let mut result = secrets.json(&serde_json::to_value(r).unwrap_or(Value::Null));
                result["dry_run"] = json!(e.dry_run.unwrap_or(false));
                result
            }),
            started_at: e.started.map(date_text),
            status: e.status,
        }
    }
}

#[derive(serde::Serialize)]
struct ExecutorLinks<'a> {
    delete: Href<'a>,
    journal: Href<'a>,
    plan: Href<'a>,
    #[serde(rename = "self")]
    this: Href<'a>,
    update: Href<'a>,
}

/// `{"href": prefix + id + suffix}`, written without building the string first.
struct Href<'a>(&'static str, &'a str, &'static str);

impl<'a> Href<'a> {
    fn executor(id: &'a str) -> Self {
        Href("/api/1/executors/", id, "")
    }
}

impl serde::Serialize for Href<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Joined<'b>(&'b str, &'b str, &'b str);
        impl std::fmt::Display for Joined<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)?;
                f.write_str(self.1)?;
                f.write_str(self.2)
            }
        }
        struct Text<'b>(Joined<'b>);
        impl serde::Serialize for Text<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("href", &Text(Joined(self.0, self.1, self.2)))?;
        map.end()
    }
}
