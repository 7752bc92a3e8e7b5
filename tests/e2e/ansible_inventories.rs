//! Ansible inventories as Ansible reads them, through the real `cme` binary: an INI file
//! (ranges, children named from anywhere, `:vars`, legacy `ansible_ssh_*`), the JSON
//! `ansible-inventory --list` prints piped to `cme inventories import -`, a Kubespray INI
//! with no credential at all, `?credential=`, and an attack aimed at a host stored without
//! a credential failing with the host's name.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/e2e/fixtures/inventories/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Runs `cme ARGS` against `url` with `stdin`; answers success and stdout plus stderr.
fn cme_with_stdin(url: &str, args: &[&str], stdin: &[u8]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(args)
        .env("CME_URL", url)
        .env_remove("CME_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

async fn store_credential(api: &Api, dir: &std::path::Path) {
    let key = cme_test_peers::sshd::ed25519(dir, "fleet_key");
    let key = std::fs::read_to_string(key).unwrap();
    let created =
        api.post("/api/1/credentials/", &json!({"name": "fleet", "user": "deploy", "private_key": key})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

fn groups(answer: &Value, key: &str, field: &str) -> Vec<(String, Value)> {
    answer[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {answer}"))
        .iter()
        .map(|g| {
            (g[field].as_str().unwrap().to_string(), g[if key == "imported" { "hosts" } else { "reason" }].clone())
        })
        .collect()
}

#[tokio::test]
async fn an_ini_inventory_imports_as_ansible_reads_it_and_says_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    store_credential(&api, dir.path()).await;

    // An unknown credential for the hosts that name none changes nothing.
    let refused = api
        .raw(
            reqwest::Method::POST,
            "/api/1/inventories/?credential=nobody",
            Some(fixture("docs-example.ini")),
            Some("text/plain"),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("no credential named \"nobody\""), "{:?}", refused.body);
    assert_eq!(api.get("/api/1/inventories/").await.body["count"], 0);

    // Sniffed as INI from a text/plain body.
    let imported = api
        .raw(
            reqwest::Method::POST,
            "/api/1/inventories/?credential=fleet",
            Some(fixture("docs-example.ini")),
            Some("text/plain"),
        )
        .await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    assert_eq!(imported.body["format"], "ini");
    let counts = groups(&imported.body, "imported", "name");
    assert!(counts.contains(&("webservers".into(), json!(53))), "{counts:?}");
    assert!(counts.contains(&("southeast".into(), json!(4))), "{counts:?}");
    assert!(counts.contains(&("all".into(), json!(62))), "{counts:?}");
    assert_eq!(groups(&imported.body, "skipped", "group"), [("northeast".to_string(), json!("no hosts"))]);

    let atlanta = api.get("/api/1/inventories/atlanta").await.body;
    let host1 = atlanta["hosts"].as_array().unwrap().iter().find(|h| h["name"] == "host1").unwrap().clone();
    assert_eq!(host1["credential"], "fleet");
    assert_eq!(host1["tags"]["http_port"], "80");
    assert_eq!(host1["tags"]["ntp_server"], "ntp.atlanta.example.com");
    assert_eq!(host1["tags"]["halon_system_timeout"], "30");
    let db = api.get("/api/1/inventories/dbservers").await.body;
    let legacy = db["hosts"].as_array().unwrap().iter().find(|h| h["name"] == "db-legacy.example.com").unwrap().clone();
    assert_eq!((legacy["port"].clone(), legacy["user"].clone()), (json!(5309), json!("oracle")));

    // An unknown ?format is refused naming the parameter; a syntax error names the line.
    let bad = api
        .raw(reqwest::Method::POST, "/api/1/inventories/?format=toml", Some(b"[web]\nh\n".to_vec()), Some("text/plain"))
        .await;
    assert_eq!(
        (bad.status, bad.body["detail"].as_str().unwrap().contains("ini, yaml or json")),
        (400, true),
        "{:?}",
        bad.body
    );
    let bad = api
        .raw(reqwest::Method::POST, "/api/1/inventories/?format=ini", Some(b"[web]\nh1 stray\n".to_vec()), None)
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(bad.body["detail"].as_str().unwrap().contains("line 2"), "{:?}", bad.body);
    assert_eq!(api.get("/api/1/inventories/webservers").await.body["count"], 53, "nothing changed");

    // YAML with merge keys, integer host names, a group defined in two places and a
    // Vault-encrypted variable.
    let yaml = api
        .raw(
            reqwest::Method::POST,
            "/api/1/inventories/?credential=fleet",
            Some(fixture("merge-keys.yaml")),
            Some("application/yaml"),
        )
        .await;
    assert_eq!(yaml.status, 201, "{:?}", yaml.body);
    assert_eq!(yaml.body["format"], "yaml");
    let web = api.get("/api/1/inventories/web").await.body;
    let app1 = web["hosts"].as_array().unwrap().iter().find(|h| h["name"] == "app1.example.com").unwrap().clone();
    assert_eq!((app1["port"].clone(), app1["user"].clone()), (json!(2222), json!("deploy")), "{app1}");
    assert_eq!(app1["tags"]["monitoring.team"], "sre");
    assert_eq!(web["count"], 4, "app[1:3] and app9, defined in two places");
    let db = api.get("/api/1/inventories/db").await.body;
    assert!(db["hosts"].as_array().unwrap().iter().any(|h| h["name"] == "12345" && h["address"] == "10.0.3.8"), "{db}");
    let vaulted = api.get("/api/1/inventories/vaulted").await.body;
    assert!(vaulted["hosts"][0]["tags"].get("db_password").is_none(), "{vaulted}");
}

#[tokio::test]
async fn ansible_inventory_list_output_pipes_into_the_cli_and_hosts_without_credentials_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    store_credential(&api, dir.path()).await;

    // ansible-inventory -i aws_ec2.yml --list | cme inventories import --credential fleet -
    let (ok, out) = cme_with_stdin(
        &engine.url,
        &["inventories", "import", "--credential", "fleet", "-"],
        &fixture("aws_ec2-list.json"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("imported inventory tag_Role_web (2 hosts)"), "{out}");
    assert!(out.contains("skipped group ungrouped: no hosts"), "{out}");
    let web = api.get("/api/1/inventories/tag_Role_web").await.body;
    assert_eq!(web["hosts"][0]["address"], "10.0.1.10");
    assert_eq!(web["hosts"][0]["tags"]["tags.Role"], "web", "nested host vars are dotted tags");
    assert_eq!(web["hosts"][0]["tags"]["placement.availability_zone"], "us-east-1a");

    // A Kubespray inventory that names no credential: stored, shown as none.
    let (ok, out) =
        cme_with_stdin(&engine.url, &["inventories", "import", "--format", "ini", "-"], &fixture("kubespray.ini"));
    assert!(ok, "{out}");
    assert!(out.contains("imported inventory k8s_cluster (3 hosts)"), "{out}");
    assert!(out.contains("skipped group calico_rr: no hosts"), "{out}");
    let nodes = api.get("/api/1/inventories/kube_node").await.body;
    assert_eq!(nodes["hosts"][0]["credential"], Value::Null, "{nodes}");

    // The JSON PUT takes a host without a credential too.
    let put =
        api.put("/api/1/inventories/spare", &json!({"hosts": [{"name": "spare-1", "address": "127.0.0.1"}]})).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["hosts"][0]["credential"], Value::Null);
    // What GET shows can be PUT back as it is.
    let shown = api.get("/api/1/inventories/kube_node").await.body;
    let again = api.put("/api/1/inventories/kube_node", &json!({"hosts": shown["hosts"]})).await;
    assert_eq!((again.status, again.body["hosts"].clone()), (200, shown["hosts"].clone()), "{:?}", again.body);

    // An attack aimed at a host with no credential fails naming it.
    let attack = json!({"ref": "run_script:RunScript", "args": {
        "target": {"inventory": "spare"},
        "local_script": "script_attacks/s_empty.sh",
        "remote_script": "/tmp/cme-never-uploaded.sh",
    }});
    let done = api.run_once(attack, false).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().unwrap_or_default().to_string() + &done["result"].to_string();
    assert!(error.contains("inventory spare host spare-1 has no SSH credential"), "{done}");
}
