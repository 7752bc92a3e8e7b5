//! Plugins: the original's `/attacks/` and `/planners/` lists, and the registry under
//! `/plugins/` (upload, show, grant, enable, disable, delete).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use futures_util::TryStreamExt;
use serde_json::{Value, json};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::body::{json_body, read_limited};
use crate::hal::{HAL, Hal, cursor_links, cursor_page, page_of_list, query_pairs, self_href};
use crate::problem::ApiError;
use crate::rendered::Source;
use cme_engine::{PluginKind, PluginView, Upload};

pub async fn attacks(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list_kind(req, state, Some(PluginKind::Attack), "attacks").await
}

pub async fn planners(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list_kind(req, state, Some(PluginKind::Planner), "planners").await
}

pub async fn probes(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list_kind(req, state, Some(PluginKind::Probe), "probes").await
}

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    list_kind(req, state, None, "plugins").await
}

/// The lists change only when plugins do: their bodies are rendered once per plugin
/// generation and request URL, then served from memory.
async fn list_kind(req: HttpRequest, state: web::Data<ApiState>, kind: Option<PluginKind>, key: &str) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    // The registry's own list is always current; the original's lists are hot paths and
    // may be a second behind another replica's upload.
    state.engine.refresh_plugins(kind.is_none()).await?;
    let generation = state.engine.plugins_generation();
    let href = self_href(&req);
    let body = match state.rendered.get(Source::Plugins, &href, generation) {
        Some(body) => body,
        None => {
            let views: Vec<_> = state
                .engine
                .plugin_views()
                .await?
                .into_iter()
                .filter(|v| kind.is_none_or(|k| v.description.kind == k))
                .collect();
            let mut doc = match kind {
                // The original's lists (`/attacks/`, `/planners/`, `/probes/`) are whole, as its clients read them.
                Some(_) => Hal::new(json!({ key: views.iter().map(document).collect::<Vec<Value>>() }))
                    .link("self", href.clone()),
                None => {
                    let (size, after) = cursor_page(&req, |t| Some(t.to_string()))?;
                    let count = views.len();
                    let (page, has_more, cursor) =
                        page_of_list(views, |v| v.description.id.clone(), after.as_deref(), size)?;
                    let doc =
                        Hal::new(json!({ "count": count, key: page.iter().map(document).collect::<Vec<Value>>() }))
                            .link("self", href.clone());
                    cursor_links(doc, &req, has_more, cursor)
                }
            }
            .into_value();
            cme_secrets::mask_strings(&mut doc);
            let body = web::Bytes::from(doc.to_string());
            state.rendered.put(Source::Plugins, href, generation, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok().content_type(HAL).body(body))
}

pub async fn show(req: HttpRequest, state: web::Data<ApiState>, id: web::Path<String>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    state.engine.refresh_plugins(true).await?;
    let view = state.engine.plugin_view(&id).await?;
    Ok(plugin_document(&view).ok())
}

/// `POST /api/1/plugins/`: the component as the raw body (`application/wasm`, with an
/// optional `?sha256=`), or `multipart/form-data` with a `file` part and an optional
/// `sha256` part.
pub async fn upload(req: HttpRequest, state: web::Data<ApiState>, payload: web::Payload) -> Result {
    // Publishers (CI) may upload; granting and enabling stay with admins.
    let caller = state.auth.require(&req, Role::Publisher)?;
    let max = state.engine.max_plugin_bytes();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let upload = match essence.as_str() {
        "application/wasm" | "application/octet-stream" => {
            let query = query_pairs(&req);
            let expected_sha256 = query.iter().find(|(k, _)| k == "sha256").map(|(_, v)| v.clone());
            let signature = query.iter().find(|(k, _)| k == "signature").map(|(_, v)| signature_text(v)).transpose()?;
            Upload { wasm: read_limited(payload, max, || too_large(max)).await?.to_vec(), expected_sha256, signature }
        }
        "multipart/form-data" => read_multipart(&req, payload, max).await?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "upload the component as Content-Type: application/wasm (the raw .wasm file) or multipart/form-data with a `file` part (got {content_type:?})"
                ),
            ));
        }
    };
    if upload.wasm.is_empty() {
        return Err(ApiError::bad_request("the upload is empty: send the component's bytes", None));
    }
    let uploaded = state.engine.upload_plugin(upload, caller.name()).await?;
    let status = if uploaded.created { StatusCode::CREATED } else { StatusCode::OK };
    let id = uploaded.plugin.description.id.clone();
    Ok(plugin_document(&uploaded.plugin)
        .set("compile_ms", json!(uploaded.compile_ms))
        .respond_at(status, &format!("/api/1/plugins/{id}")))
}

pub async fn grant(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    let grant = json_body(&req, payload, false).await?.expect("not optional");
    let view = state.engine.grant_plugin(&id, &grant, caller.name()).await?;
    Ok(plugin_document(&view).ok())
}

pub async fn enable(req: HttpRequest, state: web::Data<ApiState>, id: web::Path<String>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    Ok(plugin_document(&state.engine.set_plugin_enabled(&id, true, caller.name()).await?).ok())
}

pub async fn disable(req: HttpRequest, state: web::Data<ApiState>, id: web::Path<String>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    Ok(plugin_document(&state.engine.set_plugin_enabled(&id, false, caller.name()).await?).ok())
}

pub async fn delete(req: HttpRequest, state: web::Data<ApiState>, id: web::Path<String>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    state.engine.delete_plugin(&id, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Plugin {id} deleted")})).link("plugins", "/api/1/plugins/").ok())
}

/// An SSH signature is a few hundred bytes; anything much longer is not one.
pub const MAX_SIGNATURE_BYTES: usize = 8 * 1024;

/// A signature as sent: the armored `.sig` text, or that text in base64 (one line, as a
/// query parameter carries it).
fn signature_text(sent: &str) -> std::result::Result<String, ApiError> {
    use base64::Engine as _;
    let refuse = || {
        ApiError::bad_request(
            "the signature is neither an armored SSH signature nor one in base64",
            Some("/signature".into()),
        )
    };
    if sent.len() > MAX_SIGNATURE_BYTES {
        return Err(refuse());
    }
    let sent = sent.trim();
    if sent.starts_with("-----BEGIN") {
        return Ok(sent.to_string());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sent)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sent.trim_end_matches('=')))
        .map_err(|_| refuse())?;
    String::from_utf8(bytes).map_err(|_| refuse())
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the component is larger than {max} bytes, this engine's cap ([registry] max_plugin_bytes)"),
    )
}

/// A multipart upload, streamed part by part (actix-multipart): the `file` part (or
/// `plugin`) up to `max` bytes, an optional short `sha256` part, nothing else.
async fn read_multipart(req: &HttpRequest, payload: web::Payload, max: usize) -> std::result::Result<Upload, ApiError> {
    let malformed = |e: actix_multipart::MultipartError| ApiError::bad_request(format!("multipart body: {e}"), None);
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let mut upload = Upload { wasm: Vec::new(), expected_sha256: None, signature: None };
    let mut found = false;
    let mut seen: Vec<String> = Vec::new();
    while let Some(mut field) = multipart.try_next().await.map_err(malformed)? {
        let name = field.name().map(str::to_string);
        // Each part once: a stream of small parts would otherwise be read without end.
        if let Some(name) = &name {
            if seen.contains(name) || seen.len() >= 3 {
                return Err(ApiError::bad_request(
                    format!(
                        "the multipart body has the part {name:?} twice, or more parts than `file`, `sha256` and `signature`"
                    ),
                    None,
                ));
            }
            seen.push(name.clone());
        }
        match name.as_deref() {
            Some("file") | Some("plugin") if !found => {
                found = true;
                while let Some(chunk) = field.next().await.transpose().map_err(malformed)? {
                    if upload.wasm.len() + chunk.len() > max {
                        return Err(too_large(max));
                    }
                    upload.wasm.extend_from_slice(&chunk);
                }
            }
            Some("sha256") => {
                let text =
                    short_part(&mut field, 128, "the sha256 part is longer than a hex digest", "/sha256").await?;
                upload.expected_sha256 = Some(text);
            }
            Some("signature") => {
                let text = short_part(
                    &mut field,
                    MAX_SIGNATURE_BYTES,
                    "the signature part is longer than an SSH signature",
                    "/signature",
                )
                .await?;
                upload.signature = Some(signature_text(&text)?);
            }
            other => {
                return Err(ApiError::bad_request(
                    format!(
                        "unexpected multipart part {other:?}: send one `file` and optionally `sha256` and `signature`"
                    ),
                    None,
                ));
            }
        }
    }
    if !found {
        return Err(ApiError::bad_request("the multipart body has no `file` part with the component", None));
    }
    Ok(upload)
}

/// A small text part of a multipart upload, refused past `max` bytes.
async fn short_part(
    field: &mut actix_multipart::Field,
    max: usize,
    too_long: &str,
    pointer: &str,
) -> std::result::Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) =
        field.next().await.transpose().map_err(|e| ApiError::bad_request(format!("multipart body: {e}"), None))?
    {
        text.extend_from_slice(&chunk);
        if text.len() > max {
            return Err(ApiError::bad_request(too_long, Some(pointer.into())));
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// One plugin, shaped as the original: `ref`, `schema` and `example` describe the whole
/// `{"ref", "args"}` object; the rest is new.
fn document(view: &PluginView) -> Value {
    let p = &view.description;
    let primary = p.refs.first().cloned().unwrap_or_default();
    json!({
        "id": p.id,
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
        "granted": view.grant.as_ref().map(|g| serde_json::to_value(g).unwrap_or(Value::Null)),
        "status": view.status,
        "sha256": p.sha256,
        "size": p.size,
        "builtin": view.builtin,
        "uploaded_by": view.uploaded_by,
        "uploaded_at": view.uploaded_at.map(date),
        "signed_by": view.signed_by,
        "_links": {"self": {"href": format!("/api/1/plugins/{}", p.id)}},
    })
}

fn plugin_document(view: &PluginView) -> Hal {
    let id = &view.description.id;
    let mut doc = document(view);
    doc.as_object_mut().expect("an object").remove("_links");
    let mut hal = Hal::new(doc).link("self", format!("/api/1/plugins/{id}")).link("plugins", "/api/1/plugins/");
    if !view.builtin {
        hal = hal
            .link("grant", format!("/api/1/plugins/{id}/grant"))
            .link("enable", format!("/api/1/plugins/{id}/enable"))
            .link("disable", format!("/api/1/plugins/{id}/disable"))
            .link("delete", format!("/api/1/plugins/{id}"));
    }
    hal
}
