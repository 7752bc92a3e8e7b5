use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::Result;
use crate::ApiState;
use crate::auth::Role;
use crate::hal::{HAL, Hal, self_href};
use cme_engine::{PluginDescription, PluginKind};

pub async fn attacks(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list(req, state, PluginKind::Attack, "attacks")
}

pub async fn planners(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list(req, state, PluginKind::Planner, "planners")
}

/// The lists change only when plugins do: their bodies are rendered once per plugin
/// generation and request URL, then served from memory.
fn list(req: HttpRequest, state: web::Data<ApiState>, kind: PluginKind, key: &str) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let generation = state.engine.plugins_generation();
    let href = self_href(&req);
    let mut cache = state.rendered.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 64 {
        cache.clear(); // arbitrary query strings must not grow it without bound
    }
    let body = cache
        .entry(href.clone())
        .and_modify(|(seen, body)| {
            if *seen != generation {
                *seen = generation;
                *body = render(&state, kind, key, &href);
            }
        })
        .or_insert_with(|| (generation, render(&state, kind, key, &href)))
        .1
        .clone();
    Ok(HttpResponse::Ok().content_type(HAL).body(body))
}

fn render(state: &ApiState, kind: PluginKind, key: &str, href: &str) -> web::Bytes {
    let items: Vec<Value> = state.engine.plugins(kind).iter().map(document).collect();
    web::Bytes::from(Hal::new(json!({ key: items })).link("self", href).into_value().to_string())
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
