//! The runtime's SSH store over the engine's storage: keys read at session time and
//! handed out only to runs whose plan may use them ([`cme_engine::Credential::usable_by`]),
//! inventories read when a run lists one, and undos stored before a run acts (the engine's
//! undo keeper is told at once).

use std::sync::Arc;

use cme_engine::{SshTargetStore, Undo};
use cme_runtime::{InventoryHost, RunOwner, SshCredential, SshStoreError};

pub struct StoredSsh {
    pub storage: Arc<dyn SshTargetStore>,
    /// The engine's `undo_armed` signal.
    pub undo_armed: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl cme_runtime::SshStore for StoredSsh {
    async fn ssh_credential(&self, name: &str, owner: &RunOwner) -> Result<Option<SshCredential>, SshStoreError> {
        let stored = self
            .storage
            .credential(name)
            .await
            .map_err(|e| SshStoreError::Unavailable(format!("reading credential {name}: {e}")))?;
        let Some(stored) = stored else { return Ok(None) };
        let creator = owner.created_by.clone();
        stored.usable_by(&owner.plan, creator.as_ref()).map_err(|refused| SshStoreError::Denied(refused.0))?;
        // A key in use is a secret the masker must know, whichever process stored it.
        cme_secrets::remember(&stored.private_key);
        if let Some(passphrase) = &stored.passphrase {
            cme_secrets::remember(passphrase);
        }
        let key = cme_cloud::ssh::SshKey::parse(&stored.private_key, stored.passphrase.as_deref())
            .map_err(|e| SshStoreError::Unavailable(format!("credential {name}: {e}")))?;
        Ok(Some(SshCredential { user: stored.user, key }))
    }

    async fn inventory(&self, name: &str) -> Result<Option<Vec<InventoryHost>>, SshStoreError> {
        let stored = self
            .storage
            .inventory(name)
            .await
            .map_err(|e| SshStoreError::Unavailable(format!("reading inventory {name}: {e}")))?;
        Ok(stored.map(|inventory| inventory.hosts))
    }

    async fn arm_undo(&self, undo: &Undo) -> Result<(), SshStoreError> {
        self.storage.insert_undo(undo).await.map_err(|e| SshStoreError::Unavailable(e.to_string()))?;
        self.undo_armed.notify_one();
        Ok(())
    }

    async fn reschedule_undo(&self, undo: &Undo) -> Result<bool, SshStoreError> {
        let audit = cme_engine::AuditEvent::action(
            "runtime",
            "undo.reschedule",
            format!("{}: due {} (its fault is in place)", undo.id, undo.due.to_rfc3339()),
        );
        let moved =
            self.storage.update_undo(undo, &audit).await.map_err(|e| SshStoreError::Unavailable(e.to_string()))?;
        self.undo_armed.notify_one();
        Ok(moved)
    }
}
