//! Guardrails: a plan's steady state, checked by probe plugins right before each run.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

fn guarded_plan(name: &str, attack_url: &str, probes: Value) -> Value {
    let mut plan = api_plan(name, attack_url, &in_seconds(1));
    plan["steady_state"] = probes;
    plan
}

async fn run_to_the_end(api: &Api, plan: &Value) -> Value {
    let created = api.post("/api/1/plans/", plan).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    api.wait_executor(&id, is_terminal).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_steady_state_skips_the_run_and_the_attack_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let target = Sink::start(Duration::ZERO).await;
    let service = Service::start(503).await;
    let probe = json!([{"ref": "http_probe:HttpProbe", "args": {"url": service.url("/health"), "expect_status": 200}}]);

    let skipped =
        run_to_the_end(&api, &guarded_plan("guarded, service down", &target.url("/attack"), probe.clone())).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("steady state")
            && reason.contains("http-probe@")
            && reason.contains("503")
            && reason.contains("expected 200"),
        "{reason}"
    );
    assert!(target.requests().is_empty(), "the attack never started");

    service.set(200);
    let ran = run_to_the_end(&api, &guarded_plan("guarded, service up", &target.url("/attack"), probe)).await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(target.requests().len(), 1);
    // The probe's request is audited under the run it guarded.
    let audit = api.get("/api/1/audit/?size=100").await.body;
    let probe_calls: Vec<&Value> = audit["_embedded"]["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().unwrap_or("").starts_with("http-probe@") && e["action"] == "http.send")
        .collect();
    assert_eq!(probe_calls.len(), 2, "{audit}");
    assert!(probe_calls.iter().any(|e| e["run_id"].as_str().unwrap().starts_with(ran["id"].as_str().unwrap())));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_that_cannot_reach_its_service_counts_as_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let target = Sink::start(Duration::ZERO).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let probe = json!([{"ref": "http_probe:HttpProbe", "args": {"url": format!("http://{closed}/health"), "timeout_ms": 2000}}]);
    let skipped = run_to_the_end(&api, &guarded_plan("guarded, nothing there", &target.url("/attack"), probe)).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert!(skipped["reason"].as_str().unwrap().contains("unreachable"), "{skipped}");
    assert!(target.requests().is_empty());
}

#[tokio::test]
async fn a_steady_state_that_names_no_probe_or_bad_args_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    for (probes, pointer, words) in [
        (json!([{"ref": "nope:Nope", "args": {}}]), "/steady_state/0/ref", "nope:Nope"),
        (json!([{"ref": "api_request:ApiRequest", "args": {}}]), "/steady_state/0/ref", "probe"),
        (json!([{"ref": "http_probe:HttpProbe", "args": {"expect_status": 200}}]), "/steady_state/0/args", "url"),
        (json!([{"ref": "http_probe:HttpProbe", "args": {"url": "ftp://x/"}}]), "/steady_state/0/args/url", "ftp://x/"),
        (json!("http_probe:HttpProbe"), "/steady_state", "array"),
    ] {
        let refused =
            api.post("/api/1/plans/", &guarded_plan("bad guard", "http://127.0.0.1:9/", probes.clone())).await;
        assert!(matches!(refused.status, 400 | 404 | 422), "{probes}: {:?}", refused.body);
        assert_eq!(refused.body["pointer"], pointer, "{probes}: {:?}", refused.body);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{probes}: {detail}");
    }
    let plans = api.get("/api/1/plans/?all=true").await;
    assert_eq!(plans.body["plans"].as_array().unwrap().len(), 0, "nothing stored");
    let probes = api.get("/api/1/probes/").await;
    let ids: Vec<&str> = probes.body["probes"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(
        ids.iter().any(|i| i.starts_with("http-probe@")) && ids.iter().any(|i| i.starts_with("prometheus-probe@")),
        "{ids:?}"
    );
}

/// Prometheus (Debian `prometheus`).
fn prometheus() -> Option<std::path::PathBuf> {
    system_tool(&["/usr/bin/prometheus", "/usr/local/bin/prometheus"], "apt-get install prometheus")
}

/// A real Prometheus scraping `target` (host:port) every second, killed on drop.
struct Prometheus {
    child: std::process::Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_prometheus(binary: &std::path::Path, dir: &std::path::Path, target: &str) -> Prometheus {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: cme\n    static_configs: [{{targets: ['{target}']}}]\n"),
    )
    .unwrap();
    let child = std::process::Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prometheus = Prometheus { child, url: format!("http://127.0.0.1:{port}") };
    // Ready once it has scraped the target.
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer =
            client.get(format!("{}/api/v1/query", prometheus.url)).query(&[("query", "up{job=\"cme\"}")]).send().await;
        if let Ok(answer) = answer {
            let doc: Value = answer.json().await.unwrap_or(Value::Null);
            if doc["data"]["result"][0]["value"][1] == "1" {
                return prometheus;
            }
        }
        assert!(std::time::Instant::now() < deadline, "Prometheus did not scrape {target} within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_probe_asks_a_real_prometheus_scraping_the_engine() {
    let Some(binary) = prometheus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let target = Sink::start(Duration::ZERO).await;
    let prometheus = start_prometheus(&binary, dir.path(), engine.url.trim_start_matches("http://")).await;
    let probe = |query: &str, op: &str, threshold: f64| json!([{"ref": "prometheus_probe:PrometheusProbe", "args": {"url": prometheus.url, "query": query, "op": op, "threshold": threshold}}]);

    // The engine is not halted (cme_halted is 0): a steady state asking for 0 holds ...
    let ran =
        run_to_the_end(&api, &guarded_plan("not halted", &target.url("/a"), probe("cme_halted", "==", 0.0))).await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    // ... one asking for 1 does not, and says what Prometheus measured.
    let skipped =
        run_to_the_end(&api, &guarded_plan("halted?", &target.url("/b"), probe("cme_halted", "==", 1.0))).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("prometheus-probe@") && reason.contains("cme_halted == 1") && reason.contains("is 0"),
        "{reason}"
    );
    // A query that finds nothing is no evidence of health.
    let empty =
        run_to_the_end(&api, &guarded_plan("no data", &target.url("/c"), probe("no_such_metric", "<", 1.0))).await;
    assert_eq!(empty["status"], "skipped", "{empty}");
    assert!(empty["reason"].as_str().unwrap().contains("no samples"), "{empty}");
    assert_eq!(target.requests().len(), 1, "only the healthy plan's attack ran");
}

/// A plan whose one run calls `slow` (which answers after a while) and is watched by an
/// http probe of `service` every second.
fn watched_plan(name: &str, slow: &Sink, service: &Service, on_failure: &str) -> Value {
    json!({
        "name": name,
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": slow.url("/slow"), "method": "GET", "timeout_ms": 50000}},
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        "stop_conditions": [{"ref": "http_probe:HttpProbe", "args": {"url": service.url("/health"), "expect_status": 200},
                             "interval_seconds": 1, "settle_seconds": 5, "on_failure": on_failure}]
    })
}

/// Creates `plan` and waits until its attack's request has reached `slow`: the run is in
/// flight (past its start checks), not merely claimed.
async fn started(api: &Api, plan: &Value, slow: &Sink) -> String {
    let created = api.post("/api/1/plans/", plan).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while slow.requests().is_empty() {
        let now = api.get(&format!("/api/1/executors/{id}")).await.body;
        assert!(!is_terminal(&now), "the run ended before its attack was in flight: {now}");
        assert!(std::time::Instant::now() < deadline, "the attack never reached the sink: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_condition_turning_unhealthy_mid_run_halts_the_engine_and_cancels_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let slow = Sink::start(Duration::from_secs(40)).await;
    let service = Service::start(200).await;
    let id = started(&api, &watched_plan("watched, halts", &slow, &service, "halt"), &slow).await;
    // Healthy for a few checks: the run goes on.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(api.get(&format!("/api/1/executors/{id}")).await.body["status"], "running");

    service.set(503);
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(done["error"].as_str().unwrap().contains("stop condition"), "{done}");
    let halt = api.get("/api/1/halt").await.body;
    assert_eq!(halt["halted"], true, "{halt}");
    assert!(halt["reason"].as_str().unwrap().contains("503"), "{halt}");
    let audit = api.get("/api/1/audit/?size=200").await.body.to_string();
    assert!(audit.contains("\"action\":\"guard.trip\"") && audit.contains("expected 200"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_condition_may_pause_only_its_plan() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    let slow = Sink::start(Duration::from_secs(40)).await;
    let service = Service::start(200).await;
    let plan = watched_plan("watched, pauses", &slow, &service, "pause_plan");
    let id = started(&api, &plan, &slow).await;
    service.set(500);
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let plan = api.get(&format!("/api/1/plans/{}", done["plan_id"].as_str().unwrap())).await.body;
    assert_eq!(plan["paused"], true, "{plan}");
    assert_eq!(plan["stop_conditions"][0]["on_failure"], "pause_plan");
    assert_eq!(api.get("/api/1/halt").await.body["halted"], false, "only the plan stops");
}

/// A TCP proxy the test can cut (every connection dropped, new ones refused) and
/// restore on the same port: a database that goes away and comes back.
struct Cable {
    addr: std::net::SocketAddr,
    upstream: String,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Cable {
    async fn start(upstream: &str) -> Cable {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut cable = Cable { addr, upstream: upstream.to_string(), running: None };
        cable.restore().await;
        cable
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let upstream = self.upstream.clone();
        self.running = Some(tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                pipes.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Aborting the task drops the listener and (with the JoinSet) every pipe.
    fn cut(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dead_mans_switch_cancels_the_runs_when_postgresql_goes_away() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path());
    let upstream = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap().to_string();
    let mut cable = Cable::start(&upstream).await;
    let proxied = url.replace(&upstream, &cable.addr.to_string());
    let config = "[deadman]\ndatabase_after_seconds = 2\n".to_string();
    let engine = Engine::start(
        dir.path(),
        Backend::Postgres,
        Options { database_url: Some(proxied), config: Some(config), ..Options::default() },
    );
    let api = engine.client();
    let slow = Sink::start(Duration::from_secs(40)).await;
    let plan = json!({
        "name": "runs while the database goes away",
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": slow.url("/slow"), "method": "GET", "timeout_ms": 50000}},
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}}
    });
    let id = started(&api, &plan, &slow).await;

    cable.cut();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !engine.stderr().contains("dead-man's switch: cancelling") {
        assert!(std::time::Instant::now() < deadline, "the switch did not trip:\n{}", engine.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cable.restore().await;

    // The cancelled run is recorded once the database is back, and runs start again.
    let done = api.wait_executor(&id, is_terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("dead-man's switch") && error.contains("database"), "{error}");
    let quick = Sink::start(Duration::ZERO).await;
    let again = run_to_the_end(&api, &api_plan("after the outage", &quick.url("/again"), &in_seconds(1))).await;
    assert_eq!(again["status"], "succeeded", "{again}");
}

#[tokio::test]
async fn the_readmes_guard_configuration_starts_an_engine_and_a_bad_probe_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = readme_block("toml", "[deadman]");
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    assert_eq!(engine.client().get("/readyz").await.status, 200);

    let stderr = refused_start("[[stop_conditions]]\nref = \"api_request:ApiRequest\"\nargs = {}\n");
    assert!(stderr.contains("stop_conditions") && stderr.contains("probe"), "{stderr}");
}

/// Probes observe: a plan whose steady-state or stop-condition probe names a method other
/// than GET or HEAD is refused at creation with its pointer, unless the operator's
/// `[probes] allow_methods` allows it; under `--dry-run` even an allowed POST is not sent
/// (the GET probe still is), and the attack sends nothing at all.
#[tokio::test(flavor = "multi_thread")]
async fn probes_may_only_observe_unless_allowed_and_never_act_in_a_dry_run() {
    let sink = Sink::start(Duration::ZERO).await;
    let attacked = Sink::start(Duration::ZERO).await;
    let plan = |method: &str, where_: &str| {
        let probe = json!({"ref": "http_probe:HttpProbe", "args": {"url": sink.url("/probe"), "method": method, "expect_status": 200}});
        let mut body = json!({
            "name": format!("probe {method}"),
            "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": attacked.url("/attack"), "method": "DELETE"}},
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
        });
        if where_ == "steady_state" {
            body["steady_state"] = json!([probe]);
        } else {
            body["stop_conditions"] = json!([{"ref": probe["ref"], "args": probe["args"], "interval_seconds": 1, "on_failure": "pause_plan"}]);
        }
        body
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let api = engine.client();
    for (method, where_) in [("DELETE", "steady_state"), ("post", "stop_conditions"), ("PUT", "steady_state")] {
        let refused = api.post("/api/1/plans/", &plan(method, where_)).await;
        assert_eq!(refused.status, 400, "{method}: {:?}", refused.body);
        assert_eq!(refused.body["pointer"], format!("/{where_}/0/args/method"), "{:?}", refused.body);
        assert!(refused.body["msg"].as_str().unwrap().contains("probes observe"), "{:?}", refused.body);
    }
    assert!(sink.requests().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        Backend::Sqlite,
        Options {
            args: vec!["--dry-run".into()],
            config: Some("[probes]\nallow_methods = [\"POST\"]\n".into()),
            ..Options::default()
        },
    );
    let api = engine.client();
    for method in ["POST", "GET"] {
        let created = api.post("/api/1/plans/", &plan(method, "steady_state")).await;
        assert_eq!(created.status, 201, "{method} is allowed: {:?}", created.body);
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        let done = api.wait_executor(&id, is_terminal).await;
        assert!(done["status"] == "succeeded" || done["status"] == "skipped", "{method}: {done}");
    }
    let methods: Vec<String> = sink.requests().iter().map(|(method, _, _)| method.clone()).collect();
    assert_eq!(methods, ["GET"], "under a dry run only the observing probe was sent");
    assert!(attacked.requests().is_empty(), "the dry-run attack sent nothing");
}
