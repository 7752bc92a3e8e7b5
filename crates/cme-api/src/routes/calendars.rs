//! Calendars (`/api/1/calendars/`): every calendar the engine holds blackouts of, uploaded
//! as `text/calendar` or subscribed to by URL (JSON). Reading is for viewers; changes are
//! an operator's, audited. A subscription's URL is a secret: only its origin is shown.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::{CalendarFeed, CalendarImport};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{SubscriptionBody, typed};
use crate::body::{check_schema, json_body, read_limited};
use crate::hal::{Hal, query_pairs, self_href};
use crate::problem::ApiError;

/// The largest calendar file accepted.
pub const MAX_CALENDAR_BYTES: usize = 2 << 20;

/// Every calendar, by name, with its blackout count.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let calendars = state.engine.calendars().await?;
    let items: Vec<Value> = calendars.iter().map(|(feed, count)| document(feed, *count).into_value()).collect();
    Ok(Hal::new(json!({"count": items.len(), "calendars": items}))
        .link("self", self_href(&req))
        .link("blackouts", "/api/1/blackouts/")
        .ok())
}

pub async fn show(req: HttpRequest, name: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let feed = state.engine.calendar(&name).await?;
    let count = state.engine.calendar_blackouts(&name).await?;
    Ok(document(&feed, count).ok())
}

/// Deletes a calendar and its blackouts (a subscription is not fetched again).
pub async fn delete(req: HttpRequest, name: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    state.engine.delete_calendar(&name, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Calendar {name} successfully deleted")}))
        .link("calendars", "/api/1/calendars/")
        .ok())
}

/// `POST /api/1/calendars/`: a JSON body subscribes to a calendar's URL; any other body
/// is an iCalendar file to import (`?name=...`).
pub async fn create(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        subscribe(req, payload, state).await
    } else {
        import(req, payload, state).await
    }
}

async fn subscribe(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.subscription, &body)?;
    let new = typed::<SubscriptionBody>(body)?.into_new();
    let feed = state.engine.subscribe_calendar(new, caller.name()).await?;
    let count = state.engine.calendar_blackouts(&feed.name).await?;
    let location = format!("/api/1/calendars/{}", feed.name);
    Ok(document(&feed, count).set("msg", json!("ok")).respond_at(StatusCode::CREATED, &location))
}

/// Imports an iCalendar body (`text/calendar`) as blackouts:
/// `?name=holidays-es[&timezone=Europe/Madrid][&plan_id=...][&include_free=true][&strict=true]`.
/// Importing the same name again replaces that calendar's blackouts.
async fn import(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let pairs = query_pairs(&req);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let name = get("name").ok_or_else(|| {
        ApiError::bad_request(
            "name the calendar: POST /api/1/calendars/?name=holidays (or send JSON to subscribe to a URL)",
            Some("/name".into()),
        )
    })?;
    let bytes = read_limited(payload, MAX_CALENDAR_BYTES, || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the calendar is larger than {MAX_CALENDAR_BYTES} bytes"))
    })
    .await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the calendar is not UTF-8 text", Some("/".into())))?;
    let flag = |key: &str| match get(key).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request(format!("{key} must be true or false, not {other:?}"), Some(format!("/{key}"))))
        }
    };
    let import = CalendarImport {
        name: name.clone(),
        timezone: get("timezone"),
        plan_id: get("plan_id"),
        stop_running: flag("stop_running")?,
        include_free: flag("include_free")?,
        strict: flag("strict")?,
    };
    let imported = state.engine.import_calendar(import, text, caller.name()).await?;
    let items: Vec<Value> = imported.blackouts.iter().map(|b| super::blackouts::document(b).into_value()).collect();
    let skipped: Vec<Value> = imported.skipped.iter().map(|s| json!({"event": s.event, "reason": s.reason})).collect();
    let doc = Hal::new(json!({
        "msg": "ok",
        "calendar": name,
        "timezone": imported.zone.name(),
        "count": items.len(),
        "blackouts": items,
        "skipped": skipped,
    }))
    .link("blackouts", "/api/1/blackouts/")
    .link("calendar", format!("/api/1/calendars/{}", name.trim()));
    Ok(doc.respond_at(StatusCode::CREATED, "/api/1/blackouts/"))
}

fn document(feed: &CalendarFeed, blackouts: u64) -> Hal {
    let href = format!("/api/1/calendars/{}", feed.name);
    Hal::new(json!({
        "name": feed.name,
        "kind": if feed.url.is_some() { "subscription" } else { "upload" },
        "url": feed.shown_url(),
        "refresh_seconds": feed.url.as_ref().map(|_| feed.refresh_seconds),
        "timezone": feed.timezone,
        "plan_id": feed.plan_id,
        "stop_running": feed.stop_running,
        "include_free": feed.include_free,
        "created": date(feed.created),
        "created_by": feed.created_by,
        "last_fetched": feed.last_fetched.map(date),
        "last_error": feed.last_error,
        "next_fetch": feed.url.as_ref().and(feed.next_fetch).map(date),
        "blackouts": blackouts,
    }))
    .link("self", href.clone())
    .link("delete", href)
    .link("blackouts", "/api/1/blackouts/")
}
