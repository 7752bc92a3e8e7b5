//! The operator's fences through the real binary: `[ec2]` and `[http]` bound uploaded
//! plugins exactly as they bound the built-ins, whatever the plugin's grant says; refusals
//! name the fence; no plugin can call the engine's own API.

use std::time::Duration;

use cme_plugins::test_plugins::HOSTILE;
use serde_json::{Value, json};

use crate::peers::{Moto, label};
use crate::support::*;

async fn upload_and_grant(api: &Api, grant: Value) {
    let uploaded =
        api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(HOSTILE.wasm.to_vec()), Some("application/wasm")).await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);
    let granted = api.put("/api/1/plugins/hostile@0.1.0/grant", &grant).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
}

fn hostile_http(url: &str) -> Value {
    json!({"ref": "hostile:Hostile", "args": {"mode": "http", "method": "GET", "url": url}})
}

fn error_of(done: &Value) -> String {
    assert_eq!(done["status"], "failed", "{done}");
    done["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_http_fence_holds_an_uploaded_plugin_granted_everything() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config =
        format!("[http]\ndeny = [\"http://{addr}/denied/*\"]\ndeny_networks = [\"127.0.0.2\"]\n", addr = sink.addr);
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    upload_and_grant(&api, json!({"http": {"urls": ["*"]}})).await;

    let error = error_of(&api.run_once(hostile_http(&sink.url("/denied/x")), false).await);
    assert!(error.contains("the operator's [http] fence (deny)"), "{error}");
    let error = error_of(&api.run_once(hostile_http(&format!("http://127.0.0.2:{}/", sink.addr.port())), false).await);
    assert!(error.contains("the operator's [http] fence (deny_networks)"), "{error}");
    // The built-in HTTP attack meets the same fence.
    let builtin = api
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/denied/y"), "method": "GET"}}),
            false,
        )
        .await;
    assert!(error_of(&builtin).contains("[http] fence"));
    // Inside the fence, the grant decides.
    let allowed = api.run_once(hostile_http(&sink.url("/ok")), false).await;
    assert_eq!(allowed["status"], "succeeded", "{allowed}");
    let paths: Vec<String> = sink.requests().into_iter().map(|r| r.1).collect();
    assert_eq!(paths, vec!["/ok".to_string()], "nothing fenced reached the server");

    let audit = api.get("/api/1/audit/").await.body;
    let fenced = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "denied" && e["reason"].as_str().unwrap_or("").contains("[http] fence"))
        .count();
    assert_eq!(fenced, 3, "each fenced call is audited with the fence named");
}

#[tokio::test]
async fn the_allow_fence_narrows_every_grant() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[http]\nallow = [\"http://{addr}/chaos/*\"]\n", addr = sink.addr);
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    upload_and_grant(&api, json!({"http": {"urls": ["*"]}})).await;
    let error = error_of(&api.run_once(hostile_http(&sink.url("/other")), false).await);
    assert!(error.contains("matches none of the operator's [http] fence (allow)"), "{error}");
    assert_eq!(api.run_once(hostile_http(&sink.url("/chaos/1")), false).await["status"], "succeeded");
}

#[tokio::test]
async fn no_plugin_can_call_the_engines_own_api() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    upload_and_grant(&api, json!({"http": {"urls": ["*"]}})).await;
    let port = engine.url.rsplit(':').next().unwrap().trim_end_matches('/').to_string();
    for url in [
        format!("{}/api/1/resume", engine.url),
        format!("http://localhost:{port}/api/1/"),
        format!("http://[::ffff:127.0.0.1]:{port}/api/1/"),
    ] {
        let error = error_of(&api.run_once(hostile_http(&url), false).await);
        assert!(error.contains("the engine's own API"), "{url}: {error}");
    }
    let builtin = api.run_once(json!({"ref": "api_request:ApiRequest", "args": {"endpoint": format!("{}/api/1/halt", engine.url), "method": "POST"}}), false).await;
    assert!(error_of(&builtin).contains("the engine's own API"));
    assert_eq!(api.get("/api/1/halt").await.body["halted"], false, "the plugin could not halt the engine");
}

#[tokio::test]
async fn the_ec2_fence_holds_an_uploaded_plugin_whose_grant_asks_for_more() {
    let Some(moto) = Moto::connect("eu-west-1").await else { return };
    let label = label("fence");
    let tagged_a = moto.launch(&[("Test", &label), ("Chaos", "true")], None, None).await;
    let tagged_b = moto.launch(&[("Test", &label), ("Chaos", "true")], None, None).await;
    let untagged = moto.launch(&[("Test", &label)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let config =
        "[ec2]\nregions = [\"eu-west-1\"]\nrequired_tags = { Chaos = \"true\" }\nmax_terminations_per_run = 1\n";
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: moto.engine_env(), config: Some(config.into()), ..Options::default() },
    );
    let api = engine.client();
    upload_and_grant(&api, json!({"ec2": {"terminate": true, "max_terminations_per_run": 5}})).await;
    let terminate = |region: &str, ids: Vec<&str>| json!({"ref": "hostile:Hostile", "args": {"mode": "ec2-terminate", "region": region, "tag_key": "Test", "tag_value": label, "terminate": ids}});

    // The fence's tag is added to the plugin's describe: the untagged instance is never seen.
    let error = error_of(&api.run_once(terminate("eu-west-1", vec![&untagged.id]), false).await);
    assert!(error.contains(&format!("instance {} was not returned", untagged.id)), "{error}");
    // The grant's budget of 5 is cut to the fence's 1.
    let error = error_of(&api.run_once(terminate("eu-west-1", vec![&tagged_a.id, &tagged_b.id]), false).await);
    assert!(error.contains("the operator's [ec2] fence allows 1 terminations per run"), "{error}");
    // A region the plugin declares and its grant allows, outside the fence.
    let error = error_of(&api.run_once(terminate("ap-southeast-2", vec!["i-0"]), false).await);
    assert!(error.contains("outside the operator's [ec2] fence"), "{error}");
    // Inside every fence, one tagged instance goes.
    let done = api.run_once(terminate("eu-west-1", vec![&tagged_a.id]), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["result"]["details"]["described"].as_array().unwrap().len(),
        2,
        "only tagged instances were described: {done}"
    );
    assert!(!moto.is_running(&tagged_a.id).await);
    assert!(moto.is_running(&tagged_b.id).await && moto.is_running(&untagged.id).await);
}
