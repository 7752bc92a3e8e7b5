//! Google Compute Engine through the real binary, against the fake Compute API and token
//! endpoint (`cme_test_peers::clouds::FakeCloud::gce`): the service account's key held by
//! the host (`[[http.credentials]]` kind gcp-service-account), tokens got by the RS256
//! JWT bearer flow and refreshed as they expire; instances listed by label, page by page,
//! through a 429; a stop followed while the instance is STOPPING and reverted; a failed
//! operation's code kept; and the fake checked against Google's own Python client.

use serde_json::{Value, json};

use crate::clouds::{client_python, fake_get, fake_post, plan, run_plan};
use crate::inventories::wait_for;
use crate::support::*;

const PROJECT: &str = "chaos-project";

fn config(fake: &cme_test_peers::clouds::FakeCloud, key_file: &std::path::Path) -> String {
    format!(
        "[[http.credentials]]\nname = \"gce\"\nkind = \"gcp-service-account\"\nurls = [\"{url}/compute/*\"]\n\
         secret_file = \"{key}\"\nscopes = [\"https://www.googleapis.com/auth/compute\"]\n\n\
         [[clouds]]\nname = \"gce-eu\"\nprovider = \"gce\"\nproject = \"{PROJECT}\"\n\
         zones = [\"europe-west1-b\", \"europe-west1-c\"]\ncredential = \"gce\"\nendpoint = \"{url}/compute/v1/\"\n\
         required_tags = {{ chaos = \"yes\" }}\nmax_nodes_per_run = 2\noperation_timeout_seconds = 60\n",
        url = fake.url,
        key = key_file.display()
    )
}

/// The instance's status as the fake holds it ("gone" once deleted).
async fn status(fake: &cme_test_peers::clouds::FakeCloud, id: &str) -> String {
    let name = id.rsplit('/').next().unwrap();
    let zone = id.split('/').nth(3).unwrap();
    // Read it as a client would, with a token of the fake's own making.
    let token = fake_token(fake).await;
    let answer = reqwest::Client::new()
        .get(format!("{}/compute/v1/projects/{PROJECT}/zones/{zone}/instances/{name}", fake.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if answer.status() == 404 {
        return "gone".into();
    }
    answer.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_string()
}

/// A token from the fake's endpoint, for the test's own reads.
async fn fake_token(fake: &cme_test_peers::clouds::FakeCloud) -> String {
    let python = cme_test_peers::clouds::python();
    let key = fake.service_account_key.clone().unwrap();
    let script = "
import json, sys
from google.oauth2 import service_account
from google.auth.transport.requests import Request
info = json.loads(sys.argv[1])
c = service_account.Credentials.from_service_account_info(info, scopes=['https://www.googleapis.com/auth/compute'])
c.refresh(Request())
print(c.token)
";
    let out = tokio::process::Command::new(python).args(["-c", script, &key]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_attacks_act_on_gce_with_the_hosts_service_account_and_a_stop_is_reverted() {
    let fake = cme_test_peers::clouds::FakeCloud::gce(PROJECT);
    let mut fenced = Vec::new();
    for i in 0..3 {
        let made = fake_post(
            &fake,
            "/_fake/instances",
            json!({"zone": "europe-west1-b", "name": format!("web-{i}"), "labels": {"chaos": "yes", "team": "web"}}),
        )
        .await;
        fenced.push(format!("projects/{PROJECT}/zones/europe-west1-b/instances/{}", made["name"].as_str().unwrap()));
    }
    fake_post(&fake, "/_fake/instances", json!({"zone": "europe-west1-b", "name": "web-x", "labels": {"team": "web"}}))
        .await;
    fake_post(
        &fake,
        "/_fake/instances",
        json!({"zone": "europe-west1-d", "name": "web-y", "labels": {"chaos": "yes", "team": "web"}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("gce-key.json");
    std::fs::write(&key_file, fake.service_account_key.as_ref().unwrap()).unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(config(&fake, &key_file)), ..Options::default() },
    );
    let api = engine.client();

    let stopped = run_plan(
        &api,
        plan(
            "stop",
            "stop_random_node:StopRandomNode",
            json!({"cloud": "gce-eu", "tags": {"team": "web"}, "duration_seconds": 3}),
        ),
    )
    .await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}\n{}", engine.stderr());
    let victim = stopped["result"]["targets"][0].as_str().unwrap().to_string();
    assert!(fenced.contains(&victim), "only chaos=yes instances of the cloud's zones: {victim}");
    assert_eq!(stopped["result"]["details"]["stopped"][0]["current_state"], "stopped", "{stopped}");
    assert_eq!(status(&fake, &victim).await, "TERMINATED", "GCE's word for a stopped instance");
    wait_for("the revert's start", async || status(&fake, &victim).await == "RUNNING").await;

    // Listed by label, page by page (pages of 2), through the 429.
    let requests = fake_get(&fake, "/_fake/requests").await;
    let lists: Vec<&Value> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == format!("/compute/v1/projects/{PROJECT}/zones/europe-west1-b/instances"))
        .collect();
    assert!(lists.iter().any(|r| r["query"]["pageToken"].is_string()), "pages followed: {lists:?}");
    assert!(lists.iter().all(|r| r["query"]["filter"] == "labels.chaos = \"yes\""), "{lists:?}");
    // Mutations carry a requestId (a retry is run once).
    let stops: Vec<&Value> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/stop"))
        .collect();
    assert!(stops.iter().all(|r| r["query"]["requestId"].as_str().is_some_and(|id| id.len() == 36)), "{stops:?}");
    assert!(fake_get(&fake, "/_fake/tokens").await["issued"].as_u64().unwrap() >= 1);

    // A DONE operation with an error is the run's failure, with GCE's code.
    fake_post(&fake, "/_fake/fail_next_operation", json!({"type": "reset"})).await;
    let reboot = run_plan(&api, plan("reset", "reboot_random_node:RebootRandomNode", json!({"cloud": "gce-eu"}))).await;
    assert_eq!(reboot["status"], "failed", "{reboot}");
    assert!(reboot["error"].as_str().unwrap().contains("UNSUPPORTED_OPERATION"), "{reboot}");

    let destroyed = run_plan(
        &api,
        plan(
            "gone",
            "terminate_random_node:TerminateRandomNode",
            json!({"cloud": "gce-eu", "zones": ["europe-west1-b"], "count": 2}),
        ),
    )
    .await;
    assert_eq!(destroyed["status"], "succeeded", "{destroyed}");
    for id in destroyed["result"]["targets"].as_array().unwrap() {
        assert_eq!(status(&fake, id.as_str().unwrap()).await, "gone");
    }
    // The key and its tokens stay the host's.
    let key = fake.service_account_key.clone().unwrap();
    let private = serde_json::from_str::<Value>(&key).unwrap()["private_key"].as_str().unwrap().to_string();
    let line = private.lines().nth(1).unwrap().to_string();
    for body in [&stopped, &reboot, &destroyed] {
        assert!(!body.to_string().contains("ya29.fake") && !body.to_string().contains(&line));
    }
    assert!(!engine.stderr().contains("ya29.fake"), "no token in the engine's log");
}

#[test]
fn the_fake_gce_answers_googles_python_client_as_the_api_does() {
    let Some(python) = client_python() else { return };
    let fake = cme_test_peers::clouds::FakeCloud::gce(PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.json");
    std::fs::write(&key_file, fake.service_account_key.as_ref().unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cme-test-peers/fakes/conformance/gce.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args([fake.url.as_str(), PROJECT, key_file.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "google-api-python-client against the fake:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "ok");
}
