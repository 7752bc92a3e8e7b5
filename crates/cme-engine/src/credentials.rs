//! SSH credentials: stored once, referred to by name, never shown again. Only the name,
//! user, key algorithm and fingerprint leave the engine.

use chrono::{DateTime, Utc};

use cme_cloud::ssh::SshKey;
use cme_store::credential;

use crate::time::{from_us, now_us};
use crate::{ApiAction, Engine, EngineError};

/// A credential to store.
pub struct NewCredential {
    pub name: String,
    pub user: String,
    pub private_key: String,
    pub passphrase: Option<String>,
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
}

impl CredentialView {
    fn from_model(row: &credential::Model) -> Self {
        CredentialView {
            name: row.name.clone(),
            user: row.user.clone(),
            algorithm: row.algorithm.clone(),
            fingerprint: row.fingerprint.clone(),
            created: from_us(row.created_at_us),
        }
    }
}

impl Engine {
    /// Checks the key (it must parse, with its passphrase) and stores the credential.
    pub async fn create_credential(&self, new: NewCredential, by: &str) -> Result<CredentialView, EngineError> {
        let name_ok = !new.name.is_empty()
            && new.name.len() <= 100
            && new.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(EngineError::invalid("name must be 1-100 letters, digits, '-', '_' or '.'", Some("/name")));
        }
        let user_ok = !new.user.is_empty() && new.user.len() <= 64 && !new.user.chars().any(|c| c.is_whitespace() || c == '@');
        if !user_ok {
            return Err(EngineError::invalid("user must be a login name (no spaces, no '@')", Some("/user")));
        }
        let key = SshKey::parse(&new.private_key, new.passphrase.as_deref())
            .map_err(|e| EngineError::invalid(e.to_string(), Some("/private_key")))?;
        let row = credential::Model {
            name: new.name,
            user: new.user,
            private_key: new.private_key,
            passphrase: new.passphrase,
            fingerprint: key.fingerprint(),
            algorithm: key.algorithm(),
            created_at_us: now_us(),
        };
        let view = CredentialView::from_model(&row);
        if !self.store.insert_credential(row).await? {
            return Err(EngineError::Conflict(format!("a credential named {} exists; delete it first", view.name)));
        }
        self.audit_api(ApiAction { actor: by.into(), action: "credential.create".into(), target: format!("{} ({})", view.name, view.fingerprint) })
            .await;
        tracing::info!(name = %view.name, fingerprint = %view.fingerprint, "credential stored");
        Ok(view)
    }

    pub async fn credentials(&self) -> Result<Vec<CredentialView>, EngineError> {
        Ok(self.store.credentials().await?.iter().map(CredentialView::from_model).collect())
    }

    pub async fn delete_credential(&self, name: &str, by: &str) -> Result<(), EngineError> {
        if !self.store.delete_credential(name).await? {
            return Err(EngineError::NotFound(format!("credential {name} not found")));
        }
        self.audit_api(ApiAction { actor: by.into(), action: "credential.delete".into(), target: name.to_string() }).await;
        Ok(())
    }
}

/// The name under which a plan's inline SSH key is stored: `plan-<id>-ssh`.
pub fn plan_credential_name(plan_id: &str) -> String {
    format!("plan-{plan_id}-ssh")
}

/// For the original engine's clients: attack args whose `ssh` object carries `pem` (the
/// base64 of a private key file, or the PEM text itself) and `user`. The key is checked
/// and taken out of the args, which then name the credential it will be stored as;
/// `passphrase` is taken out too. Returns the credential to store with the plan, or None
/// when the args carry no key. Nothing of the key is kept in the args or shown.
pub(crate) fn take_inline_key(args: &mut serde_json::Value, plan_id: &str) -> Result<Option<credential::Model>, EngineError> {
    use base64::Engine as _;
    const POINTER: &str = "/attack/args/ssh";
    let Some(ssh) = args.get_mut("ssh").and_then(|s| s.as_object_mut()) else {
        return Ok(None);
    };
    let Some(pem) = ssh.remove("pem") else {
        return Ok(None);
    };
    let passphrase = ssh.remove("passphrase");
    let pem = pem.as_str().ok_or_else(|| EngineError::invalid("ssh.pem must be a string: the base64 of a private key file", Some(&format!("{POINTER}/pem"))))?;
    let passphrase = match passphrase {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(p)) => Some(p),
        Some(_) => return Err(EngineError::invalid("ssh.passphrase must be a string", Some(&format!("{POINTER}/passphrase")))),
    };
    if ssh.contains_key("credential") {
        return Err(EngineError::invalid("give ssh.pem or ssh.credential, not both", Some(&format!("{POINTER}/credential"))));
    }
    let user = match ssh.get("user").and_then(|u| u.as_str()) {
        Some(user) if !user.is_empty() && !user.chars().any(|c| c.is_whitespace() || c == '@') => user.to_string(),
        _ => return Err(EngineError::invalid("ssh.user (a login name) is required with ssh.pem", Some(&format!("{POINTER}/user")))),
    };
    let text = if pem.trim_start().starts_with("-----BEGIN") {
        pem.to_string()
    } else {
        let compact: String = pem.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| EngineError::invalid("ssh.pem is not base64 (expected the base64 of a private key file)", Some(&format!("{POINTER}/pem"))))?;
        String::from_utf8(bytes).map_err(|_| EngineError::invalid("ssh.pem does not decode to a text key file", Some(&format!("{POINTER}/pem"))))?
    };
    let key = SshKey::parse(&text, passphrase.as_deref()).map_err(|e| EngineError::invalid(format!("ssh.pem: {e}"), Some(&format!("{POINTER}/pem"))))?;
    let name = plan_credential_name(plan_id);
    ssh.insert("credential".into(), serde_json::Value::String(name.clone()));
    Ok(Some(credential::Model {
        name,
        user,
        private_key: text,
        passphrase,
        fingerprint: key.fingerprint(),
        algorithm: key.algorithm(),
        created_at_us: now_us(),
    }))
}

/// A stored credential ready for use: its user and parsed key. For the process's SSH
/// backend only; errors name the credential, never the key.
pub async fn load_ssh_credential(store: &cme_store::Store, name: &str) -> Result<Option<(String, SshKey)>, String> {
    let Some(row) = store.credential(name).await.map_err(|e| format!("reading credential {name}: {e}"))? else {
        return Ok(None);
    };
    let key = SshKey::parse(&row.private_key, row.passphrase.as_deref()).map_err(|e| format!("credential {name}: {e}"))?;
    Ok(Some((row.user, key)))
}
