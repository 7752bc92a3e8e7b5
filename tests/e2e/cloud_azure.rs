//! Azure through the real binary, against the fake Resource Manager and Azure AD token
//! endpoint (`cme_test_peers::clouds::FakeCloud::azure`): the service principal's secret
//! held by the host (`[[http.credentials]]` kind azure-client-secret), short-lived tokens
//! by the client-credentials flow; VMs listed per resource group by `nextLink` through a
//! 429, with addresses from their NICs (one in another group) and public IPs; a
//! deallocate followed through `Azure-AsyncOperation` while the VM is deallocating and
//! reverted; a failed operation's code kept; a delete followed through `Location`; ARM ids
//! compared without case; and the fake checked against azure-mgmt-compute/-network.

use serde_json::{Value, json};

use crate::clouds::{client_python, fake_get, fake_post, plan, run_plan};
use crate::inventories::{undo_of, wait_for};
use crate::support::*;

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000c0de";
const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "azure~client~secret~0123456789";

fn config(fake: &cme_test_peers::clouds::FakeCloud) -> String {
    format!(
        "[[http.credentials]]\nname = \"azure\"\nkind = \"azure-client-secret\"\nurls = [\"{url}/subscriptions/*\"]\n\
         tenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nsecret = \"{SECRET}\"\nauthority = \"{url}\"\n\n\
         [[clouds]]\nname = \"azure-we\"\nprovider = \"azure\"\nsubscription_id = \"{SUBSCRIPTION}\"\n\
         resource_groups = [\"chaos\", \"Batch\"]\ncredential = \"azure\"\nendpoint = \"{url}\"\n\
         required_tags = {{ chaos = \"yes\" }}\nmax_nodes_per_run = 2\noperation_timeout_seconds = 60\n",
        url = fake.url
    )
}

/// The VM's power state as ARM answers it ("gone" once deleted), with a token of the
/// test's own from the fake's endpoint.
async fn power(fake: &cme_test_peers::clouds::FakeCloud, id: &str) -> String {
    let client = reqwest::Client::new();
    // The secret and client id need no escaping; the scope is written escaped.
    let form = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={SECRET}\
         &scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
    );
    let token = client
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", fake.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let token = token.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let answer = client
        .get(format!("{}{id}?api-version=2024-07-01&$expand=instanceView", fake.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if answer.status() == 404 {
        return "gone".into();
    }
    let vm = answer.json::<Value>().await.unwrap();
    let statuses = vm["properties"]["instanceView"]["statuses"].as_array().unwrap().clone();
    statuses.iter().filter_map(|s| s["code"].as_str()?.strip_prefix("PowerState/")).next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_attacks_act_on_azure_with_a_service_principal_and_a_deallocate_is_reverted() {
    let fake = cme_test_peers::clouds::FakeCloud::azure(SUBSCRIPTION, TENANT, CLIENT_ID, SECRET);
    let mut fenced = Vec::new();
    for (group, name) in [("chaos", "web-0"), ("chaos", "web-1"), ("chaos", "web-2"), ("batch", "job-0")] {
        // One VM's NIC lives in another group: it is read on its own.
        let nic_group = if name == "web-2" { "network" } else { group };
        let made = fake_post(
            &fake,
            "/_fake/vms",
            json!({"group": group, "name": name, "tags": {"chaos": "yes", "team": "web"}, "zone": "2", "nic_group": nic_group}),
        )
        .await;
        fenced.push(made["id"].as_str().unwrap().to_string());
    }
    let unfenced = fake_post(&fake, "/_fake/vms", json!({"group": "chaos", "name": "web-x", "tags": {"team": "web"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = fake_post(&fake, "/_fake/vms", json!({"group": "prod", "name": "web-y", "tags": {"chaos": "yes"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config(&fake)), ..Options::default() });
    let api = engine.client();

    // Deallocated (followed while deallocating), then started again by the revert.
    let stopped = run_plan(
        &api,
        plan(
            "stop",
            "stop_random_node:StopRandomNode",
            json!({"cloud": "azure-we", "names": ["web-2"], "duration_seconds": 3}),
        ),
    )
    .await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}\n{}", engine.stderr());
    let victim = stopped["result"]["targets"][0].as_str().unwrap().to_string();
    assert!(victim.ends_with("/virtualMachines/web-2"), "{victim}");
    assert_eq!(stopped["result"]["details"]["provider"], "azure", "{stopped}");
    assert_eq!(stopped["result"]["details"]["stopped"][0]["current_state"], "stopped", "{stopped}");
    assert_eq!(power(&fake, &victim).await, "deallocated");
    let executor_id = stopped["id"].as_str().unwrap();
    wait_for("the revert, done", async || undo_of(&api, executor_id).await["state"] == "done").await;
    assert_eq!(power(&fake, &victim).await, "running", "started again");

    // Listed per group by nextLink through the 429; the NIC elsewhere read on its own.
    let requests = fake_get(&fake, "/_fake/requests").await;
    let requests = requests["requests"].as_array().unwrap();
    let lists: Vec<&Value> =
        requests.iter().filter(|r| r["path"].as_str().unwrap().ends_with("/virtualMachines")).collect();
    assert!(lists.iter().any(|r| r["query"]["$skiptoken"].is_string()), "pages followed: {lists:?}");
    assert!(lists.iter().all(|r| r["query"]["$expand"] == "instanceView"), "{lists:?}");
    assert!(
        requests.iter().any(|r| r["path"].as_str().unwrap().contains("/resourceGroups/network/")
            && r["path"].as_str().unwrap().ends_with("/web-2-nic")),
        "the NIC of another group read: {requests:?}"
    );
    assert!(requests.iter().any(|r| r["path"].as_str().unwrap().contains("/operations/")), "Azure-AsyncOperation");
    assert!(fake_get(&fake, "/_fake/tokens").await["issued"].as_u64().unwrap() >= 1);

    // A Failed operation is the run's failure, with Azure's code.
    fake_post(&fake, "/_fake/fail_next", json!({"action": "restart"})).await;
    let reboot =
        run_plan(&api, plan("restart", "reboot_random_node:RebootRandomNode", json!({"cloud": "azure-we"}))).await;
    assert_eq!(reboot["status"], "failed", "{reboot}");
    assert!(reboot["error"].as_str().unwrap().contains("VMAgentStatusCommunicationError"), "{reboot}");

    // Deleted, followed through Location; never the unfenced VM or another group's.
    let destroyed = run_plan(
        &api,
        plan("gone", "terminate_random_node:TerminateRandomNode", json!({"cloud": "azure-we", "count": 2})),
    )
    .await;
    assert_eq!(destroyed["status"], "succeeded", "{destroyed}");
    let gone: Vec<String> =
        destroyed["result"]["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(gone.len(), 2);
    for id in &gone {
        assert!(fenced.contains(id), "{id}");
        assert_eq!(power(&fake, id).await, "gone");
    }
    assert_eq!(power(&fake, &unfenced).await, "running");
    assert_eq!(power(&fake, &elsewhere).await, "running");

    // The client secret and tokens stay the host's.
    for body in [&stopped, &reboot, &destroyed] {
        assert!(!body.to_string().contains(SECRET) && !body.to_string().contains("fake-arm."));
    }
    assert!(!engine.stderr().contains(SECRET) && !engine.stderr().contains("fake-arm."), "no secret in the log");
}

#[test]
fn the_fake_azure_answers_azure_mgmt_compute_as_the_api_does() {
    let Some(python) = client_python() else { return };
    let fake = cme_test_peers::clouds::FakeCloud::azure(SUBSCRIPTION, TENANT, CLIENT_ID, SECRET);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cme-test-peers/fakes/conformance/azure_arm.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args([fake.url.as_str(), SUBSCRIPTION, TENANT, CLIENT_ID, SECRET])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "azure-mgmt-compute against the fake:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "ok");
}
