//! SSH credentials: stored once, referred to by name, never shown again. Only the name,
//! user, key algorithm and fingerprint leave the engine (the host's SSH backend reads
//! the key through [`Engine::ssh_credential`]).

use chrono::{DateTime, Utc};

use crate::host::PluginHost;
use crate::model::{Actor, AuditEvent, Credential};
use crate::{Engine, EngineError, Resource};

/// A credential to store.
pub struct NewCredential {
    pub name: String,
    pub user: String,
    pub private_key: String,
    pub passphrase: Option<String>,
    /// Token names and roles whose plans may use it; None: the creating token only.
    pub may_use: Option<Vec<String>>,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential").field("name", &self.name).field("user", &self.user).finish_non_exhaustive()
    }
}

/// What may be shown of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialView {
    pub name: String,
    pub user: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub created: DateTime<Utc>,
    pub may_use: Vec<String>,
    /// Set for a plan's inline key.
    pub owner_plan: Option<String>,
}

impl From<&Credential> for CredentialView {
    fn from(c: &Credential) -> Self {
        CredentialView {
            name: c.name.clone(),
            user: c.user.clone(),
            algorithm: c.algorithm.clone(),
            fingerprint: c.fingerprint.clone(),
            created: c.created,
            may_use: c.may_use.clone(),
            owner_plan: c.owner_plan.clone(),
        }
    }
}

impl Engine {
    /// Checks the key (it must parse, with its passphrase) and stores the credential with
    /// its audit event.
    pub async fn create_credential(&self, new: NewCredential, by: &Actor) -> Result<CredentialView, EngineError> {
        let name_ok = !new.name.is_empty()
            && new.name.len() <= 100
            && new.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(EngineError::invalid("/name", "name must be 1-100 letters, digits, '-', '_' or '.'"));
        }
        if !is_login_name(&new.user) {
            return Err(EngineError::invalid("/user", "user must be a login name (no spaces, no '@')"));
        }
        let may_use = new.may_use.unwrap_or_else(|| vec![by.name.clone()]);
        if may_use.is_empty() || may_use.iter().any(|m| m.trim().is_empty() || m.len() > 100) {
            return Err(EngineError::invalid(
                "/may_use",
                "may_use must list 1 or more token names or roles (viewer, operator, admin, publisher)",
            ));
        }
        let facts = inspect_key(&self.host, &new.private_key, new.passphrase.as_deref())
            .await
            .map_err(|e| EngineError::invalid("/private_key", e))?;
        let credential = Credential {
            name: new.name,
            user: new.user,
            private_key: new.private_key,
            passphrase: new.passphrase,
            fingerprint: facts.fingerprint,
            algorithm: facts.algorithm,
            created: Utc::now(),
            may_use,
            owner_plan: None,
        };
        let view = CredentialView::from(&credential);
        let audit = AuditEvent::action(&by.name, "credential.create", format!("{} ({})", view.name, view.fingerprint));
        if !self.ports.ssh.insert_credential(&credential, &audit).await? {
            return Err(EngineError::CredentialExists(view.name));
        }
        tracing::info!(name = %view.name, fingerprint = %view.fingerprint, "credential stored");
        Ok(view)
    }

    pub async fn credentials(&self) -> Result<Vec<CredentialView>, EngineError> {
        Ok(self.ports.ssh.credentials().await?.iter().map(CredentialView::from).collect())
    }

    pub async fn delete_credential(&self, name: &str, by: &str) -> Result<(), EngineError> {
        if !self.ports.ssh.delete_credential(name, &AuditEvent::action(by, "credential.delete", name)).await? {
            return Err(EngineError::not_found(Resource::Credential, name));
        }
        Ok(())
    }

    /// A stored credential, key included: for the host's SSH backend only.
    pub async fn ssh_credential(&self, name: &str) -> Result<Option<Credential>, EngineError> {
        Ok(self.ports.ssh.credential(name).await?)
    }
}

fn is_login_name(user: &str) -> bool {
    !user.is_empty() && user.len() <= 64 && !user.chars().any(|c| c.is_whitespace() || c == '@')
}

/// The name under which a plan's inline SSH key is stored: `plan-<id>-ssh`.
pub fn plan_credential_name(plan_id: &str) -> String {
    format!("plan-{plan_id}-ssh")
}

/// Reads a private key off the async workers (decrypting one may take a good part of a
/// second, within the caps `inspect_key` applies first).
async fn inspect_key(
    host: &std::sync::Arc<dyn PluginHost>,
    key: &str,
    passphrase: Option<&str>,
) -> Result<crate::host::KeyFacts, String> {
    let (host, key, passphrase) = (host.clone(), key.to_string(), passphrase.map(str::to_string));
    crate::bounded::off_worker("the private key", move || {
        let facts = host.inspect_key(&key, passphrase.as_deref()).map_err(|e| e.to_string())?;
        // A real key (not whatever was sent): from here on the masker hides it and its
        // passphrase wherever they would show.
        cme_secrets::remember(&key);
        if let Some(passphrase) = &passphrase {
            cme_secrets::remember(passphrase);
        }
        Ok(facts)
    })
    .await
}

/// Whether attack args carry an inline key (`ssh.pem`, see [`take_inline_key`]).
pub(crate) fn has_inline_key(args: &serde_json::Value) -> bool {
    args.get("ssh").and_then(|ssh| ssh.get("pem")).is_some()
}

/// For the original engine's clients: attack args whose `ssh` object carries `pem` (the
/// base64 of a private key file, or the PEM text itself) and `user`. The key is checked
/// and taken out of the args, which then name the credential it will be stored as;
/// `passphrase` is taken out too. Returns the credential to store with the plan, or None
/// when the args carry no key. Nothing of the key is kept in the args or shown.
pub(crate) async fn take_inline_key(
    host: &std::sync::Arc<dyn PluginHost>,
    args: &mut serde_json::Value,
    plan_id: &str,
) -> Result<Option<Credential>, EngineError> {
    use base64::Engine as _;
    const POINTER: &str = "/attack/args/ssh";
    let at = |field: &str| format!("{POINTER}/{field}");
    let Some(ssh) = args.get_mut("ssh").and_then(|s| s.as_object_mut()) else {
        return Ok(None);
    };
    let Some(pem) = ssh.remove("pem") else {
        return Ok(None);
    };
    let passphrase = ssh.remove("passphrase");
    let pem = pem.as_str().ok_or_else(|| {
        EngineError::invalid(&at("pem"), "ssh.pem must be a string: the base64 of a private key file")
    })?;
    let passphrase = match passphrase {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(p)) => Some(p),
        Some(_) => return Err(EngineError::invalid(&at("passphrase"), "ssh.passphrase must be a string")),
    };
    if ssh.contains_key("credential") {
        return Err(EngineError::invalid(&at("credential"), "give ssh.pem or ssh.credential, not both"));
    }
    let user = match ssh.get("user").and_then(|u| u.as_str()) {
        Some(user) if is_login_name(user) => user.to_string(),
        _ => return Err(EngineError::invalid(&at("user"), "ssh.user (a login name) is required with ssh.pem")),
    };
    let text = if pem.trim_start().starts_with("-----BEGIN") {
        pem.to_string()
    } else {
        let compact: String = pem.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| {
            EngineError::invalid(&at("pem"), "ssh.pem is not base64 (expected the base64 of a private key file)")
        })?;
        String::from_utf8(bytes)
            .map_err(|_| EngineError::invalid(&at("pem"), "ssh.pem does not decode to a text key file"))?
    };
    let facts = inspect_key(host, &text, passphrase.as_deref())
        .await
        .map_err(|e| EngineError::invalid(&at("pem"), format!("ssh.pem: {e}")))?;
    let name = plan_credential_name(plan_id);
    ssh.insert("credential".into(), serde_json::Value::String(name.clone()));
    Ok(Some(Credential {
        name,
        user,
        private_key: text,
        passphrase,
        fingerprint: facts.fingerprint,
        algorithm: facts.algorithm,
        created: Utc::now(),
        may_use: Vec::new(),
        owner_plan: Some(plan_id.to_string()),
    }))
}
