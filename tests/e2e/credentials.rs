//! SSH credentials: stored by admins, shown by fingerprint only, never echoed or logged.

use std::process::Command;

use serde_json::json;

use crate::support::*;

fn keygen(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let path = dir.join("id_test");
    let status = Command::new("ssh-keygen").args(["-q", "-f"]).arg(&path).args(args).status().ok()?;
    status.success().then(|| std::fs::read_to_string(&path).unwrap())
}

#[tokio::test]
async fn credentials_are_stored_by_admins_and_never_shown_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(key) = keygen(dir.path(), &["-t", "ed25519", "-N", "open sesame"]) else {
        cme_test_peers::missing_peer("ssh-keygen", "apt-get install openssh-client");
        return;
    };
    let tokens = "operator:operator-secret,admin:admin-secret";
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), tokens.into())], ..Options::default() },
    );
    let admin = engine.client().with_token("admin-secret");
    let operator = engine.client().with_token("operator-secret");
    let body = json!({"name": "prod-ssh", "user": "ec2-user", "private_key": key, "passphrase": "open sesame"});

    assert_eq!(operator.post("/api/1/credentials/", &body).await.status, 403);
    let created = admin.post("/api/1/credentials/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.location.as_deref(), Some("/api/1/credentials/prod-ssh"));
    assert_eq!(created.body["algorithm"], "ssh-ed25519");
    assert!(created.body["fingerprint"].as_str().unwrap().starts_with("SHA256:"));

    let listed = admin.get("/api/1/credentials").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["_embedded"]["credentials"][0]["name"], "prod-ssh");
    assert_eq!(operator.get("/api/1/credentials/").await.status, 403);

    // The same name again is a conflict; a wrong passphrase or garbage is a 400 that does not echo the key.
    assert_eq!(admin.post("/api/1/credentials/", &body).await.status, 409);
    let mut wrong = body.clone();
    wrong["name"] = json!("other");
    wrong["passphrase"] = json!("nope");
    let refused = admin.post("/api/1/credentials/", &wrong).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["pointer"], "/private_key");
    let garbage = admin
        .post("/api/1/credentials/", &json!({"name": "g", "user": "u", "private_key": "not-a-key-SECRET123"}))
        .await;
    assert_eq!(garbage.status, 400);
    let bad_type = admin.post("/api/1/credentials/", &json!({"name": "g", "user": "u", "private_key": 12345987})).await;
    assert_eq!(bad_type.status, 400);

    // Nothing the engine answered or logged contains the key, its passphrase or the garbage.
    let secret_line = key.lines().nth(1).unwrap();
    for text in [
        created.body.to_string(),
        listed.body.to_string(),
        refused.body.to_string(),
        garbage.body.to_string(),
        bad_type.body.to_string(),
        engine.stderr(),
    ] {
        assert!(
            !text.contains(secret_line)
                && !text.contains("open sesame")
                && !text.contains("SECRET123")
                && !text.contains("12345987"),
            "leak in {text}"
        );
    }

    let deleted = admin.delete("/api/1/credentials/prod-ssh").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(admin.delete("/api/1/credentials/prod-ssh").await.status, 404);
    let audit = admin.get("/api/1/audit/").await.body;
    let actions: Vec<&str> =
        audit["_embedded"]["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["credential.delete", "credential.create"]);
}

#[tokio::test]
async fn a_new_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    assert_eq!(engine.client().get("/healthz").await.status, 200);
    for file in ["cme.db", "cme.db-wal", "cme.db-shm"] {
        let path = dir.path().join(file);
        if file == "cme.db" || path.exists() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} is {mode:o}: it holds credentials");
        }
    }
}

#[tokio::test]
async fn stored_keys_are_sealed_in_the_database_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(key) = keygen(dir.path(), &["-t", "ed25519", "-N", ""]) else {
        cme_test_peers::missing_peer("ssh-keygen", "apt-get install openssh-client");
        return;
    };
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let created = engine
        .client()
        .post("/api/1/credentials/", &json!({"name": "sealed", "user": "ubuntu", "private_key": key}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let key_file = dir.path().join("cme.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600,
        "the key file is the owner's only"
    );
    // Whatever SQLite has written so far (file and WAL) holds no line of the key.
    let mut stored = std::fs::read(dir.path().join("cme.db")).unwrap();
    stored.extend(std::fs::read(dir.path().join("cme.db-wal")).unwrap_or_default());
    let stored = String::from_utf8_lossy(&stored);
    for line in key.lines().filter(|l| !l.starts_with("-----") && l.len() > 20) {
        assert!(!stored.contains(line), "a line of the private key is in the database file");
    }
    assert!(stored.contains("enc:v1:"));
    // A key file others may read is refused at start.
    drop(engine);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cme"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &format!("sqlite://{}?mode=rwc", dir.path().join("cme.db").display()),
        ])
        .current_dir(dir.path())
        .env_remove("CME_CREDENTIAL_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("may be read by others (mode 644)"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
