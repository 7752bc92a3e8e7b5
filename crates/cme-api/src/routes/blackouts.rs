//! Blackouts (`/api/1/blackouts/`) and holiday calendars imported as blackouts
//! (`/api/1/calendars/`). Reading is for viewers; changes are an operator's, audited.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::{Blackout, BlackoutWhen};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{NewBlackoutBody, typed};
use crate::body::{check_schema, json_body};
use crate::hal::{Hal, cursor_links, cursor_page, self_href};
use cme_engine::storage::BlackoutCursor;

/// The occurrences of a recurring event a blackout's document shows.
const NEXT_SHOWN: usize = 3;

/// A page of blackouts, oldest first: `?size=` (1 to 1,000, default 100) and `?after=`
/// (the cursor of the `next` link); `count` is how many are stored in all.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (size, after) = cursor_page(&req, BlackoutCursor::parse)?;
    let (page, count) = state.engine.list_blackouts(after.as_ref(), size).await?;
    let cursor = page.items.last().map(|b| BlackoutCursor::after(b).to_text());
    let items: Vec<Value> = page.items.iter().map(|b| document(b).into_value()).collect();
    let doc = Hal::new(json!({"count": count, "blackouts": items}))
        .link("self", self_href(&req))
        .link("calendars", "/api/1/calendars/");
    Ok(cursor_links(doc, &req, page.has_more, cursor).ok())
}

pub async fn create(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.blackout, &body)?;
    let new = typed::<NewBlackoutBody>(body)?.into_new();
    let blackout = state.engine.create_blackout(new, caller.name()).await?;
    Ok(document(&blackout).respond_at(StatusCode::CREATED, &format!("/api/1/blackouts/{}", blackout.id)))
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(document(&state.engine.blackout(&id).await?).ok())
}

pub async fn delete(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Operator)?;
    state.engine.delete_blackout(&id, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Blackout {id} successfully deleted")}))
        .link("blackouts", "/api/1/blackouts/")
        .ok())
}

pub(super) fn document(b: &Blackout) -> Hal {
    let when = match &b.when {
        BlackoutWhen::Once { start, end } => json!({"recurring": false, "start": date(*start), "end": date(*end)}),
        BlackoutWhen::Recurring { start, end, timezone } => json!({
            "recurring": true,
            "every": if start.day.is_some() { "week" } else { "day" },
            "start": start.to_string(),
            "end": end.to_string(),
            "timezone": timezone,
        }),
        BlackoutWhen::Rule(rule) => {
            let compiled = rule.compile().ok();
            let spans = |from, n| compiled.as_ref().map(|c| c.next(from, n)).unwrap_or_default();
            let first = spans(chrono::DateTime::<chrono::Utc>::MIN_UTC, 1).first().copied();
            let next: Vec<Value> = spans(chrono::Utc::now(), NEXT_SHOWN)
                .into_iter()
                .map(|(start, end)| json!({"start": date(start), "end": date(end)}))
                .collect();
            let (unit, amount) = match rule.length {
                cme_engine::recurrence::Length::Days(days) => ("length_days", days as i64),
                cme_engine::recurrence::Length::Seconds(seconds) => ("length_seconds", seconds),
            };
            json!({
                "recurring": true,
                "every": "rule",
                "rule": rule.rrule,
                "until": rule.until.map(date),
                "start": first.map(|(start, _)| date(start)),
                "end": first.map(|(_, end)| date(end)),
                "timezone": rule.timezone,
                unit: amount,
                "rdates": rule.rdates.iter().map(|d| date(*d)).collect::<Vec<_>>(),
                "exdates": rule.exdates.iter().map(|d| date(*d)).collect::<Vec<_>>(),
                "next": next,
            })
        }
    };
    let mut data = json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "plan_id": b.plan_id,
        "calendar": b.calendar,
        "stop_running": b.stop_running,
        "created": date(b.created),
        "created_by": b.created_by,
    });
    if let (Some(data), Some(when)) = (data.as_object_mut(), when.as_object()) {
        data.extend(when.clone());
    }
    let href = format!("/api/1/blackouts/{}", b.id);
    let doc = Hal::new(data).link("self", href.clone()).link("delete", href);
    match &b.plan_id {
        Some(plan) => doc.link("plan", format!("/api/1/plans/{plan}")),
        None => doc,
    }
}
