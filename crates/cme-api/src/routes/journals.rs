//! A run's journal (`/api/1/executors/{id}/journal`): JSON by default, JUnit XML with
//! `?format=junit` (so a CI pipeline can gate on an experiment), and Server-Sent Events
//! with `Accept: text/event-stream` (one `journal` event per change while the run is in
//! flight here, then `end`). Every form passes the masker.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use cme_engine::{Executor, Journal, JournalView};

use super::Result;
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, query_pairs};
use crate::problem::ApiError;

/// How the journal is asked for.
enum Form {
    Json,
    Junit,
    Events,
}

fn form_of(req: &HttpRequest) -> std::result::Result<Form, ApiError> {
    let mut form = None;
    for (key, value) in query_pairs(req) {
        if key == "format" {
            form = Some(match value.to_ascii_lowercase().as_str() {
                "json" => Form::Json,
                "junit" | "xml" => Form::Junit,
                other => {
                    return Err(ApiError::bad_request(
                        format!("format must be json or junit, not {other:?}"),
                        Some("/format".into()),
                    ));
                }
            });
        }
    }
    let streams = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    Ok(form.unwrap_or(if streams { Form::Events } else { Form::Json }))
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let form = form_of(&req)?;
    let (executor, plan, view) = state.engine.journal(&id).await?;
    let secrets = state.secrets.clone();
    match (form, view) {
        (Form::Events, JournalView::Stored(journal)) => {
            // The run ended: its journal, then the end.
            let journal = masked(&secrets, &journal);
            Ok(events(stream::iter([event("journal", &journal), event("end", &journal)])))
        }
        (Form::Events, JournalView::Live(live)) => {
            let first = event("journal", &masked(&secrets, &live.borrow().clone()));
            let rest = stream::unfold(Some((live, secrets)), |state| async move {
                let (mut live, secrets) = state?;
                match live.changed().await {
                    Ok(()) => {
                        let journal = live.borrow_and_update().clone();
                        Some((event("journal", &masked(&secrets, &journal)), Some((live, secrets))))
                    }
                    // The run ended here: its last state, as the end.
                    Err(_) => {
                        let journal = live.borrow().clone();
                        Some((event("end", &masked(&secrets, &journal)), None))
                    }
                }
            });
            Ok(events(stream::iter([first]).chain(rest)))
        }
        (Form::Json, view) => {
            let live = matches!(view, JournalView::Live(_));
            Ok(document(&executor, &masked(&secrets, &view.now()), live).ok())
        }
        (Form::Junit, view) => {
            let journal: Journal = serde_json::from_value(masked(&secrets, &view.now())).unwrap_or_default();
            Ok(HttpResponse::Ok()
                .content_type("application/xml; charset=utf-8")
                .body(journal.junit(&executor.id, &cme_secrets::text_of(&plan))))
        }
    }
}

/// The journal as JSON, through the masker.
fn masked(secrets: &cme_secrets::Redactor, journal: &Journal) -> Value {
    secrets.json(&serde_json::to_value(journal).unwrap_or(Value::Null))
}

fn event(name: &str, data: &Value) -> std::result::Result<web::Bytes, actix_web::Error> {
    Ok(web::Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
}

fn document(executor: &Executor, journal: &Value, live: bool) -> Hal {
    let mut fields = json!({
        "executor_id": executor.id,
        "plan_id": executor.plan_id,
        "status": executor.status,
        "live": live,
    });
    if let (Some(fields), Some(journal)) = (fields.as_object_mut(), journal.as_object()) {
        fields.extend(journal.clone());
    }
    Hal::new(fields)
        .link("self", format!("/api/1/executors/{}/journal", executor.id))
        .link("junit", format!("/api/1/executors/{}/journal?format=junit", executor.id))
        .link("executor", format!("/api/1/executors/{}", executor.id))
}

/// An event stream answer: never cached, never buffered by a proxy.
fn events(
    body: impl futures_util::Stream<Item = std::result::Result<web::Bytes, actix_web::Error>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
