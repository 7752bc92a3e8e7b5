//! Undos (`/api/1/undos/`): what attacks armed to reverse their faults, and how each
//! ran. Read-only: the engine runs them (when due, when halted, when it starts).

use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::Undo;

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, cursor_links, cursor_page, page_of_list, self_href};

/// The most undos the list reaches (pending ones first, then the latest finished).
const MAX_LISTED: u64 = 10_000;

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    // `limit` (the original spelling) and `size` both size the page (1 to 1,000); `after` seeks.
    let (size, after) = cursor_page(&req, |t| Some(t.to_string()))?;
    let undos = state.engine.undos(MAX_LISTED).await?;
    let (count, pending) = (undos.len(), undos.iter().filter(|u| u.state == cme_engine::UndoState::Pending).count());
    let (page, has_more, cursor) = page_of_list(undos, |u| u.id.clone(), after.as_deref(), size)?;
    let items: Vec<Value> = page.iter().map(|u| document(u).into_value()).collect();
    let doc = Hal::new(json!({"count": count, "pending": pending, "undos": items})).link("self", self_href(&req));
    Ok(cursor_links(doc, &req, has_more, cursor).ok())
}

pub async fn show(req: HttpRequest, id: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(document(&state.engine.undo(&id).await?).ok())
}

fn document(u: &Undo) -> Hal {
    Hal::new(json!({
        "id": u.id,
        "state": u.state.as_str(),
        "kind": u.revert.kind(),
        "target": u.target(),
        "command": u.command,
        "plugin": u.plugin,
        "executor_id": u.run_id,
        "plan_id": u.plan_id,
        "step": u.step,
        "armed": date(u.armed),
        "due": date(u.due),
        "attempts": u.attempts,
        "outcome": u.outcome,
        "finished": u.finished.map(date),
    }))
    .link("self", format!("/api/1/undos/{}", u.id))
    .link("executor", format!("/api/1/executors/{}", u.run_id))
    .link("plan", format!("/api/1/plans/{}", u.plan_id))
}
