//! Local stand-ins for the cloud APIs no emulator serves here (GCE, Azure, DigitalOcean):
//! servers written for this project from the routes and shapes of each provider's
//! official client (`fakes/*.py`, standard-library Python), one per test, on a loopback
//! port of their own. Each behaves as the real API does where an engine can get it wrong:
//! it pages small, answers one 429 with `Retry-After`, keeps an operation in progress for
//! a while, can fail one, and wants its credential on every request. [`OpenStack`] is a
//! real Keystone beside such a Nova.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// A fake cloud API, stopped when dropped.
pub struct FakeCloud {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// GCE: the service account's key, as Google hands it out (JSON with `client_email`,
    /// `private_key`, `token_uri` pointing at the fake's token endpoint).
    pub service_account_key: Option<String>,
    child: Child,
}

/// The CI venv's Python (`CME_TEST_PYTHON`, else `~/.cache/cme-venv/bin/python`, else
/// `python3`): the GCE fake checks signatures with `cryptography`, which moto brings.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/cme-venv/bin/python"));
    std::env::var_os("CME_TEST_PYTHON")
        .map(PathBuf::from)
        .or(venv.filter(|p| p.exists()))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

impl FakeCloud {
    /// The DigitalOcean API v2 (`fakes/digitalocean.py`), wanting `Bearer token`.
    pub fn digitalocean(token: &str) -> FakeCloud {
        FakeCloud::start("digitalocean.py", &[token])
    }

    /// Compute Engine API v1 and Google's OAuth token endpoint (`fakes/gce.py`) for
    /// `project`, with a fresh service account whose key is [`FakeCloud::service_account_key`].
    pub fn gce(project: &str) -> FakeCloud {
        const EMAIL: &str = "chaos@cme-tests.iam.gserviceaccount.com";
        let keys = Command::new(python())
            .args(["-c", GENERATE_KEY])
            .output()
            .unwrap_or_else(|e| panic!("generating a service-account key: {e}"));
        assert!(keys.status.success(), "generating a key: {}", String::from_utf8_lossy(&keys.stderr));
        let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).expect("the key pair as JSON");
        // One file per fake: tests start theirs at once, in one process.
        static FAKES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = FAKES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let public = std::env::temp_dir().join(format!("cme-fake-gce-{}-{nth}.pem", std::process::id()));
        std::fs::write(&public, keys["public"].as_str().expect("a public key")).expect("writing the public key");
        let mut fake = FakeCloud::start("gce.py", &[project, EMAIL, public.to_str().expect("a UTF-8 path")]);
        // Read at its start, before it printed its port.
        let _ = std::fs::remove_file(&public);
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": "0123456789abcdef",
            "private_key": keys["private"],
            "client_email": EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": format!("{}/token", fake.url),
        });
        fake.service_account_key = Some(key.to_string());
        fake
    }

    /// Azure Resource Manager (compute, network) and Azure AD's token endpoint
    /// (`fakes/azure.py`) for `subscription`, issuing tokens to the service principal
    /// `client_id` of `tenant` with `secret`.
    pub fn azure(subscription: &str, tenant: &str, client_id: &str, secret: &str) -> FakeCloud {
        FakeCloud::start("azure.py", &[subscription, tenant, client_id, secret])
    }

    fn start(script: &str, args: &[&str]) -> FakeCloud {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fakes").join(script);
        let mut child = Command::new(python())
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (python3 is needed)", path.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("the fake prints its port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("{script} printed {line:?}, not its port"));
        FakeCloud { url: format!("http://127.0.0.1:{port}"), service_account_key: None, child }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints a fresh RSA key pair as JSON (`private`: PKCS#8 PEM, `public`: SPKI PEM).
const GENERATE_KEY: &str = "
import json
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
print(json.dumps({
    'private': key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    'public': key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
}))
";

/// A small OpenStack (`fakes/openstack.py`): a real Keystone from PyPI under gunicorn,
/// whose catalog's `compute` endpoints (public and internal, RegionOne) point at the
/// local Nova of `fakes/nova.py`, both over HTTPS with a CA made for this run. Keystone
/// holds a project `chaos`, a user `chaos` (member of it) and an application credential
/// of that user. Stopped when dropped.
pub struct OpenStack {
    /// Keystone's v3 URL, `https://127.0.0.1:PORT/v3`.
    pub keystone: String,
    /// Nova's URL, `https://127.0.0.1:PORT/v2.1`.
    pub nova: String,
    /// The run's CA, which both are trusted by.
    pub ca_file: PathBuf,
    pub project_id: String,
    pub username: String,
    pub password: String,
    pub application_credential_id: String,
    pub application_credential_secret: String,
    child: Child,
    _dir: TempDir,
}

/// The Python of the Keystone venv (`CME_TEST_KEYSTONE_PYTHON`, else
/// `~/.cache/cme-keystone-venv/bin/python`), when it exists: .ci/run installs Keystone and
/// openstacksdk in a venv of their own, as their pins clash with moto's.
pub fn keystone_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/cme-keystone-venv/bin/python"));
    std::env::var_os("CME_TEST_KEYSTONE_PYTHON").map(PathBuf::from).or(venv).filter(|p| p.exists())
}

impl OpenStack {
    /// Starts Keystone and Nova (about 10 s: Keystone's database and keys are made
    /// first); `None`, after [`crate::skip::missing_peer`], without the Keystone venv.
    pub fn start() -> Option<OpenStack> {
        let Some(keystone_python) = keystone_python() else {
            crate::skip::missing_peer(
                "keystone",
                "python3 -m venv ~/.cache/cme-keystone-venv && ~/.cache/cme-keystone-venv/bin/pip install keystone gunicorn (see .ci/run)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a directory for Keystone");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fakes/openstack.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(&keystone_python)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("openstack.py prints its peers");
        let peers: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("openstack.py printed {line:?}, not its peers (its stderr says why)"));
        let text = |key: &str| peers[key].as_str().unwrap_or_else(|| panic!("{key} in {line}")).to_string();
        Some(OpenStack {
            keystone: text("keystone"),
            nova: text("nova"),
            ca_file: PathBuf::from(text("ca_file")),
            project_id: text("project_id"),
            username: text("username"),
            password: text("password"),
            application_credential_id: text("application_credential_id"),
            application_credential_secret: text("application_credential_secret"),
            child,
            _dir: dir,
        })
    }

    /// Nova's own root (its `/_fake` routes live there).
    pub fn nova_root(&self) -> &str {
        self.nova.trim_end_matches("/v2.1")
    }
}

impl Drop for OpenStack {
    fn drop(&mut self) {
        // Keystone's gunicorn dies with the launcher (PR_SET_PDEATHSIG).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
