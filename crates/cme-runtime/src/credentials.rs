//! What the SSH capability reads from and records in the engine's store: an [`SshStore`]
//! the embedding process implements. Keys are fetched by name at the moment a run opens a
//! session and never cross into wasm; inventories are read when a run lists one; undos
//! are stored before the run may act.

use std::sync::Arc;

use cme_cloud::ssh::{SshConfig, SshKey};
use cme_model::undo::Undo;

/// A stored credential, ready to authenticate with.
#[derive(Debug, Clone)]
pub struct SshCredential {
    /// The login user stored with the key; used when a target names no user.
    pub user: String,
    pub key: SshKey,
}

/// On whose behalf a run acts: opaque to the runtime, handed to the
/// [`SshStore`] so that it can decide which credentials the run may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOwner {
    /// The plan the run belongs to.
    pub plan: String,
    /// Who created the plan (token name and role), when known.
    pub created_by: Option<cme_model::Actor>,
}

/// Why the SSH store did not answer: a credential not handed out, an inventory or an
/// undo that could not be read or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshStoreError {
    /// It exists, but this run may not use it (a credential); the text says why.
    #[error("{0}")]
    Denied(String),
    /// It could not be read or stored (a database error, a key that no longer parses).
    #[error("{0}")]
    Unavailable(String),
}

pub use cme_model::InventoryHost;

/// The engine's store as the SSH capability sees it.
#[async_trait::async_trait]
pub trait SshStore: Send + Sync + 'static {
    /// The credential called `name` for a run of `owner`; `Ok(None)` when there is none.
    /// Errors never carry key material.
    async fn ssh_credential(&self, name: &str, owner: &RunOwner) -> Result<Option<SshCredential>, SshStoreError>;

    /// The hosts of the inventory called `name`; `Ok(None)` when there is none. Engines
    /// without inventories answer `Unavailable` (the default).
    async fn inventory(&self, name: &str) -> Result<Option<Vec<InventoryHost>>, SshStoreError> {
        let _ = name;
        Err(SshStoreError::Unavailable("inventories are not available on this engine".into()))
    }

    /// Stores an undo durably before the run acts; an error means nothing was stored and
    /// the run must not act. Engines without an undo store refuse (the default).
    async fn arm_undo(&self, undo: &Undo) -> Result<(), SshStoreError> {
        let _ = undo;
        Err(SshStoreError::Unavailable("undos are not available on this engine".into()))
    }

    /// Moves a pending undo's due time to `undo.due` (a fault's hold counted from when the
    /// fault was in place); false when it is no longer pending (it ran, or was cancelled).
    async fn reschedule_undo(&self, undo: &Undo) -> Result<bool, SshStoreError> {
        let _ = undo;
        Err(SshStoreError::Unavailable("undos are not available on this engine".into()))
    }
}

/// The SSH backend: engine-wide settings plus where keys come from.
#[derive(Clone)]
pub struct SshBackend {
    pub config: SshConfig,
    pub store: Arc<dyn SshStore>,
}

impl std::fmt::Debug for SshBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshBackend").field("config", &self.config).finish_non_exhaustive()
    }
}
