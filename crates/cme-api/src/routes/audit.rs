use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, page_of, paged, self_href};

/// Audit events, newest first (admin only).
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Admin)?;
    let page = page_of(&req)?;
    let listed = state.engine.audit(page).await?;
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
    Ok(paged(doc, &req, page, &listed).ok())
}
