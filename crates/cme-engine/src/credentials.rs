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
