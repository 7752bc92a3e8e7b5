//! Lists that grow from input are bounded and paged: blackouts by cursor (`size` at most
//! 1,000, `_links.next`, `count` = the total) under a total cap (`max_blackouts` -> 429),
//! the other input-grown lists the same way, and the CLI follows `next` to the end. A
//! blackout made on one replica holds on another at once (the blackout index is rebuilt
//! when the store's blackout generation changes).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::*;

/// Every item of a paged list, following `next`, and how many pages it took.
async fn follow(api: &Api, first: &str, key: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(path) = next {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {:?}", page.body);
        pages += 1;
        let found = page
            .body
            .get(key)
            .or_else(|| page.body["_embedded"].get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        items.extend(found);
        next = page.body["_links"]["next"]["href"].as_str().map(str::to_string);
    }
    (items, pages)
}

#[tokio::test(flavor = "multi_thread")]
async fn blackouts_are_capped_and_paged_by_cursor_and_the_cli_reads_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some("max_blackouts = 120\n".into()), ..Options::default() },
    );
    let api = engine.client();
    let mut calendar = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    for i in 0..100 {
        calendar.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{i}\r\nDTSTART;VALUE=DATE:2031{:02}{:02}\r\nSUMMARY:day {i}\r\nEND:VEVENT\r\n",
            i / 28 + 1,
            i % 28 + 1
        ));
    }
    calendar.push_str("END:VCALENDAR\r\n");
    let imported = api
        .raw(
            reqwest::Method::POST,
            "/api/1/calendars/?name=days",
            Some(calendar.clone().into_bytes()),
            Some("text/calendar"),
        )
        .await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    let dates = Dates::like(2032);
    let day = (dates.at("2032-01-01T00:00:00Z"), dates.at("2032-01-02T00:00:00Z"));
    for i in 0..20 {
        let created =
            api.post("/api/1/blackouts/", &json!({"name": format!("freeze {i}"), "start": day.0, "end": day.1})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let over = api.post("/api/1/blackouts/", &json!({"name": "one too many", "start": day.0, "end": day.1})).await;
    assert_eq!(over.status, 429, "{:?}", over.body);
    assert!(
        over.body["msg"].as_str().unwrap().contains("max_blackouts")
            || over.body["msg"].as_str().unwrap().contains("at most 120"),
        "{:?}",
        over.body
    );
    // Re-importing the same calendar replaces its blackouts: within the cap.
    let again = api
        .raw(reqwest::Method::POST, "/api/1/calendars/?name=days", Some(calendar.into_bytes()), Some("text/calendar"))
        .await;
    assert_eq!(again.status, 201, "{:?}", again.body);

    let first = api.get("/api/1/blackouts/?size=50").await;
    assert_eq!(first.body["count"], 120, "count is the total");
    assert_eq!(first.body["blackouts"].as_array().unwrap().len(), 50);
    assert!(first.body["_links"]["next"]["href"].as_str().unwrap().contains("after="));
    let (all, pages) = follow(&api, "/api/1/blackouts/?size=50", "blackouts").await;
    assert_eq!((all.len(), pages), (120, 3));
    let ids: HashSet<&str> = all.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 120, "no blackout twice, none missed");
    assert_eq!(api.get("/api/1/blackouts/").await.body["blackouts"].as_array().unwrap().len(), 100, "100 by default");
    for bad in ["size=1001", "size=0", "after=nonsense", "after=12-%27%3B"] {
        let refused = api.get(&format!("/api/1/blackouts/?{bad}")).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
    }
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(["blackouts", "list", "--url", &engine.url])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("days: day 99") && text.contains("freeze 19"), "the CLI followed every page:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inventories_plugins_and_audit_are_paged_by_cursor_too() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let key = cme_test_peers::sshd::ed25519(dir.path(), "k");
    let stored = api
        .post(
            "/api/1/credentials/",
            &json!({"name": "fleet", "user": "ops", "private_key": std::fs::read_to_string(&key).unwrap()}),
        )
        .await;
    assert_eq!(stored.status, 201);
    for i in 0..5 {
        let put = api
            .put(
                &format!("/api/1/inventories/inv-{i}"),
                &json!({"hosts": [{"name": "h", "address": "10.0.0.1", "credential": "fleet"}]}),
            )
            .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
    }
    let (inventories, pages) = follow(&api, "/api/1/inventories/?size=2", "inventories").await;
    assert_eq!((inventories.len(), pages), (5, 3));
    let (plugins, _) = follow(&api, "/api/1/plugins/?size=3", "plugins").await;
    assert_eq!(plugins.len(), api.get("/api/1/plugins/?size=1000").await.body["count"].as_u64().unwrap() as usize);
    let (audit, pages) = follow(&api, "/api/1/audit/?size=2", "audit").await;
    assert_eq!(audit.len(), 6, "the credential and five inventories: {audit:?}");
    assert_eq!(pages, 3);
    let stale = api.get("/api/1/inventories/?after=gone").await;
    assert_eq!(stale.status, 400, "a cursor naming nothing is refused: {:?}", stale.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blackout_made_on_one_replica_holds_on_another_at_once() {
    if !backends().contains(&Backend::Postgres) {
        return; // said by backends(); CI requires PostgreSQL
    }
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database(Backend::Postgres, dir.path());
    let a = Engine::start(
        dir.path(),
        Backend::Postgres,
        Options { database_url: Some(database_url.clone()), ..Options::default() },
    );
    let b = Engine::start(
        dir.path(),
        Backend::Postgres,
        Options { database_url: Some(database_url), ..Options::default() },
    );
    let sink = Sink::start(std::time::Duration::ZERO).await;
    // B builds its blackout index (empty) with a first plan.
    let warm = b
        .client()
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/warm"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(warm["status"], "succeeded", "{warm}");
    let made = a
        .client()
        .post(
            "/api/1/blackouts/",
            &json!({"name": "made on A", "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(made.status, 201);
    let held = b.client().post("/api/1/plans/", &api_plan("held", &sink.url("/held"), &in_seconds(1))).await;
    let id = held.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = b.client().wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "skipped", "{done}");
    assert!(done["reason"].as_str().unwrap().contains("made on A"), "{done}");
}
