//! Signed uploads: a plugin may come with a detached SSH signature (`SSHSIG`, ed25519,
//! namespace `cme-plugin`) over its bytes, as `ssh-keygen -Y sign -n cme-plugin -f KEY
//! FILE.wasm` or `cme plugins push --sign KEY` make it. The operator names the keys it
//! trusts (`[registry] trusted_keys`) and may accept signed plugins only
//! (`require_signature`). A signature that does not verify with a trusted key is refused,
//! never ignored: whoever sent it meant the plugin to be checked.

use ssh_key::{PublicKey, SshSig};

/// What a plugin signature signs: the namespace keeps a signature made for something
/// else (a git commit, a file) from passing as one over a plugin.
pub const SIGNATURE_NAMESPACE: &str = "cme-plugin";

/// The keys an operator trusts to sign plugins, by name. By default none, and unsigned
/// uploads are accepted.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, PublicKey)>,
    /// Unsigned uploads are refused.
    pub required: bool,
}

/// Who signed a plugin: the trusted key's name and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub name: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.fingerprint)
    }
}

/// Why a signature, or its absence, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "this engine accepts signed plugins only ([registry] require_signature): sign it with `cme plugins push --sign KEY` or `ssh-keygen -Y sign -n cme-plugin -f KEY FILE.wasm`"
    )]
    Missing,
    #[error("the signature is not an SSH signature (SSHSIG, as `ssh-keygen -Y sign` writes it): {0}")]
    Malformed(String),
    #[error(
        "the signature is for namespace {0:?}; plugin signatures use \"cme-plugin\" (ssh-keygen -Y sign -n cme-plugin)"
    )]
    WrongNamespace(String),
    #[error(
        "no trusted key verifies this signature over these bytes (signed by {0}); the component was changed after signing, or its key is not in [registry] trusted_keys"
    )]
    Untrusted(String),
    #[error(
        "plugin {0} is not signed by a key in [registry] trusted_keys and this engine accepts signed plugins only (require_signature): upload it again, signed (`cme plugins push --sign KEY`)"
    )]
    Unsigned(String),
}

/// A trusted key that does not parse, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[registry] trusted_keys.{name}: {reason}")]
pub struct TrustedKeyError {
    pub name: String,
    pub reason: String,
}

impl TrustedKeys {
    /// Keys as OpenSSH public key lines (`ssh-ed25519 AAAA... comment`), by name; only
    /// ed25519 keys are accepted.
    pub fn new<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str)>,
        required: bool,
    ) -> Result<TrustedKeys, TrustedKeyError> {
        let mut parsed = Vec::new();
        for (name, line) in keys {
            let error = |reason: String| TrustedKeyError { name: name.to_string(), reason };
            let key =
                PublicKey::from_openssh(line.trim()).map_err(|e| error(format!("not an OpenSSH public key: {e}")))?;
            if key.algorithm() != ssh_key::Algorithm::Ed25519 {
                return Err(error(format!("a {} key; plugin signatures are ed25519", key.algorithm())));
            }
            parsed.push((name.to_string(), key));
        }
        Ok(TrustedKeys { keys: parsed, required })
    }

    /// Whether any key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a stored plugin signed by `signed_by` (as [`Signer`] displays it; None:
    /// unsigned) may be granted, enabled and run now. With `require_signature` only a
    /// signer whose key is still trusted counts: one removed from `trusted_keys` since
    /// the upload vouches for nothing.
    pub fn vouches_for(&self, signed_by: Option<&str>) -> bool {
        if !self.required {
            return true;
        }
        let Some(signed_by) = signed_by else { return false };
        let fingerprint = signed_by.rsplit_once('(').map(|(_, rest)| rest.trim_end_matches(')')).unwrap_or_default();
        self.keys.iter().any(|(_, key)| key.fingerprint(Default::default()).to_string() == fingerprint)
    }

    /// Judges an upload's signature (the armored `.sig` text): its signer, None for an
    /// unsigned upload this engine accepts, or why it is refused.
    pub fn judge(&self, wasm: &[u8], signature: Option<&str>) -> Result<Option<Signer>, SignatureError> {
        let Some(text) = signature else {
            return if self.required { Err(SignatureError::Missing) } else { Ok(None) };
        };
        let signature = SshSig::from_pem(text.trim()).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        if signature.namespace() != SIGNATURE_NAMESPACE {
            return Err(SignatureError::WrongNamespace(signature.namespace().to_string()));
        }
        let claimed = PublicKey::from(signature.public_key().clone());
        for (name, key) in &self.keys {
            if key.key_data() == claimed.key_data() && key.verify(SIGNATURE_NAMESPACE, wasm, &signature).is_ok() {
                return Ok(Some(Signer {
                    name: name.clone(),
                    fingerprint: key.fingerprint(Default::default()).to_string(),
                }));
            }
        }
        Err(SignatureError::Untrusted(claimed.fingerprint(Default::default()).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed ed25519 key (made for these tests, not used anywhere else).
    const PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCszxv/smfLMsFw+IRnS8sUCOzfgxUpAS2aiqnxvOldtgAAAJCdTi1DnU4t
QwAAAAtzc2gtZWQyNTUxOQAAACCszxv/smfLMsFw+IRnS8sUCOzfgxUpAS2aiqnxvOldtg
AAAECJdfianpKPiCnEuG3KM+s5avJuhY1DTUCS4QlSlISQ96zPG/+yZ8sywXD4hGdLyxQI
7N+DFSkBLZqKqfG86V22AAAACHRlc3Qta2V5AQIDBAU=
-----END OPENSSH PRIVATE KEY-----
";

    fn keys() -> (ssh_key::PrivateKey, String) {
        let private = ssh_key::PrivateKey::from_openssh(PRIVATE).unwrap();
        let public = private.public_key().to_openssh().unwrap();
        (private, public)
    }

    fn sign(private: &ssh_key::PrivateKey, namespace: &str, bytes: &[u8]) -> String {
        private.sign(namespace, ssh_key::HashAlg::Sha512, bytes).unwrap().to_pem(ssh_key::LineEnding::LF).unwrap()
    }

    #[test]
    fn a_signature_by_a_trusted_key_names_its_signer() {
        let (private, public) = keys();
        let trusted = TrustedKeys::new([("ci", public.as_str())], true).unwrap();
        let signer =
            trusted.judge(b"component", Some(&sign(&private, SIGNATURE_NAMESPACE, b"component"))).unwrap().unwrap();
        assert_eq!(signer.name, "ci");
        assert!(signer.fingerprint.starts_with("SHA256:"), "{signer}");
    }

    #[test]
    fn changed_bytes_another_namespace_and_no_signature_are_refused() {
        let (private, public) = keys();
        let trusted = TrustedKeys::new([("ci", public.as_str())], true).unwrap();
        let signed = sign(&private, SIGNATURE_NAMESPACE, b"component");
        assert!(matches!(trusted.judge(b"component!", Some(&signed)), Err(SignatureError::Untrusted(_))));
        let git = sign(&private, "git", b"component");
        assert_eq!(trusted.judge(b"component", Some(&git)), Err(SignatureError::WrongNamespace("git".into())));
        assert_eq!(trusted.judge(b"component", None), Err(SignatureError::Missing));
        assert!(matches!(trusted.judge(b"component", Some("not a signature")), Err(SignatureError::Malformed(_))));
        let open = TrustedKeys::new([("ci", public.as_str())], false).unwrap();
        assert_eq!(open.judge(b"component", None), Ok(None), "unsigned is fine unless required");
        assert!(
            matches!(TrustedKeys::default().judge(b"component", Some(&signed)), Err(SignatureError::Untrusted(_))),
            "a signature nobody trusts is refused"
        );
    }

    #[test]
    fn trusted_keys_must_be_ed25519_public_keys() {
        let error = TrustedKeys::new([("ci", "ssh-rsa AAAA")], false).unwrap_err();
        assert_eq!(error.name, "ci");
        assert!(TrustedKeys::new([("ci", "nonsense")], false).is_err());
    }

    #[test]
    fn only_a_signer_still_trusted_vouches_for_a_stored_plugin_when_signatures_are_required() {
        let (_, public) = keys();
        let required = TrustedKeys::new([("ci", public.as_str())], true).unwrap();
        let fingerprint =
            ssh_key::PublicKey::from_openssh(&public).unwrap().fingerprint(Default::default()).to_string();
        assert!(required.vouches_for(Some(&format!("ci ({fingerprint})"))));
        assert!(required.vouches_for(Some(&format!("renamed ({fingerprint})"))), "the key, not its name, vouches");
        assert!(!required.vouches_for(None), "unsigned");
        assert!(
            !required.vouches_for(Some("old (SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)")),
            "a key no longer trusted"
        );
        assert!(!required.vouches_for(Some("no fingerprint")));
        let optional = TrustedKeys::new([("ci", public.as_str())], false).unwrap();
        assert!(optional.vouches_for(None), "unsigned plugins are fine when signatures are optional");
    }
}
