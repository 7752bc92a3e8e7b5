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

/// Looks credentials up by name.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync + 'static {
    /// The credential called `name`; `Ok(None)` when there is none. Errors say what
    /// failed (a database error, a key that no longer parses) without key material.
    async fn ssh_credential(&self, name: &str) -> Result<Option<SshCredential>, String>;
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
