//! The web dashboard in a real browser: headless Chromium (Debian `chromium`) drives the
//! pages an operator uses, halts and resumes through them, and saves screenshots.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::json;

use crate::support::*;

const TOKEN: &str = "dashboard-admin-secret";

/// Chromium (Debian `chromium`).
fn chromium() -> Option<PathBuf> {
    system_tool(
        &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"],
        "apt-get install chromium",
    )
}

/// Where screenshots go: `CME_SCREENSHOT_DIR` (set it to `docs` to refresh the README's),
/// else the test's own directory.
fn screenshot_dir(fallback: &Path) -> PathBuf {
    std::env::var_os("CME_SCREENSHOT_DIR").map(PathBuf::from).unwrap_or_else(|| fallback.to_path_buf())
}

fn text_of(tab: &Tab, selector: &str) -> String {
    tab.wait_for_element(selector).unwrap_or_else(|e| panic!("{selector}: {e}")).get_inner_text().unwrap()
}

fn go(tab: &Tab, hash: &str) {
    tab.evaluate(&format!("location.hash = {}", json!(hash)), false).unwrap();
}

/// Waits until `expression` (JavaScript) is true.
fn until(tab: &Tab, what: &str, expression: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = tab.evaluate(expression, false).unwrap().value;
        if value == Some(json!(true)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited 20 s for {what} ({expression}); page:\n{}",
            tab.get_content().unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn shoot(tab: &Tab, path: &Path) {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot");
    std::fs::write(path, png).unwrap();
}

fn drive(chromium: PathBuf, url: &str, shots: &Path, cron_plan: &str, next_week: &str, experiment_run: &str) {
    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .build()
        .unwrap();
    let browser = Browser::new(options).unwrap();
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));
    tab.navigate_to(&format!("{url}/")).unwrap().wait_until_navigated().unwrap();

    // The engine has tokens: the page asks for one and keeps it for the tab.
    tab.wait_for_element("#token").unwrap().click().unwrap();
    tab.type_str(TOKEN).unwrap().press_key("Enter").unwrap();
    let plans = text_of(&tab, "table.plans");
    for name in ["checkout latency", "broken endpoint", "office hours"] {
        assert!(plans.contains(name), "{name} in {plans}");
    }
    assert!(
        plans.contains("cron_planner:CronPlanner") && plans.contains("recurring") && plans.contains("dry run"),
        "{plans}"
    );
    until(&tab, "the switch", "document.querySelector('#halt-state').textContent === 'armed'");
    assert!(!text_of(&tab, "#view").contains("null"), "no stray values on the page");
    shoot(&tab, &shots.join("dashboard-plans.png"));

    // The timeline: past and upcoming executors coloured by status.
    go(&tab, "#/executors");
    tab.wait_for_element("#timeline circle").unwrap();
    for status in ["succeeded", "failed", "pending"] {
        until(&tab, status, &format!("document.querySelectorAll('#timeline circle[data-status={status}]').length > 0"));
    }
    shoot(&tab, &shots.join("dashboard-executors.png"));

    // Filtered by status through the form.
    tab.evaluate("document.querySelector('#filter-status').value = 'failed'", false).unwrap();
    tab.wait_for_element("#filters button").unwrap().click().unwrap();
    until(
        &tab,
        "only failed rows",
        "location.hash.includes('status=failed') && document.querySelectorAll('table.executors tbody tr').length === 1",
    );

    // An executor's detail: its error and its log.
    tab.wait_for_element("table.executors .executor-link").unwrap().click().unwrap();
    tab.wait_for_element("#log").unwrap();
    let facts = text_of(&tab, "#executor-facts");
    assert!(facts.contains("failed"), "{facts}");

    // An experiment's run as a timeline: lanes as rows, a bar per step, the probe's reading.
    go(&tab, &format!("#/executors/{experiment_run}"));
    until(&tab, "the run's bars", "document.querySelectorAll('#run-timeline rect.bar').length === 4");
    until(&tab, "the reading", "document.querySelectorAll('#run-timeline circle.reading.healthy').length === 1");
    let lanes = tab
        .evaluate(
            "new Set([...document.querySelectorAll('#run-timeline rect.bar')].map((b) => b.getAttribute('y'))).size",
            false,
        )
        .unwrap()
        .value;
    assert_eq!(lanes, Some(json!(2)), "two lanes: inject latency, and settle then verify then inject errors");
    assert!(text_of(&tab, "#executor-facts").contains("held"));
    shoot(&tab, &shots.join("dashboard-experiment.png"));

    // A recurring plan's forecast.
    go(&tab, &format!("#/plans/{cron_plan}"));
    let forecast = text_of(&tab, ".forecast table");
    assert!(forecast.contains("pending"), "{forecast}");

    // The calendar: next week in Madrid, the office-hours firings, the freeze over them
    // (its firings skipped, with its name), and the uploaded holiday calendar.
    go(&tab, &format!("#/calendar?zone=Europe/Madrid&week={next_week}"));
    until(&tab, "the week's firings", "document.querySelectorAll('#week .firing').length > 20");
    until(
        &tab,
        "the freeze",
        "[...document.querySelectorAll('#week .blackout')].some((b) => b.textContent.includes('release freeze'))",
    );
    // Some of the week's skipped firings are the freeze's (others may be a holiday's of
    // the uploaded calendar, depending on the week the test runs in).
    until(
        &tab,
        "a firing skipped by the freeze",
        "[...document.querySelectorAll('#week .firing.skipped')].some((f) => f.textContent.includes('office hours') && f.textContent.includes('release freeze'))",
    );
    let wednesday_freeze = tab
        .evaluate(
            "[...document.querySelectorAll('#week .day')].findIndex((d) => d.textContent.includes('release freeze'))",
            false,
        )
        .unwrap()
        .value;
    assert_eq!(wednesday_freeze, Some(json!(2)), "the freeze is on Wednesday, the third day");
    assert!(text_of(&tab, "#calendar-summary").contains("in Europe/Madrid"));
    assert!(text_of(&tab, "table.calendars").contains("holidays"));
    shoot(&tab, &shots.join("dashboard-calendar.png"));
    // Another zone moves the same firings: 09:00 in Madrid is 08:00 in London (in winter,
    // and 08:00 or 09:00 around the changes: either way not where Madrid shows it).
    tab.wait_for_element("#week-after").unwrap().click().unwrap();
    until(&tab, "the week after", &format!("!location.hash.includes('week={next_week}')"));

    go(&tab, "#/plugins");
    let plugins = text_of(&tab, "table.plugins");
    assert!(plugins.contains("api-request@") && plugins.contains("http *"), "{plugins}");
    go(&tab, "#/audit");
    let audit = text_of(&tab, "table.audit");
    assert!(audit.contains("plan.create"), "{audit}");

    // Halt, confirmed, with a reason; then resume, confirmed.
    tab.wait_for_element("#halt-reason").unwrap().click().unwrap();
    tab.type_str("checkout incident").unwrap();
    tab.wait_for_element("#halt").unwrap().click().unwrap();
    tab.wait_for_element("#halt-confirm").unwrap().click().unwrap();
    until(&tab, "halted", "document.querySelector('#halt-state').textContent === 'halted'");
    tab.wait_for_element("#resume").unwrap().click().unwrap();
    tab.wait_for_element("#resume-cancel").unwrap().click().unwrap();
    until(
        &tab,
        "still halted after a cancelled resume",
        "document.querySelector('#halt-state').textContent === 'halted' && !!document.querySelector('#resume')",
    );
    tab.wait_for_element("#resume").unwrap().click().unwrap();
    tab.wait_for_element("#resume-confirm").unwrap().click().unwrap();
    until(&tab, "armed again", "document.querySelector('#halt-state').textContent === 'armed'");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_follows_plans_and_runs_and_halts_and_resumes_from_the_dashboard() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { env: vec![("CME_TOKENS".into(), format!("admin:{TOKEN}"))], ..Options::default() },
    );
    let api = engine.client().with_token(TOKEN);
    let sink = Sink::start(Duration::ZERO).await;
    let ok = api.post("/api/1/plans/", &api_plan("checkout latency", &sink.url("/inject"), &in_seconds(1))).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let broken =
        api.post("/api/1/plans/", &api_plan("broken endpoint", "http://127.0.0.1:9/nothing", &in_seconds(1))).await;
    assert_eq!(broken.status, 201, "{:?}", broken.body);
    let cron = api
        .post("/api/1/plans/", &json!({
            "name": "office hours",
            "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/cron"), "method": "POST"}},
            "planner": {"ref": "cron_planner:CronPlanner", "args": {"cron": "0 */2 9-17 * * MON-FRI", "timezone": "Europe/Madrid"}},
            "dry_run": true
        }))
        .await;
    assert_eq!(cron.status, 201, "{:?}", cron.body);
    let cron_plan = cron.body["id"].as_str().unwrap().to_string();
    let next_week = {
        use chrono::Datelike;
        let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Madrid).date_naive();
        (today + chrono::Duration::days(7 - i64::from(today.weekday().num_days_from_monday()))).to_string()
    };
    let service = Service::start(200).await;
    let inject =
        |path: &str| json!({"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url(path), "method": "POST"}});
    let experiment = api
        .post("/api/1/plans/", &json!({
            "name": "checkout experiment",
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
            "steps": [
                {"name": "inject latency", "duration_seconds": 3, "irreversible": true, "attack": inject("/latency")},
                {"name": "settle", "wait_seconds": 1},
                {"name": "checkout answers", "after": ["settle"], "verify": [{"ref": "http_probe:HttpProbe", "args": {"url": service.url("/health"), "expect_status": 200}}]},
                {"name": "inject errors", "after": ["checkout answers"], "duration_seconds": 1, "irreversible": true, "attack": inject("/errors")},
            ],
        }))
        .await;
    assert_eq!(experiment.status, 201, "{:?}", experiment.body);
    for created in [&ok, &broken, &experiment] {
        api.wait_executor(created.body["_embedded"]["executors"][0]["id"].as_str().unwrap(), is_terminal).await;
    }
    // The blackouts come once the runs above have ended: the calendar's weekly release
    // window (Mondays 16:00-18:00 in New York) or the freeze would otherwise hold them
    // when the suite runs in one (they are for the calendar view).
    let freeze = api
        .post(
            "/api/1/blackouts/",
            &json!({"name": "release freeze", "start": "WED 10:00", "end": "WED 12:00", "timezone": "Europe/Madrid"}),
        )
        .await;
    assert_eq!(freeze.status, 201, "{:?}", freeze.body);
    let ics =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/fixtures/calendars/google.ics")).unwrap();
    let holidays =
        api.raw(reqwest::Method::POST, "/api/1/calendars/?name=holidays", Some(ics), Some("text/calendar")).await;
    assert_eq!(holidays.status, 201, "{:?}", holidays.body);
    let experiment_run = experiment.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();

    let shots = screenshot_dir(dir.path());
    std::fs::create_dir_all(&shots).unwrap();
    let url = engine.url.clone();
    let at = shots.clone();
    tokio::task::spawn_blocking(move || drive(chromium, &url, &at, &cron_plan, &next_week, &experiment_run))
        .await
        .unwrap();
    for shot in ["dashboard-plans.png", "dashboard-executors.png", "dashboard-calendar.png", "dashboard-experiment.png"]
    {
        assert!(shots.join(shot).exists(), "{shot}");
    }

    // What the clicks did, as the API and the audit log tell it.
    let halt = api.get("/api/1/halt").await;
    assert_eq!(halt.body["halted"], false, "{:?}", halt.body);
    let audit = api.get("/api/1/audit/").await.body.to_string();
    assert!(audit.contains("checkout incident"), "the halt's reason is audited: {audit}");
    assert!(audit.contains("\"action\":\"resume\""), "{audit}");
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_and_may_not_be_framed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let home = client.get(format!("{}/", engine.url)).send().await.unwrap();
    assert_eq!(home.status(), 302);
    assert_eq!(home.headers()["location"], "/ui/");
    let mut weight = 0;
    for (path, kind) in [("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let response = client.get(format!("{}{path}", engine.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'")
                && policy.contains("script-src 'self'")
                && !policy.contains("unsafe"),
            "{policy}"
        );
        let body = response.text().await.unwrap();
        for remote in ["src=\"http", "href=\"http", "url(http", "src=\"//", "href=\"//", "@import"] {
            assert!(!body.contains(remote), "{path} loads nothing from elsewhere ({remote})");
        }
        weight += body.len();
    }
    eprintln!("dashboard page weight: {weight} bytes");
    // A rebinding page reaching it by another name gets nothing.
    let foreign = client.get(format!("{}/ui/", engine.url)).header("host", "evil.example").send().await.unwrap();
    assert_eq!(foreign.status(), 421);
}
