//! Compute across clouds through the real binary: `[[clouds]]` checked at start, and the
//! node attacks (terminate, stop, reboot a random node) on the aws cloud against moto,
//! within the cloud's fence, reverted by the host (at the end of the hold, and after the
//! engine holding it is killed), with dry runs that change nothing.

use serde_json::{Value, json};

use crate::inventories::wait_for;
use crate::peers::{Moto, label};
use crate::support::*;

/// Each test's own region: moto is shared.
const REGION: &str = "ca-central-1";

fn config(extra: &str) -> String {
    format!(
        "[ec2]\nregions = [\"{REGION}\", \"sa-east-1\"]\nmax_terminations_per_run = 10\n\n\
         [[clouds]]\nname = \"canada\"\nprovider = \"aws\"\nregions = [\"{REGION}\"]\n\
         required_tags = {{ chaos = \"yes\" }}\nmax_nodes_per_run = 2\n{extra}"
    )
}

pub(crate) async fn run_plan(api: &Api, body: Value) -> Value {
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    api.wait_executor(&id, is_terminal).await
}

pub(crate) fn plan(name: &str, attack: &str, args: Value) -> Value {
    json!({
        "name": name,
        "attack": {"ref": attack, "args": args},
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn node_attacks_act_on_the_aws_cloud_within_its_fence_and_a_stop_is_reverted() {
    let Some(moto) = Moto::connect(REGION).await else { return };
    let label = label("clouds");
    let fenced: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(moto.launch(&[("Test", &label), ("chaos", "yes")], None, None).await.id);
        }
        ids
    };
    let outside = moto.launch(&[("Test", &label)], None, None).await.id;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: moto.engine_env(), config: Some(config("")), ..Options::default() },
    );
    let api = engine.client();
    let states = async || {
        let mut states = Vec::new();
        for id in fenced.iter().chain([&outside]) {
            states.push(moto.state(id).await);
        }
        states
    };

    // A dry run lists and checks, and changes nothing.
    let mut dry = plan(
        "dry",
        "terminate_random_node:TerminateRandomNode",
        json!({"cloud": "canada", "tags": {"Test": label}, "count": 2}),
    );
    dry["dry_run"] = json!(true);
    let done = run_plan(&api, dry).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["result"]["summary"].as_str().unwrap().starts_with("dry run: would terminate"), "{done}");
    assert_eq!(states().await, ["running"; 4]);

    // The cloud's fence: only chaos=yes nodes, at most 2 per run.
    let over = run_plan(
        &api,
        plan(
            "three",
            "reboot_random_node:RebootRandomNode",
            json!({"cloud": "canada", "tags": {"Test": label}, "count": 3}),
        ),
    )
    .await;
    assert_eq!(over["status"], "failed", "{over}");
    assert!(over["error"].as_str().unwrap().contains("max_nodes_per_run"), "{over}");
    let rebooted = run_plan(
        &api,
        plan(
            "two",
            "reboot_random_node:RebootRandomNode",
            json!({"cloud": "canada", "tags": {"Test": label}, "percent": 50}),
        ),
    )
    .await;
    assert_eq!(rebooted["status"], "succeeded", "{rebooted}");
    let targets: Vec<String> =
        rebooted["result"]["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(targets.len(), 2, "50 % of 3, rounded up: {rebooted}");
    assert!(targets.iter().all(|t| fenced.contains(t)), "never the node without chaos=yes: {targets:?}");

    // A stop is reverted by the host at the end of its hold, tagged as the EC2 stop is.
    let stopped = run_plan(
        &api,
        plan(
            "stop",
            "stop_random_node:StopRandomNode",
            json!({"cloud": "canada", "tags": {"Test": label}, "duration_seconds": 2}),
        ),
    )
    .await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}");
    let victim = stopped["result"]["targets"][0].as_str().unwrap().to_string();
    assert_eq!(stopped["result"]["details"]["stopped"][0]["current_state"], "stopped", "{stopped}");
    assert!(moto.tag(&victim, "cme:revert").await.unwrap().contains("start it"));
    let executor_id = stopped["id"].as_str().unwrap();
    wait_for("the stop's revert, done", async || {
        crate::inventories::undo_of(&api, executor_id).await["state"] == "done"
    })
    .await;
    assert_eq!(moto.state(&victim).await, "running", "started again");
    assert_eq!(crate::inventories::undo_of(&api, executor_id).await["kind"], "ec2");

    // The implied aws cloud ([ec2]) takes the same plan: only `cloud` changes.
    let terminated = run_plan(
        &api,
        plan(
            "gone",
            "terminate_random_node:TerminateRandomNode",
            json!({"cloud": "aws", "tags": {"Test": label, "chaos": "yes"}}),
        ),
    )
    .await;
    assert_eq!(terminated["status"], "succeeded", "{terminated}");
    let gone = terminated["result"]["targets"][0].as_str().unwrap().to_string();
    assert!(matches!(moto.state(&gone).await.as_str(), "shutting-down" | "terminated"));
    assert_eq!(moto.state(&outside).await, "running");

    // An unknown cloud and an undeclared one are refused clearly.
    let unknown =
        run_plan(&api, plan("nowhere", "terminate_random_node:TerminateRandomNode", json!({"cloud": "mars"}))).await;
    assert_eq!(unknown["status"], "failed");
    assert!(unknown["error"].as_str().unwrap().contains("cloud \"mars\""), "{unknown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_stopped_by_an_engine_killed_mid_step_is_started_by_the_next_engine() {
    let Some(moto) = Moto::connect(REGION).await else { return };
    let label = label("clouds-kill");
    let node = moto.launch(&[("Test", &label), ("chaos", "yes")], None, None).await.id;
    let dir = tempfile::tempdir().unwrap();
    // Short leases: the killed engine's run is known dead seconds after.
    let quick = "run_deadline_seconds = 4\nlease_margin_seconds = 1\nreaper_interval_seconds = 1\n";
    let options = |database_url: Option<String>| Options {
        env: moto.engine_env(),
        config: Some(format!("{quick}{}", config(""))),
        database_url,
        ..Options::default()
    };
    let mut engine = Engine::start(dir.path(), Backend::Sqlite, options(None));
    let api = engine.client();
    let stop = json!({"ref": "stop_random_node:StopRandomNode", "args": {"cloud": "canada", "tags": {"Test": label}, "duration_seconds": 600}});
    let body = json!({
        "name": "held across a crash",
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "steps": [{"name": "stop", "duration_seconds": 600, "attack": stop}],
    });
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    wait_for("the stop", async || moto.state(&node).await == "stopped").await;
    let database_url = engine.database_url.clone();
    engine.kill9();
    assert_eq!(moto.state(&node).await, "stopped", "nothing reverted it yet");
    let engine = Engine::start(dir.path(), Backend::Sqlite, options(Some(database_url)));
    let api = engine.client();
    wait_for("the revert after the crash", async || moto.state(&node).await == "running").await;
    let executor = api.wait_executor(&id, is_terminal).await;
    assert_eq!(executor["status"], "failed", "reaped: {executor}");
}

#[test]
fn a_bad_cloud_configuration_stops_the_start_naming_the_setting() {
    for (extra, fragment) in [
        ("[[clouds]]\nname = \"canada\"\nprovider = \"aws\"\nregions = [\"eu-west-1\"]\n", "used twice"),
        (
            "[[clouds]]\nname = \"g\"\nprovider = \"gce\"\nproject = \"p\"\nzones = [\"z\"]\nregions = [\"r\"]\n",
            "regions is not a gce setting",
        ),
        (
            "[[clouds]]\nname = \"g\"\nprovider = \"gce\"\nproject = \"p\"\nzones = [\"z\"]\nrequired_tags = { Chaos = \"yes\" }\n",
            "cannot store this tag",
        ),
        ("[[clouds]]\nname = \"w\"\nprovider = \"aws\"\nregions = [\"us-east-1\"]\n", "outside [ec2] regions"),
        (
            "[[clouds]]\nname = \"d\"\nprovider = \"digitalocean\"\ncredential = \"nope\"\n",
            "not a [[http.credentials]] entry",
        ),
        ("[[clouds]]\nname = \"d\"\nprovider = \"vmware\"\n", "unknown cloud provider"),
        ("[[clouds]]\nname = \"d\"\nprovider = \"digitalocean\"\nendpoint = \"http://10.0.0.1/\"\n", "loopback"),
        (
            "[[http.credentials]]\nname = \"t\"\nkind = \"bearer\"\nurls = [\"https://nova.example/*\"]\nsecret = \"tok3n\"\n\
             [[clouds]]\nname = \"o\"\nprovider = \"openstack\"\nregion = \"RegionOne\"\ncredential = \"t\"\n",
            "which provider openstack does not take",
        ),
        (
            "[[http.credentials]]\nname = \"az\"\nkind = \"azure-client-secret\"\nurls = [\"https://management.azure.com/*\"]\n\
             client_id = \"c\"\nsecret = \"s3cret\"\n",
            "tenant_id is required",
        ),
        (
            "[[http.credentials]]\nname = \"az\"\nkind = \"azure-client-secret\"\nurls = [\"https://management.azure.com/subscriptions/other/*\"]\n\
             tenant_id = \"t\"\nclient_id = \"c\"\nsecret = \"s3cret\"\n\
             [[clouds]]\nname = \"a\"\nprovider = \"azure\"\nsubscription_id = \"s1\"\nresource_groups = [\"g\"]\ncredential = \"az\"\n",
            "its urls must cover",
        ),
        (
            "[[http.credentials]]\nname = \"os\"\nkind = \"openstack-application-credential\"\nurls = [\"https://nova.example/*\"]\n\
             auth_url = \"https://keystone.example/v3\"\napplication_credential_id = \"id\"\nsecret = \"s3cret\"\n\
             ca_file = \"/etc/hostname\"\n",
            "holds no PEM certificate",
        ),
        (
            "[[http.credentials]]\nname = \"os\"\nkind = \"openstack-password\"\nurls = [\"https://nova.example/*\"]\n\
             auth_url = \"http://10.0.0.5:5000/v3\"\nusername = \"u\"\nproject_name = \"p\"\nsecret = \"s3cret\"\n",
            "plain http only to a loopback host",
        ),
    ] {
        let stderr = refused_start(&config(extra));
        assert!(stderr.contains(fragment), "{extra}: {stderr}");
    }
}

/// The fake DigitalOcean's token; the engine holds it as a `[[http.credentials]]` secret.
const DO_TOKEN: &str = "dop_v1_fake0123456789abcdef";

/// A DigitalOcean cloud `do-ams` on the fake, fenced to chaos:yes droplets in ams3.
fn digitalocean_config(fake: &cme_test_peers::clouds::FakeCloud) -> String {
    format!(
        "[[http.credentials]]\nname = \"do\"\nkind = \"bearer\"\nurls = [\"{url}/*\"]\nsecret = \"{DO_TOKEN}\"\n\n\
         [[clouds]]\nname = \"do-ams\"\nprovider = \"digitalocean\"\nregions = [\"ams3\"]\ncredential = \"do\"\n\
         endpoint = \"{url}\"\nrequired_tags = {{ chaos = \"yes\" }}\nmax_nodes_per_run = 2\noperation_timeout_seconds = 60\n",
        url = fake.url
    )
}

/// Calls the fake directly, as a person with the token would.
async fn fake_call(
    fake: &cme_test_peers::clouds::FakeCloud,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", fake.url)).bearer_auth(DO_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    response.json::<Value>().await.unwrap_or(Value::Null)
}

async fn droplet_status(fake: &cme_test_peers::clouds::FakeCloud, id: &str) -> String {
    let answer = fake_call(fake, reqwest::Method::GET, &format!("/v2/droplets/{id}"), None).await;
    answer["droplet"]["status"].as_str().unwrap_or("gone").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_attacks_act_on_digitalocean_through_its_api_and_a_stop_is_reverted() {
    let fake = cme_test_peers::clouds::FakeCloud::digitalocean(DO_TOKEN);
    let mut fenced = Vec::new();
    for i in 0..3 {
        let made = fake_call(
            &fake,
            reqwest::Method::POST,
            "/_fake/droplets",
            Some(json!({"name": format!("web-{i}"), "region": "ams3", "tags": ["chaos:yes", "team:web"]})),
        )
        .await;
        fenced.push(made["droplet"]["id"].to_string());
    }
    let unfenced = fake_call(
        &fake,
        reqwest::Method::POST,
        "/_fake/droplets",
        Some(json!({"name": "web-x", "region": "ams3", "tags": ["team:web"]})),
    )
    .await["droplet"]["id"]
        .to_string();
    let elsewhere = fake_call(
        &fake,
        reqwest::Method::POST,
        "/_fake/droplets",
        Some(json!({"name": "web-y", "region": "nyc3", "tags": ["chaos:yes", "team:web"]})),
    )
    .await["droplet"]["id"]
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(digitalocean_config(&fake)), ..Options::default() },
    );
    let api = engine.client();

    // Stopped (a shutdown the API keeps in progress for a while), then started by the revert.
    let stop = plan(
        "stop",
        "stop_random_node:StopRandomNode",
        json!({"cloud": "do-ams", "tags": {"team": "web"}, "duration_seconds": 3}),
    );
    let stopped = run_plan(&api, stop).await;
    assert_eq!(stopped["status"], "succeeded", "{stopped}\n{}", engine.stderr());
    let victim = stopped["result"]["targets"][0].as_str().unwrap().to_string();
    assert!(fenced.contains(&victim), "only ams3 droplets tagged chaos:yes: {victim}");
    assert_eq!(stopped["result"]["details"]["stopped"][0]["current_state"], "stopped", "{stopped}");
    assert_eq!(stopped["result"]["details"]["provider"], "digitalocean");
    assert_eq!(droplet_status(&fake, &victim).await, "off");
    let executor_id = stopped["id"].as_str().unwrap();
    wait_for("the revert, done", async || crate::inventories::undo_of(&api, executor_id).await["state"] == "done")
        .await;
    assert_eq!(droplet_status(&fake, &victim).await, "active", "started again");
    let undos = api.get("/api/1/undos/").await.body;
    let undo = crate::inventories::undo_of(&api, executor_id).await;
    assert_eq!(undo["kind"], "compute", "{undo}");

    // The listing waited out the 429, followed every page of 2, and asked by tag.
    let requests = fake_call(&fake, reqwest::Method::GET, "/_fake/requests", None).await;
    let lists: Vec<&Value> =
        requests["requests"].as_array().unwrap().iter().filter(|r| r["path"] == "/v2/droplets").collect();
    assert!(lists.iter().any(|r| r["query"]["page"] == "2"), "pages followed: {lists:?}");
    assert!(lists.iter().all(|r| r["query"]["tag_name"] == "chaos:yes"), "the fence's tag asked of the API: {lists:?}");
    assert!(lists.len() >= 3, "the 429 retried, then two pages: {lists:?}");

    // An action the provider fails is a failed run with the provider's code.
    fake_call(&fake, reqwest::Method::POST, "/_fake/fail_next_action", Some(json!({"type": "reboot"}))).await;
    let reboot =
        run_plan(&api, plan("reboot", "reboot_random_node:RebootRandomNode", json!({"cloud": "do-ams"}))).await;
    assert_eq!(reboot["status"], "failed", "{reboot}");
    assert!(reboot["error"].as_str().unwrap().contains("action_errored"), "{reboot}");

    // Destroyed: gone from the API; never the unfenced or the other region's droplet.
    let destroyed = run_plan(
        &api,
        plan("gone", "terminate_random_node:TerminateRandomNode", json!({"cloud": "do-ams", "count": 2})),
    )
    .await;
    assert_eq!(destroyed["status"], "succeeded", "{destroyed}");
    let gone: Vec<String> =
        destroyed["result"]["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(gone.len(), 2);
    for id in &gone {
        assert_eq!(droplet_status(&fake, id).await, "gone");
    }
    assert_eq!(droplet_status(&fake, &unfenced).await, "active");
    assert_eq!(droplet_status(&fake, &elsewhere).await, "active");

    // The token is the host's: no answer or log line carries it.
    for body in [&stopped, &reboot, &destroyed, &undos] {
        assert!(!body.to_string().contains(DO_TOKEN));
    }
    assert!(!engine.stderr().contains(DO_TOKEN), "the engine's log never shows the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_moves_from_aws_to_digitalocean_by_changing_only_its_cloud() {
    let Some(moto) = Moto::connect("sa-east-1").await else { return };
    let label = label("move");
    let instance = moto.launch(&[("chaos", "yes"), ("app", &label)], None, None).await.id;
    let fake = cme_test_peers::clouds::FakeCloud::digitalocean(DO_TOKEN);
    let droplet = fake_call(
        &fake,
        reqwest::Method::POST,
        "/_fake/droplets",
        Some(json!({"name": "app-1", "region": "ams3", "tags": ["chaos:yes", format!("app:{label}")]})),
    )
    .await["droplet"]["id"]
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[ec2]\nregions = [\"sa-east-1\"]\nrequired_tags = {{ chaos = \"yes\" }}\n\n{}",
        digitalocean_config(&fake)
    );
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: moto.engine_env(), config: Some(config), ..Options::default() },
    );
    let api = engine.client();
    let body = |cloud: &str| {
        plan(
            "one app node goes away",
            "terminate_random_node:TerminateRandomNode",
            json!({"cloud": cloud, "tags": {"app": label}}),
        )
    };
    let on_aws = run_plan(&api, body("aws")).await;
    assert_eq!(on_aws["status"], "succeeded", "{on_aws}");
    assert_eq!(on_aws["result"]["targets"][0], instance.as_str());
    let on_do = run_plan(&api, body("do-ams")).await;
    assert_eq!(on_do["status"], "succeeded", "{on_do}");
    assert_eq!(on_do["result"]["targets"][0], droplet.as_str());
    assert!(matches!(moto.state(&instance).await.as_str(), "shutting-down" | "terminated"));
    assert_eq!(droplet_status(&fake, &droplet).await, "gone");
}

/// A fake cloud's test-only routes (`/_fake/...`, no credential): POST `body`.
pub(crate) async fn fake_post(fake: &cme_test_peers::clouds::FakeCloud, path: &str, body: Value) -> Value {
    let answer = reqwest::Client::new().post(format!("{}{path}", fake.url)).json(&body).send().await.unwrap();
    answer.json::<Value>().await.unwrap_or(Value::Null)
}

/// A fake cloud's test-only routes: GET.
pub(crate) async fn fake_get(fake: &cme_test_peers::clouds::FakeCloud, path: &str) -> Value {
    reqwest::get(format!("{}{path}", fake.url)).await.unwrap().json::<Value>().await.unwrap()
}

/// The CI venv's Python (`CME_TEST_PYTHON`), for the official clients' conformance runs.
pub(crate) fn client_python() -> Option<std::path::PathBuf> {
    let candidates: Vec<std::path::PathBuf> = std::env::var_os("CME_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache/cme-venv/bin/python")))
        .collect();
    tool(&candidates, "pip install pydo in the venv of CME_TEST_PYTHON, see .ci/run")
}

#[test]
fn the_fake_digitalocean_answers_pydo_as_the_api_does() {
    let Some(python) = client_python() else { return };
    let fake = cme_test_peers::clouds::FakeCloud::digitalocean(DO_TOKEN);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cme-test-peers/fakes/conformance/digitalocean.py");
    let output = std::process::Command::new(python).arg(script).args([fake.url.as_str(), DO_TOKEN]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "pydo against the fake:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_droplet_stopped_by_an_engine_killed_mid_step_is_started_by_the_next_engine() {
    let fake = cme_test_peers::clouds::FakeCloud::digitalocean(DO_TOKEN);
    let made = fake_call(
        &fake,
        reqwest::Method::POST,
        "/_fake/droplets",
        Some(json!({"name": "held", "region": "ams3", "tags": ["chaos:yes"]})),
    )
    .await;
    let droplet = made["droplet"]["id"].to_string();
    let dir = tempfile::tempdir().unwrap();
    let quick = "run_deadline_seconds = 30\nlease_margin_seconds = 1\nreaper_interval_seconds = 1\n";
    let options = |database_url: Option<String>| Options {
        config: Some(format!("{quick}{}", digitalocean_config(&fake))),
        database_url,
        ..Options::default()
    };
    let mut engine = Engine::start(dir.path(), Backend::Sqlite, options(None));
    let api = engine.client();
    let stop = json!({"ref": "stop_random_node:StopRandomNode", "args": {"cloud": "do-ams", "duration_seconds": 600}});
    let body = json!({
        "name": "a droplet held across a crash",
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "steps": [{"name": "stop", "duration_seconds": 600, "attack": stop}],
    });
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    wait_for("the stop", async || droplet_status(&fake, &droplet).await == "off").await;
    let database_url = engine.database_url.clone();
    engine.kill9();
    assert_eq!(droplet_status(&fake, &droplet).await, "off", "nothing reverted it yet");
    let engine = Engine::start(dir.path(), Backend::Sqlite, options(Some(database_url)));
    let api = engine.client();
    wait_for("the revert after the crash", async || crate::inventories::undo_of(&api, &id).await["state"] == "done")
        .await;
    assert_eq!(droplet_status(&fake, &droplet).await, "active", "started again");
    let executor = api.wait_executor(&id, is_terminal).await;
    assert_eq!(executor["status"], "failed", "reaped: {executor}");
    assert_eq!(crate::inventories::undo_of(&api, &id).await["kind"], "compute");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budgets_min_running_counts_the_clouds_running_nodes_before_a_destroy() {
    let fake = cme_test_peers::clouds::FakeCloud::digitalocean(DO_TOKEN);
    for i in 0..3 {
        fake_call(
            &fake,
            reqwest::Method::POST,
            "/_fake/droplets",
            Some(json!({"name": format!("web-{i}"), "region": "ams3", "tags": ["chaos:yes", "team:web"]})),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let budgets = "[budgets]\n[[budgets.groups]]\nname = \"web floor\"\ntag = \"team\"\nmin_running = 2\n\n";
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(format!("{budgets}{}", digitalocean_config(&fake))), ..Options::default() },
    );
    let api = engine.client();
    let body = || {
        plan(
            "one web droplet",
            "terminate_random_node:TerminateRandomNode",
            json!({"cloud": "do-ams", "tags": {"team": "web"}}),
        )
    };
    let first = run_plan(&api, body()).await;
    assert_eq!(first["status"], "succeeded", "3 running, 2 left: {first}");
    let second = run_plan(&api, body()).await;
    assert_eq!(second["status"], "failed", "{second}");
    let error = second["error"].as_str().unwrap();
    assert!(error.contains("web floor") && error.contains("min_running 2"), "{error}");
    let left = fake_call(&fake, reqwest::Method::GET, "/v2/droplets?tag_name=team:web", None).await;
    assert_eq!(left["droplets"].as_array().map(Vec::len), Some(2), "the budget kept two: {left}");
}
