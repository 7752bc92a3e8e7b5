//! Where the SSH capability gets keys: a [`CredentialSource`] the embedding process
//! implements (the engine reads its credential store). Keys are fetched by name at the
//! moment a run opens a session and never cross into wasm.

use std::sync::Arc;

use cme_cloud::ssh::{SshConfig, SshKey};

/// A stored credential, ready to authenticate with.
#[derive(Debug, Clone)]
pub struct SshCredential {
    /// The login user stored with the key; used when a target names no user.
    pub user: String,
    pub key: SshKey,
}

/// On whose behalf a run acts: opaque to the runtime, handed to the
/// [`CredentialSource`] so that it can decide which credentials the run may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOwner {
    /// The plan the run belongs to.
    pub plan: String,
    /// Who created the plan (token name and role), when known.
    pub created_by: Option<(String, String)>,
}

/// Why a credential was not handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// It exists, but this run may not use it; the text says why.
    #[error("{0}")]
    Denied(String),
    /// It could not be read (a database error, a key that no longer parses).
    #[error("{0}")]
    Unavailable(String),
}

/// Looks credentials up by name.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync + 'static {
    /// The credential called `name` for a run of `owner`; `Ok(None)` when there is none.
    /// Errors never carry key material.
    async fn ssh_credential(&self, name: &str, owner: &RunOwner) -> Result<Option<SshCredential>, CredentialError>;
}

/// The SSH backend: engine-wide settings plus where keys come from.
#[derive(Clone)]
pub struct SshBackend {
    pub config: SshConfig,
    pub credentials: Arc<dyn CredentialSource>,
}

impl std::fmt::Debug for SshBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshBackend").field("config", &self.config).finish_non_exhaustive()
    }
}
