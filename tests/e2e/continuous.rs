//! Continuous chaos through the real binary: each recurring planner, blackouts and an
//! ICS holiday, DST in a forecast, forecasts equal to the executors made, misfire and
//! overlap policies, and recurring plans extended exactly once by two engines on one
//! PostgreSQL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Recurring plans are planned 7 s ahead and extended every second.
const SHORT_HORIZON: &str = "recurring_horizon_seconds = 7\n";

fn recurring_plan(name: &str, endpoint: &str, planner: Value) -> Value {
    json!({
        "name": name,
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": endpoint, "method": "POST"}},
        "planner": planner,
        "overlap": "allow",
    })
}

fn firings(doc: &Value) -> Vec<Value> {
    doc["firings"].as_array().cloned().unwrap_or_default()
}

fn dues(firings: &[Value]) -> Vec<String> {
    firings.iter().map(|f| f["due"].as_str().unwrap().to_string()).collect()
}

/// Every executor of a plan, in due order (all statuses).
async fn executors_of(api: &Api, plan_id: &str) -> Vec<Value> {
    let doc = api.get(&format!("/api/1/executors/?plan_id={plan_id}&executed=all&size=1000")).await.body;
    doc["_embedded"]["executors"].as_array().cloned().unwrap_or_default()
}

/// Polls until `check` holds (the timeout only stops a broken test from hanging).
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_cron_plan_recurs_through_the_binary_and_its_forecast_is_what_fires() {
    for backend in backends() {
        let sink = Sink::start(Duration::ZERO).await;
        let dir = tempfile::tempdir().unwrap();
        let engine =
            Engine::start(dir.path(), backend, Options { config: Some(SHORT_HORIZON.into()), ..Options::default() });
        let api = engine.client();
        let body = recurring_plan(
            "every 2 s",
            &sink.url("/cron"),
            json!({"ref": "cron_planner:CronPlanner", "args": {"cron": "*/2 * * * * *", "jitter_seconds": 1}}),
        );
        let created = api.post("/api/1/plans/", &body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["recurring"], true);
        assert_eq!(created.body["overlap"], "allow");
        let plan_id = created.body["id"].as_str().unwrap().to_string();
        let horizon = created.body["planned_until"].as_str().unwrap().to_string();
        let (from, until) = (created.body["created"].as_str().unwrap().to_string(), in_seconds(14));
        let forecast = api
            .get(&format!("/api/1/plans/{plan_id}/forecast?from={}&until={}", urlencode(&from), urlencode(&until)))
            .await;
        assert_eq!(forecast.status, 200, "{:?}", forecast.body);
        let predicted = firings(&forecast.body);
        // The API's own spelling of the span, comparable as text with its other dates.
        let (from, until) =
            (forecast.body["from"].as_str().unwrap().to_string(), forecast.body["until"].as_str().unwrap().to_string());
        assert!(predicted.len() >= 6, "a firing every 2 s for 14 s: {predicted:?}");
        assert!(predicted.iter().any(|f| f["executor_id"].is_null()), "the forecast reaches past the stored horizon");
        // Once the horizon has passed `until`, the executors made are the forecast.
        eventually("the horizon passes the forecast's end", || async {
            api.get(&format!("/api/1/plans/{plan_id}")).await.body["planned_until"].as_str().unwrap_or("")
                > until.as_str()
        })
        .await;
        let made: Vec<String> = executors_of(&api, &plan_id)
            .await
            .iter()
            .map(|e| e["next_run_time"].as_str().unwrap().to_string())
            .filter(|due| due.as_str() >= from.as_str() && due.as_str() < until.as_str())
            .collect();
        assert_eq!(made, dues(&predicted), "{backend:?}: the forecast is what the engine made");
        assert!(
            api.get(&format!("/api/1/plans/{plan_id}")).await.body["planned_until"].as_str().unwrap()
                > horizon.as_str()
        );
        eventually("it fires", || async { sink.requests().len() >= 2 }).await;
        // Pausing stops future firings; deleting ends the plan.
        assert_eq!(api.post(&format!("/api/1/plans/{plan_id}/pause"), &json!({})).await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fired = sink.requests().len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sink.requests().len(), fired, "{backend:?}: nothing fires while paused");
        assert_eq!(api.delete(&format!("/api/1/plans/{plan_id}")).await.status, 200);
    }
}

#[tokio::test]
async fn each_new_planner_plans_what_its_args_say() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // 2026's calendar in a year to come: a forecast begins no earlier than now.
    let dates = Dates::like(2026);
    let week = dates.at("from=2026-12-07T00:00:00Z&until=2026-12-14T00:00:00Z");
    // window_planner: 2 runs on each work day's 22:00-02:00 window in New York.
    let window = recurring_plan(
        "nightly",
        "http://127.0.0.1:9/",
        json!({"ref": "window_planner:WindowPlanner", "args": {"days": ["MON","TUE","WED","THU","FRI"], "between": "22:00-02:00", "times": 2, "min_gap_minutes": 30, "timezone": "America/New_York"}}),
    );
    let forecast = api.post(&format!("/api/1/forecast?{week}"), &window).await;
    assert_eq!(forecast.status, 200, "{:?}", forecast.body);
    assert_eq!(forecast.body["recurring"], true);
    // Sun 6th's window is not chosen, Fri 11th's ends on Saturday: Mon..Fri, 2 each.
    assert_eq!(firings(&forecast.body).len(), 10, "{:?}", forecast.body);
    // mtbf_planner over a year: each work day with probability 1/5, at least 2 apart.
    let mtbf = recurring_plan(
        "mtbf",
        "http://127.0.0.1:9/",
        json!({"ref": "mtbf_planner:MtbfPlanner", "args": {"mean_days_between": 5, "min_days_between": 2}}),
    );
    let year = api.post(&dates.at("/api/1/forecast?from=2027-01-01T00:00:00Z&until=2028-01-01T00:00:00Z"), &mtbf).await;
    let count = firings(&year.body).len();
    assert!((25..=60).contains(&count), "{count} firings in a year");
    // simple_planner every_day: its window every day.
    let daily = recurring_plan(
        "daily",
        "http://127.0.0.1:9/",
        json!({"ref": "simple_planner:SimplePlanner", "args": {"min_time": "10:00", "max_time": "11:00", "times": 3, "every_day": true}}),
    );
    assert_eq!(firings(&api.post(&format!("/api/1/forecast?{week}"), &daily).await.body).len(), 21);
    // Each can be created, recurring, and the same seed forecasts the same firings.
    for body in [&window, &mtbf, &daily] {
        let mut seeded = body.clone();
        seeded["seed"] = json!(42);
        let created = api.post("/api/1/plans/", &seeded).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["recurring"], true);
        assert_eq!(created.body["seed"], 42);
        let span = dates.at("until=2030-01-01T00:00:00Z");
        let stored =
            api.get(&format!("/api/1/plans/{}/forecast?{span}", created.body["id"].as_str().unwrap())).await.body;
        let fresh = api.post(&format!("/api/1/forecast?{span}"), &seeded).await.body;
        // The stored plan began a moment earlier: compare what both cover.
        let fresh_dues: HashSet<String> = dues(&firings(&fresh)).into_iter().collect();
        let stored_dues: Vec<String> =
            dues(&firings(&stored)).into_iter().filter(|d| d.as_str() >= fresh["from"].as_str().unwrap()).collect();
        assert_eq!(stored_dues.len(), fresh_dues.len(), "{}", seeded["name"]);
        assert!(
            stored_dues.iter().all(|d| fresh_dues.contains(d)),
            "{}: the seed gives the same firings",
            seeded["name"]
        );
    }
    // A bad cron is the caller's mistake, located; nothing is stored.
    let bad = recurring_plan(
        "bad",
        "http://127.0.0.1:9/",
        json!({"ref": "cron_planner:CronPlanner", "args": {"cron": "61 * * * *"}}),
    );
    let refused = api.post("/api/1/plans/", &bad).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["pointer"], "/planner/args");
    assert_eq!(api.get("/api/1/plans/?all=true").await.body["plans"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_forecast_follows_dst_in_the_plans_zone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let body = recurring_plan(
        "madrid 02:30",
        "http://127.0.0.1:9/",
        json!({"ref": "cron_planner:CronPlanner", "args": {"cron": "30 2 * * *"}}),
    );
    let mut body = body;
    body["timezone"] = json!("Europe/Madrid");
    // 2027-03-28: 02:30 does not exist in Madrid (fires at the change, 03:00 CEST = 01:00Z);
    // 2027-10-31: 02:30 happens twice (fires once, at the first, 00:30Z). In 2027's calendar
    // in a year to come: a forecast begins no earlier than now.
    let dates = Dates::like(2027);
    let forecast = async |span: &str| api.post(&dates.at(&format!("/api/1/forecast?{span}")), &body).await;
    let spring = forecast("from=2027-03-27T12:00:00Z&until=2027-03-29T12:00:00Z").await.body;
    let expected = ["2027-03-28T01:00:00.000000Z", "2027-03-29T00:30:00.000000Z"].map(|due| dates.at(due));
    assert_eq!(dues(&firings(&spring)), expected, "{spring}");
    let autumn = forecast("from=2027-10-30T12:00:00Z&until=2027-11-01T12:00:00Z").await.body;
    let expected = ["2027-10-31T00:30:00.000000Z", "2027-11-01T01:30:00.000000Z"].map(|due| dates.at(due));
    assert_eq!(dues(&firings(&autumn)), expected, "{autumn}");
    let unknown = api
        .post(
            "/api/1/forecast",
            &json!({"name": "x", "attack": body["attack"], "planner": body["planner"], "timezone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["pointer"], "/timezone");
}

#[tokio::test]
async fn a_firing_in_a_blackout_or_on_an_ics_holiday_is_skipped_with_its_name() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let freeze = api
        .post("/api/1/blackouts/", &json!({"name": "change freeze", "start": in_seconds(-60), "end": in_seconds(60)}))
        .await;
    assert_eq!(freeze.status, 201, "{:?}", freeze.body);
    let freeze_id = freeze.body["id"].as_str().unwrap().to_string();
    assert_eq!(freeze.location.as_deref(), Some(format!("/api/1/blackouts/{freeze_id}").as_str()));
    let created = api.post("/api/1/plans/", &api_plan("frozen", &sink.url("/frozen"), &in_seconds(2))).await;
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "skipped", "{done}");
    assert_eq!(done["reason"], "blackout \"change freeze\"");
    assert!(sink.requests().is_empty(), "the attack never ran");
    assert_eq!(api.delete(&format!("/api/1/blackouts/{freeze_id}")).await.status, 200);

    // A holiday calendar: today (UTC) is a holiday.
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cme tests//EN\r\nBEGIN:VEVENT\r\nUID:h1@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\nSUMMARY:Fiesta\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        today.format("%Y%m%d"),
        tomorrow.format("%Y%m%d")
    );
    let imported = api
        .raw(
            reqwest::Method::POST,
            "/api/1/calendars/?name=holidays&timezone=UTC",
            Some(ics.clone().into_bytes()),
            Some("text/calendar"),
        )
        .await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    assert_eq!(imported.body["count"], 1);
    // Importing again replaces, never doubles.
    api.raw(
        reqwest::Method::POST,
        "/api/1/calendars/?name=holidays&timezone=UTC",
        Some(ics.into_bytes()),
        Some("text/calendar"),
    )
    .await;
    let listed = api.get("/api/1/blackouts/").await.body;
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["blackouts"][0]["name"], "holidays: Fiesta");
    let created = api.post("/api/1/plans/", &api_plan("holiday", &sink.url("/holiday"), &in_seconds(2))).await;
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "skipped");
    assert_eq!(done["reason"], "blackout \"holidays: Fiesta\"");
    assert!(sink.requests().is_empty());
    // The forecast says so before it happens.
    let later = api.post("/api/1/plans/", &api_plan("later", &sink.url("/later"), &in_seconds(3600))).await;
    let forecast = api.get(&format!("/api/1/plans/{}/forecast", later.body["id"].as_str().unwrap())).await.body;
    let expected = if chrono::Utc::now() + chrono::Duration::hours(1) < tomorrow.and_hms_opt(0, 0, 0).unwrap().and_utc()
    {
        "skipped"
    } else {
        "pending"
    };
    assert_eq!(forecast["firings"][0]["status"], expected, "{forecast}");

    // Bad input changes nothing: not a calendar, an unknown zone, an unknown plan, a bad blackout.
    for (path, body) in [
        ("/api/1/calendars/?name=x", "hello".to_string()),
        ("/api/1/calendars/?name=x&timezone=Mars/Olympus", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_string()),
        ("/api/1/calendars/", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_string()),
    ] {
        let refused = api.raw(reqwest::Method::POST, path, Some(body.into_bytes()), Some("text/calendar")).await;
        assert_eq!(refused.status, 400, "{path}: {:?}", refused.body);
    }
    for bad in [
        json!({"name": "x", "start": "FRI 16:00", "end": "08:00"}),
        json!({"name": "x", "start": "yesterday", "end": "tomorrow"}),
        json!({"name": "x", "start": in_seconds(60), "end": in_seconds(-60)}),
        json!({"name": "x", "start": "22:00", "end": "06:00", "plan_id": "nope"}),
        json!({"name": "x", "start": "22:00"}),
    ] {
        let refused = api.post("/api/1/blackouts/", &bad).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
        assert!(refused.body["pointer"].is_string(), "{:?}", refused.body);
    }
    assert_eq!(api.get("/api/1/blackouts/").await.body["count"], 1);
    let audit = api.get("/api/1/audit/?size=100").await.body;
    let actions: Vec<&str> =
        audit["_embedded"]["audit"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["blackout.create", "blackout.delete", "calendar.import"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
}

#[tokio::test]
async fn overlap_forbid_skips_a_firing_while_the_previous_run_still_runs() {
    let slow = Sink::start(Duration::from_millis(2500)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(SHORT_HORIZON.into()), ..Options::default() },
    );
    let api = engine.client();
    let mut body = recurring_plan(
        "every second",
        &slow.url("/slow"),
        json!({"ref": "cron_planner:CronPlanner", "args": {"cron": "* * * * * *"}}),
    );
    body["overlap"] = json!("forbid");
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let plan_id = created.body["id"].as_str().unwrap().to_string();
    eventually("a firing is skipped for overlap", || async {
        executors_of(&api, &plan_id).await.iter().any(|e| e["status"] == "skipped")
    })
    .await;
    api.delete(&format!("/api/1/plans/{plan_id}")).await;
    let executors = executors_of(&api, &plan_id).await;
    let skipped = executors.iter().find(|e| e["status"] == "skipped").unwrap();
    assert!(skipped["reason"].as_str().unwrap().contains("still running (overlap: forbid)"), "{skipped}");
    // Never two runs at once: the sink saw requests at least the run time apart.
    assert!(executors.iter().filter(|e| e["status"] == "running").count() <= 1);
}

#[tokio::test]
async fn misfire_run_once_makes_one_catch_up_run_after_downtime() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let mut ids = Vec::new();
    for misfire in ["run_once", "skip"] {
        let mut body = api_plan(misfire, &sink.url(&format!("/{misfire}")), &in_seconds(3));
        body["misfire"] = json!(misfire);
        body["grace_seconds"] = json!(1);
        let created = api.post("/api/1/plans/", &body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["misfire"], misfire);
        ids.push(created.body["id"].as_str().unwrap().to_string());
    }
    // Down over the due time and past the grace.
    engine.stop();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restarted = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { database_url: Some(engine.database_url.clone()), ..Options::default() },
    );
    let api = restarted.client();
    eventually("the catch-up run is recorded", || async {
        executors_of(&api, &ids[0]).await.iter().any(|e| e["status"] == "succeeded")
    })
    .await;
    let caught_up = executors_of(&api, &ids[0]).await;
    assert_eq!(caught_up.len(), 2, "the missed firing and one catch-up: {caught_up:?}");
    assert_eq!(caught_up[0]["status"], "missed");
    assert_eq!(caught_up[1]["reason"], "catch-up run for 1 firings missed (misfire: run_once)");
    let skipped = executors_of(&api, &ids[1]).await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["status"], "missed");
    assert_eq!(sink.requests().iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), ["/run_once"]);
}

#[tokio::test]
async fn two_engines_on_one_postgres_extend_a_recurring_plan_exactly_once() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let sink = Sink::start(Duration::ZERO).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let options = Options { config: Some(SHORT_HORIZON.into()), ..Options::default() };
    let a = Engine::start(dir_a.path(), Backend::Postgres, options.clone());
    let b = Engine::start(
        dir_b.path(),
        Backend::Postgres,
        Options { database_url: Some(a.database_url.clone()), ..options },
    );
    let api = a.client();
    let mut plans = Vec::new();
    for i in 0..5 {
        let body = recurring_plan(
            &format!("p{i}"),
            &sink.url(&format!("/p{i}")),
            json!({"ref": "cron_planner:CronPlanner", "args": {"cron": "* * * * * *"}}),
        );
        let created = if i % 2 == 0 { a.client() } else { b.client() }.post("/api/1/plans/", &body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        plans.push(created.body["id"].as_str().unwrap().to_string());
    }
    // Both engines extend (each horizon moves a second at a time) for a while.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for id in &plans {
        api.post(&format!("/api/1/plans/{id}/pause"), &json!({})).await;
    }
    for id in &plans {
        let executors = executors_of(&api, id).await;
        let dues: Vec<chrono::DateTime<chrono::Utc>> = executors
            .iter()
            .map(|e| {
                chrono::DateTime::parse_from_rfc3339(e["next_run_time"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc)
            })
            .collect();
        assert!(dues.len() >= 12, "extended past the first window: {}", dues.len());
        assert!(
            dues.windows(2).all(|w| w[1] - w[0] == chrono::Duration::seconds(1)),
            "{id}: each second once, none twice: {dues:?}"
        );
    }
    // Each request the sink saw was one executor's.
    let hits = sink.requests();
    let mut ran_by_plan = std::collections::HashMap::<String, usize>::new();
    for (_, target, _) in &hits {
        *ran_by_plan.entry(target.clone()).or_default() += 1;
    }
    for (i, id) in plans.iter().enumerate() {
        let succeeded = executors_of(&api, id).await.iter().filter(|e| e["status"] == "succeeded").count();
        assert_eq!(ran_by_plan.get(&format!("/p{i}")).copied().unwrap_or(0), succeeded, "fired once per executor");
    }
}

#[tokio::test]
async fn every_plan_body_in_the_readme_is_accepted_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let bodies: Vec<Value> = readme
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|body| body.get("planner").is_some())
        .collect();
    assert!(bodies.len() >= 8, "the README's plan bodies: {}", bodies.len());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // The README's example of an uploaded plugin (gce-stop-instance), uploaded and granted as it says.
    let gce = cme_plugins::test_plugins::GCE_STOP.wasm.to_vec();
    assert_eq!(
        api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(gce), Some("application/wasm")).await.status,
        201
    );
    let grant = serde_json::json!({"http": {"urls": ["https://compute.googleapis.com/*"]}});
    assert_eq!(api.put("/api/1/plugins/gce-stop-instance@0.1.0/grant", &grant).await.status, 200);
    for body in bodies {
        let span = Dates::like(2029).at("from=2029-12-30T00:00:00Z&until=2030-01-06T00:00:00Z");
        let forecast = api.post(&format!("/api/1/forecast?{span}"), &body).await;
        assert_eq!(forecast.status, 200, "{body}: {:?}", forecast.body);
    }
}

#[tokio::test]
async fn a_blackout_marked_stop_running_cancels_an_attack_in_flight_when_it_starts() {
    let slow = Sink::start(Duration::from_secs(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let mut body = api_plan("slow", &slow.url("/slow"), &in_seconds(1));
    body["attack"]["args"]["timeout_ms"] = json!(30_000);
    let created = api.post("/api/1/plans/", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    slow.until_requests(1).await;
    let blackout = json!({"name": "incident", "start": in_seconds(0), "end": in_seconds(3600), "stop_running": true});
    let made = api.post("/api/1/blackouts/", &blackout).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.body["stop_running"], true);
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["error"], "cancelled while running: blackout \"incident\" started");
}
