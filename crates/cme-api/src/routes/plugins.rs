use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use super::Result;
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{Hal, self_href};
use cme_engine::{PluginDescription, PluginKind};

pub async fn attacks(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list(req, state, PluginKind::Attack, "attacks")
}

pub async fn planners(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list(req, state, PluginKind::Planner, "planners")
}

fn list(req: HttpRequest, state: web::Data<ApiState>, kind: PluginKind, key: &str) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let items: Vec<Value> = state.engine.plugins(kind).iter().map(document).collect();
    Ok(Hal::new(json!({ key: items })).link("self", self_href(&req)).ok())
}

/// One plugin, shaped as the original: `ref`, `schema` and `example` describe the whole
/// `{"ref", "args"}` object; the rest is new.
fn document(p: &PluginDescription) -> Value {
    let primary = p.refs.first().cloned().unwrap_or_default();
    json!({
        "ref": primary,
        "schema": {
            "type": "object",
            "required": ["ref", "args"],
            "properties": {
                "ref": {"type": "string", "enum": p.refs},
                "args": p.args_schema,
            }
        },
        "example": {"ref": primary, "args": p.example_args},
        "refs": p.refs,
        "name": p.name,
        "version": p.version,
        "kind": p.kind,
        "description": p.description,
        "capabilities": p.capabilities,
        "sha256": p.sha256,
        "builtin": p.builtin,
    })
}
