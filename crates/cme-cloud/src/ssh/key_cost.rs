//! What reading a private key may cost, judged before it is read. An encrypted key names
//! its own key-derivation work — bcrypt rounds (OpenSSH), PBKDF2 iterations or scrypt's
//! N, r and p (PKCS#8), Argon2's memory and passes (PuTTY) — and a hostile key names
//! hours of CPU or gigabytes of memory in a few bytes. Each is read from the key's header
//! and refused past a cap that keeps one key well under a second and 64 MiB.

use base64::Engine as _;

/// The largest private key text accepted (an RSA 16384-bit key is about 12.5 KB).
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// bcrypt-pbkdf rounds (`ssh-keygen -a`; 16 by default, 100 is common advice).
pub const MAX_BCRYPT_ROUNDS: u32 = 100;
/// PBKDF2 iterations (OpenSSL writes 2,048; OWASP's advice for SHA-256 is 600,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// scrypt's memory, 128 × r × N bytes, times p.
pub const MAX_SCRYPT_WORK_BYTES: u64 = 32 << 20;
/// Argon2 memory in KiB (PuTTY writes 8,192).
pub const MAX_ARGON2_MEMORY_KIB: u64 = 32 << 10;
/// Argon2 passes (PuTTY tunes them to about 0.1 s) and lanes.
pub const MAX_ARGON2_PASSES: u64 = 64;
pub const MAX_ARGON2_PARALLELISM: u64 = 8;

/// Refuses a key whose size or declared key-derivation cost is past the caps above.
pub(crate) fn check(text: &str) -> Result<(), String> {
    if text.len() > MAX_KEY_BYTES {
        return Err(format!("the key is {} bytes; a private key is at most {MAX_KEY_BYTES}", text.len()));
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with("PuTTY-User-Key-File-") {
        return check_ppk(trimmed);
    }
    if let Some(der) = pem_body(trimmed, "OPENSSH PRIVATE KEY") {
        return check_openssh(&der);
    }
    if let Some(der) = pem_body(trimmed, "ENCRYPTED PRIVATE KEY") {
        return check_pkcs8(&der);
    }
    Ok(())
}

/// The decoded body of the first PEM block labelled `label`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let start = text.find(&begin)? + begin.len();
    let end = text[start..].find("-----END ").map_or(text.len(), |e| start + e);
    let body: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some(base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default())
}

/// `openssh-key-v1\0`, then ciphername, kdfname and kdfoptions (salt, rounds) as SSH strings.
fn check_openssh(der: &[u8]) -> Result<(), String> {
    let Some(mut rest) = der.strip_prefix(b"openssh-key-v1\0") else { return Ok(()) };
    let mut string = || -> Option<&[u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4usize.checked_add(len)?)?;
        rest = &rest[4 + len..];
        Some(value)
    };
    let (Some(_cipher), Some(kdf), Some(options)) = (string(), string(), string()) else { return Ok(()) };
    if kdf != b"bcrypt" {
        return Ok(());
    }
    let salt_len =
        options.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize).unwrap_or(usize::MAX);
    let rounds = salt_len
        .checked_add(4)
        .and_then(|at| options.get(at..at + 4))
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    match rounds {
        Some(rounds) if rounds > MAX_BCRYPT_ROUNDS => Err(format!(
            "the key is encrypted with {rounds} bcrypt rounds; at most {MAX_BCRYPT_ROUNDS} are accepted (re-encrypt it: ssh-keygen -p -a 64 -f KEY)"
        )),
        _ => Ok(()),
    }
}

fn check_pkcs8(der: &[u8]) -> Result<(), String> {
    use pkcs8::pkcs5::{EncryptionScheme, pbes2::Kdf};
    let Ok(info) = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der) else { return Ok(()) };
    let EncryptionScheme::Pbes2(params) = info.encryption_algorithm else { return Ok(()) };
    match params.kdf {
        Kdf::Pbkdf2(kdf) if kdf.iteration_count > MAX_PBKDF2_ITERATIONS => Err(format!(
            "the key is encrypted with {} PBKDF2 iterations; at most {MAX_PBKDF2_ITERATIONS} are accepted",
            kdf.iteration_count
        )),
        Kdf::Scrypt(kdf) => {
            let work = 128u64
                .saturating_mul(kdf.cost_parameter)
                .saturating_mul(kdf.block_size as u64)
                .saturating_mul(kdf.parallelization as u64);
            if work > MAX_SCRYPT_WORK_BYTES {
                Err(format!(
                    "the key's scrypt parameters ask for {work} bytes of work; at most {MAX_SCRYPT_WORK_BYTES} are accepted"
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// PuTTY's headers, `Name: value` lines before the key's body.
fn check_ppk(text: &str) -> Result<(), String> {
    let header = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(|v| v.trim().parse::<u64>().unwrap_or(u64::MAX))
    };
    for (name, cap) in [
        ("Argon2-Memory", MAX_ARGON2_MEMORY_KIB),
        ("Argon2-Passes", MAX_ARGON2_PASSES),
        ("Argon2-Parallelism", MAX_ARGON2_PARALLELISM),
    ] {
        if let Some(value) = header(name)
            && value > cap
        {
            return Err(format!("the key's {name} is {value}; at most {cap} is accepted"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssh_key(kdf: &str, rounds: u32) -> String {
        let mut der = b"openssh-key-v1\0".to_vec();
        let string = |bytes: &[u8], der: &mut Vec<u8>| {
            der.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            der.extend_from_slice(bytes);
        };
        string(b"aes256-ctr", &mut der);
        string(kdf.as_bytes(), &mut der);
        let mut options = Vec::new();
        string(&[7u8; 16], &mut options);
        options.extend_from_slice(&rounds.to_be_bytes());
        string(&options, &mut der);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n")
    }

    #[test]
    fn keys_that_name_too_much_derivation_work_are_refused_before_any_is_done() {
        assert!(check(&openssh_key("bcrypt", 16)).is_ok());
        assert!(check(&openssh_key("bcrypt", 100)).is_ok());
        assert!(check(&openssh_key("bcrypt", 4_000_000_000)).unwrap_err().contains("bcrypt rounds"));
        assert!(check(&openssh_key("none", 4_000_000_000)).is_ok(), "unencrypted keys derive nothing");
        let ppk = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\nKey-Derivation: Argon2id\nArgon2-Memory: 4194304\nArgon2-Passes: 8\n";
        assert!(check(ppk).unwrap_err().contains("Argon2-Memory"));
        assert!(check(&ppk.replace("4194304", "8192")).is_ok());
        assert!(check(&"A".repeat(MAX_KEY_BYTES + 1)).unwrap_err().contains("at most"));
        assert!(check("-----BEGIN OPENSSH PRIVATE KEY-----\n!!!\n").is_ok(), "garbage is left to the parser to refuse");
    }
}
