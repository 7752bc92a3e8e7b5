//! The SSH backend against a real OpenSSH sshd on 127.0.0.1, started by the test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cme_cloud::ssh::{HostKeyPolicy, SshConfig, SshError, SshKey, SshSession, Target};

use cme_test_peers::sshd::{Sshd, available, current_user as user, ed25519, free_port, keygen};

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cme-ssh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_sshd(dir: &Path, port: u16, host_key: &Path, authorized: &[&Path]) -> Sshd {
    Sshd::start(dir, &["127.0.0.1"], port, host_key, authorized)
}

fn config(dir: &Path, policy: HostKeyPolicy) -> SshConfig {
    SshConfig { known_hosts: dir.join("known_hosts"), policy, max_output_bytes: 1000, ..SshConfig::default() }
}

fn key(path: &Path, passphrase: Option<&str>) -> SshKey {
    SshKey::parse(&std::fs::read_to_string(path).unwrap(), passphrase).unwrap()
}

fn target(port: u16) -> Target {
    Target { host: "127.0.0.1".into(), port, user: user() }
}

#[tokio::test]
async fn commands_run_with_exit_code_output_timeout_and_caps() {
    if !available() {
        return;
    }
    let dir = workdir("exec");
    let host = ed25519(&dir, "host");
    let client = ed25519(&dir, "id_ed25519");
    let sshd = start_sshd(&dir, free_port(), &host, &[&client]);
    let session = SshSession::connect(&config(&dir, HostKeyPolicy::AcceptNew), &target(sshd.port), &key(&client, None))
        .await
        .unwrap();

    let output = session.exec("echo out; echo err >&2; exit 3", None, Duration::from_secs(10)).await.unwrap();
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
    assert!(!output.truncated);

    let flood = session.exec("head -c 5000 /dev/zero", None, Duration::from_secs(10)).await.unwrap();
    assert_eq!(flood.stdout.len(), 1000, "cut at the cap");
    assert!(flood.truncated);
    assert_eq!(flood.exit_code, Some(0));

    let started = Instant::now();
    let slow = session.exec("sleep 30", None, Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(&slow, SshError::Timeout(m) if m.contains("500 ms")), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let remote = dir.join("uploaded dir's script.sh");
    session
        .upload(remote.to_str().unwrap(), b"#!/bin/sh\necho uploaded\n", 0o750, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&remote).unwrap(), b"#!/bin/sh\necho uploaded\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&remote).unwrap().permissions().mode() & 0o7777, 0o750);
    let ran = session
        .exec(&cme_cloud::ssh::shell_quote(remote.to_str().unwrap()), None, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ran.stdout, b"uploaded\n");
    session.close().await;
}

#[tokio::test]
async fn every_key_kind_and_format_authenticates() {
    if !available() {
        return;
    }
    let dir = workdir("keys");
    let host = ed25519(&dir, "host");
    let ed25519_key = ed25519(&dir, "id_ed25519");
    let rsa_pem = keygen(&dir, "id_rsa_pem", &["-t", "rsa", "-b", "3072", "-m", "PEM", "-N", ""]);
    let rsa = keygen(&dir, "id_rsa", &["-t", "rsa", "-b", "3072", "-N", ""]);
    let ecdsa = keygen(&dir, "id_ecdsa", &["-t", "ecdsa", "-b", "256", "-N", ""]);
    let locked = keygen(&dir, "id_locked", &["-t", "ed25519", "-N", "correct horse"]);
    let sshd = start_sshd(&dir, free_port(), &host, &[&ed25519_key, &rsa_pem, &rsa, &ecdsa, &locked]);
    for (path, passphrase) in
        [(&ed25519_key, None), (&rsa_pem, None), (&rsa, None), (&ecdsa, None), (&locked, Some("correct horse"))]
    {
        let key = key(path, passphrase);
        let session = SshSession::connect(&config(&dir, HostKeyPolicy::AcceptNew), &target(sshd.port), &key)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(session.exec("echo ok", None, Duration::from_secs(10)).await.unwrap().stdout, b"ok\n");
        session.close().await;
    }
    assert!(matches!(
        SshKey::parse(&std::fs::read_to_string(&locked).unwrap(), Some("wrong")),
        Err(SshError::InvalidKey(_))
    ));
    // A key the server does not know: refused, and only its fingerprint is named.
    let stranger = ed25519(&dir, "id_stranger");
    let stranger_key = key(&stranger, None);
    let refused = SshSession::connect(&config(&dir, HostKeyPolicy::AcceptNew), &target(sshd.port), &stranger_key)
        .await
        .err()
        .unwrap();
    assert_eq!(
        refused,
        SshError::Auth {
            user: user(),
            target: format!("{}@127.0.0.1:{}", user(), sshd.port),
            fingerprint: stranger_key.fingerprint()
        }
    );
    assert!(!refused.to_string().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn host_keys_are_recorded_once_and_a_changed_key_is_refused() {
    if !available() {
        return;
    }
    let dir = workdir("hostkeys");
    let client = ed25519(&dir, "id_ed25519");
    let first_host = ed25519(&dir, "host1");
    let second_host = ed25519(&dir, "host2");
    let port = free_port();
    let client_key = key(&client, None);

    // strict with an empty known-hosts file: refused, naming the fingerprint to check.
    let sshd = start_sshd(&dir, port, &first_host, &[&client]);
    let strict =
        SshSession::connect(&config(&dir, HostKeyPolicy::Strict), &target(port), &client_key).await.err().unwrap();
    assert!(
        matches!(&strict, SshError::HostKeyUnknown { fingerprint, .. } if fingerprint.starts_with("SHA256:")),
        "{strict}"
    );

    // accept-new records it; strict then accepts it.
    SshSession::connect(&config(&dir, HostKeyPolicy::AcceptNew), &target(port), &client_key)
        .await
        .unwrap()
        .close()
        .await;
    assert!(std::fs::read_to_string(dir.join("known_hosts")).unwrap().contains("ssh-ed25519"));
    SshSession::connect(&config(&dir, HostKeyPolicy::Strict), &target(port), &client_key).await.unwrap().close().await;
    drop(sshd);

    // The same address now presents another key: refused under both policies.
    let _sshd = start_sshd(&dir, port, &second_host, &[&client]);
    for policy in [HostKeyPolicy::AcceptNew, HostKeyPolicy::Strict] {
        let changed = SshSession::connect(&config(&dir, policy), &target(port), &client_key).await.err().unwrap();
        assert!(matches!(changed, SshError::HostKeyChanged { .. }), "{policy:?}: {changed}");
    }
    // off (tests only) accepts anything.
    SshSession::connect(&config(&dir, HostKeyPolicy::Off), &target(port), &client_key).await.unwrap().close().await;
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let dir = workdir("closed");
    let key = {
        if !available() {
            return;
        }
        key(&ed25519(&dir, "id"), None)
    };
    let error =
        SshSession::connect(&config(&dir, HostKeyPolicy::AcceptNew), &target(free_port()), &key).await.err().unwrap();
    assert!(matches!(error, SshError::Connect { .. }), "{error}");
}
