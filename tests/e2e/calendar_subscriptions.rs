//! Calendar subscriptions through the binary: a local HTTP server plays Google's secret
//! iCal address. The subscription is fetched at once, shows only its URL's origin (the
//! path is the secret: never in answers, audit or logs), keeps its last good copy when a
//! fetch fails, refuses bad bodies, and deletes with its blackouts.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// Serves `body` with `status` to every GET, counting requests.
struct CalendarServer {
    addr: std::net::SocketAddr,
    answer: Arc<Mutex<(u16, String)>>,
    requests: Arc<Mutex<usize>>,
}

impl CalendarServer {
    async fn start(body: String) -> CalendarServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new((200u16, body)));
        let requests = Arc::new(Mutex::new(0usize));
        let (shared, counted) = (answer.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (shared, counted) = (shared.clone(), counted.clone());
                tokio::spawn(async move {
                    if !read_request_head(&mut socket).await {
                        return;
                    }
                    *counted.lock().unwrap() += 1;
                    let (status, body) = shared.lock().unwrap().clone();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: text/calendar\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        CalendarServer { addr, answer, requests }
    }

    fn set(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_string());
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../tests/e2e/fixtures/calendars/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

#[tokio::test]
async fn a_subscription_is_fetched_shows_only_its_origin_and_keeps_its_last_good_copy() {
    let server = CalendarServer::start(fixture("google.ics")).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let secret_path =
        "/calendar/ical/team%40group.calendar.google.com/private-9f8e7d6c5b4a3210fedcba9876543210/basic.ics";
    let url = format!("http://{}{secret_path}", server.addr);
    let origin = format!("http://{}", server.addr);

    let made = api
        .post("/api/1/calendars/", &json!({"name": "us", "url": url, "refresh_seconds": 300, "include_free": true}))
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.location.as_deref(), Some("/api/1/calendars/us"));
    assert_eq!(made.body["kind"], "subscription");
    assert_eq!(made.body["url"], origin, "only the origin is shown");
    assert_eq!(made.body["blackouts"], 5, "{}", made.body);
    assert!(made.body["last_fetched"].is_string() && made.body["last_error"].is_null(), "{}", made.body);
    assert_eq!(server.requests(), 1);
    let blackouts = api.get("/api/1/blackouts/").await.body;
    assert!(
        blackouts["blackouts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "us: Presidents' Day" && b["every"] == "rule"),
        "{blackouts}"
    );
    let listed = api.get("/api/1/calendars/").await.body;
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["calendars"][0]["name"], "us");

    // A failed fetch keeps the last good copy and shows why.
    server.set(500, "oops");
    let again = api.post("/api/1/calendars/", &json!({"name": "us", "url": url, "include_free": true})).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert!(again.body["last_error"].as_str().is_some_and(|e| e.contains("500")), "{}", again.body);
    assert_eq!(again.body["blackouts"], 5, "the last good copy stays: {}", again.body);
    // ... and so does a file that no longer reads.
    server.set(200, "<html>not a calendar</html>");
    let garbage = api.post("/api/1/calendars/", &json!({"name": "us", "url": url, "include_free": true})).await;
    assert!(garbage.body["last_error"].as_str().is_some_and(|e| e.contains("BEGIN:VCALENDAR")), "{}", garbage.body);
    assert_eq!(garbage.body["blackouts"], 5);
    // webcal:// is fetched over https (and fails here: nothing listens on port 9), shown as https.
    let webcal = api
        .post("/api/1/calendars/", &json!({"name": "webcal", "url": format!("webcal://127.0.0.1:9{secret_path}")}))
        .await;
    assert_eq!((webcal.status, webcal.body["url"].as_str()), (201, Some("https://127.0.0.1:9")), "{:?}", webcal.body);
    assert!(webcal.body["last_error"].is_string(), "{}", webcal.body);

    // Bad bodies change nothing.
    for (bad, pointer) in [
        (json!({"name": "x", "url": url, "refresh_seconds": 60}), "/refresh_seconds"),
        (json!({"name": "x", "url": "ftp://example.com/x.ics"}), "/url"),
        (json!({"name": "x", "url": url, "color": "red"}), ""),
        (json!({"name": "x/y", "url": url}), "/name"),
        (json!({"name": "x", "url": url, "timezone": "Mars/Olympus"}), "/timezone"),
        (json!({"name": "x", "url": url, "plan_id": "nope"}), "/plan_id"),
    ] {
        let refused = api.post("/api/1/calendars/", &bad).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
        assert!(refused.body["pointer"].as_str().is_some_and(|p| p.starts_with(pointer)), "{bad}: {:?}", refused.body);
    }
    assert_eq!(api.get("/api/1/calendars/").await.body["count"], 2);
    // An upload may not take a subscription's name.
    let upload = api
        .raw(
            reqwest::Method::POST,
            "/api/1/calendars/?name=us",
            Some(fixture("apple.ics").into_bytes()),
            Some("text/calendar"),
        )
        .await;
    assert_eq!(upload.status, 400, "{:?}", upload.body);

    // The secret path shows nowhere: answers, audit, logs.
    let audit = api.get("/api/1/audit/?size=100").await.body.to_string();
    assert!(audit.contains("calendar.subscribe"), "{audit}");
    for (what, text) in [
        ("audit", audit),
        ("calendars", api.get("/api/1/calendars/").await.body.to_string()),
        ("logs", engine.stderr()),
    ] {
        assert!(!text.contains("private-9f8e7d6c5b4a3210fedcba9876543210"), "the secret shows in the {what}");
    }

    // Deleting it deletes its blackouts.
    assert_eq!(api.delete("/api/1/calendars/us").await.status, 200);
    assert_eq!(api.get("/api/1/calendars/us").await.status, 404);
    let left: Vec<Value> = api.get("/api/1/blackouts/").await.body["blackouts"].as_array().unwrap().clone();
    assert!(left.iter().all(|b| b["calendar"] != "us"), "{left:?}");
}
