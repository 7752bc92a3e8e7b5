use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use cme_engine::CredentialView;

use super::{Result, date};
use crate::ApiState;
use crate::auth::Role;
use crate::bodies::{NewCredentialBody, typed};
use crate::body::{check_schema, json_body};
use crate::hal::{Hal, cursor_links, cursor_page, page_of_list, self_href};

/// Stores a credential (admin). The answer shows its fingerprint, never the key.
pub async fn create(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    let body = json_body(&req, payload, false).await?.unwrap_or(Value::Null);
    check_schema(&state.schemas.credential, &body).map_err(|mut e| {
        // A schema message may quote the offending value: never echo key material.
        if e.pointer.as_deref().is_some_and(|p| p.starts_with("/private_key") || p.starts_with("/passphrase")) {
            e.detail = format!("invalid payload at {}", e.pointer.clone().unwrap_or_default());
        }
        e
    })?;
    let new = typed::<NewCredentialBody>(body)?.into_new();
    let view = state.engine.create_credential(new, &caller.actor()).await?;
    Ok(document(&view).respond_at(StatusCode::CREATED, &format!("/api/1/credentials/{}", view.name)))
}

/// Names, users and fingerprints (admin).
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result {
    state.auth.require(&req, Role::Admin)?;
    let (size, after) = cursor_page(&req, |t| Some(t.to_string()))?;
    let all = state.engine.credentials().await?;
    let count = all.len();
    let (page, has_more, cursor) = page_of_list(all, |c| c.name.clone(), after.as_deref(), size)?;
    let items: Vec<Value> = page.iter().map(|c| document(c).into_value()).collect();
    let doc = Hal::new(json!({"count": count})).link("self", self_href(&req)).embed("credentials", items);
    Ok(cursor_links(doc, &req, has_more, cursor).ok())
}

pub async fn delete(req: HttpRequest, name: web::Path<String>, state: web::Data<ApiState>) -> Result {
    let caller = state.auth.require(&req, Role::Admin)?;
    state.engine.delete_credential(&name, caller.name()).await?;
    Ok(Hal::new(json!({"msg": format!("Credential {name} successfully deleted")}))
        .link("credentials", "/api/1/credentials")
        .ok())
}

fn document(c: &CredentialView) -> Hal {
    Hal::new(json!({
        "name": c.name,
        "user": c.user,
        "algorithm": c.algorithm,
        "fingerprint": c.fingerprint,
        "created": date(c.created),
        "may_use": c.may_use,
        "owner_plan": c.owner_plan,
    }))
    .link("self", format!("/api/1/credentials/{}", c.name))
}
