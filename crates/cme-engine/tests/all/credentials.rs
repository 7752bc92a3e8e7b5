use serde_json::json;

use cme_engine::storage::prelude::*;
use cme_engine::{EngineError, NewCredential};

use crate::support::{Rig, admin, audited, operator, plan};

const KEY: &str = "-----BEGIN FAKE KEY-----\nsecret-material\n-----END FAKE KEY-----\n";

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn an_inline_key_becomes_the_plans_credential_and_leaves_its_args() {
    let rig = Rig::new().await;
    let args = json!({"ssh": {"user": "ubuntu", "pem": base64(KEY), "passphrase": "open sesame"}});
    let (created, _) = rig.engine.create_plan(plan(args, json!({"in_ms": [60_000]})), &operator()).await.unwrap();
    let name = format!("plan-{}-ssh", created.plan.id);
    assert_eq!(created.plan.attack.args, json!({"ssh": {"user": "ubuntu", "credential": name}}));
    let stored = rig.store.credential(&name).await.unwrap().expect("stored with the plan");
    assert_eq!(stored.private_key, KEY);
    assert_eq!(stored.passphrase.as_deref(), Some("open sesame"));
    let shown = rig.engine.credentials().await.unwrap();
    assert_eq!(shown.len(), 1);
    assert!(
        format!("{shown:?}{:?}", audited(&rig.engine).await).find("secret-material").is_none(),
        "no key material shown"
    );

    rig.engine.delete_plan(&created.plan.id, "operator").await.unwrap();
    assert!(rig.store.credential(&name).await.unwrap().is_none(), "the plan's key goes with it");
}

#[tokio::test]
async fn bad_inline_keys_are_refused_and_store_nothing() {
    let rig = Rig::new().await;
    for (ssh, field) in [
        (json!({"user": "ubuntu", "pem": "%%%"}), "/attack/args/ssh/pem"),
        (json!({"user": "ubuntu", "pem": base64("not a key")}), "/attack/args/ssh/pem"),
        (json!({"user": "ubuntu", "pem": 5}), "/attack/args/ssh/pem"),
        (json!({"pem": base64(KEY)}), "/attack/args/ssh/user"),
        (json!({"user": "u b", "pem": base64(KEY)}), "/attack/args/ssh/user"),
        (json!({"user": "ubuntu", "pem": base64(KEY), "credential": "other"}), "/attack/args/ssh/credential"),
        (json!({"user": "ubuntu", "pem": base64(KEY), "passphrase": 1}), "/attack/args/ssh/passphrase"),
    ] {
        let error = rig
            .engine
            .create_plan(plan(json!({"ssh": ssh}), json!({"in_ms": [60_000]})), &operator())
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some(field), "{ssh}: {error:?}");
        assert!(!error.to_string().contains("secret-material"));
    }
    assert!(rig.store.credentials().await.unwrap().is_empty());
}

#[tokio::test]
async fn credentials_are_checked_named_once_and_audited() {
    let rig = Rig::new().await;
    let new = |name: &str, key: &str| NewCredential {
        name: name.into(),
        user: "ubuntu".into(),
        private_key: key.into(),
        passphrase: None,
        may_use: None,
    };
    let view = rig.engine.create_credential(new("web", KEY), &admin()).await.unwrap();
    assert_eq!(view.algorithm, "ssh-fake");
    assert!(matches!(
        rig.engine.create_credential(new("web", KEY), &admin()).await,
        Err(EngineError::CredentialExists(_))
    ));
    assert_eq!(rig.engine.create_credential(new("bad name!", KEY), &admin()).await.unwrap_err().field(), Some("/name"));
    assert_eq!(
        rig.engine.create_credential(new("other", "garbage"), &admin()).await.unwrap_err().field(),
        Some("/private_key")
    );
    rig.engine.delete_credential("web", "admin").await.unwrap();
    assert!(matches!(rig.engine.delete_credential("web", "admin").await, Err(EngineError::NotFound { .. })));
    let actions: Vec<String> = audited(&rig.engine).await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(actions, ["credential.create", "credential.delete"]);
}
