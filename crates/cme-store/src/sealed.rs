//! Credentials at rest: private keys and passphrases are sealed with AES-256-GCM under the
//! engine's credential key before they reach the database (`enc:v1:` + base64 of nonce
//! and ciphertext; the credential's name is the associated data, so a sealed key cannot
//! be moved to another credential's row). Rows written before sealing existed are read as
//! they are.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use cme_engine::StorageError;

const PREFIX: &str = "enc:v1:";

/// The 32-byte key credentials are sealed with. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialKey([u8; 32]);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(..)")
    }
}

/// Why text is not a credential key (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyFileError(pub String);

impl CredentialKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        CredentialKey(bytes)
    }

    /// From 64 hex digits (the form of the key file and of `CME_CREDENTIAL_KEY`).
    pub fn from_hex(text: &str) -> Result<Self, KeyFileError> {
        let text = text.trim();
        let bytes = hex_decode(text)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| KeyFileError("a credential key is 64 hex digits (32 bytes)".into()))?;
        Ok(CredentialKey(bytes.try_into().expect("32 bytes")))
    }

    /// A fresh random key (from the system's generator, through uuid's v4).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        CredentialKey(bytes)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0).expect("a 32-byte key")
    }

    /// `secret`, sealed for the credential `name`.
    pub(crate) fn seal(&self, name: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
        let sealed = self
            .cipher()
            .encrypt(&Nonce::from(nonce), Payload { msg: secret.as_bytes(), aad: name.as_bytes() })
            .expect("AES-GCM encryption of a bounded input");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out))
    }
}

/// The secret of a stored column: unsealed with `key`, or as it is when it was never sealed.
pub(crate) fn open(key: Option<&CredentialKey>, name: &str, stored: &str) -> Result<String, StorageError> {
    let Some(body) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
    let key = key.ok_or_else(|| {
        StorageError::Corrupt(format!("credential {name} is sealed and this engine has no credential key"))
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| StorageError::Corrupt(format!("credential {name}: sealed text is not base64")))?;
    if bytes.len() < 12 {
        return Err(StorageError::Corrupt(format!("credential {name}: sealed text is too short")));
    }
    let (nonce, sealed) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
    let plain =
        key.cipher().decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: name.as_bytes() }).map_err(|_| {
            StorageError::Corrupt(format!("credential {name} does not open with this engine's credential key"))
        })?;
    String::from_utf8(plain).map_err(|_| StorageError::Corrupt(format!("credential {name}: not text")))
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
