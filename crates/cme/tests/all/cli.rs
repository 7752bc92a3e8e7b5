//! The client subcommands against a running engine.

use std::process::Command;

use crate::support::*;

fn cme(url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cme")).args(args).env("CME_URL", url).env_remove("CME_TOKEN").output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn the_cli_drives_a_running_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, api_plan("from the cli", "http://127.0.0.1:4505/", &in_seconds(3600)).to_string()).unwrap();

    let (ok, out, err) = cme(&url, &["plans", "create", "-f", plan_file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("created plan "), "{out}");
    let plan_id = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.contains("pending"), "{out}");

    let (ok, out, _) = cme(&url, &["plans", "list"]);
    assert!(ok);
    assert!(out.lines().next().unwrap().starts_with("ID"), "a table with headers: {out}");
    assert!(out.contains(&plan_id) && out.contains("from the cli"), "{out}");

    let (ok, out, _) = cme(&url, &["plans", "show", &plan_id]);
    assert!(ok);
    assert!(out.contains("api_request:ApiRequest"), "{out}");

    let (ok, out, _) = cme(&url, &["executors", "list"]);
    assert!(ok);
    let executor_id = out.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (ok, out, _) = cme(&url, &["executors", "show", &executor_id]);
    assert!(ok);
    assert!(out.contains("pending"), "{out}");

    let (ok, out, _) = cme(&url, &["halt", "--reason", "cli test"]);
    assert!(ok);
    assert_eq!(out.trim(), "halted: true");
    let (ok, out, _) = cme(&url, &["resume"]);
    assert!(ok);
    assert_eq!(out.trim(), "halted: false");

    let (ok, out, _) = cme(&url, &["plans", "pause", &plan_id]);
    assert!(ok);
    assert_eq!(out.trim(), format!("plan {plan_id} paused: true"));
    let (ok, out, _) = cme(&url, &["plans", "resume", &plan_id]);
    assert!(ok);
    assert_eq!(out.trim(), format!("plan {plan_id} paused: false"));

    let (ok, out, err) = cme(&url, &["plans", "run", &plan_id]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("fired plan {plan_id}: executor ")), "{out}");

    let (ok, out, _) = cme(&url, &["plans", "delete", &plan_id]);
    assert!(ok);
    assert_eq!(out.trim(), format!("Plan {plan_id} successfully deleted"));

    // Errors are readable and fail the command.
    let (ok, _, err) = cme(&url, &["plans", "show", "nope"]);
    assert!(!ok);
    assert!(err.contains("404") && err.contains("plan nope not found"), "{err}");
}

#[tokio::test]
async fn the_cli_pushes_grants_and_manages_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let wasm = dir.path().join("ping.wasm");
    std::fs::write(&wasm, cme_plugins::test_plugins::PING.wasm).unwrap();

    let (ok, out, err) = cme(&url, &["plugins", "push", wasm.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ping-attack@0.1.0 pending (attack), compiled in "), "{out}");
    assert!(out.contains("cme plugins grant ping-attack@0.1.0"), "{out}");

    let grant = dir.path().join("grant.json");
    std::fs::write(&grant, r#"{"http": {"urls": ["http://127.0.0.1:9/*"]}}"#).unwrap();
    let (ok, out, err) = cme(&url, &["plugins", "grant", "ping-attack@0.1.0", "-f", grant.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("enabled: granted"), "{out}");

    let (ok, out, _) = cme(&url, &["plugins", "list"]);
    assert!(ok);
    let ping = out.lines().find(|l| l.starts_with("ping-attack@0.1.0")).unwrap_or_else(|| panic!("{out}"));
    assert!(ping.contains("enabled") && ping.contains("admin") && ping.contains("ping:Ping"), "{ping}");
    assert!(out.lines().any(|l| l.starts_with("api-request@0.1.0") && l.contains("built-in")), "{out}");

    let (ok, out, _) = cme(&url, &["plugins", "show", "ping-attack@0.1.0"]);
    assert!(ok);
    assert!(out.contains("\"granted\"") && out.contains("127.0.0.1:9"), "{out}");
    let (ok, out, _) = cme(&url, &["plugins", "disable", "ping-attack@0.1.0"]);
    assert!(ok && out.contains("disabled"), "{out}");
    let (ok, out, _) = cme(&url, &["plugins", "enable", "ping-attack@0.1.0"]);
    assert!(ok && out.contains("enabled"), "{out}");
    let (ok, out, _) = cme(&url, &["plugins", "delete", "ping-attack@0.1.0"]);
    assert!(ok, "{out}");
    let (ok, _, err) = cme(&url, &["plugins", "show", "ping-attack@0.1.0"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test]
async fn the_cli_manages_blackouts_calendars_and_forecasts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();

    let (ok, out, err) = cme(&url, &["blackouts", "create", "--name", "weekend", "--start", "FRI 16:00", "--end", "MON 08:00", "--timezone", "Europe/Madrid"]);
    assert!(ok, "{err}");
    let weekend_id = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.contains("every week") && out.contains("FRI 16:00"), "{out}");
    let (ok, _, err) = cme(&url, &["blackouts", "create", "--name", "bad", "--start", "FRI 16:00", "--end", "08:00"]);
    assert!(!ok && err.contains("400"), "{err}");

    let ics = dir.path().join("holidays.ics");
    std::fs::write(&ics, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20271225\r\nSUMMARY:Navidad\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").unwrap();
    let (ok, out, err) = cme(&url, &["blackouts", "import", ics.to_str().unwrap(), "--name", "es", "--timezone", "Europe/Madrid"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("imported 1 events of calendar es"), "{out}");
    assert!(out.contains("es: Navidad") && out.contains("2027-12-24T23:00:00"), "all day in Madrid: {out}");

    let (ok, out, _) = cme(&url, &["blackouts", "list"]);
    assert!(ok && out.contains("weekend") && out.contains("es: Navidad"), "{out}");

    // A daily noon cron plan body, forecast over a week with a weekend: Sat and Sun skipped.
    let body = serde_json::json!({"name": "noon", "timezone": "Europe/Madrid",
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET"}},
        "planner": {"ref": "cron_planner:CronPlanner", "args": {"cron": "0 12 * * *"}}});
    let plan_file = dir.path().join("noon.json");
    std::fs::write(&plan_file, body.to_string()).unwrap();
    let (ok, out, err) = cme(&url, &["plans", "forecast", "-f", plan_file.to_str().unwrap(), "--from", "2027-01-04T00:00:00Z", "--until", "2027-01-11T00:00:00Z"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("7 firings from 2027-01-04"), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("skipped") && l.contains("blackout \"weekend\"")).count(), 2, "{out}");
    assert!(out.contains("note: 2 firings fall in blackouts"), "{out}");

    let (ok, out, err) = cme(&url, &["plans", "create", "-f", plan_file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let plan_id = out.split_whitespace().nth(2).unwrap().to_string();
    let (ok, out, err) = cme(&url, &["plans", "forecast", &plan_id]);
    assert!(ok, "{err}");
    assert!(out.starts_with("7 firings"), "a week by default: {out}");

    let (ok, out, _) = cme(&url, &["blackouts", "delete", &weekend_id]);
    assert!(ok && out.contains("successfully deleted"), "{out}");
    let (ok, _, err) = cme(&url, &["blackouts", "show", &weekend_id]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test]
async fn the_cli_covers_executors_credentials_audit_status_completions_and_the_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, api_plan("later", "http://127.0.0.1:9/", &in_seconds(3600)).to_string()).unwrap();
    let (ok, _, err) = cme(&url, &["plans", "create", "-f", plan_file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (_, out, _) = cme(&url, &["executors", "list"]);
    let executor = out.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (ok, out, err) = cme(&url, &["executors", "reschedule", &executor, "2031-01-01T10:00:00Z"]);
    assert!(ok, "{err}");
    assert!(out.contains("2031-01-01T10:00:00"), "{out}");
    let (ok, out, err) = cme(&url, &["executors", "cancel", &executor]);
    assert!(ok && out.contains("successfully cancelled"), "{out}{err}");
    let (ok, _, err) = cme(&url, &["executors", "cancel", &executor]);
    assert!(!ok && err.contains("409"), "cancelling twice is refused: {err}");

    let key = dir.path().join("id_ed25519");
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(status.success());
    let (ok, out, err) = cme(&url, &["credentials", "create", "--name", "web", "--user", "ec2-user", "--key", key.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("SHA256:") && !out.contains("PRIVATE KEY"), "{out}");
    let (ok, out, _) = cme(&url, &["credentials", "list"]);
    assert!(ok && out.contains("web") && out.contains("ssh-ed25519"), "{out}");
    let (ok, out, _) = cme(&url, &["credentials", "delete", "web"]);
    assert!(ok && out.contains("successfully deleted"), "{out}");

    let (ok, out, _) = cme(&url, &["status"]);
    assert!(ok && out.contains("halted: false"), "{out}");
    let (ok, _, _) = cme(&url, &["halt", "--reason", "game day over"]);
    assert!(ok);
    let (ok, out, _) = cme(&url, &["status"]);
    assert!(ok && out.contains("halted: true") && out.contains("game day over"), "{out}");
    let (ok, out, _) = cme(&url, &["audit", "--size", "20"]);
    assert!(ok && out.lines().next().unwrap().starts_with("AT"), "{out}");
    for action in ["halt", "credential.create", "executor.cancel", "executor.reschedule", "plan.create"] {
        assert!(out.contains(action), "{action} in {out}");
    }

    let (ok, out, _) = cme(&url, &["completions", "bash"]);
    assert!(ok && out.contains("_cme()") && out.contains("blackouts"), "a bash completion script");
    let (ok, out, _) = cme(&url, &["man"]);
    assert!(ok && out.contains(".TH cme") && out.contains(".SH SUBCOMMANDS"), "a roff man page: {}", &out[..out.len().min(300)]);
}

#[tokio::test]
async fn lists_follow_every_page_and_json_output_prints_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let api = engine.client();
    for i in 0..3 {
        let created = api.post("/api/1/plans/", &api_plan(&format!("p{i}"), "http://127.0.0.1:9/", &in_seconds(3600))).await;
        assert_eq!(created.status, 201);
    }
    let (ok, out, err) = cme(&url, &["plans", "list", "--all", "--page-size", "1", "--output", "json"]);
    assert!(ok, "{err}");
    let plans: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut names: Vec<&str> = plans.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["p0", "p1", "p2"], "every page, one plan per page");
    let (ok, out, _) = cme(&url, &["executors", "list", "--page-size", "2"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 4, "a header and 3 executors over 2 pages: {out}");
    let (ok, out, _) = cme(&url, &["status", "--output", "json"]);
    assert!(ok);
    let halt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(halt["halted"], false);
    let (ok, _, err) = cme("http://127.0.0.1:9", &["status", "--timeout", "2"]);
    assert!(!ok && err.contains("cannot reach the engine"), "{err}");
}

// Multi-threaded: the CLI blocks this thread while the sink answers the attack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_create_wait_prints_each_outcome_as_it_finishes() {
    let sink = Sink::start(std::time::Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, api_plan("soon", &sink.url("/soon"), &in_seconds(1)).to_string()).unwrap();
    let (ok, out, err) = cme(&engine.url, &["plans", "create", "-f", plan_file.to_str().unwrap(), "--wait"]);
    assert!(ok, "{err}");
    let last = out.lines().last().unwrap();
    assert!(last.contains(" succeeded: POST ") && last.contains("-> 200"), "the outcome is the last line: {out}");
    assert_eq!(sink.requests().len(), 1);
}
