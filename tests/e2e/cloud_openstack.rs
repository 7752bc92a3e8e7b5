//! OpenStack through the real binary, against a real Keystone (PyPI `keystone` under
//! gunicorn) and the local Nova its catalog points at, both over HTTPS with a CA made for
//! the run (`cme_test_peers::clouds::OpenStack`): the host asks Keystone for tokens with
//! an application credential or a password (`[[http.credentials]]` kinds
//! openstack-application-credential and openstack-password), trusts the run's CA only
//! through `ca_file`, finds Nova in the token's catalog and sends the token nowhere its
//! credential's `urls` do not cover; SSH attacks reach a cloud's nodes; and the local Nova
//! is checked against openstacksdk.

use serde_json::{Value, json};

use crate::clouds::{plan, run_plan};
use crate::inventories::{undo_of, wait_for};
use crate::support::*;

fn config(peers: &cme_test_peers::clouds::OpenStack, credential: &str, urls: &str) -> String {
    let ca = peers.ca_file.display();
    let credential = match credential {
        "application" => format!(
            "kind = \"openstack-application-credential\"\napplication_credential_id = \"{}\"\nsecret = \"{}\"\n",
            peers.application_credential_id, peers.application_credential_secret
        ),
        _ => format!(
            "kind = \"openstack-password\"\nusername = \"{}\"\nsecret = \"{}\"\nproject_name = \"chaos\"\n",
            peers.username, peers.password
        ),
    };
    format!(
        "[[http.credentials]]\nname = \"openstack\"\nurls = [{urls}]\nauth_url = \"{keystone}\"\nca_file = \"{ca}\"\n{credential}\n\
         [[clouds]]\nname = \"lab\"\nprovider = \"openstack\"\nregion = \"RegionOne\"\ncredential = \"openstack\"\n\
         ca_file = \"{ca}\"\nrequired_tags = {{ chaos = \"yes\" }}\nmax_nodes_per_run = 2\noperation_timeout_seconds = 60\n",
        keystone = peers.keystone,
    )
}

/// Nova's test-only routes (no token), trusting the run's CA.
async fn nova_fake(
    peers: &cme_test_peers::clouds::OpenStack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&peers.ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let mut request = client.request(method, format!("{}/_fake{path}", peers.nova_root()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().json::<Value>().await.unwrap_or(Value::Null)
}

async fn add_server(peers: &cme_test_peers::clouds::OpenStack, name: &str, metadata: Value) -> String {
    let made =
        nova_fake(peers, reqwest::Method::POST, "/servers", Some(json!({"name": name, "metadata": metadata}))).await;
    made["server"]["id"].as_str().unwrap().to_string()
}

/// The server's status as Nova answers it ("gone" once deleted).
async fn server_status(peers: &cme_test_peers::clouds::OpenStack, id: &str) -> String {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&peers.ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    // A token of the test's own, from Keystone, as any OpenStack client gets one.
    let auth = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": peers.application_credential_id, "secret": peers.application_credential_secret}}}});
    let answer = client.post(format!("{}/auth/tokens", peers.keystone)).json(&auth).send().await.unwrap();
    let token = answer.headers()["x-subject-token"].to_str().unwrap().to_string();
    let server = client.get(format!("{}/servers/{id}", peers.nova)).header("X-Auth-Token", token).send().await.unwrap();
    if server.status() == 404 {
        return "gone".into();
    }
    server.json::<Value>().await.unwrap()["server"]["status"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_attacks_act_on_openstack_with_a_keystone_token_over_the_runs_own_ca() {
    let Some(peers) = cme_test_peers::clouds::OpenStack::start() else { return };
    let mut fenced = Vec::new();
    for i in 0..3 {
        fenced.push(add_server(&peers, &format!("web-{i}"), json!({"chaos": "yes", "team": "web"})).await);
    }
    let unfenced = add_server(&peers, "web-x", json!({"team": "web"})).await;
    let dir = tempfile::tempdir().unwrap();
    let urls = format!("\"{}/*\"", peers.nova);
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(config(&peers, "application", &urls)), ..Options::default() },
    );
    let api = engine.client();

    // Stopped (os-stop; the server stays ACTIVE while powering off), then started again.
    let stopped = run_plan(
        &api,
        plan(
            "stop",
            "stop_random_node:StopRandomNode",
            json!({"cloud": "lab", "tags": {"team": "web"}, "duration_seconds": 3}),
        ),
    )
    .await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}\n{}", engine.stderr());
    let victim = stopped["result"]["targets"][0].as_str().unwrap().to_string();
    assert!(fenced.contains(&victim), "only chaos=yes servers: {victim}");
    assert_eq!(stopped["result"]["details"]["provider"], "openstack", "{stopped}");
    assert_eq!(server_status(&peers, &victim).await, "SHUTOFF");
    let executor_id = stopped["id"].as_str().unwrap();
    wait_for("the revert, done", async || undo_of(&api, executor_id).await["state"] == "done").await;
    assert_eq!(server_status(&peers, &victim).await, "ACTIVE", "started again");

    // Listed through the 429 and every page of 2 (marker paging), from the catalog's Nova.
    let requests = nova_fake(&peers, reqwest::Method::GET, "/requests", None).await;
    let lists: Vec<&Value> =
        requests["requests"].as_array().unwrap().iter().filter(|r| r["path"] == "/v2.1/servers/detail").collect();
    assert!(lists.iter().any(|r| r["query"]["marker"].is_string()), "pages followed: {lists:?}");
    assert!(lists.len() >= 3, "the 429 retried, then pages: {lists:?}");

    // A stop that leaves the server in ERROR is the run's failure, naming the state.
    nova_fake(&peers, reqwest::Method::POST, "/fail_next", Some(json!({"action": "os-stop"}))).await;
    let failed =
        run_plan(&api, plan("stop", "stop_random_node:StopRandomNode", json!({"cloud": "lab", "duration_seconds": 3})))
            .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("the node is error"), "{failed}");
    // A soft reboot is done once Nova took it.
    let reboot = run_plan(&api, plan("reboot", "reboot_random_node:RebootRandomNode", json!({"cloud": "lab"}))).await;
    assert_eq!(reboot["status"], "succeeded", "{reboot}");
    let requests = nova_fake(&peers, reqwest::Method::GET, "/requests", None).await;
    assert!(requests.to_string().contains("/action"), "{requests}");

    let destroyed =
        run_plan(&api, plan("gone", "terminate_random_node:TerminateRandomNode", json!({"cloud": "lab", "count": 2})))
            .await;
    assert_eq!(destroyed["status"], "succeeded", "{destroyed}");
    for id in destroyed["result"]["targets"].as_array().unwrap() {
        assert_eq!(server_status(&peers, id.as_str().unwrap()).await, "gone");
    }
    assert_eq!(server_status(&peers, &unfenced).await, "ACTIVE", "outside the fence");

    // The application credential's secret and the tokens stay the host's.
    for body in [&stopped, &failed, &reboot, &destroyed] {
        assert!(!body.to_string().contains(&peers.application_credential_secret));
        assert!(!body.to_string().contains("gAAAAA"), "no Fernet token in an answer: {body}");
    }
    assert!(!engine.stderr().contains(&peers.application_credential_secret));
    assert!(!engine.stderr().contains("gAAAAA"), "no Fernet token in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_url_outside_the_credentials_urls_never_gets_the_token() {
    let Some(peers) = cme_test_peers::clouds::OpenStack::start() else { return };
    add_server(&peers, "web-0", json!({"chaos": "yes"})).await;
    let dir = tempfile::tempdir().unwrap();
    // The password flow; the credential covers Keystone only, not the catalog's Nova.
    let urls = format!("\"{}/*\"", peers.keystone);
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(config(&peers, "password", &urls)), ..Options::default() },
    );
    let api = engine.client();
    let run =
        run_plan(&api, plan("stop", "stop_random_node:StopRandomNode", json!({"cloud": "lab", "duration_seconds": 3})))
            .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("is not among the URLs of credential"), "{run}");
    let requests = nova_fake(&peers, reqwest::Method::GET, "/requests", None).await;
    assert!(
        requests["requests"].as_array().unwrap().iter().all(|r| r["path"].as_str().unwrap().starts_with("/_fake")),
        "Nova got no request: {requests}"
    );
}

#[test]
fn keystone_is_trusted_only_through_ca_file_and_the_run_says_so_otherwise() {
    // Without ca_file, the run's CA is not trusted: Keystone's certificate fails, and the
    // failure names the credential; nothing is sent in clear.
    let Some(peers) = cme_test_peers::clouds::OpenStack::start() else { return };
    let urls = format!("\"{}/*\"", peers.nova);
    let without_ca =
        config(&peers, "application", &urls).replace(&format!("ca_file = \"{}\"\n", peers.ca_file.display()), "");
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(without_ca), ..Options::default() });
    let api = engine.client();
    runtime.block_on(async {
        add_server(&peers, "web-0", json!({"chaos": "yes"})).await;
        let run = run_plan(
            &api,
            plan("stop", "stop_random_node:StopRandomNode", json!({"cloud": "lab", "duration_seconds": 3})),
        )
        .await;
        assert_eq!(run["status"], "failed", "{run}");
        let error = run["error"].as_str().unwrap();
        assert!(error.contains("credential openstack") && error.contains("Keystone did not answer"), "{error}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_attack_aims_at_a_clouds_nodes_within_its_required_tags() {
    let Some(rig) = crate::inventories::Rig::start() else { return };
    let Some(peers) = cme_test_peers::clouds::OpenStack::start() else { return };
    // Both servers answer SSH on this machine's sshd; only one carries the cloud's chaos=yes.
    let fenced = nova_fake(
        &peers,
        reqwest::Method::POST,
        "/servers",
        Some(json!({"name": "app-1", "metadata": {"chaos": "yes", "team": "app"}, "private": "127.0.0.1"})),
    )
    .await["server"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    nova_fake(
        &peers,
        reqwest::Method::POST,
        "/servers",
        Some(json!({"name": "app-2", "metadata": {"team": "core"}, "private": "127.0.0.1"})),
    )
    .await;
    let urls = format!("\"{}/*\"", peers.nova);
    let engine = rig.engine_with(&config(&peers, "application", &urls), Vec::new(), None);
    let api = engine.client();
    rig.prepare(&api).await;

    let marker = rig.dir.path().join("cloud-marker");
    let ssh = json!({"credential": "fleet", "user": cme_test_peers::sshd::current_user(), "port": rig.port(), "address": "private"});
    let script = |tags: Value| {
        json!({"ref": "run_script:RunScript", "args": {
            "target": {"cloud": "lab", "tags": tags, "zones": ["nova"], "ssh": ssh.clone()},
            "local_script": "script_attacks/s_empty.sh",
            "remote_script": rig.dir.path().join("uploaded.sh").display().to_string(),
            "args": [marker.to_str().unwrap()],
        }})
    };
    let done = api.run_once(script(json!({"team": "app"})), false).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", engine.stderr());
    assert!(marker.exists(), "the script ran on the cloud's node");
    assert_eq!(done["result"]["details"]["hosts"][0]["name"], fenced.as_str(), "{done}");

    // The node without the cloud's required tag is never listed, so never reached.
    let outside = api.run_once(script(json!({"team": "core"})), false).await;
    assert_eq!(outside["status"], "failed", "{outside}");
    assert!(outside["error"].as_str().unwrap().contains("no host matched: running nodes of cloud lab"), "{outside}");
}

#[test]
fn the_local_nova_answers_openstacksdk_as_the_api_does() {
    let Some(peers) = cme_test_peers::clouds::OpenStack::start() else { return };
    let python = cme_test_peers::clouds::keystone_python().expect("the Keystone venv, which OpenStack::start found");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cme-test-peers/fakes/conformance/nova.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args([
            peers.keystone.as_str(),
            peers.nova.as_str(),
            peers.ca_file.to_str().unwrap(),
            peers.application_credential_id.as_str(),
            peers.application_credential_secret.as_str(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "openstacksdk against the local Nova:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "ok");
}
