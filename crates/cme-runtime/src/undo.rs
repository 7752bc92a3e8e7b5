//! Running an armed undo from the engine's side (the `undo` capability stores it; the
//! engine decides when it runs): one SSH session to the target with the credential the
//! run used, the target's timer stopped, the undo command run.

use std::time::Duration;

use cme_cloud::ssh::{SshSession, Target};

use crate::credentials::{RunOwner, SshStoreError};
use crate::runtime::Runtime;
use cme_model::undo::{Undo, UndoAttempt};

/// How long an undo may take, connection included.
pub const UNDO_TIMEOUT: Duration = Duration::from_secs(60);

impl Runtime {
    /// Runs `undo` now, on behalf of its plan's creator: the command's exit code and the
    /// end of its output, or why it could not be run (no SSH backend, the credential, the
    /// connection), never with key material.
    pub async fn run_undo(&self, undo: &Undo) -> UndoAttempt {
        match self.try_undo(undo).await {
            Ok((exit_code, output)) => UndoAttempt::Ran { exit_code, output },
            Err(why) => UndoAttempt::Unreachable(why),
        }
    }

    async fn try_undo(&self, undo: &Undo) -> Result<(Option<i32>, String), String> {
        let owner = RunOwner { plan: undo.plan_id.clone(), created_by: undo.plan_created_by.clone() };
        let Some(backend) = self.backends().ssh.clone() else {
            return Err("ssh is not available on this engine".into());
        };
        let credential = match backend.store.ssh_credential(&undo.credential, &owner).await {
            Ok(Some(credential)) => credential,
            Ok(None) => return Err(format!("no credential named {:?} is stored on this engine", undo.credential)),
            Err(SshStoreError::Denied(why) | SshStoreError::Unavailable(why)) => return Err(why),
        };
        let user = if undo.user.is_empty() { credential.user } else { undo.user.clone() };
        let target = Target { host: undo.address.clone(), port: undo.port, user };
        let work = async {
            let session =
                SshSession::connect(&backend.config, &target, &credential.key).await.map_err(|e| e.to_string())?;
            let command = cme_cloud::ssh::undo::now(&undo.id, &undo.command);
            let result = session.exec(&command, None, UNDO_TIMEOUT).await.map_err(|e| e.to_string());
            session.close().await;
            let output = result?;
            let text = if output.stderr.is_empty() { &output.stdout } else { &output.stderr };
            let text = String::from_utf8_lossy(text);
            let text = text.trim();
            let mut start = text.len().saturating_sub(400);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            Ok((output.exit_code, text[start..].to_string()))
        };
        tokio::time::timeout(UNDO_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(format!("the undo took longer than {} s", UNDO_TIMEOUT.as_secs())))
    }
}
