use serde_json::json;

use cme_engine::{EngineError, Grant, PluginKind, PluginStatus, Upload};

use crate::support::{Rig, bytes, component, operator, plan};

fn upload(version: &str) -> Upload {
    Upload {
        wasm: bytes(&component("ping", version, "attack", &["ping:Ping"])),
        expected_sha256: None,
        signature: None,
    }
}

fn ping_plan(reference: &str) -> cme_engine::NewPlan {
    let mut new = plan(json!({}), json!({"in_ms": [60_000]}));
    new.attack.reference = reference.into();
    new
}

#[tokio::test]
async fn uploads_wait_for_a_grant_and_refs_resolve_to_the_newest_enabled_version() {
    let rig = Rig::new().await;
    let first = rig.engine.upload_plugin(upload("0.1.0"), "admin").await.unwrap();
    assert!(first.created);
    assert_eq!(first.plugin.status, PluginStatus::Pending);
    assert!(
        !rig.engine.upload_plugin(upload("0.1.0"), "admin").await.unwrap().created,
        "the same bytes again change nothing"
    );

    let pending = rig.engine.create_plan(ping_plan("ping:Ping"), &operator()).await.unwrap_err();
    assert!(matches!(&pending, EngineError::PluginPending { id, .. } if id == "ping@0.1.0"), "{pending:?}");

    let grant = json!({"http": {"urls": ["http://127.0.0.1:9/*"]}});
    let granted = rig.engine.grant_plugin("ping@0.1.0", &grant, "admin").await.unwrap();
    assert_eq!(granted.status, PluginStatus::Enabled);
    assert_eq!(granted.grant.as_ref().unwrap().http.as_ref().unwrap().urls, ["http://127.0.0.1:9/*"]);

    rig.engine.upload_plugin(upload("0.2.0"), "admin").await.unwrap();
    let (created, _) = rig.engine.create_plan(ping_plan("ping:Ping"), &operator()).await.unwrap();
    assert_eq!(created.plan.attack.plugin, "ping@0.1.0", "a pending newer version is not chosen");
    rig.engine.grant_plugin("ping@0.2.0", &grant, "admin").await.unwrap();
    let (created, _) = rig.engine.create_plan(ping_plan("ping.Ping"), &operator()).await.unwrap();
    assert_eq!(created.plan.attack.plugin, "ping@0.2.0", "the newest enabled version, by either spelling");
    let (pinned, _) = rig.engine.create_plan(ping_plan("ping:Ping@0.1.0"), &operator()).await.unwrap();
    assert_eq!(pinned.plan.attack.plugin, "ping@0.1.0");
    let missing = rig.engine.create_plan(ping_plan("ping:Ping@9.9.9"), &operator()).await.unwrap_err();
    assert!(
        matches!(&missing, EngineError::NoSuchVersion { available, .. } if available == &["0.1.0", "0.2.0"]),
        "{missing:?}"
    );

    rig.engine.set_plugin_enabled("ping@0.2.0", false, "admin").await.unwrap();
    let (created, _) = rig.engine.create_plan(ping_plan("ping:Ping"), &operator()).await.unwrap();
    assert_eq!(created.plan.attack.plugin, "ping@0.1.0", "a disabled version is not chosen");
    assert!(matches!(
        rig.engine.create_plan(ping_plan("ping:Ping@0.2.0"), &operator()).await,
        Err(EngineError::PluginDisabled { .. })
    ));
    assert_eq!(*rig.host.loads.lock().unwrap(), 3 + 3, "three built-ins, then each upload compiled once");
}

#[tokio::test]
async fn bad_uploads_and_grants_are_refused_and_change_nothing() {
    let rig = Rig::new().await;
    let before = rig.engine.plugin_views().await.unwrap();
    let taken_ref = Upload {
        wasm: bytes(&component("thief", "1.0.0", "attack", &["noop:Noop"])),
        expected_sha256: None,
        signature: None,
    };
    let builtin_name = Upload {
        wasm: bytes(&component("noop", "9.0.0", "attack", &["other:Other"])),
        expected_sha256: None,
        signature: None,
    };
    type Case = (&'static str, Upload, fn(&EngineError) -> bool);
    let cases: Vec<Case> = vec![
        ("not a component", Upload { wasm: b"\0asm garbage".to_vec(), expected_sha256: None, signature: None }, |e| {
            matches!(e, EngineError::NotAPlugin(_))
        }),
        ("a digest mismatch", Upload { expected_sha256: Some("00".repeat(32)), ..upload("1.0.0") }, |e| {
            matches!(e, EngineError::DigestMismatch { .. })
        }),
        (
            "a ref another plugin has",
            taken_ref,
            |e| matches!(e, EngineError::RefTaken { by, .. } if by == "noop@0.1.0"),
        ),
        ("a built-in's name", builtin_name, |e| matches!(e, EngineError::BuiltinName { .. })),
        (
            "over the size cap",
            Upload { wasm: vec![b' '; (20 << 20) + 1], expected_sha256: None, signature: None },
            |e| matches!(e, EngineError::TooLarge { .. }),
        ),
    ];
    for (what, bad, expected) in cases {
        let error = rig.engine.upload_plugin(bad, "admin").await.err().expect(what);
        assert!(expected(&error), "{what}: {error:?}");
    }
    assert_eq!(rig.engine.plugin_views().await.unwrap(), before);
    let denied = crate::support::audited(&rig.engine)
        .await
        .iter()
        .filter(|(a, _, d)| a == "plugin.upload" && *d == cme_engine::AuditDecision::Denied)
        .count();
    assert_eq!(denied, 5, "every refusal is audited");

    rig.engine.upload_plugin(upload("0.1.0"), "admin").await.unwrap();
    for grant in [json!({"htpp": {}}), json!({"http": {"urls": ["nope"]}}), json!({"ssh": {"hosts": ["10.0.0.0/33"]}})]
    {
        let error = rig.engine.grant_plugin("ping@0.1.0", &grant, "admin").await.unwrap_err();
        assert!(matches!(error, EngineError::InvalidGrant(_)), "{grant}: {error:?}");
    }
    assert!(matches!(
        rig.engine.set_plugin_enabled("ping@0.1.0", true, "admin").await,
        Err(EngineError::NoGrant { .. })
    ));
    assert_eq!(rig.engine.plugin_view("ping@0.1.0").await.unwrap().status, PluginStatus::Pending);
    for builtin in ["noop@0.1.0", "exact-planner@0.1.0"] {
        assert!(matches!(rig.engine.delete_plugin(builtin, "admin").await, Err(EngineError::BuiltinPlugin { .. })));
        assert!(matches!(
            rig.engine.grant_plugin(builtin, &json!({}), "admin").await,
            Err(EngineError::BuiltinPlugin { .. })
        ));
    }
    assert!(matches!(rig.engine.delete_plugin("nope@1.0.0", "admin").await, Err(EngineError::NotFound { .. })));
}

#[tokio::test]
async fn a_plugin_in_use_is_not_deleted() {
    let rig = Rig::new().await;
    rig.engine.upload_plugin(upload("0.1.0"), "admin").await.unwrap();
    rig.engine.grant_plugin("ping@0.1.0", &json!({}), "admin").await.unwrap();
    let (created, _) = rig.engine.create_plan(ping_plan("ping:Ping"), &operator()).await.unwrap();
    assert!(matches!(
        rig.engine.delete_plugin("ping@0.1.0", "admin").await,
        Err(EngineError::PluginInUse { executors: 1, .. })
    ));
    rig.engine.delete_plan(&created.plan.id, "operator").await.unwrap();
    rig.engine.delete_plugin("ping@0.1.0", "admin").await.unwrap();
    assert!(rig.engine.plugin_views().await.unwrap().iter().all(|v| v.description.name != "ping"));
}

#[tokio::test]
async fn a_second_engine_on_the_same_database_sees_uploads_grants_and_deletions() {
    let a = Rig::new().await;
    let b = a.replica().await;
    assert_eq!(b.engine.plugin_views().await.unwrap().len(), 3, "built-ins only");
    a.engine.upload_plugin(upload("0.1.0"), "admin").await.unwrap();
    // B resolves a ref it has not seen by syncing at once (no waiting for the interval).
    let pending = b.engine.create_plan(ping_plan("ping:Ping"), &operator()).await.unwrap_err();
    assert!(matches!(pending, EngineError::PluginPending { .. }), "{pending:?}");
    a.engine.grant_plugin("ping@0.1.0", &json!({"scripts": true}), "admin").await.unwrap();
    b.engine.refresh_plugins(true).await.unwrap();
    let seen = b.engine.plugin_view("ping@0.1.0").await.unwrap();
    assert_eq!(seen.status, PluginStatus::Enabled);
    assert_eq!(seen.grant, Some(Grant { scripts: true, ..Grant::default() }));
    assert_eq!(seen.description.kind, PluginKind::Attack);
    let generation = b.engine.plugins_generation();
    a.engine.delete_plugin("ping@0.1.0", "admin").await.unwrap();
    b.engine.refresh_plugins(true).await.unwrap();
    assert!(b.engine.plugin_view("ping@0.1.0").await.is_err());
    assert_ne!(b.engine.plugins_generation(), generation, "the view's generation moves with every change");
}

/// One upload compiles at a time: another that arrives meanwhile is told to come back
/// (busy, 429 through the API) rather than queued, and stores nothing; once the first is
/// done the same upload goes through.
#[tokio::test]
async fn an_upload_while_another_compiles_is_refused_as_busy() {
    let rig = std::sync::Arc::new(Rig::new().await);
    let mut slow = component("slow", "0.1.0", "attack", &["slow:Slow"]);
    slow["compile_ms"] = json!(600);
    let first = {
        let rig = rig.clone();
        tokio::spawn(async move {
            rig.engine
                .upload_plugin(Upload { wasm: bytes(&slow), expected_sha256: None, signature: None }, "admin")
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = rig.engine.upload_plugin(upload("0.1.0"), "admin").await;
    assert!(
        matches!(&second, Err(EngineError::Busy(m)) if m.contains("another plugin upload")),
        "{:?}",
        second.as_ref().err()
    );
    assert!(first.await.unwrap().is_ok(), "the first upload is stored");
    assert!(rig.engine.plugin_view("ping@0.1.0").await.is_err(), "the refused one stored nothing");
    assert!(rig.engine.upload_plugin(upload("0.1.0"), "admin").await.is_ok(), "and goes through afterwards");
}
