//! Cron lines as people copy them and frequent plans, through the real binary: every
//! minute and every 10 s accepted, at most `max_executors_ahead_per_plan` executors ahead,
//! extended as they are used (and firing on time); `@every` anchored at the creation time
//! the engine writes into the args; a long forecast of a frequent plan counted and
//! truncated; Quartz, AWS and Jenkins lines; refusals naming the field and the dialect.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn plan(name: &str, endpoint: &str, planner_args: Value) -> Value {
    json!({
        "name": name,
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": endpoint, "method": "POST"}},
        "planner": {"ref": "cron_planner:CronPlanner", "args": planner_args},
        "overlap": "allow",
        "seed": 7,
    })
}

async fn pending_of(api: &Api, plan_id: &str) -> Vec<Value> {
    let doc = api.get(&format!("/api/1/executors/?plan_id={plan_id}&size=1000")).await.body;
    doc["_embedded"]["executors"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn frequent_plans_keep_a_bounded_number_ahead_and_fire_on_time() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = "max_executors_ahead_per_plan = 20\n";
    let engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config.into()), ..Options::default() });
    let api = engine.client();

    // Every minute: refused before (10,000 executors a plan); now 20 ahead.
    let minute = api.post("/api/1/plans/", &plan("every minute", &sink.url("/m"), json!({"cron": "* * * * *"}))).await;
    assert_eq!(minute.status, 201, "{:?}", minute.body);
    let minute_id = minute.body["id"].as_str().unwrap().to_string();
    assert_eq!(pending_of(&api, &minute_id).await.len(), 20);

    // Every second, by @every: anchored at the creation time the engine wrote.
    let every = api.post("/api/1/plans/", &plan("every second", &sink.url("/s"), json!({"cron": "@every 1s"}))).await;
    assert_eq!(every.status, 201, "{:?}", every.body);
    let every_id = every.body["id"].as_str().unwrap().to_string();
    let stored = api.get(&format!("/api/1/plans/{every_id}")).await.body;
    let start = stored["planner"]["args"]["start"].as_str().unwrap_or_else(|| panic!("no start: {stored}")).to_string();
    assert!(start.ends_with('Z') && start.len() == 20, "the creation time, to the second: {start}");
    let first = pending_of(&api, &every_id).await;
    assert_eq!(first.len(), 20);
    let last_first = first.last().unwrap()["next_run_time"].as_str().unwrap().to_string();

    // As they are used, more are made: never more than 20 ahead.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = pending_of(&api, &every_id).await;
        assert!(pending.len() <= 20, "at most 20 ahead: {}", pending.len());
        if pending.last().unwrap()["next_run_time"].as_str().unwrap() > last_first.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "the plan was never extended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.requests().iter().filter(|r| r.1 == "/s").count() < 12 {
        assert!(Instant::now() < deadline, "fired {} times", sink.requests().len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every firing ran at its time: none skipped for lateness.
    let finished = api.get(&format!("/api/1/executors/?plan_id={every_id}&executed=true&size=1000")).await.body;
    let late: Vec<&Value> =
        finished["_embedded"]["executors"].as_array().unwrap().iter().filter(|e| e["status"] == "skipped").collect();
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(api.delete(&format!("/api/1/plans/{every_id}")).await.status, 200);

    // A month of every 10 s: counted, the first 10,000 listed.
    let ten = plan("every 10 s", &sink.url("/t"), json!({"cron": "*/10 * * * * *"}));
    let forecast = api
        .post(
            &format!(
                "/api/1/forecast?from={}&until={}",
                urlencode(&in_seconds(0)),
                urlencode(&in_seconds(30 * 86_400))
            ),
            &ten,
        )
        .await;
    assert_eq!(forecast.status, 200, "{:?}", forecast.body);
    assert_eq!(forecast.body["truncated"], true);
    assert_eq!(forecast.body["firings"].as_array().unwrap().len(), 10_000);
    let count = forecast.body["count"].as_u64().unwrap();
    assert!((259_199..=259_200).contains(&count), "{count}");
    let created = api.post("/api/1/plans/", &ten).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

#[tokio::test]
async fn cron_lines_of_each_dialect_plan_what_their_documentation_says() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // Two months of 2027's calendar in a year to come: a forecast begins no earlier than now.
    let dates = Dates::like(2026);
    let on = |days: &[&str]| -> Vec<String> { days.iter().map(|day| dates.at(day)).collect() };
    let forecast = async |mut args: Value| -> Reply {
        if let Some(start) = args.get("start").and_then(Value::as_str) {
            args["start"] = Value::from(dates.at(start));
        }
        let body = plan("dialect", "http://127.0.0.1:9/", args);
        api.post(
            &format!(
                "/api/1/forecast?from={}&until={}",
                urlencode(&dates.at("2027-01-01T00:00:00Z")),
                urlencode(&dates.at("2027-03-01T00:00:00Z"))
            ),
            &body,
        )
        .await
    };
    let dues = |reply: &Reply| -> Vec<String> {
        reply.body["firings"].as_array().unwrap().iter().map(|f| f["due"].as_str().unwrap()[..19].to_string()).collect()
    };
    // Quartz: 6L is the last Friday.
    let quartz = forecast(json!({"cron": "0 0 12 ? * 6L", "dialect": "quartz", "timezone": "UTC"})).await;
    assert_eq!(quartz.status, 200, "{:?}", quartz.body);
    assert_eq!(dues(&quartz), on(&["2027-01-29T12:00:00", "2027-02-26T12:00:00"]));
    // AWS, wrapper and all.
    let aws = forecast(json!({"cron": "cron(15 10 ? * 2#1 *)", "dialect": "aws", "timezone": "UTC"})).await;
    assert_eq!(dues(&aws), on(&["2027-01-04T10:15:00", "2027-02-01T10:15:00"]), "the first Monday");
    // A zone prefix and cronie's step from a single value.
    let prefixed = forecast(json!({"cron": "CRON_TZ=America/New_York 0 9 1 * *"})).await;
    assert_eq!(dues(&prefixed), on(&["2027-01-01T14:00:00", "2027-02-01T14:00:00"]));
    // crontab(5) and cronie forms.
    let cronie = forecast(json!({"cron": "20/15 9 1 1 *", "timezone": "UTC"})).await;
    assert_eq!(dues(&cronie), on(&["2027-01-01T09:20:00", "2027-01-01T09:35:00", "2027-01-01T09:50:00"]));
    let midnight = forecast(json!({"cron": "@midnight", "timezone": "UTC"})).await;
    assert_eq!(dues(&midnight).len(), 59);
    let last = forecast(json!({"cron": "0 6 L-3 * *", "timezone": "UTC"})).await;
    assert_eq!(dues(&last), on(&["2027-01-28T06:00:00", "2027-02-25T06:00:00"]));
    let weekday = forecast(json!({"cron": "0 6 LW * *", "timezone": "UTC"})).await;
    assert_eq!(dues(&weekday), on(&["2027-01-29T06:00:00", "2027-02-26T06:00:00"]));
    let rate = forecast(json!({"cron": "rate(12 hours)", "dialect": "aws", "start": "2026-12-31T18:00:00Z"})).await;
    assert_eq!(&dues(&rate)[..2], on(&["2027-01-01T06:00:00", "2027-01-01T18:00:00"]), "from its start");
    // Jenkins' H comes from the plan's seed: the same on every ask.
    let jenkins = json!({"cron": "H H 1 * *", "dialect": "jenkins", "timezone": "UTC"});
    let a = forecast(jenkins.clone()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(dues(&a), dues(&forecast(jenkins).await));
    // Refusals name the field and the dialect that would read the line.
    let refused = forecast(json!({"cron": "0 0 12 ? * 6L 2027"})).await;
    assert_eq!(refused.status, 400);
    let detail = refused.body["detail"].as_str().unwrap_or_default().to_string() + &refused.body.to_string();
    assert!(detail.contains("quartz"), "{detail}");
    let reboot = forecast(json!({"cron": "@reboot"})).await;
    assert_eq!(reboot.status, 400);
    assert!(reboot.body.to_string().contains("a plan has no boot"), "{:?}", reboot.body);
}
