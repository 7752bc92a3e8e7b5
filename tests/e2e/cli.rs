//! The client subcommands against a running engine.

use std::process::Command;

use crate::support::*;

/// `cme ARGS` against the engine at `url`: whether it succeeded, its stdout and stderr.
pub(crate) fn cme(url: &str, args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = cme_exit(url, args);
    (code == Some(0), stdout, stderr)
}

/// `cme ARGS` against the engine at `url` (no token): its exit code, stdout and stderr.
pub(crate) fn cme_exit(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(args)
        .env("CME_URL", url)
        .env_remove("CME_TOKEN")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_drives_a_running_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, api_plan("from the cli", "http://127.0.0.1:4505/", &in_seconds(3600)).to_string())
        .unwrap();

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

    let (ok, out, err) = cme(
        &url,
        &[
            "blackouts",
            "create",
            "--name",
            "weekend",
            "--start",
            "FRI 16:00",
            "--end",
            "MON 08:00",
            "--timezone",
            "Europe/Madrid",
        ],
    );
    assert!(ok, "{err}");
    let weekend_id = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.contains("every week") && out.contains("FRI 16:00"), "{out}");
    let (ok, _, err) = cme(&url, &["blackouts", "create", "--name", "bad", "--start", "FRI 16:00", "--end", "08:00"]);
    assert!(!ok && err.contains("400"), "{err}");

    // 2027's calendar in a year to come: a forecast begins no earlier than now.
    let dates = Dates::like(2026);
    let ics = dir.path().join("holidays.ics");
    std::fs::write(&ics, dates.at("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20271225\r\nSUMMARY:Navidad\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).unwrap();
    let (ok, out, err) =
        cme(&url, &["blackouts", "import", ics.to_str().unwrap(), "--name", "es", "--timezone", "Europe/Madrid"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("imported 1 events of calendar es"), "{out}");
    assert!(out.contains("es: Navidad") && out.contains(&dates.at("2027-12-24T23:00:00")), "all day in Madrid: {out}");

    let (ok, out, _) = cme(&url, &["blackouts", "list"]);
    assert!(ok && out.contains("weekend") && out.contains("es: Navidad"), "{out}");

    // A daily noon cron plan body, forecast over a week with a weekend: Sat and Sun skipped.
    let body = serde_json::json!({"name": "noon", "timezone": "Europe/Madrid",
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET"}},
        "planner": {"ref": "cron_planner:CronPlanner", "args": {"cron": "0 12 * * *"}}});
    let plan_file = dir.path().join("noon.json");
    std::fs::write(&plan_file, body.to_string()).unwrap();
    let (ok, out, err) = cme(
        &url,
        &[
            "plans",
            "forecast",
            "-f",
            plan_file.to_str().unwrap(),
            "--from",
            &dates.at("2027-01-04T00:00:00Z"),
            "--until",
            &dates.at("2027-01-11T00:00:00Z"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with(&dates.at("7 firings from 2027-01-04")), "{out}");
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
    let later = Dates::like(2031).at("2031-01-01T10:00:00");
    let (ok, out, err) = cme(&url, &["executors", "reschedule", &executor, &format!("{later}Z")]);
    assert!(ok, "{err}");
    assert!(out.contains(&later), "{out}");
    let (ok, out, err) = cme(&url, &["executors", "cancel", &executor]);
    assert!(ok && out.contains("successfully cancelled"), "{out}{err}");
    let (ok, _, err) = cme(&url, &["executors", "cancel", &executor]);
    assert!(!ok && err.contains("409"), "cancelling twice is refused: {err}");

    let key = dir.path().join("id_ed25519");
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(status.success());
    let (ok, out, err) =
        cme(&url, &["credentials", "create", "--name", "web", "--user", "ec2-user", "--key", key.to_str().unwrap()]);
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
    assert!(
        ok && out.contains(".TH cme") && out.contains(".SH SUBCOMMANDS"),
        "a roff man page: {}",
        &out[..out.len().min(300)]
    );
}

#[tokio::test]
async fn lists_follow_every_page_and_json_output_prints_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let api = engine.client();
    for i in 0..3 {
        let created =
            api.post("/api/1/plans/", &api_plan(&format!("p{i}"), "http://127.0.0.1:9/", &in_seconds(3600))).await;
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

/// `cme plugins check` refuses what an upload refuses, with the upload's own message, and
/// passes what an upload takes. It needs no engine: one runs here only to compare.
#[tokio::test]
async fn plugins_check_answers_offline_as_an_upload_does() {
    use cme_plugins::test_plugins::{BAD_SCHEMA, COMMAND, DESCRIBE_LOOP, IMPOSTOR, PING, REF_THIEF};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let file = dir.path().join("plugin.wasm");
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let refused: [(&str, &[u8]); 6] = [
        ("a core module", &core_module),
        ("a component of another world", COMMAND.wasm),
        ("a describe() that loops", DESCRIBE_LOOP.wasm),
        ("a schema that does not compile", BAD_SCHEMA.wasm),
        ("a built-in's ref", REF_THIEF.wasm),
        ("a built-in's name", IMPOSTOR.wasm),
    ];
    for (what, wasm) in refused {
        std::fs::write(&file, wasm).unwrap();
        let (ok, out, err) = cme("http://127.0.0.1:9", &["plugins", "check", file.to_str().unwrap()]);
        assert!(!ok, "{what}: {out}");
        let uploaded =
            api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(wasm.to_vec()), Some("application/wasm")).await;
        assert!(uploaded.status >= 400, "{what}: {:?}", uploaded.body);
        assert_eq!(err.trim(), format!("cme: {}", uploaded.body["msg"].as_str().unwrap()), "{what}");
    }
    std::fs::write(&file, PING.wasm).unwrap();
    let (ok, out, err) = cme("http://127.0.0.1:9", &["plugins", "check", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ok: ping-attack@") && out.contains("ping:Ping"), "{out}");
}

/// `cme plugins run`: the component with the engine's runtime and real capabilities,
/// within the grant given, on this machine; every call shown, allowed or denied.
#[tokio::test(flavor = "multi_thread")]
async fn plugins_run_here_with_real_capabilities_within_the_grant() {
    let sink = Sink::start(std::time::Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("ping.wasm");
    std::fs::write(&wasm, cme_plugins::test_plugins::PING.wasm).unwrap();
    let grant = dir.path().join("grant.json");
    std::fs::write(&grant, serde_json::json!({"http": {"urls": [sink.url("/*")]}}).to_string()).unwrap();
    let args = serde_json::json!({"url": sink.url("/ping")}).to_string();
    let wasm = wasm.to_str().unwrap();
    let grant_arg = format!("@{}", grant.display());

    let (ok, out, err) = cme("http://127.0.0.1:9", &["plugins", "run", wasm, "--args", &args, "--grant", &grant_arg]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("\"call\":\"http.send\"") && out.contains("\"decision\":\"allowed\""),
        "the call is shown: {out}"
    );
    assert!(out.contains("-> 200"), "the result is shown: {out}");
    assert_eq!(sink.requests().len(), 1, "the request was real");

    let (ok, out, _) = cme("http://127.0.0.1:9", &["plugins", "run", wasm, "--args", &args]);
    assert!(!ok, "nothing granted: the plugin's call is refused and it fails");
    assert!(out.contains("\"decision\":\"denied\""), "the refusal is shown: {out}");
    assert_eq!(sink.requests().len(), 1, "nothing was sent");

    let (_, out, _) =
        cme("http://127.0.0.1:9", &["plugins", "run", wasm, "--args", &args, "--grant-declared", "--dry-run"]);
    assert!(out.contains("would send GET"), "a dry run records: {out}");
    assert_eq!(sink.requests().len(), 1, "a dry run sends nothing");

    let (ok, out, err) = cme(
        "http://127.0.0.1:9",
        &["plugins", "run", wasm, "--args", &args, "--grant", &grant_arg, "--repeat", "5", "--output", "json"],
    );
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["plugin"].as_str().unwrap().split('@').next(), Some("ping-attack"));
    assert_eq!(doc["timing"]["calls"], 5);
    assert!(doc["timing"]["median_us"].as_u64().unwrap() > 0);
    assert_eq!(sink.requests().len(), 7, "one call and five timed ones, each real");

    let (ok, _, err) = cme("http://127.0.0.1:9", &["plugins", "run", wasm, "--args", "{not json"]);
    assert!(!ok && err.contains("--args"), "{err}");
}

/// An OpenSSH ed25519 key pair made by `ssh-keygen`: (private key path, public key line).
fn keygen(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string();
    (path, public)
}

/// With `require_signature`, only plugins signed by a trusted key get in: signed with
/// `cme plugins push --sign` or with OpenSSH's own `ssh-keygen -Y sign`, they show and
/// audit their signer; unsigned ones, ones signed by another key and signatures over other
/// bytes are refused with a clear message and nothing is stored.
#[tokio::test]
async fn only_plugins_signed_by_a_trusted_key_get_in_when_signatures_are_required() {
    use cme_plugins::test_plugins::{PING, PING_V2};
    let dir = tempfile::tempdir().unwrap();
    let (trusted, public) = keygen(dir.path(), "trusted");
    let (stranger, _) = keygen(dir.path(), "stranger");
    let config = format!("[registry]\nrequire_signature = true\ntrusted_keys = {{ ci = \"{public}\" }}\n");
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    let ping = dir.path().join("ping.wasm");
    std::fs::write(&ping, PING.wasm).unwrap();
    let ping_v2 = dir.path().join("ping_v2.wasm");
    std::fs::write(&ping_v2, PING_V2.wasm).unwrap();
    let ping = ping.to_str().unwrap();

    let unsigned =
        api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(PING.wasm.to_vec()), Some("application/wasm")).await;
    assert_eq!(unsigned.status, 403, "{:?}", unsigned.body);
    assert!(unsigned.body["msg"].as_str().unwrap().contains("accepts signed plugins only"), "{:?}", unsigned.body);

    let (ok, _, err) = cme(&engine.url, &["plugins", "push", ping, "--sign", stranger.to_str().unwrap()]);
    assert!(!ok && err.contains("no trusted key verifies this signature"), "{err}");

    // OpenSSH signs the other file; sent with this one, it does not verify.
    let signed = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "cme-plugin", "-f"])
        .arg(&trusted)
        .arg(&ping_v2)
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let sig = format!("{}.sig", ping_v2.display());
    let (ok, _, err) = cme(&engine.url, &["plugins", "push", ping, "--signature", &sig]);
    assert!(!ok && err.contains("no trusted key verifies this signature"), "{err}");
    let scribble = dir.path().join("scribble.sig");
    std::fs::write(&scribble, "not a signature").unwrap();
    let (ok, _, err) = cme(&engine.url, &["plugins", "push", ping, "--signature", scribble.to_str().unwrap()]);
    assert!(!ok && err.contains("is not an SSH signature"), "not a signature at all: {err}");
    assert!(
        api.get("/api/1/plugins/").await.body["plugins"].as_array().unwrap().iter().all(|p| p["builtin"] == true),
        "nothing refused was stored"
    );

    let (ok, out, err) = cme(&engine.url, &["plugins", "push", ping, "--sign", trusted.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cme(&engine.url, &["plugins", "push", ping_v2.to_str().unwrap(), "--signature", &sig]);
    assert!(ok, "OpenSSH's signature is accepted: {out}{err}");
    let uploaded: Vec<serde_json::Value> = api.get("/api/1/plugins/").await.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["builtin"] == false)
        .cloned()
        .collect();
    assert_eq!(uploaded.len(), 2);
    for plugin in &uploaded {
        let signer = plugin["signed_by"].as_str().unwrap_or_default();
        assert!(signer.starts_with("ci (SHA256:"), "{plugin}");
    }
    let audit = api.get("/api/1/audit/?size=100").await.body;
    let uploads: Vec<&serde_json::Value> =
        audit["_embedded"]["audit"].as_array().unwrap().iter().filter(|e| e["action"] == "plugin.upload").collect();
    assert_eq!(
        uploads
            .iter()
            .filter(|e| e["decision"] == "allowed" && e["target"].as_str().unwrap().contains("signed by ci (SHA256:"))
            .count(),
        2,
        "{uploads:?}"
    );
    assert_eq!(
        uploads.iter().filter(|e| e["decision"] != "allowed").count(),
        4,
        "every refusal is audited: {uploads:?}"
    );
}

/// `require_signature` holds at every door, not only at upload: a plugin uploaded unsigned
/// before the flag was set is disabled when an engine starts with it (audited, logged),
/// and may then be neither granted nor enabled; a plugin signed by a key that is no longer
/// trusted counts as unsigned.
#[tokio::test]
async fn unsigned_plugins_cannot_be_granted_enabled_or_run_once_signatures_are_required() {
    use cme_plugins::test_plugins::{PING, PING_V2};
    let dir = tempfile::tempdir().unwrap();
    let (retired, retired_public) = keygen(dir.path(), "retired");
    let (_, current_public) = keygen(dir.path(), "current");
    let config = format!("[registry]\ntrusted_keys = {{ old = \"{retired_public}\" }}\n");
    let mut engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    let grant = serde_json::json!({"http": {"urls": ["http://127.0.0.1:9/*"]}});
    let unsigned =
        api.raw(reqwest::Method::POST, "/api/1/plugins/", Some(PING.wasm.to_vec()), Some("application/wasm")).await;
    assert_eq!(unsigned.status, 201, "{:?}", unsigned.body);
    let unsigned_id = unsigned.body["id"].as_str().unwrap().to_string();
    let ping_v2 = dir.path().join("ping_v2.wasm");
    std::fs::write(&ping_v2, PING_V2.wasm).unwrap();
    let (ok, out, err) =
        cme(&engine.url, &["plugins", "push", ping_v2.to_str().unwrap(), "--sign", retired.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let plugins = api.get("/api/1/plugins/").await.body;
    let signed_id = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["builtin"] == false && p["id"] != unsigned_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [&unsigned_id, &signed_id] {
        let granted = api.put(&format!("/api/1/plugins/{id}/grant"), &grant).await;
        assert_eq!(granted.status, 200, "granted while signatures are optional: {:?}", granted.body);
    }
    let database_url = engine.database_url.clone();
    engine.stop();

    // The old key is retired and signatures become required.
    let config = format!("[registry]\nrequire_signature = true\ntrusted_keys = {{ new = \"{current_public}\" }}\n");
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some(config), database_url: Some(database_url), ..Options::default() },
    );
    let api = engine.client();
    for id in [&unsigned_id, &signed_id] {
        let mut status = String::new();
        for _ in 0..100 {
            status =
                api.get(&format!("/api/1/plugins/{id}")).await.body["status"].as_str().unwrap_or_default().to_string();
            if status == "disabled" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(status, "disabled", "{id} is disabled at start");
        let enabled = api.raw(reqwest::Method::POST, &format!("/api/1/plugins/{id}/enable"), None, None).await;
        assert_eq!(enabled.status, 403, "{id} may not be enabled: {:?}", enabled.body);
        assert!(enabled.body["msg"].as_str().unwrap().contains("accepts signed plugins only"), "{:?}", enabled.body);
        let granted = api.put(&format!("/api/1/plugins/{id}/grant"), &grant).await;
        assert_eq!(granted.status, 403, "{id} may not be granted: {:?}", granted.body);
        assert_eq!(
            api.get(&format!("/api/1/plugins/{id}")).await.body["status"],
            "disabled",
            "refusals change nothing"
        );
    }
    let audit = api.get("/api/1/audit/?size=100").await.body;
    let disabled = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "plugin.disable" && e["actor"] == "engine")
        .count();
    assert_eq!(disabled, 2, "each disabling is audited: {audit}");
    assert!(engine.stderr().contains("plugin disabled: require_signature is set"), "and logged");
}

#[test]
fn a_signature_requirement_without_keys_or_with_a_bad_key_stops_the_start() {
    let stderr = refused_start("[registry]\nrequire_signature = true\n");
    assert!(stderr.contains("no trusted_keys are configured"), "{stderr}");
    let stderr = refused_start("[registry]\ntrusted_keys = { ci = \"ssh-rsa AAAAB3NzaC1yc2E\" }\n");
    assert!(stderr.contains("[registry] trusted_keys.ci"), "{stderr}");
}

#[tokio::test]
async fn inventories_and_undos_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let url = engine.url.clone();
    let key = cme_test_peers::sshd::ed25519(dir.path(), "fleet_key");
    let created = engine
        .client()
        .post(
            "/api/1/credentials/",
            &serde_json::json!({"name": "fleet", "user": "ops", "private_key": std::fs::read_to_string(&key).unwrap()}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    let yaml = dir.path().join("hosts.yml");
    std::fs::write(&yaml, "web:\n  vars: {cme_credential: fleet, zone: a}\n  hosts:\n    web-1: {ansible_host: 10.0.1.11}\n    web-2: {ansible_host: 10.0.1.12, ansible_port: 2222}\n").unwrap();
    let (ok, out, err) = cme(&url, &["inventories", "import", yaml.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("imported inventory web (2 hosts)"), "{out}");
    let (ok, out, _) = cme(&url, &["inventories", "show", "web"]);
    assert!(ok);
    assert!(out.contains("web-2") && out.contains("10.0.1.12:2222") && out.contains("zone=a"), "{out}");

    let json = dir.path().join("db.json");
    std::fs::write(&json, r#"{"hosts": [{"name": "db-1", "address": "10.0.2.1", "credential": "nobody"}]}"#).unwrap();
    let (ok, _, err) = cme(&url, &["inventories", "put", "db", json.to_str().unwrap()]);
    assert!(!ok && err.contains("no credential named \"nobody\""), "{err}");
    std::fs::write(&json, r#"{"hosts": [{"name": "db-1", "address": "10.0.2.1", "credential": "fleet"}]}"#).unwrap();
    let (ok, out, err) = cme(&url, &["inventories", "put", "db", json.to_str().unwrap()]);
    assert!(ok && out.contains("stored inventory db (1 hosts)"), "{out}{err}");
    let (ok, out, _) = cme(&url, &["inventories", "list"]);
    assert!(ok && out.contains("db") && out.contains("web"), "{out}");
    let (ok, _, _) = cme(&url, &["inventories", "delete", "db"]);
    assert!(ok);
    let (ok, out, _) = cme(&url, &["inventories", "list"]);
    assert!(ok && !out.contains("db "), "{out}");

    let (ok, out, err) = cme(&url, &["undos"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ID"), "an empty table with its headers: {out}");
}
