use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, cursor_page, page_of, seek_paged, self_href};

/// Audit events, newest first (admin only).
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Admin)?;
    let page = page_of(&req)?;
    // `after` (the id of the last event seen, from a `next` link) seeks; `page` counts.
    let (_, after) = cursor_page(&req, |t| t.parse::<i64>().ok())?;
    let listed = match after {
        Some(before) => state.engine.audit_before(before, page.size()).await?,
        None => state.engine.audit(page).await?,
    };
    let items: Vec<Value> = listed
        .items
        .iter()
        .map(|entry| {
            let e = &entry.event;
            json!({
                "id": entry.id,
                "at": date(e.at),
                "source": e.source,
                "run_id": e.run_id.clone().unwrap_or_default(),
                "actor": e.actor,
                "action": e.action,
                "target": cme_secrets::text_of(&e.target),
                "decision": e.decision,
                "reason": cme_secrets::option_of(e.reason.as_deref()),
                "dry_run": e.dry_run,
                "outcome": cme_secrets::option_of(e.outcome.as_deref()),
            })
        })
        .collect();
    let doc = Hal::new(json!({})).link("self", self_href(&req)).embed("audit", items);
    let cursor = listed.items.last().map(|entry| entry.id.to_string());
    Ok(seek_paged(doc, &req, page, &listed, cursor, after.is_some()).ok())
}
