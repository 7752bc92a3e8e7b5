//! Secrets in plan args are used but never shown: header values and URL user-info are
//! `***` in every document, audit row, error and log line.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn secret_headers_and_url_passwords_never_show() {
    let sink = Sink::start(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options { config: Some("secret_headers = [\"X-Vault-Token\"]\n".into()), ..Options::default() },
    );
    let api = engine.client();
    let with_password = sink.url("/kill").replacen("http://", "http://chaos:hunter2-pw@", 1);
    let secrets = ["hunter2-pw", "Bearer topsecret-token", "k-123-apikey", "vault-s3cret", "metadata-pw"];
    let attack = json!({"ref": "api_request:ApiRequest", "args": {
        "endpoint": with_password, "method": "GET",
        "headers": {"Authorization": "Bearer topsecret-token", "X-Api-Key": "k-123-apikey", "X-Vault-Token": "vault-s3cret", "X-Visible": "shown"}}});
    let created = api.plan_once(attack, false).await;
    let plan_id = created.body["id"].as_str().unwrap().to_string();
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(sink.requests().len(), 1, "the attack used its secrets");
    // A refused call's error names the URL too.
    let refused = api.run_once(json!({"ref": "api_request:ApiRequest", "args": {"endpoint": "http://root:metadata-pw@169.254.169.254/", "method": "GET"}}), false).await;
    assert_eq!(refused["status"], "failed");

    let shown = [
        ("the creation answer", created.body.to_string()),
        ("the plan", api.get(&format!("/api/1/plans/{plan_id}")).await.body.to_string()),
        ("the plan list", api.get("/api/1/plans/?all=true").await.body.to_string()),
        ("the executor", api.get(&format!("/api/1/executors/{id}")).await.body.to_string()),
        ("the refused executor", refused.to_string()),
        ("the executor list", api.get("/api/1/executors/?executed=all").await.body.to_string()),
        ("the audit log", api.get("/api/1/audit/").await.body.to_string()),
        ("the engine's log", engine.stderr()),
    ];
    for (what, text) in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
        }
    }
    let plan = api.get(&format!("/api/1/plans/{plan_id}")).await.body;
    assert_eq!(plan["attack"]["args"]["headers"]["Authorization"], "***");
    assert_eq!(plan["attack"]["args"]["headers"]["X-Vault-Token"], "***");
    assert_eq!(plan["attack"]["args"]["headers"]["X-Visible"], "shown");
    assert!(plan["attack"]["args"]["endpoint"].as_str().unwrap().starts_with("http://***@127.0.0.1:"), "{plan}");
}

/// One masker, every sink: a canary secret planted in every field that can carry one —
/// URL user-info of attack, steady-state probe and stop-condition URLs (with `@` and
/// whitespace in the password), secret headers, an SSH key's passphrase, a token, a
/// webhook secret and a host-held credential, and the same known secrets inside
/// inventory variables — shows in no API answer, no webhook payload, no CLI output and
/// no log line at `RUST_LOG=trace`, in both log formats.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_secret_shows_in_no_sink_at_trace_level() {
    const CANARY: &str = "c4n4ry-S3cret-x9";
    const TOKEN: &str = "c4n4ry-t0ken-admin-000111";
    const WEBHOOK: &str = "c4n4ry-w3bhook-secret";
    const CREDENTIAL: &str = "c4n4ry-h0st-credential";
    const PASSPHRASE: &str = "c4n4ry-p4ssphrase";
    let canaries = [CANARY, TOKEN, WEBHOOK, CREDENTIAL, PASSPHRASE, "p@ss w0rd-c4n4ry"];
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::start(Duration::ZERO).await;
        let receiver = Sink::start(Duration::ZERO).await;
        let service = Service::start(200).await;
        let config = format!(
            "secret_headers = [\"X-Canary\"]\n\
             [[tokens]]\nname = \"admin\"\nrole = \"admin\"\ntoken = \"{TOKEN}\"\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"{WEBHOOK}\"\n\
             [[http.credentials]]\nname = \"svc\"\nurls = [\"http://{}/*\"]\nkind = \"header\"\nheader = \"X-Svc-Key\"\nsecret = \"{CREDENTIAL}\"\nbuiltins = [\"api-request\"]\n",
            receiver.url("/hooks"),
            sink.addr
        );
        let env =
            vec![("RUST_LOG".to_string(), "trace".to_string()), ("CME_LOG_FORMAT".to_string(), format.to_string())];
        let engine =
            Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), env, ..Options::default() });
        let api = engine.client().with_token(TOKEN);

        // An SSH key whose passphrase is a canary, and an inventory whose variables carry secrets.
        let key = cme_test_peers::sshd::keygen(dir.path(), "canary_key", &["-t", "ed25519", "-N", PASSPHRASE]);
        let stored = api
            .post("/api/1/credentials/", &json!({"name": "fleet", "user": "ops", "private_key": std::fs::read_to_string(&key).unwrap(), "passphrase": PASSPHRASE}))
            .await;
        assert_eq!(stored.status, 201, "{:?}", stored.body);
        let inventory = format!(
            "all:\n  hosts:\n    web-1:\n      ansible_host: 127.0.0.1\n      cme_credential: fleet\n      note: \"{PASSPHRASE} {TOKEN}\"\n"
        );
        let imported = api
            .raw(reqwest::Method::POST, "/api/1/inventories/", Some(inventory.into_bytes()), Some("application/yaml"))
            .await;
        assert_eq!(imported.status, 201, "{:?}", imported.body);
        // The same in an INI inventory and in ansible-inventory JSON, and in a line the INI
        // parser refuses (its error quotes the line).
        let ini = format!("[db]\ndb-1 ansible_host=127.0.0.2 cme_credential=fleet note=\"{PASSPHRASE} {TOKEN}\"\n");
        let imported =
            api.raw(reqwest::Method::POST, "/api/1/inventories/?format=ini", Some(ini.into_bytes()), None).await;
        assert_eq!(imported.status, 201, "{:?}", imported.body);
        let listed = json!({"_meta": {"hostvars": {"db-2": {"ansible_host": "127.0.0.3", "vault": {"token": TOKEN, "pass": PASSPHRASE}}}}, "db2": ["db-2"]});
        let imported = api
            .raw(
                reqwest::Method::POST,
                "/api/1/inventories/?credential=fleet",
                Some(listed.to_string().into_bytes()),
                Some("application/json"),
            )
            .await;
        assert_eq!(imported.status, 201, "{:?}", imported.body);
        let refused = format!("[db]\ndb-3 {PASSPHRASE}\n");
        let refused =
            api.raw(reqwest::Method::POST, "/api/1/inventories/?format=ini", Some(refused.into_bytes()), None).await;
        assert_eq!(refused.status, 400, "{:?}", refused.body);

        let with_user_info =
            |url: String, password: &str| url.replacen("http://", &format!("http://chaos:{password}@"), 1);
        let plan = json!({
            "name": "canary",
            "attack": {"ref": "api_request:ApiRequest", "args": {
                "endpoint": with_user_info(sink.url("/attack"), CANARY), "method": "GET",
                "headers": {"Authorization": format!("Bearer {CANARY}"), "X-Canary": CANARY}}},
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
            "steady_state": [{"ref": "http_probe:HttpProbe", "args": {"url": with_user_info(service.url("/health"), "p@ss w0rd-c4n4ry"), "expect_status": 200}}],
            "stop_conditions": [{"ref": "http_probe:HttpProbe", "args": {"url": with_user_info(service.url("/health"), CANARY), "expect_status": 200},
                                 "interval_seconds": 1, "settle_seconds": 1, "on_failure": "halt"}]
        });
        let created = api.post("/api/1/plans/", &plan).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&id, is_terminal).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        // A stop condition that trips writes its probe (and its URL) into the halt reason.
        let trip = api.post("/api/1/plans/", &json!({
            "name": "trips",
            "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": sink.url("/slow"), "method": "GET"}},
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
            "stop_conditions": [{"ref": "http_probe:HttpProbe", "args": {"url": with_user_info(service.url("/down"), CANARY), "expect_status": 299},
                                 "interval_seconds": 1, "settle_seconds": 3, "on_failure": "halt"}]
        })).await;
        assert_eq!(trip.status, 201, "{:?}", trip.body);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while api.get("/api/1/halt").await.body["halted"] != true {
            assert!(std::time::Instant::now() < deadline, "the stop condition never tripped");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        receiver.until_requests(3).await;
        let (_, cli_plans, _) = cme_cli(&engine.url, TOKEN, &["plans", "list", "--all", "--output", "json"]);
        let (_, cli_audit, _) = cme_cli(&engine.url, TOKEN, &["audit"]);
        let (_, cli_status, _) = cme_cli(&engine.url, TOKEN, &["status"]);
        let mut shown = vec![
            ("the plans", api.get("/api/1/plans/?all=true").await.body.to_string()),
            (
                "the plan",
                api.get(&format!("/api/1/plans/{}", created.body["id"].as_str().unwrap())).await.body.to_string(),
            ),
            ("the executors", api.get("/api/1/executors/?executed=all").await.body.to_string()),
            ("the executor", api.get(&format!("/api/1/executors/{id}")).await.body.to_string()),
            ("the halt reason", api.get("/api/1/halt").await.body.to_string()),
            ("the audit log", api.get("/api/1/audit/?size=1000").await.body.to_string()),
            ("the inventories", api.get("/api/1/inventories/").await.body.to_string()),
            ("the inventory", api.get("/api/1/inventories/all").await.body.to_string()),
            ("the credentials", api.get("/api/1/credentials/").await.body.to_string()),
            ("the undos", api.get("/api/1/undos/").await.body.to_string()),
            ("the webhooks", api.get("/api/1/webhooks/").await.body.to_string()),
            ("the CLI's plans", cli_plans),
            ("the CLI's audit", cli_audit),
            ("the CLI's status", cli_status),
        ];
        for (i, (_, _, body)) in receiver.requests().iter().enumerate() {
            shown.push((
                if i == 0 { "a webhook payload" } else { "another webhook payload" },
                String::from_utf8_lossy(body).into_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        shown.push(("the engine's log", engine.stderr()));
        for (what, text) in &shown {
            for canary in canaries {
                assert!(!text.contains(canary), "{format} logs: {what} shows {canary:?}:\n{}", excerpt(text, canary));
            }
        }
        assert!(
            shown.iter().any(|(what, text)| *what == "the halt reason" && text.contains("***@")),
            "the halt reason names the probe, masked"
        );
        assert!(
            engine.stderr().contains("TRACE") || engine.stderr().contains("\"level\":\"TRACE\""),
            "the log is at trace level"
        );
    }
}

/// The lines of `text` around `needle`.
fn excerpt(text: &str, needle: &str) -> String {
    text.lines().filter(|l| l.contains(needle)).take(3).collect::<Vec<_>>().join("\n")
}

/// The CLI with a token: success, stdout, stderr.
fn cme_cli(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(args)
        .args(["--url", url, "--token", token])
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success() && !stdout.trim().is_empty(), "cme {args:?}: {stderr}");
    (output.status.success(), stdout, stderr)
}
