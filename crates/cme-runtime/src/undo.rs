//! Running an armed undo from the engine's side (the `undo` and `ec2` capabilities store
//! it; the engine decides when it runs): an SSH command (one session to the target with the
//! credential the run used, the target's timer stopped, the command run), a compensating
//! HTTP request (the arming plugin's grant, the `[http]` fence, the injected credentials),
//! or EC2 restored (instances started, security groups or a subnet's network ACL given
//! back) within the `[ec2]` fence. A fence that refuses it now is a refusal, retried.

use std::time::Duration;

use cme_cloud::ssh::{SshSession, Target};

use crate::credentials::{RunOwner, SshStoreError};
use crate::grant::Grant;
use crate::info::Capability;
use crate::runtime::Runtime;
use cme_cloud::http::{HttpError, Request as HttpRequest};
use cme_model::undo::{Revert, Undo, UndoAttempt};

/// How long an undo may take, connection included.
pub const UNDO_TIMEOUT: Duration = Duration::from_secs(60);

impl Runtime {
    /// Runs `undo` now, on behalf of its plan's creator: the command's exit code and the
    /// end of its output, or why it could not be run (no SSH backend, the credential, the
    /// connection), never with key material.
    /// An HTTP revert is sent with `grant` (the arming plugin's, as it stands now).
    pub async fn run_undo(&self, undo: &Undo, grant: Option<&Grant>) -> UndoAttempt {
        let attempt = match &undo.revert {
            Revert::Ssh => self.try_undo(undo).await.map_err(UndoAttempt::Unreachable),
            Revert::Http { method, url, headers, body } => {
                let request = HttpRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers: headers.clone(),
                    body: body.clone(),
                    timeout: Some(UNDO_TIMEOUT),
                };
                self.http_revert(request, grant).await
            }
            Revert::Ec2Start { region, .. } | Revert::Ec2Groups { region, .. } | Revert::Ec2Acl { region, .. } => {
                self.ec2_revert(region, &undo.revert).await
            }
            Revert::NodeStart { cloud, node_id, region, zone } => {
                self.node_start(cloud, node_id, region.clone(), zone.clone()).await
            }
        };
        match attempt {
            Ok((exit_code, output)) => UndoAttempt::Ran { exit_code, output },
            Err(attempt) => attempt,
        }
    }

    /// A compensating request: refused (and retried) when the grant or a fence no longer
    /// allows it; exit 0 for a 2xx answer, else the status as the exit code.
    async fn http_revert(
        &self,
        request: HttpRequest,
        grant: Option<&Grant>,
    ) -> Result<(Option<i32>, String), UndoAttempt> {
        let Some(grant) = grant.filter(|g| g.http.is_some()) else {
            return Err(UndoAttempt::Refused("the plugin that armed it has no HTTP grant now".into()));
        };
        // Checked against its declaration when armed; now against the grant and fences.
        let declared = [Capability::Http { urls: grant.http.as_ref().map(|h| h.urls.clone()).unwrap_or_default() }];
        let client = self.backends().http_client(&declared, grant).map_err(|e| UndoAttempt::Refused(e.to_string()))?;
        match client.send(request).await {
            Ok(response) => {
                let ok = (200..300).contains(&response.status);
                Ok((Some(if ok { 0 } else { i32::from(response.status) }), format!("HTTP {}", response.status)))
            }
            Err(HttpError::Denied(why)) => Err(UndoAttempt::Refused(why)),
            Err(e) => Err(UndoAttempt::Unreachable(e.to_string())),
        }
    }

    /// EC2 given back what a fault changed, within the `[ec2]` fence.
    async fn ec2_revert(&self, region: &str, revert: &Revert) -> Result<(Option<i32>, String), UndoAttempt> {
        if let Err(why) = self.backends().fences.check_ec2_region(region) {
            return Err(UndoAttempt::Refused(why.to_string()));
        }
        let Some(ec2) = self.backends().ec2.clone() else {
            return Err(UndoAttempt::Unreachable("ec2 is not available on this engine".into()));
        };
        let unreachable = |e: cme_cloud::ec2::Ec2Error| UndoAttempt::Unreachable(e.to_string());
        let done = match revert {
            Revert::Ec2Start { instance_ids, .. } => {
                let started = ec2.start_instances(region, instance_ids).await.map_err(unreachable)?;
                let states: Vec<String> =
                    started.iter().map(|s| format!("{}: {}", s.instance_id, s.current_state)).collect();
                format!("started {}", states.join(", "))
            }
            Revert::Ec2Groups { instance_id, groups, .. } => {
                ec2.set_security_groups(region, instance_id, groups).await.map_err(unreachable)?;
                format!("{instance_id} has its security groups {} again", groups.join(", "))
            }
            Revert::Ec2Acl { subnet_id, network_acl_id, .. } => {
                ec2.associate_acl(region, subnet_id, network_acl_id).await.map_err(unreachable)?;
                format!("{subnet_id} has its network ACL {network_acl_id} again")
            }
            Revert::Ssh | Revert::Http { .. } | Revert::NodeStart { .. } => unreachable!("dispatched above"),
        };
        Ok((Some(0), done))
    }

    /// A node a `compute` stop took out, started again on its cloud (waiting for it to be
    /// stopped first); a cloud no longer configured is a refusal, retried.
    async fn node_start(
        &self,
        cloud: &str,
        node_id: &str,
        region: Option<String>,
        zone: Option<String>,
    ) -> Result<(Option<i32>, String), UndoAttempt> {
        let Some(configured) = self.backends().clouds.iter().find(|c| c.name() == cloud).cloned() else {
            return Err(UndoAttempt::Refused(format!("cloud {cloud:?} is not configured on this engine")));
        };
        match configured.start_again(node_id, region, zone).await {
            Ok(acted) if acted.already => Ok((Some(0), format!("{node_id} on cloud {cloud} was already running"))),
            Ok(acted) => Ok((Some(0), format!("started {node_id} on cloud {cloud}: {}", acted.current))),
            Err(e) => Err(UndoAttempt::Unreachable(e.to_string())),
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
