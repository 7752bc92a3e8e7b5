//! The original engine's flows and its bad-input table, against the real binary.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn the_original_clients_flows_work() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();

        // Listing plugins, with and without the trailing slash.
        for path in ["/api/1/planners/", "/api/1/planners"] {
            let reply = api.get(path).await;
            assert_eq!(reply.status, 200, "{backend:?} {path}");
            assert_eq!(reply.content_type, "application/hal+json");
            let refs: Vec<&str> =
                reply.body["planners"].as_array().unwrap().iter().map(|p| p["ref"].as_str().unwrap()).collect();
            assert_eq!(
                refs,
                vec![
                    "cron_planner:CronPlanner",
                    "exact_planner:ExactPlanner",
                    "mtbf_planner:MtbfPlanner",
                    "simple_planner:SimplePlanner",
                    "window_planner:WindowPlanner"
                ]
            );
            assert_eq!(reply.body["_links"]["self"]["href"], path);
        }
        let attacks = api.get("/api/1/attacks/").await.body;
        let api_request = &attacks["attacks"][0];
        assert_eq!(api_request["ref"], "api_request:ApiRequest");
        assert_eq!(api_request["example"]["ref"], "api_request:ApiRequest");
        assert_eq!(api_request["schema"]["required"], json!(["ref", "args"]));

        // Create, as the original's clients send it (the request body is theirs, verbatim).
        let created = api
            .post(
                "/api/1/plans/",
                &api_plan("API attack on local http.server", "http://127.0.0.1:4505/", &in_seconds(3600)),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["msg"], "ok");
        let plan_id = created.body["id"].as_str().unwrap().to_string();
        assert_eq!(plan_id.len(), 32);
        assert_eq!(created.location.as_deref(), Some(format!("/api/1/plans/{plan_id}").as_str()));
        let executor = &created.body["_embedded"]["executors"][0];
        assert_eq!(executor["status"], "pending");
        assert_eq!(executor["executed"], false);
        let executor_id = executor["id"].as_str().unwrap().to_string();
        assert_eq!(executor["_links"]["self"]["href"], format!("/api/1/executors/{executor_id}"));

        // Lists and documents.
        let plans = api.get("/api/1/plans/").await.body;
        assert_eq!(plans["plans"][0]["id"], plan_id.as_str());
        assert_eq!(plans["plans"][0]["executors_count"], 1);
        assert_eq!(plans["plans"][0]["executed"], false);
        let plan = api.get(&format!("/api/1/plans/{plan_id}")).await;
        assert_eq!(plan.status, 200);
        assert_eq!(plan.body["_embedded"]["executors"][0]["id"], executor_id.as_str());
        let pending = api.get("/api/1/executors/").await.body;
        assert_eq!(pending["_embedded"]["executors"][0]["id"], executor_id.as_str());
        let one = api.get(&format!("/api/1/executors/{executor_id}")).await;
        assert_eq!(one.status, 200);
        assert_eq!(one.body["plan_id"], plan_id.as_str());

        // Reschedule with the original's body; a naive date is in the engine's zone (UTC).
        let dates = Dates::like(2031);
        let moved = api
            .put(
                &format!("/api/1/executors/{executor_id}"),
                &json!({"type": "date", "args": {"date": dates.at("2031-06-01T12:00")}}),
            )
            .await;
        assert_eq!(moved.status, 200, "{:?}", moved.body);
        assert_eq!(moved.body["next_run_time"], dates.at("2031-06-01T12:00:00.000000Z"));

        // Cancel it; it leaves the pending list and shows under executed=true as cancelled.
        let cancelled = api.delete(&format!("/api/1/executors/{executor_id}")).await;
        assert_eq!(cancelled.status, 200);
        assert_eq!(cancelled.body["status"], "cancelled");
        assert!(api.get("/api/1/executors/").await.body["_embedded"]["executors"].as_array().unwrap().is_empty());
        let done = api.get("/api/1/executors/?executed=true").await.body;
        assert_eq!(done["_embedded"]["executors"][0]["status"], "cancelled");
        assert_eq!(done["_links"]["self"]["href"], "/api/1/executors/?executed=true");
        // Changing it again is a conflict.
        let again = api
            .put(
                &format!("/api/1/executors/{executor_id}"),
                &json!({"type": "date", "args": {"date": dates.at("2031-06-01T12:00")}}),
            )
            .await;
        assert_eq!(again.status, 409);

        // Its plan has nothing left: only ?all=true lists it.
        assert!(api.get("/api/1/plans/").await.body["plans"].as_array().unwrap().is_empty());
        let all = api.get("/api/1/plans/?all=true").await.body;
        assert_eq!(all["plans"][0]["id"], plan_id.as_str());
        assert_eq!(all["plans"][0]["executed"], true);

        // A simple plan, then deleting it: gone from plans, history kept under executors.
        let simple = api
            .post("/api/1/plans/", &json!({"name": "simple", "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:4505/", "method": "GET", "payload": {}, "headers": {}}},
                                           "planner": {"ref": "simple_planner:SimplePlanner", "args": {"min_time": "00:00", "max_time": "23:59", "times": 3}}}))
            .await;
        if simple.status == 400 {
            // Only at 23:59 UTC is the window over; the message says so.
            assert!(simple.body["msg"].as_str().unwrap().contains("window already over today"));
        } else {
            assert_eq!(simple.status, 201, "{:?}", simple.body);
            let id = simple.body["id"].as_str().unwrap().to_string();
            assert_eq!(simple.body["executors_count"], 3);
            let deleted = api.delete(&format!("/api/1/plans/{id}")).await;
            assert_eq!(deleted.status, 200);
            assert_eq!(deleted.body["msg"], format!("Plan {id} successfully deleted"));
            assert_eq!(api.get(&format!("/api/1/plans/{id}")).await.status, 404);
            let history = api.get(&format!("/api/1/executors/?plan_id={id}&executed=all")).await.body;
            let statuses: Vec<&str> = history["_embedded"]["executors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["status"].as_str().unwrap())
                .collect();
            assert_eq!(statuses, vec!["cancelled"; 3]);
        }

        // The entry document links everything; health answers.
        let entry = api.get("/api/1/").await.body;
        for rel in ["plans", "executors", "attacks", "planners", "halt", "audit"] {
            assert!(entry["_links"][rel]["href"].is_string(), "{rel}");
        }
        assert_eq!(api.get("/healthz").await.status, 200);
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();
        let good = api_plan("p", "http://127.0.0.1:4505/", &in_seconds(3600));
        let with = |pointer: &str, value: serde_json::Value| {
            let mut body = good.clone();
            *body.pointer_mut(pointer).unwrap() = value;
            body
        };
        let mut without_name = good.clone();
        without_name.as_object_mut().unwrap().remove("name");
        let mut attack_without_args = good.clone();
        attack_without_args["attack"].as_object_mut().unwrap().remove("args");
        let mut endpoint_missing = good.clone();
        endpoint_missing["attack"]["args"].as_object_mut().unwrap().remove("endpoint");

        // (what, JSON body, raw body, content type, expected status, expected detail)
        type Case = (&'static str, Option<serde_json::Value>, Option<Vec<u8>>, &'static str, u16, &'static str);
        let cases: Vec<Case> = vec![
            ("not json", None, Some(b"not json".to_vec()), "application/json", 400, "payload must be a valid json"),
            (
                "JSON sent as text/plain",
                None,
                Some(good.to_string().into_bytes()),
                "text/plain",
                415,
                "Content-Type: application/json",
            ),
            ("missing name", Some(without_name), None, "application/json", 400, "\"name\" is a required property"),
            (
                "name is a number",
                Some(with("/name", json!(5))),
                None,
                "application/json",
                400,
                "5 is not of type \"string\"",
            ),
            (
                "attack without args",
                Some(attack_without_args),
                None,
                "application/json",
                400,
                "\"args\" is a required property",
            ),
            (
                "api_request without endpoint",
                Some(endpoint_missing),
                None,
                "application/json",
                400,
                "\"endpoint\" is a required property",
            ),
            (
                "unknown planner class",
                Some(with("/planner/ref", json!("exact_planner:Nope"))),
                None,
                "application/json",
                400,
                "unknown planner ref",
            ),
            (
                "unknown attack module",
                Some(with("/attack/ref", json!("nope:Nope"))),
                None,
                "application/json",
                400,
                "unknown attack ref",
            ),
            (
                "garbage date",
                Some(with("/planner/args/date", json!("garbage"))),
                None,
                "application/json",
                400,
                "date: ",
            ),
            (
                "planner args empty",
                Some(with("/planner/args", json!({}))),
                None,
                "application/json",
                400,
                "\"date\" is a required property",
            ),
            (
                "date is a number",
                Some(with("/planner/args/date", json!(5))),
                None,
                "application/json",
                400,
                "is not of type \"string\"",
            ),
            (
                "past date",
                Some(with("/planner/args/date", json!("2020-01-01T00:00:00Z"))),
                None,
                "application/json",
                400,
                "in the past",
            ),
            (
                "simple times 0",
                Some(with(
                    "/planner",
                    json!({"ref": "simple_planner:SimplePlanner", "args": {"min_time": "10:00", "max_time": "15:00", "times": 0}}),
                )),
                None,
                "application/json",
                400,
                "minimum",
            ),
            (
                "simple times \"3\"",
                Some(with(
                    "/planner",
                    json!({"ref": "simple_planner:SimplePlanner", "args": {"min_time": "10:00", "max_time": "15:00", "times": "3"}}),
                )),
                None,
                "application/json",
                400,
                "not of type \"integer\"",
            ),
            (
                "oversize body",
                None,
                Some(format!("{{\"name\":\"{}\"}}", "x".repeat(2 << 20)).into_bytes()),
                "application/json",
                413,
                "larger than",
            ),
        ];
        for (what, json_body, raw_body, content_type, status, fragment) in cases {
            let body = raw_body.unwrap_or_else(|| json_body.unwrap().to_string().into_bytes());
            let reply = api.raw(reqwest::Method::POST, "/api/1/plans/", Some(body), Some(content_type)).await;
            assert_eq!(reply.status, status, "{backend:?} {what}: {:?}", reply.body);
            assert_eq!(reply.content_type, "application/problem+json", "{what}");
            let msg = reply.body["msg"].as_str().unwrap_or_default();
            assert!(msg.contains(fragment), "{what}: {msg:?} lacks {fragment:?}");
            assert_eq!(reply.body["detail"], reply.body["msg"]);
        }
        let pointer = api.post("/api/1/plans/", &with("/planner/args/date", json!(5))).await;
        assert_eq!(pointer.body["pointer"], "/planner/args/date");

        // Nothing of the above was stored.
        assert!(api.get("/api/1/plans/?all=true").await.body["plans"].as_array().unwrap().is_empty());
        assert!(
            api.get("/api/1/executors/?executed=all").await.body["_embedded"]["executors"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // The documented dotted ref works.
        assert_eq!(api.post("/api/1/plans/", &with("/attack/ref", json!("api_request.ApiRequest"))).await.status, 201);

        // Unknown ids are 404 with problem+json, never HTML.
        for path in ["/api/1/plans/nope", "/api/1/executors/nope", "/nothing/here"] {
            let reply = api.get(path).await;
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(reply.content_type, "application/problem+json");
        }
        assert_eq!(api.delete("/api/1/plans/nope").await.status, 404);
        assert_eq!(api.delete("/api/1/executors/nope").await.status, 404);
        assert_eq!(
            api.put("/api/1/executors/nope", &json!({"type": "date", "args": {"date": "2031-01-01T00:00:00Z"}}))
                .await
                .status,
            404
        );
        // Reschedule body errors, as the original's table.
        let id =
            api.get("/api/1/executors/").await.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        for (body, fragment) in [
            (json!({"type": "cron", "args": {"date": "2031-01-01T00:00:00Z"}}), "Invalid trigger type"),
            (json!({"type": "date", "args": {}}), "\"date\" is a required property"),
            (json!({"args": {"date": "x"}}), "\"type\" is a required property"),
            (json!({"type": "date", "args": {"date": "tomorrow"}}), "invalid date"),
        ] {
            let reply = api.put(&format!("/api/1/executors/{id}"), &body).await;
            assert_eq!(reply.status, 400, "{body}");
            assert!(reply.body["msg"].as_str().unwrap().contains(fragment), "{body}: {}", reply.body["msg"]);
        }
        // Bad query parameters.
        assert_eq!(api.get("/api/1/executors/?page=0").await.status, 400);
        assert_eq!(
            api.get("/api/1/executors/?page=99999999999999999&size=1000").await.status,
            400,
            "an absurd page is refused, not overflowed"
        );
        assert_eq!(api.get("/api/1/plans/?page=18446744073709551615").await.status, 400);
        assert_eq!(api.get("/api/1/executors/?status=exploded").await.status, 400);
        // A wrong method is 405, still problem+json.
        let reply = api.raw(reqwest::Method::PATCH, "/api/1/plans/", None, None).await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.content_type, "application/problem+json");
    }
}

#[tokio::test]
async fn lists_paginate_with_next_and_prev_links() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // Five executors, whatever the time of day: five exact plans an hour apart.
    for hour in 1..=5 {
        let plan = api_plan("many", "http://127.0.0.1:4505/", &in_seconds(3600 * hour));
        assert_eq!(api.post("/api/1/plans/", &plan).await.status, 201);
    }
    let ids = |doc: &serde_json::Value| -> Vec<String> {
        doc["_embedded"]["executors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    // `next` seeks with a cursor, keeping the other parameters; following it walks the
    // whole list once, in order.
    let first = api.get("/api/1/executors/?size=2&executed=all").await.body;
    assert_eq!(ids(&first).len(), 2);
    let next = first["_links"]["next"]["href"].as_str().unwrap().to_string();
    assert!(next.starts_with("/api/1/executors/?size=2&executed=all&after="), "{next}");
    assert!(first["_links"]["prev"].is_null());
    let mut walked = ids(&first);
    let mut href = next;
    loop {
        let doc = api.get(&href).await.body;
        walked.extend(ids(&doc));
        match doc["_links"]["next"]["href"].as_str() {
            Some(next) => href = next.to_string(),
            None => break,
        }
    }
    let all = api.get("/api/1/executors/?size=100&executed=all").await.body;
    assert_eq!(walked, ids(&all), "the cursor walk is the list, in order, once");
    // Pages by number still work (the original's clients), with a way back.
    let last = api.get("/api/1/executors/?size=2&executed=all&page=3").await.body;
    assert_eq!(ids(&last), ids(&all)[4..].to_vec());
    assert!(last["_links"]["next"].is_null());
    assert_eq!(last["_links"]["prev"]["href"], "/api/1/executors/?size=2&executed=all&page=2");
    // A cursor that is not one is refused.
    assert_eq!(api.get("/api/1/executors/?after=yesterday").await.status, 400);
}

#[tokio::test]
async fn plans_beyond_the_configured_caps_are_refused_with_429_and_store_nothing() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = "max_plans = 2\nmax_pending_executors = 1\n";
    let engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config.into()), ..Options::default() });
    let api = engine.client();
    let later = in_seconds(3600);
    let ran = api
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/now"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(api.post("/api/1/plans/", &api_plan("pending", &sink.url("/b"), &later)).await.status, 201);

    let refused = api.post("/api/1/plans/", &api_plan("third", &sink.url("/c"), &later)).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    let message = refused.body["msg"].as_str().unwrap();
    assert!(message.contains("at most 2 live plans") && message.contains("max_plans"), "{message}");

    // Deleting the finished plan frees a plan, not a pending executor.
    assert_eq!(api.delete(&format!("/api/1/plans/{}", ran["plan_id"].as_str().unwrap())).await.status, 200);
    let refused = api.post("/api/1/plans/", &api_plan("third", &sink.url("/c"), &later)).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    let message = refused.body["msg"].as_str().unwrap();
    assert!(message.contains("at most 1 pending executors") && message.contains("max_pending_executors"), "{message}");
    let names: Vec<Value> = api.get("/api/1/plans/?all=true").await.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("pending")], "nothing of the refused plans was stored");
}

#[tokio::test]
async fn audit_events_run_logs_and_journals_past_their_retention_are_pruned_and_results_stay() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = "audit_retention_seconds = 3\nrun_log_retention_seconds = 3\nreaper_interval_seconds = 1\n";
    let engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config.into()), ..Options::default() });
    let api = engine.client();
    let done = api
        .run_once(
            json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/kept"), "method": "GET"}}),
            false,
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let id = done["id"].as_str().unwrap().to_string();
    let audited =
        |audit: &Value| audit["_embedded"]["audit"].as_array().unwrap().iter().any(|e| e["run_id"] == id.as_str());
    assert!(audited(&api.get("/api/1/audit/").await.body), "the run's calls are audited at first");
    assert!(
        done["log"]["elapsed_ms"].as_u64().unwrap() > 0 || !done["log"]["lines"].as_array().unwrap().is_empty(),
        "{done}"
    );
    assert_eq!(api.get(&format!("/api/1/executors/{id}/journal")).await.status, 200, "a journal at first");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let executor = api.get(&format!("/api/1/executors/{id}")).await.body;
        let audit = api.get("/api/1/audit/").await.body;
        let journal = api.get(&format!("/api/1/executors/{id}/journal")).await.status;
        if !audited(&audit)
            && executor["log"]["lines"].as_array().is_some_and(Vec::is_empty)
            && executor["log"]["elapsed_ms"] == 0
            && journal == 404
        {
            assert_eq!(executor["status"], "succeeded", "the result outlives the log: {executor}");
            assert_eq!(executor["result"], done["result"]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing was pruned: {executor} {audit}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(engine.stderr().contains("pruned what is past its retention"));
}

#[tokio::test]
async fn a_plan_fires_once_on_request_and_not_while_halted() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let created = api.post("/api/1/plans/", &api_plan("on request", &sink.url("/now"), &in_seconds(3600))).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["_links"]["run"]["href"], format!("/api/1/plans/{id}/run"));

    let fired = api.post(&format!("/api/1/plans/{id}/run"), &json!({})).await;
    assert_eq!(fired.status, 201, "{:?}", fired.body);
    let executor = fired.body["id"].as_str().unwrap().to_string();
    assert_eq!(fired.location.as_deref(), Some(format!("/api/1/executors/{executor}").as_str()));
    let done = api.wait_executor(&executor, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(sink.requests().len(), 1);
    let plan = api.get(&format!("/api/1/plans/{id}")).await.body;
    assert_eq!(plan["executors_count"], 2, "the planned run is still there: {plan}");

    assert_eq!(api.post("/api/1/halt", &json!({})).await.status, 200);
    let refused = api.post(&format!("/api/1/plans/{id}/run"), &json!({})).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body["msg"].as_str().unwrap().contains("halted"), "{:?}", refused.body);
    assert_eq!(api.post("/api/1/resume", &json!({})).await.status, 200);
    assert_eq!(api.post("/api/1/plans/0123456789abcdef0123456789abcdef/run", &json!({})).await.status, 404);
    assert_eq!(sink.requests().len(), 1, "nothing more fired");
}

#[tokio::test]
async fn a_paused_plan_fires_nothing_until_it_is_resumed() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let created = api.post("/api/1/plans/", &api_plan("pausable", &sink.url("/paused"), &in_seconds(2))).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_string();
    let executor = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();

    let paused = api.post(&format!("/api/1/plans/{id}/pause"), &json!({})).await;
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    assert_eq!(paused.body["paused"], true);
    assert!(paused.body["paused_since"].is_string());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.get(&format!("/api/1/executors/{executor}")).await.body["status"], "paused");
    assert!(sink.requests().is_empty(), "nothing fired while paused");

    let resumed = api.post(&format!("/api/1/plans/{id}/resume"), &json!({})).await;
    assert_eq!(resumed.body["paused"], false);
    let done = api.wait_executor(&executor, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "within its grace it fires once resumed: {done}");
    assert_eq!(sink.requests().len(), 1);
    assert_eq!(api.post("/api/1/plans/0123456789abcdef0123456789abcdef/pause", &json!({})).await.status, 404);
}

#[tokio::test]
async fn a_plan_may_name_its_own_time_zone_and_an_unknown_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { args: vec!["--timezone".into(), "Europe/Madrid".into()], ..Options::default() },
    );
    let api = engine.client();
    let dates = Dates::like(2030);
    let mut body = api_plan("new york morning", "http://127.0.0.1:9/x", &dates.at("2030-01-01T10:00:00"));
    body["timezone"] = json!("America/New_York");
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["timezone"], "America/New_York");
    let due = chrono::DateTime::parse_from_rfc3339(created.body["next_execution"].as_str().unwrap()).unwrap();
    assert_eq!(
        due.to_utc().to_rfc3339(),
        dates.at("2030-01-01T15:00:00+00:00"),
        "10:00 in New York, not in the engine's Madrid"
    );

    body["timezone"] = json!("Mars/Olympus_Mons");
    let refused = api.post("/api/1/plans/", &body).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["pointer"], "/timezone");
    assert!(refused.body["msg"].as_str().unwrap().contains("unknown IANA time zone"), "{:?}", refused.body);
    assert_eq!(api.get("/api/1/plans/").await.body["plans"].as_array().unwrap().len(), 1, "nothing stored");
}

/// Plans created many at once share commits; every one answered 201 is on disk the moment
/// it was answered: killed with SIGKILL straight after, the engine comes back with all of
/// them (on SQLite and PostgreSQL).
#[tokio::test(flavor = "multi_thread")]
async fn every_plan_answered_201_survives_a_kill_9_right_after() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();
        let sink = Sink::start(Duration::ZERO).await;
        let later = in_seconds(86_400);
        let mut posts = tokio::task::JoinSet::new();
        for n in 0..200 {
            let (api, plan) = (api.clone(), api_plan(&format!("durable {n}"), &sink.url("/never"), &later));
            posts.spawn(async move { api.post("/api/1/plans/", &plan).await });
        }
        let mut answered = Vec::new();
        while let Some(reply) = posts.join_next().await {
            let reply = reply.unwrap();
            assert_eq!(reply.status, 201, "{backend:?}: {:?}", reply.body);
            answered.push(reply.body["id"].as_str().unwrap().to_string());
        }
        engine.kill9();

        let again = Engine::start(
            dir.path(),
            backend,
            Options { database_url: Some(engine.database_url.clone()), ..Options::default() },
        );
        let listed = again.client().get("/api/1/plans/?size=1000").await.body;
        let stored: std::collections::HashSet<&str> =
            listed["plans"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        for id in &answered {
            assert!(stored.contains(id.as_str()), "{backend:?}: plan {id} was answered 201 and is gone after kill -9");
        }
        assert_eq!(stored.len(), 200, "{backend:?}");
    }
}

/// A dashboard polls the same page: it is answered from memory while nothing changed, and
/// shows every change (an insert, a reschedule, a cancel, a run's claim and result, each
/// written by another path) on the very next request.
#[tokio::test]
async fn a_polled_executor_page_shows_every_change_at_once() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::start(dir.path(), backend, Options::default());
        let api = engine.client();
        let page = "/api/1/executors/?executed=all&size=100";
        let statuses = |body: &Value| -> Vec<(String, String, String)> {
            body["_embedded"]["executors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap().to_string(),
                        e["status"].as_str().unwrap().to_string(),
                        e["next_run_time"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        assert!(statuses(&api.get(page).await.body).is_empty(), "{backend:?}");

        let later = api.post("/api/1/plans/", &api_plan("later", "http://127.0.0.1:9/", &in_seconds(3600))).await.body;
        let later_id = later["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let seen = statuses(&api.get(page).await.body);
        assert_eq!(seen.len(), 1, "{backend:?}: the insert shows at once");
        assert_eq!(statuses(&api.get(page).await.body), seen, "{backend:?}: polled again, the same page");

        let moved = in_seconds(7200);
        let rescheduled =
            api.put(&format!("/api/1/executors/{later_id}"), &json!({"type": "date", "args": {"date": moved}})).await;
        assert_eq!(rescheduled.status, 200, "{:?}", rescheduled.body);
        let seen = statuses(&api.get(page).await.body);
        assert_ne!(
            seen[0].2,
            later["_embedded"]["executors"][0]["next_run_time"].as_str().unwrap(),
            "{backend:?}: moved"
        );
        assert_eq!(
            seen[0].2,
            rescheduled.body["next_run_time"].as_str().unwrap(),
            "{backend:?}: the reschedule shows at once"
        );

        assert_eq!(api.delete(&format!("/api/1/executors/{later_id}")).await.status, 200);
        assert_eq!(statuses(&api.get(page).await.body)[0].1, "cancelled", "{backend:?}: the cancel shows at once");

        // A run: claimed and recorded by the scheduler; each poll shows the state stored then.
        let sink = Sink::start(Duration::ZERO).await;
        let soon = api.post("/api/1/plans/", &api_plan("soon", &sink.url("/hit"), &in_seconds(1))).await.body;
        let soon_id = soon["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let mut shown = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let seen = statuses(&api.get(page).await.body);
            let status = seen.iter().find(|(id, _, _)| *id == soon_id).map(|(_, s, _)| s.clone()).unwrap();
            if shown.last() != Some(&status) {
                shown.push(status.clone());
            }
            if status == "succeeded" || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(shown.first().map(String::as_str), Some("pending"), "{backend:?}: {shown:?}");
        assert_eq!(shown.last().map(String::as_str), Some("succeeded"), "{backend:?}: {shown:?}");
        let document = api.get(&format!("/api/1/executors/{soon_id}")).await.body;
        assert_eq!(document["status"], "succeeded", "{backend:?}: the list agrees with the executor's own document");
    }
}
