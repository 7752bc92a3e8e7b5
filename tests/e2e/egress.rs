//! Egress defaults through the real binary: every known cloud metadata address, and
//! every IPv6 form that embeds one, is refused to the built-in HTTP attack; loopback
//! stays reachable (a legitimate chaos target).

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn metadata_addresses_in_every_spelling_are_refused_and_loopback_is_not() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let refused = [
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://168.63.129.16/machine",
        "http://[fd00:ec2::254]/latest/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::169.254.169.254]/",
        "http://[fd00:ec2::23]/v1/credentials",
        "http://169.254.170.23/v1/credentials",
        "http://169.254.170.2/v2/credentials/x",
        "http://[fd20:ce::254]/computeMetadata/v1/",
        "http://192.0.0.192/latest/",
    ];
    let mut planned = Vec::new();
    for url in refused {
        let created = api
            .plan_once(json!({"ref": "api_request:ApiRequest", "args": {"endpoint": url, "method": "GET"}}), false)
            .await;
        planned.push((url, created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string()));
    }
    for (url, id) in planned {
        let done = api.wait_executor(&id, is_terminal).await;
        assert_eq!(done["status"], "failed", "{url}: {done}");
        assert!(done["error"].as_str().unwrap().contains("link-local or cloud metadata address"), "{url}: {done}");
    }
    let reachable = api
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/ok"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(reachable["status"], "succeeded", "{reachable}");
    let denied = api.get("/api/1/audit/").await.body["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "denied")
        .count();
    assert_eq!(denied, refused.len(), "each refusal is audited");
}
