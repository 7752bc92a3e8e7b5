//! run-script through the real `cme` binary: moto gives the instance a loopback address
//! (a 127.0.0.0/24 subnet) on which a real OpenSSH sshd listens, so the engine reaches a
//! real server through the instance's own address.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use cme_test_peers::sshd::{self, Sshd, current_user, ed25519 as keygen, free_port};

use crate::peers::{Launched, Moto, label};
use crate::support::*;

/// One instance on a loopback address with an sshd in front of it.
struct Rig {
    moto: Moto,
    label: String,
    instance: Launched,
    dir: tempfile::TempDir,
    client_key: PathBuf,
    port: u16,
    sshd: Option<Sshd>,
}

impl Rig {
    async fn start(region: &str, test: &str) -> Option<Rig> {
        if !sshd::available() {
            return None;
        }
        let moto = Moto::connect(region).await?;
        let label = label(test);
        let subnet = moto.loopback_subnet().await;
        let instance = moto.launch(&[("Test", &label)], Some(&subnet), None).await;
        assert!(instance.private_ip.starts_with("127.0.0."), "moto gave {instance:?}");
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_key");
        let client_key = keygen(dir.path(), "client_key");
        let port = free_port();
        let sshd = Sshd::start(dir.path(), &[&instance.private_ip], port, &host_key, &[&client_key]);
        Some(Rig { moto, label, instance, dir, client_key, port, sshd: Some(sshd) })
    }

    fn engine(&self, name: &str, policy: &str) -> Engine {
        self.engine_with(name, policy, Vec::new())
    }

    fn engine_with(&self, name: &str, policy: &str, env: Vec<(String, String)>) -> Engine {
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(home.join("scripts")).unwrap();
        // An operator's script directory, beside the shipped library.
        std::fs::write(
            home.join("scripts/exit3.sh"),
            "#!/bin/sh\necho about to fail\necho 'broken on purpose' >&2\nexit 3\n",
        )
        .unwrap();
        let config = format!(
            "scripts_dir = \"{scripts}\"\n[ssh]\nknown_hosts = \"{known}\"\nhost_key_policy = \"{policy}\"\n",
            scripts = home.join("scripts").display(),
            known = self.dir.path().join("known_hosts").display(),
        );
        let env = self.moto.engine_env().into_iter().chain(env).collect();
        Engine::start(&home, Backend::Sqlite, Options { env, config: Some(config), ..Options::default() })
    }

    fn run_script(&self, script: &str, args: &[&str], credential: &str) -> Value {
        json!({"ref": "run_script:RunScript", "args": {
            "region": self.moto.region,
            "filters": {"tag:Test": self.label},
            "local_script": script,
            "remote_script": self.dir.path().join(format!("uploaded-{}", script.rsplit('/').next().unwrap())).display().to_string(),
            "ssh": {"credential": credential, "port": self.port},
            "args": args,
        }})
    }

    fn private_key(&self) -> String {
        std::fs::read_to_string(&self.client_key).unwrap()
    }
}

async fn store_credential(api: &Api, name: &str, key: &str) {
    let created =
        api.post("/api/1/credentials/", &json!({"name": name, "user": current_user(), "private_key": key})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

#[tokio::test]
async fn run_script_runs_the_smoke_script_on_the_instance_and_reports_failures() {
    let Some(rig) = Rig::start("ap-northeast-1", "smoke").await else { return };
    let engine = rig.engine("accept-new", "accept-new");
    let api = engine.client();
    store_credential(&api, "test-key", &rig.private_key()).await;

    let marker = rig.dir.path().join("marker");
    let done =
        api.run_once(rig.run_script("script_attacks/s_empty.sh", &[marker.to_str().unwrap()], "test-key"), false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert!(marker.exists(), "the smoke script left its marker");
    assert_eq!(done["result"]["details"]["address"], rig.instance.private_ip.as_str());
    assert_eq!(done["result"]["details"]["exit_code"], 0);
    assert_eq!(done["result"]["targets"][0], rig.instance.id.as_str());
    let known = std::fs::read_to_string(rig.dir.path().join("known_hosts")).unwrap();
    assert!(known.contains(&rig.instance.private_ip), "accept-new recorded the host key: {known}");

    // A script from the operator's directory that exits 3 fails the run with its stderr.
    let done = api.run_once(rig.run_script("exit3.sh", &[], "test-key"), false).await;
    assert_eq!(done["status"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("exit3.sh exited 3") && error.contains("broken on purpose"), "{error}");

    // Leaving the library is refused.
    let done = api.run_once(rig.run_script("../../etc/passwd", &[], "test-key"), false).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().starts_with("denied"), "{done}");

    // A dry run connects to nothing and runs nothing.
    std::fs::remove_file(&marker).unwrap();
    let done = api.run_once(rig.run_script("s_empty.sh", &[marker.to_str().unwrap()], "test-key"), true).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["result"]["summary"].as_str().unwrap().starts_with("dry run: would run s_empty.sh"));
    assert!(!marker.exists());

    // A key the server does not accept, and a credential that does not exist.
    let (_, other_key) = other_key(rig.dir.path());
    store_credential(&api, "wrong-key", &other_key).await;
    let done = api.run_once(rig.run_script("s_empty.sh", &[marker.to_str().unwrap()], "wrong-key"), false).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().contains("was refused for key SHA256:"), "{done}");
    let done = api.run_once(rig.run_script("s_empty.sh", &[marker.to_str().unwrap()], "nobody"), false).await;
    assert!(done["error"].as_str().unwrap().contains("no credential named \"nobody\""), "{done}");
    assert!(!marker.exists());

    // The key never shows in answers or logs.
    let secret_line = rig.private_key().lines().nth(1).unwrap().to_string();
    let plans = api.get("/api/1/plans/?all=true").await.body.to_string();
    let executors = api.get("/api/1/executors/?executed=true").await.body.to_string();
    for text in [plans, executors, engine.stderr()] {
        assert!(!text.contains(&secret_line), "key material leaked");
    }
}

fn other_key(dir: &Path) -> (PathBuf, String) {
    let path = keygen(dir, "other_key");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[tokio::test]
async fn host_keys_are_checked_strictly_or_pinned_on_first_use() {
    let Some(mut rig) = Rig::start("ap-southeast-1", "hostkeys").await else { return };
    let marker = rig.dir.path().join("marker");
    let smoke = rig.run_script("s_empty.sh", &[marker.to_str().unwrap()], "test-key");

    // strict: an unknown host is refused, and the refusal is audited.
    let strict = rig.engine("strict", "strict");
    let api = strict.client();
    store_credential(&api, "test-key", &rig.private_key()).await;
    let done = api.run_once(smoke.clone(), false).await;
    assert_eq!(done["status"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("is not in the known-hosts file (policy strict)"), "{error}");
    let audit = api.get("/api/1/audit/").await.body;
    assert!(
        audit["_embedded"]["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["run_id"] == done["id"] && e["decision"] == "denied"),
        "{audit}"
    );
    assert!(!marker.exists());

    // accept-new: the first connection records the key...
    let accept = rig.engine("accept-new", "accept-new");
    let api = accept.client();
    store_credential(&api, "test-key", &rig.private_key()).await;
    let done = api.run_once(smoke.clone(), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();

    // ...and the same address answering with another host key is refused.
    drop(rig.sshd.take());
    let new_host_key = keygen(rig.dir.path(), "rebuilt_host_key");
    rig.sshd =
        Some(Sshd::start(rig.dir.path(), &[&rig.instance.private_ip], rig.port, &new_host_key, &[&rig.client_key]));
    let done = api.run_once(smoke, false).await;
    assert_eq!(done["status"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("host key of") && error.contains("changed"), "{error}");
    assert!(!marker.exists(), "nothing ran on the impostor");
}

#[tokio::test]
async fn a_plan_with_the_originals_inline_pem_stores_it_as_a_credential_and_never_shows_it() {
    use base64::Engine as _;
    let Some(rig) = Rig::start("ca-central-1", "pem").await else { return };
    let engine = rig.engine("pem", "accept-new");
    let api = engine.client();
    let marker = rig.dir.path().join("marker");
    let mut attack = rig.run_script("script_attacks/s_empty.sh", &[marker.to_str().unwrap()], "unused");
    let pem = base64::engine::general_purpose::STANDARD.encode(rig.private_key());
    attack["args"]["ssh"] = json!({"user": current_user(), "pem": pem, "port": rig.port});

    let created = api.plan_once(attack.clone(), false).await;
    let plan_id = created.body["id"].as_str().unwrap().to_string();
    let credential = format!("plan-{plan_id}-ssh");
    assert_eq!(
        created.body["attack"]["args"]["ssh"],
        json!({"user": current_user(), "credential": credential, "port": rig.port})
    );
    let listed = api.get("/api/1/credentials/").await.body;
    assert_eq!(listed["_embedded"]["credentials"][0]["name"], credential.as_str());

    let executor = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&executor, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(marker.exists(), "the inline key really logged in");

    // A pem that is not a key is refused with a pointer, and nothing is stored.
    let mut broken = attack.clone();
    broken["args"]["ssh"]["pem"] = json!(base64::engine::general_purpose::STANDARD.encode("not a key SECRET-ISH"));
    let refused = api.post("/api/1/plans/", &json!({"name": "x", "attack": broken, "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(60)}}})).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["pointer"], "/attack/args/ssh/pem");
    assert_eq!(api.get("/api/1/credentials/").await.body["_embedded"]["credentials"].as_array().unwrap().len(), 1);

    let secret_line = rig.private_key().lines().nth(1).unwrap().to_string();
    let plan = api.get(&format!("/api/1/plans/{plan_id}")).await.body.to_string();
    for text in [created.body.to_string(), plan, refused.body.to_string(), engine.stderr()] {
        assert!(
            !text.contains(&secret_line) && !text.contains(&pem) && !text.contains("SECRET-ISH"),
            "key material leaked: {text}"
        );
    }

    // Deleting the plan deletes the key it brought.
    assert_eq!(api.delete(&format!("/api/1/plans/{plan_id}")).await.status, 200);
    assert!(api.get("/api/1/credentials/").await.body["_embedded"]["credentials"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_credential_serves_only_the_plans_it_names_and_an_inline_key_only_its_own_plan() {
    let Some(rig) = Rig::start("sa-east-1", "scopes").await else { return };
    let tokens = "operator:operator-scope-secret,admin:admin-scope-secret";
    let engine = rig.engine_with("scopes", "accept-new", vec![("CME_TOKENS".into(), tokens.into())]);
    let admin = engine.client().with_token("admin-scope-secret");
    let operator = engine.client().with_token("operator-scope-secret");
    let marker = rig.dir.path().join("marker");
    let smoke = |credential: &str| rig.run_script("s_empty.sh", &[marker.to_str().unwrap()], credential);

    // By default a credential serves its creator's plans only.
    store_credential(&admin, "admins-only", &rig.private_key()).await;
    let listed = admin.get("/api/1/credentials/").await.body;
    assert_eq!(listed["_embedded"]["credentials"][0]["may_use"], json!(["admin"]));
    let done = operator.run_once(smoke("admins-only"), false).await;
    assert_eq!(done["status"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(error.starts_with("denied") && error.contains("may be used by plans of [\"admin\"] only"), "{error}");
    assert!(!marker.exists(), "nothing ran with a credential the plan may not use");
    let audit = admin.get("/api/1/audit/").await.body;
    assert!(
        audit["_embedded"]["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["run_id"] == done["id"] && e["decision"] == "denied")
    );

    // Named for operators, it serves them.
    let created = admin.post("/api/1/credentials/", &json!({"name": "for-ops", "user": current_user(), "private_key": rig.private_key(), "may_use": ["operator"]})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let done = operator.run_once(smoke("for-ops"), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    std::fs::remove_file(&marker).unwrap();

    // An inline key is its plan's own: another plan naming it is refused.
    let mut inline = rig.run_script("s_empty.sh", &["/nonexistent/never"], "");
    inline["args"]["ssh"] = json!({"pem": rig.private_key(), "user": current_user(), "port": rig.port});
    let first = operator.plan_once(inline, false).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let inline_name = format!("plan-{}-ssh", first.body["id"].as_str().unwrap());
    let stolen = operator.run_once(smoke(&inline_name), false).await;
    assert_eq!(stolen["status"], "failed");
    assert!(stolen["error"].as_str().unwrap().contains("no other plan may use it"), "{stolen}");
    assert!(!marker.exists());
}
