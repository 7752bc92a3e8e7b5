//! Inventories (`/api/1/inventories/`): named groups of hosts attacks reach over SSH.
//! Reading is for viewers; changes are an admin's (they say which machines may be
//! attacked), audited. A group is written as JSON (`PUT .../{name}`) or imported with the
//! other groups of an Ansible inventory, INI, YAML or `ansible-inventory --list` JSON
//! (`POST /api/1/inventories/`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::Inventory;
use cme_engine::inventory::{Format, ReadOptions};

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{InventoryBody, typed};
use crate::body::{check_schema, json_body, read_limited};
use crate::hal::{Hal, cursor_links, cursor_page, page_of_list, query_pairs, self_href};
use crate::problem::ApiError;

/// The largest Ansible inventory file accepted.
pub const MAX_INVENTORY_BYTES: usize = 4 << 20;

/// A page of inventories by name (`?size=`, `?after=`); `count` is how many there are.
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    let (size, after) = cursor_page(&req, |t| Some(t.to_string()))?;
    let all = state.engine.inventories().await?;
    let count = all.len();
    let (page, has_more, cursor) = page_of_list(all, |i| i.name.clone(), after.as_deref(), size)?;
    let items: Vec<Value> = page.iter().map(|i| document(i).into_value()).collect();
    Ok(cursor_links(
        Hal::new(json!({"count": count, "inventories": items})).link("self", self_href(&req)),
        &req,
        has_more,
        cursor,
    )
    .ok())
}

pub async fn show(req: HttpRequest, name: web::Path<String>, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Viewer)?;
    Ok(document(&state.engine.inventory(&name).await?).ok())
}

pub async fn put(
    req: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    let mut body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    // A host shown with `"credential": null` (it has none) is put back as it was shown.
    if let Some(hosts) = body.get_mut("hosts").and_then(Value::as_array_mut) {
        for host in hosts.iter_mut().filter_map(Value::as_object_mut) {
            if host.get("credential").is_some_and(Value::is_null) {
                host.remove("credential");
            }
        }
    }
    check_schema(&state.schemas.inventory, &body)?;
    let hosts = typed::<InventoryBody>(body)?.into_hosts();
    let inventory = state.engine.put_inventory(&name, hosts, caller.name()).await?;
    Ok(document(&inventory).ok())
}

pub async fn delete(req: HttpRequest, name: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    state.engine.delete_inventory(&name, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Inventory {name} successfully deleted")}))
        .link("inventories", "/api/1/inventories/")
        .ok())
}

/// Imports an Ansible inventory (INI, YAML or `ansible-inventory --list` JSON; `?format=`,
/// else the content type, else a sniff of the text chooses): each group holding hosts
/// becomes (or replaces) the inventory of its name, in one write. `?credential=NAME` gives
/// every host that names none that credential. The answer lists the groups imported with
/// their host counts and the groups skipped with why.
pub async fn import(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    let pairs = query_pairs(&req);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let format = match get("format") {
        Some(name) => {
            Some(name.parse::<Format>().map_err(|e| ApiError::bad_request(e.to_string(), Some("/format".into())))?)
        }
        None => req.headers().get("content-type").and_then(|v| v.to_str().ok()).and_then(Format::of_media_type),
    };
    let credential = match get("credential") {
        Some(c) if c.trim().is_empty() => {
            return Err(ApiError::bad_request("credential is empty", Some("/credential".into())));
        }
        other => other,
    };
    let bytes = read_limited(payload, MAX_INVENTORY_BYTES, || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the inventory is larger than {MAX_INVENTORY_BYTES} bytes"),
        )
    })
    .await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the inventory is not UTF-8 text", Some("/".into())))?;
    let imported = state.engine.import_inventories(text, &ReadOptions { format, credential }, caller.name()).await?;
    let items: Vec<Value> = imported.inventories.iter().map(|i| document(i).into_value()).collect();
    let groups: Vec<Value> =
        imported.inventories.iter().map(|i| json!({"name": i.name, "hosts": i.hosts.len()})).collect();
    let doc = Hal::new(json!({
        "msg": "ok",
        "format": imported.format.name(),
        "count": items.len(),
        "imported": groups,
        "skipped": imported.skipped,
        "inventories": items,
    }))
    .link("inventories", "/api/1/inventories/");
    Ok(doc.respond_at(StatusCode::CREATED, "/api/1/inventories/"))
}

fn document(inventory: &Inventory) -> Hal {
    let href = format!("/api/1/inventories/{}", inventory.name);
    Hal::new(json!({
        "name": inventory.name,
        "count": inventory.hosts.len(),
        "hosts": inventory.hosts,
        "updated": date(inventory.updated),
        "updated_by": inventory.updated_by,
    }))
    .link("self", href.clone())
    .link("delete", href)
}
