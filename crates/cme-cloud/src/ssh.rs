//! SSH to targets with key authentication (russh): run a command with a timeout and
//! capped output, upload a file with a mode. Host keys are checked against a known-hosts
//! file by policy; a changed key is never accepted silently.
//!
//! Keys stay here: callers hand a [`SshKey`] (parsed from a stored credential) and never
//! see it again; errors and logs name only its fingerprint.

pub mod key_cost;

use cme_model::Locked;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};

/// What to do with a server's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Only hosts already in the known-hosts file.
    Strict,
    /// Record unknown hosts on first use; refuse a host whose key changed. The default.
    AcceptNew,
    /// Accept any key (tests only).
    Off,
}

/// Engine-wide SSH settings.
///
/// By default: `accept-new` against `known_hosts` in the working directory, 10 s to
/// connect and authenticate, stdout and stderr each cut at 64 KiB, uploads up to 1 MiB.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    pub connect_timeout: Duration,
    pub max_output_bytes: usize,
    pub max_upload_bytes: usize,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            known_hosts: PathBuf::from("known_hosts"),
            policy: HostKeyPolicy::AcceptNew,
            connect_timeout: Duration::from_secs(10),
            max_output_bytes: 64 << 10,
            max_upload_bytes: 1 << 20,
        }
    }
}

/// Why an SSH operation failed. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("the private key cannot be read: {0}")]
    InvalidKey(String),
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("host key of {target} is not in the known-hosts file (policy strict); its fingerprint is {fingerprint}")]
    HostKeyUnknown { target: String, fingerprint: String },
    #[error(
        "host key of {target} changed (known-hosts line {line}); refusing to connect. If the host was rebuilt, remove that line"
    )]
    HostKeyChanged { target: String, line: usize },
    #[error("authentication as {user} on {target} was refused for key {fingerprint}")]
    Auth { user: String, target: String, fingerprint: String },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("ssh session failed: {0}")]
    Session(String),
}

/// A parsed private key (OpenSSH or PEM; ed25519, RSA, ECDSA; optionally encrypted).
#[derive(Clone)]
pub struct SshKey {
    key: Arc<PrivateKey>,
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SshKey({})", self.fingerprint())
    }
}

impl SshKey {
    /// Parses a key; the error never echoes the key.
    pub fn parse(text: &str, passphrase: Option<&str>) -> Result<SshKey, SshError> {
        key_cost::check(text).map_err(SshError::InvalidKey)?;
        let key = russh::keys::decode_secret_key(text, passphrase)
            .map_err(|e| SshError::InvalidKey(describe_key_error(&e)))?;
        Ok(SshKey { key: Arc::new(key) })
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The algorithm name, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> String {
        self.key.algorithm().to_string()
    }
}

fn describe_key_error(e: &russh::keys::Error) -> String {
    // The library's messages do not contain the key; keep them short anyway.
    short(&e.to_string(), 200)
}

/// At most `max` characters of `text` (never cut inside a character).
fn short(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Where to connect and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl Target {
    fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// What a command left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// None when it was killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was cut at the cap.
    pub truncated: bool,
}

/// An authenticated session to one target.
pub struct SshSession {
    handle: client::Handle<HostKeyCheck>,
    config: SshConfig,
    target: Target,
}

struct HostKeyCheck {
    config: SshConfig,
    target: Target,
    refusal: Arc<Mutex<Option<SshError>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key: &PublicKey = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                *self.refusal.locked() =
                    Some(SshError::Session("host certificates are not supported; configure a plain host key".into()));
                return Ok(false);
            }
        };
        let verdict = check_host_key(&self.config, &self.target, key);
        let accepted = verdict.is_ok();
        if let Err(refusal) = verdict {
            *self.refusal.locked() = Some(refusal);
        }
        Ok(accepted)
    }
}

/// The host-key policy, in one place.
fn check_host_key(config: &SshConfig, target: &Target, key: &PublicKey) -> Result<(), SshError> {
    if config.policy == HostKeyPolicy::Off {
        return Ok(());
    }
    let known = if config.known_hosts.exists() {
        russh::keys::check_known_hosts_path(&target.host, target.port, key, &config.known_hosts)
    } else {
        Ok(false)
    };
    match known {
        Ok(true) => Ok(()),
        Err(russh::keys::Error::KeyChanged { line }) => Err(SshError::HostKeyChanged { target: target.label(), line }),
        Err(e) => Err(SshError::Session(format!("reading {}: {e}", config.known_hosts.display()))),
        Ok(false) if config.policy == HostKeyPolicy::Strict => Err(SshError::HostKeyUnknown {
            target: target.label(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        }),
        Ok(false) => {
            russh::keys::known_hosts::learn_known_hosts_path(&target.host, target.port, key, &config.known_hosts)
                .map_err(|e| {
                    SshError::Session(format!("recording the host key in {}: {e}", config.known_hosts.display()))
                })?;
            tracing::info!(target = %target.label(), fingerprint = %key.fingerprint(HashAlg::Sha256), "recorded a new host key");
            Ok(())
        }
    }
}

impl SshSession {
    /// Connects and authenticates with `key`, within the connect timeout.
    pub async fn connect(config: &SshConfig, target: &Target, key: &SshKey) -> Result<SshSession, SshError> {
        let label = target.label();
        let refusal = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck { config: config.clone(), target: target.clone(), refusal: refusal.clone() };
        let client_config =
            Arc::new(client::Config { inactivity_timeout: Some(Duration::from_secs(600)), ..Default::default() });
        let connecting = async {
            let mut handle =
                client::connect(client_config, (target.host.as_str(), target.port), handler).await.map_err(|e| {
                    refusal
                        .locked()
                        .take()
                        .unwrap_or_else(|| SshError::Connect { target: label.clone(), reason: e.to_string() })
                })?;
            let hash = handle.best_supported_rsa_hash().await.map_err(|e| SshError::Session(e.to_string()))?.flatten();
            let auth = handle
                .authenticate_publickey(target.user.clone(), PrivateKeyWithHashAlg::new(key.key.clone(), hash))
                .await
                .map_err(|e| SshError::Session(e.to_string()))?;
            if !auth.success() {
                return Err(SshError::Auth {
                    user: target.user.clone(),
                    target: label.clone(),
                    fingerprint: key.fingerprint(),
                });
            }
            Ok(handle)
        };
        let handle = tokio::time::timeout(config.connect_timeout, connecting).await.map_err(|_| {
            SshError::Timeout(format!(
                "connecting to {label} took longer than {} ms",
                config.connect_timeout.as_millis()
            ))
        })??;
        Ok(SshSession { handle, config: config.clone(), target: target.clone() })
    }

    /// Runs `command` through the remote shell, feeding it `stdin`, waiting at most `timeout`.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>, timeout: Duration) -> Result<ExecOutput, SshError> {
        let cap = self.config.max_output_bytes;
        let running = async {
            let mut channel = self.handle.channel_open_session().await.map_err(|e| SshError::Session(e.to_string()))?;
            channel.exec(true, command).await.map_err(|e| SshError::Session(e.to_string()))?;
            if let Some(input) = stdin {
                channel.data(input).await.map_err(|e| SshError::Session(e.to_string()))?;
            }
            channel.eof().await.map_err(|e| SshError::Session(e.to_string()))?;
            let mut output = ExecOutput { exit_code: None, stdout: Vec::new(), stderr: Vec::new(), truncated: false };
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => output.truncated |= append_capped(&mut output.stdout, &data, cap),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        output.truncated |= append_capped(&mut output.stderr, &data, cap)
                    }
                    ChannelMsg::ExitStatus { exit_status } => output.exit_code = i32::try_from(exit_status).ok(),
                    _ => {}
                }
            }
            Ok(output)
        };
        tokio::time::timeout(timeout, running).await.map_err(|_| {
            SshError::Timeout(format!(
                "{command:?} on {} took longer than {} ms",
                self.target.label(),
                timeout.as_millis()
            ))
        })?
    }

    /// Writes `contents` to `remote_path` with permission bits `mode`.
    pub async fn upload(
        &self,
        remote_path: &str,
        contents: &[u8],
        mode: u32,
        timeout: Duration,
    ) -> Result<(), SshError> {
        if contents.len() > self.config.max_upload_bytes {
            return Err(SshError::InvalidArgument(format!(
                "upload of {} bytes exceeds the cap of {}",
                contents.len(),
                self.config.max_upload_bytes
            )));
        }
        if remote_path.is_empty() || remote_path.contains('\0') || remote_path.contains('\n') {
            return Err(SshError::InvalidArgument(format!("remote path {remote_path:?} is not valid")));
        }
        if mode > 0o7777 {
            return Err(SshError::InvalidArgument(format!("mode {mode:o} is not a permission mode")));
        }
        let path = shell_quote(remote_path);
        let command = format!("cat > {path} && chmod {mode:o} {path}");
        let output = self.exec(&command, Some(contents), timeout).await?;
        match output.exit_code {
            Some(0) => Ok(()),
            code => Err(SshError::Session(format!(
                "writing {remote_path} failed (exit {code:?}): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))),
        }
    }

    /// Says goodbye.
    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Appends up to the cap; true when something was cut.
fn append_capped(buffer: &mut Vec<u8>, data: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
    data.len() > room
}

/// Single-quotes a word for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn output_is_capped_and_flagged() {
        let mut buffer = Vec::new();
        assert!(!append_capped(&mut buffer, b"abc", 5));
        assert!(append_capped(&mut buffer, b"defg", 5));
        assert_eq!(buffer, b"abcde");
    }

    #[test]
    fn garbage_keys_are_refused_without_echoing_them() {
        let err = SshKey::parse(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretgarbage\n-----END OPENSSH PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, SshError::InvalidKey(_)));
        assert!(!err.to_string().contains("secretgarbage"));
    }

    #[test]
    fn long_error_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(150);
        assert_eq!(short(&text, 200), text, "150 two-byte characters fit in 200 characters");
        let cut = short(&"ключ".repeat(100), 200);
        assert_eq!(cut.chars().count(), 200);
    }
}

/// The commands that make an undo happen once the engine armed it. A timer is left on the
/// target (a process group of its own, outside the SSH session, so it survives the session
/// and the engine), and when the engine runs the undo itself it stops that timer first.
pub mod undo {
    use super::shell_quote;

    /// Where the target's timer for undo `id` keeps its process group id.
    fn pid_file(id: &str) -> String {
        let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        format!("/tmp/cme-undo-{id}.pid")
    }

    /// Starts the target's timer: after `after_seconds` it runs `command` (unless the
    /// engine ran the undo first), then forgets itself.
    pub fn timer(id: &str, command: &str, after_seconds: u64) -> String {
        let pid = pid_file(id);
        let script = format!("echo $$ > {pid}; sleep {after_seconds}; rm -f {pid}; {command}");
        format!("setsid sh -c {} </dev/null >/dev/null 2>&1 &", shell_quote(&script))
    }

    /// Runs the undo now: stops the target's timer, if it still waits, then `command`; its
    /// exit status is the command's.
    pub fn now(id: &str, command: &str) -> String {
        let pid = pid_file(id);
        format!("if [ -f {pid} ]; then kill -- -\"$(cat {pid})\" 2>/dev/null; rm -f {pid}; fi; {command}")
    }
}
