use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, self_href};

/// The configured webhooks and the state of their deliveries (admin only: receivers'
/// addresses and failures are operators' business). Secrets are never shown; URLs only
/// by their origin.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Admin)?;
    let webhooks = state.engine.webhooks().await?;
    let items: Vec<Value> = webhooks
        .iter()
        .map(|w| {
            let d = &w.deliveries;
            json!({
                "name": w.subscription.name,
                "url": w.subscription.shown_url,
                "events": w.subscription.events,
                "pending": d.pending,
                "delivered": d.delivered,
                "failed": d.failed,
                "oldest_pending": d.oldest_pending.map(date),
                "next_attempt": d.next_attempt.map(date),
                "last_delivered": d.last_delivered.map(date),
                "last_failure": d.last_failure.map(date),
                "last_error": d.last_error,
            })
        })
        .collect();
    let kinds: Vec<Value> = cme_engine::events::EVENT_KINDS.iter().map(|k| json!(k)).collect();
    Ok(Hal::new(json!({ "event_kinds": kinds })).link("self", self_href(&req)).embed("webhooks", items).ok())
}
