//! Calendars as real producers write them, imported through the binary: every fixture
//! (Google, Outlook 2010 and OWA, Apple, Zimbra, Nextcloud, Mozilla) is accepted, what
//! cannot be a blackout is listed with its reason, recurring events hold every year and
//! show in forecasts, and a strict import of a file with a bad event changes nothing.

use std::time::Duration;

use chrono::Datelike;
use serde_json::{Value, json};

use crate::support::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/e2e/fixtures/calendars/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn import(api: &Api, query: &str, body: Vec<u8>) -> Reply {
    api.raw(reqwest::Method::POST, &format!("/api/1/calendars/?{query}"), Some(body), Some("text/calendar")).await
}

fn skipped_reasons(reply: &Value) -> Vec<String> {
    reply["skipped"].as_array().unwrap().iter().map(|s| format!("{}: {}", s["event"], s["reason"])).collect()
}

#[tokio::test]
async fn every_producers_calendar_imports_with_what_it_skips_named() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // (fixture, blackouts made, events skipped)
    for (name, made, skipped) in [
        ("google.ics", 4, 3),
        ("outlook-2010.ics", 2, 0),
        ("outlook-owa.ics", 2, 2),
        ("apple.ics", 2, 0),
        ("zimbra.ics", 1, 1),
        ("nextcloud.ics", 2, 0),
        ("mozilla.ics", 3, 0),
    ] {
        let reply = import(&api, &format!("name={name}"), fixture(name)).await;
        assert_eq!(reply.status, 201, "{name}: {:?}", reply.body);
        assert_eq!(reply.body["count"], made, "{name}: {}", reply.body);
        assert_eq!(reply.body["skipped"].as_array().unwrap().len(), skipped, "{name}: {}", reply.body);
    }

    // Google: the zone comes from X-WR-TIMEZONE; free and cancelled events are not blackouts.
    let google = import(&api, "name=google.ics", fixture("google.ics")).await.body;
    assert_eq!(google["timezone"], "America/New_York");
    let reasons = skipped_reasons(&google);
    assert!(reasons.iter().any(|r| r.contains("New Year's Eve") && r.contains("TRANSP:TRANSPARENT")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("Office party") && r.contains("cancelled")), "{reasons:?}");
    // A recurring holiday is one blackout that shows its rule and its next occurrences.
    let presidents = google["blackouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "google.ics: Presidents' Day")
        .unwrap()
        .clone();
    assert_eq!(presidents["every"], "rule", "{presidents}");
    assert_eq!(presidents["rule"], "FREQ=YEARLY;BYMONTH=2;BYDAY=3MO");
    assert_eq!(presidents["length_days"], 1);
    assert!(presidents["description"].as_str().unwrap().starts_with("Washington's Birthday"), "{presidents}");
    let next = presidents["next"].as_array().unwrap();
    assert_eq!(next.len(), 3, "{presidents}");
    for occurrence in next {
        let start = chrono::DateTime::parse_from_rfc3339(occurrence["start"].as_str().unwrap()).unwrap();
        let local = start.with_timezone(&chrono_tz::America::New_York);
        assert_eq!(
            (local.month(), local.weekday(), (local.day() - 1) / 7),
            (2, chrono::Weekday::Mon, 2),
            "{occurrence}"
        );
    }
    let shown = api.get(&format!("/api/1/blackouts/{}", presidents["id"].as_str().unwrap())).await.body;
    assert_eq!(shown["rule"], presidents["rule"]);
    // Free time too when asked (this import replaces the calendar's blackouts).
    let with_free = import(&api, "name=google.ics&include_free=true", fixture("google.ics")).await.body;
    assert_eq!(with_free["count"], 5, "{with_free}");

    // Outlook's display names resolve through the calendar's VTIMEZONE; bad events are named.
    let owa = import(&api, "name=owa", fixture("outlook-owa.ics")).await.body;
    let reasons = skipped_reasons(&owa);
    assert!(reasons.iter().any(|r| r.contains("Broken start") && r.contains("unreadable DTSTART")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("Somewhere else") && r.contains("no VTIMEZONE")), "{reasons:?}");
    let berlin =
        owa["blackouts"].as_array().unwrap().iter().find(|b| b["name"] == "owa: Berlin DC maintenance").unwrap();
    assert_eq!(berlin["start"], "2026-12-12T00:00:00.000000Z", "{berlin}");

    // Strict: one bad event refuses the file and changes nothing.
    let before = api.get("/api/1/blackouts/").await.body["count"].clone();
    let strict = import(&api, "name=owa-strict&strict=true", fixture("outlook-owa.ics")).await;
    assert_eq!(strict.status, 400, "{:?}", strict.body);
    assert!(strict.body["detail"].as_str().unwrap_or_default().contains("strict"), "{:?}", strict.body);
    assert_eq!(api.get("/api/1/blackouts/").await.body["count"], before);
    for bad_flag in ["strict=yes", "include_free=1"] {
        let refused = import(&api, &format!("name=x&{bad_flag}"), fixture("apple.ics")).await;
        assert_eq!(refused.status, 400, "{bad_flag}: {:?}", refused.body);
    }
}

#[tokio::test]
async fn a_yearly_holiday_skips_todays_firing_and_next_years_forecast() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    // A holiday on today's date every year since three years ago (all day, UTC).
    let today = chrono::Utc::now().date_naive();
    let first = today
        .with_year(today.year() - 3)
        .unwrap_or_else(|| today.with_day(28).unwrap().with_year(today.year() - 3).unwrap());
    let ics = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//cme tests//EN\nBEGIN:VEVENT\nUID:founders@test\nDTSTART;VALUE=DATE:{}\nDURATION:P1D\nRRULE:FREQ=YEARLY\nSUMMARY:Founders' day\nDESCRIPTION:Everyone is out\nEND:VEVENT\nEND:VCALENDAR\n",
        first.format("%Y%m%d"),
    );
    let imported = import(&api, "name=company&timezone=UTC", ics.into_bytes()).await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    let seconds_left_today =
        (today.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc() - chrono::Utc::now()).num_seconds();
    if seconds_left_today > 5 {
        let created = api.post("/api/1/plans/", &api_plan("today", &sink.url("/today"), &in_seconds(2))).await;
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&id, is_terminal).await;
        assert_eq!(
            (done["status"].as_str(), done["reason"].as_str()),
            (Some("skipped"), Some("blackout \"company: Founders' day\"")),
            "{done}"
        );
        assert!(sink.requests().is_empty(), "the attack never ran");
    }
    // Next year on the same day at noon: the forecast shows it skipped, by name.
    let next_year = today.with_year(today.year() + 1).unwrap_or(first.with_year(today.year() + 1).unwrap());
    let noon = next_year.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let later = api.post("/api/1/plans/", &api_plan("next year", &sink.url("/later"), &noon.to_rfc3339())).await;
    assert_eq!(later.status, 201, "{:?}", later.body);
    let z = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let forecast = api
        .get(&format!(
            "/api/1/plans/{}/forecast?from={}&until={}",
            later.body["id"].as_str().unwrap(),
            z(noon - chrono::Duration::days(1)),
            z(noon + chrono::Duration::days(1))
        ))
        .await
        .body;
    assert_eq!(forecast["firings"][0]["status"], "skipped", "{forecast}");
    assert_eq!(forecast["firings"][0]["reason"], "blackout \"company: Founders' day\"", "{forecast}");
    // A description can be given to a blackout made by hand too.
    let made = api
        .post(
            "/api/1/blackouts/",
            &json!({"name": "freeze", "start": "FRI 16:00", "end": "MON 08:00", "description": "weekend"}),
        )
        .await;
    assert_eq!((made.status, made.body["description"].as_str()), (201, Some("weekend")), "{:?}", made.body);
}
