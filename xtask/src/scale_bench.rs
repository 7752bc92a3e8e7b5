//! `cargo xtask bench --only paging,costs`: the figures that grow with the stored work.
//!
//! * `paging`: a page of 100 by page number half-way down 1,000,000 executors (half run,
//!   half pending), over every executor and with `executed=false` and `executed=true`, on
//!   SQLite and (with `CME_BENCH_POSTGRES_URL`) on PostgreSQL. Every request asks a page
//!   near the middle under a URL of its own, so that no answer comes from the rendered-page
//!   memory: each one reads the store.
//! * `costs`: RSS, start to ready, idle CPU and firing lateness with 10,000, 100,000 and
//!   1,000,000 pending executors (one database, grown between the steps).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::bench::{BenchDatabase, Engine, Settings, cpu_ticks, lateness_at, rss_mib, wrk};

type Rows = Vec<(String, String, String)>;

/// Creates the schema in `dir`'s SQLite file by starting (and stopping) an engine on it.
fn create_schema(binary: &Path, dir: &Path) -> anyhow::Result<()> {
    Engine::start(binary, dir, &[])?.stop();
    Ok(())
}

/// How a seeded executor stands.
#[derive(Clone, Copy)]
pub(crate) enum Seeded {
    /// Waiting for its time.
    Pending,
    /// Ran and succeeded a millisecond after its time.
    Succeeded,
}

impl Seeded {
    fn status(self) -> &'static str {
        match self {
            Seeded::Pending => "pending",
            Seeded::Succeeded => "succeeded",
        }
    }

    /// The SQL of its start and finish, given the SQL of its due time: a millisecond after
    /// it, or NULL for one still waiting.
    fn ran_at(self, due: &str) -> String {
        match self {
            Seeded::Pending => "NULL".into(),
            Seeded::Succeeded => format!("{due} + 1000"),
        }
    }
}

/// `count` executors of a new plan `plan_id` (an api-request to `endpoint`), due from
/// `first_due_us` one `step_us` apart, written straight into the SQLite file `db` (whose
/// schema an engine made). Executor ids are the plan id's first 16 characters and the row
/// number: plans seeded into one database need distinct first halves.
pub(crate) fn seed_sqlite(
    db: &Path,
    plan_id: &str,
    count: u64,
    first_due_us: i64,
    step_us: i64,
    endpoint: &str,
    how: Seeded,
) -> anyhow::Result<()> {
    let plan = plan_row(plan_id, endpoint);
    let status = how.status();
    let (started, finished) = (how.ran_at("due"), how.ran_at("due"));
    let sql = format!(
        "PRAGMA journal_mode=WAL;
         {plan}
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count}),
              d(i, due) AS (SELECT i, {first_due_us} + i * {step_us} FROM n)
         INSERT INTO executors (id, plan_id, due_at_us, status, attempts, lease_owner, lease_expires_us, grace_ms, created_at_us, started_at_us, finished_at_us, summary, targets, details, error, log)
           SELECT printf('%s%016x', substr('{plan_id}', 1, 16), i), '{plan_id}', due, '{status}', 0, NULL, NULL, 60000, {now}, {started}, {finished}, NULL, '[]', NULL, NULL, '[]' FROM d;",
        now = chrono::Utc::now().timestamp_micros(),
    );
    let status = Command::new("sqlite3").arg(db).arg(sql).status()?;
    if !status.success() {
        bail!("seeding {} failed", db.display());
    }
    // On disk before the engine starts: the kernel's write-back of a hundred megabytes of
    // seeded pages would otherwise compete with the first seconds measured.
    let status = Command::new("sync").arg(db).status()?;
    if !status.success() {
        bail!("flushing {} failed", db.display());
    }
    Ok(())
}

/// [`seed_sqlite`] on the PostgreSQL database at `url`.
fn seed_postgres(
    url: &str,
    plan_id: &str,
    count: u64,
    first_due_us: i64,
    step_us: i64,
    how: Seeded,
) -> anyhow::Result<()> {
    let plan = plan_row(plan_id, "http://127.0.0.1:9/");
    let status = how.status();
    let at = how.ran_at(&format!("{first_due_us} + i * {step_us}"));
    let sql = format!(
        "{plan}
         INSERT INTO executors (id, plan_id, due_at_us, status, attempts, lease_owner, lease_expires_us, grace_ms, created_at_us, started_at_us, finished_at_us, summary, targets, details, error, log)
           SELECT substr('{plan_id}', 1, 16) || lpad(to_hex(i), 16, '0'), '{plan_id}', {first_due_us} + i * {step_us}, '{status}', 0, NULL, NULL, 60000, {now}, {at}, {at}, NULL, '[]', NULL, NULL, '[]'
           FROM generate_series(0::bigint, {count}::bigint - 1) AS i;",
        now = chrono::Utc::now().timestamp_micros(),
    );
    let status = Command::new("psql").arg(url).args(["-q", "-v", "ON_ERROR_STOP=1", "-c", &sql]).status()?;
    if !status.success() {
        bail!("seeding PostgreSQL failed");
    }
    Ok(())
}

/// The `INSERT` of a plan `plan_id` (exact planner, an api-request to `endpoint`).
fn plan_row(plan_id: &str, endpoint: &str) -> String {
    let now = chrono::Utc::now().timestamp_micros();
    let attack_args =
        json!({"endpoint": endpoint, "method": "GET", "payload": {}, "headers": {}}).to_string().replace('\'', "''");
    format!(
        "INSERT INTO plans (id, name, created_at_us, deleted_at_us, attack_ref, attack_plugin, attack_args, planner_ref, planner_plugin, planner_args, dry_run, timezone, seed, grace_ms)
           VALUES ('{plan_id}', 'seeded', {now}, NULL, 'api_request:ApiRequest', 'api-request@0.1.0', '{attack_args}', 'exact_planner:ExactPlanner', 'exact-planner@0.1.0', '{{}}', false, 'UTC', 1, 60000);"
    )
}

/// A wrk script asking pages `first..first + span` in turn (each thread from its own place),
/// each under a URL of its own (`&t=&n=`), with `query` added.
fn pages_script(dir: &Path, first: u64, span: u64, query: &str) -> anyhow::Result<std::path::PathBuf> {
    let script = dir.join(format!("pages{first}{}.lua", query.replace(['&', '='], "_")));
    std::fs::write(
        &script,
        format!(
            "local threads = 0\nfunction setup(thread)\n  threads = threads + 1\n  thread:set(\"id\", threads)\nend\n\
             function init(args)\n  n = 0\nend\n\
             function request()\n  n = n + 1\n  local page = {first} + ((n + id * 37) % {span})\n  \
             return wrk.format(\"GET\", \"/api/1/executors/?size=100&page=\" .. page .. \"{query}&t=\" .. id .. \"&n=\" .. n)\nend\n"
        ),
    )?;
    Ok(script)
}

/// Pages by number half-way down each list of the engine at `url`: every executor
/// (`executed=all`, `total` of them), the pending half and the run half.
fn page_rows(url: &str, dir: &Path, store: &str, total: u64, s: &Settings, rows: &mut Rows) -> anyhow::Result<()> {
    for (list, query, listed) in [
        ("every executor", "&executed=all", total),
        ("executed=false", "&executed=false", total / 2),
        ("executed=true", "&executed=true", total / 2),
    ] {
        // 100 pages around the middle of the list.
        let middle = (listed / 200).max(1);
        let script = pages_script(dir, middle.saturating_sub(50).max(1), 100, query)?;
        let run = wrk(&format!("{url}/api/1/executors/"), 4, s.duration, Some(&script))?;
        rows.push((
            format!(
                "page of 100 by page number half-way down {listed} executors ({list}, {store}, each read afresh), c=4"
            ),
            format!("p99 {:.2} ms, p50 {:.2} ms, {:.0} req/s", run.p99_ms, run.p50_ms, run.requests_per_second),
            if store == "SQLite" { "p99 <= 10 ms".into() } else { "reported".into() },
        ));
    }
    Ok(())
}

pub(crate) async fn paging(binary: &Path, s: &Settings, rows: &mut Rows) -> anyhow::Result<()> {
    let half = s.large / 2;
    let now = chrono::Utc::now().timestamp_micros();
    // The run half over the last ~6 days, the pending half from tomorrow on, 1 ms apart.
    let (past, future) = (now - half as i64 * 1_000 - 60_000_000, now + 86_400_000_000);
    let dir = tempfile::tempdir()?;
    create_schema(binary, dir.path())?;
    eprintln!("seeding {} executors, half run, half pending...", s.large);
    let db = dir.path().join("cme.db");
    seed_sqlite(&db, "11111111111111111111111111111111", half, past, 1_000, "http://127.0.0.1:9/", Seeded::Succeeded)?;
    seed_sqlite(&db, "22222222222222222222222222222222", half, future, 1_000, "http://127.0.0.1:9/", Seeded::Pending)?;
    let engine = Engine::start(binary, dir.path(), &[])?;
    page_rows(&engine.url, dir.path(), "SQLite", s.large, s, rows)?;
    // Half way down by the `next` cursor (a seek), the same page every time.
    let client = reqwest::Client::new();
    let middle = (s.large / 200).max(1);
    let doc: Value = client
        .get(format!("{}/api/1/executors/?size=100&executed=all&page={middle}", engine.url))
        .send()
        .await?
        .json()
        .await?;
    let next = doc["_links"]["next"]["href"].as_str().context("a next link half way down")?.to_string();
    let cursor = wrk(&format!("{}{next}", engine.url), 4, s.duration, None)?;
    rows.push((
        format!("page of 100 half way down {} executors by the next cursor, SQLite, c=4", s.large),
        format!("p99 {:.2} ms, p50 {:.2} ms, {:.0} req/s", cursor.p99_ms, cursor.p50_ms, cursor.requests_per_second),
        "p99 <= 10 ms".into(),
    ));
    engine.stop();

    let Some(database) = BenchDatabase::create()? else {
        rows.push((
            "pages by number half-way down 1,000,000 executors, PostgreSQL".into(),
            "not measured: set CME_BENCH_POSTGRES_URL".into(),
            "reported".into(),
        ));
        return Ok(());
    };
    let pg_dir = tempfile::tempdir()?;
    Engine::start_on(binary, pg_dir.path(), &database.url, &[])?.stop();
    eprintln!("seeding {} executors on PostgreSQL...", s.large);
    seed_postgres(&database.url, "11111111111111111111111111111111", half, past, 1_000, Seeded::Succeeded)?;
    seed_postgres(&database.url, "22222222222222222222222222222222", half, future, 1_000, Seeded::Pending)?;
    let status = Command::new("psql").arg(&database.url).args(["-q", "-c", "VACUUM ANALYZE executors"]).status()?;
    if !status.success() {
        bail!("VACUUM ANALYZE on PostgreSQL failed");
    }
    let engine = Engine::start_on(binary, pg_dir.path(), &database.url, &[])?;
    page_rows(&engine.url, pg_dir.path(), "PostgreSQL", s.large, s, rows)?;
    engine.stop();
    Ok(())
}

/// `max_pending_executors` when the configuration says nothing.
const DEFAULT_MAX_PENDING: u64 = 1_000_000;

/// `max_plans` when the configuration says nothing.
const DEFAULT_MAX_PLANS: u64 = 100_000;

/// RSS, start to ready, idle CPU and firing lateness as pending executors grow (10,000,
/// 100,000, 1,000,000 in a full run).
pub(crate) async fn pending_costs(binary: &Path, s: &Settings, rows: &mut Rows) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    create_schema(binary, dir.path())?;
    let db = dir.path().join("cme.db");
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).timestamp_micros();
    let mut stored = 0u64;
    for (step, &count) in s.pending_steps.iter().enumerate() {
        eprintln!("growing to {count} pending executors...");
        seed_sqlite(
            &db,
            &format!("{:016x}{:016x}", 0xc057_0000 + step, 0xc057),
            count - stored,
            tomorrow + stored as i64 * 1_000,
            1_000,
            "http://127.0.0.1:9/",
            Seeded::Pending,
        )?;
        stored = count;
        // The default cap is 1,000,000 pending executors: at that step the lateness probe's
        // plans would be refused, so the cap is raised (and the row says so).
        let raised = count >= DEFAULT_MAX_PENDING;
        if raised {
            std::fs::write(dir.path().join("cme.toml"), format!("max_pending_executors = {}\n", 2 * count))?;
        }
        let extra: &[&str] = if raised { &["--config", "cme.toml"] } else { &[] };
        let engine = Engine::start(binary, dir.path(), extra)?;
        let client = reqwest::Client::new();
        let waited = Instant::now();
        while !client.get(format!("{}/readyz", engine.url)).send().await.is_ok_and(|r| r.status().is_success()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready_ms = (engine.started_to_ready + waited.elapsed()).as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = cpu_ticks(engine.pid());
        tokio::time::sleep(Duration::from_secs(s.idle)).await;
        let idle_ticks = cpu_ticks(engine.pid()) - before;
        let rss = rss_mib(engine.pid());
        let (p50, p99) = lateness_at(&engine.url, s.firing_gap).await?;
        rows.push((
            format!(
                "cost with {count} pending executors{}: RSS / start to ready / idle CPU over {} s / lateness",
                if raised { format!(" (max_pending_executors = {})", 2 * count) } else { String::new() },
                s.idle
            ),
            format!("{rss:.1} MiB / {ready_ms:.0} ms / {idle_ticks} ticks / p50 {p50:.2} ms, p99 {p99:.2} ms"),
            "RSS <= 150 MiB, ready <= 1 s, 0 ticks, p99 <= 5 ms".into(),
        ));
        engine.stop();
    }
    Ok(())
}

/// Zones the daily plans are spread over (their noon falls at eight different instants).
const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Madrid",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Auckland",
];

/// One plan in a thousand fires every minute; the others at noon in their zone.
fn recurring_body(n: u64) -> Value {
    let attack = json!({"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET"}});
    if n % 1_000 == 999 {
        json!({"name": format!("minutely {n}"), "overlap": "allow", "attack": attack,
               "planner": {"ref": "cron_planner:CronPlanner", "args": {"cron": "0 * * * * *"}}})
    } else {
        json!({"name": format!("daily {n}"), "overlap": "allow", "attack": attack, "timezone": ZONES[(n % 8) as usize],
               "planner": {"ref": "cron_planner:CronPlanner", "args": {"cron": "0 0 12 * * *", "jitter_seconds": 600}}})
    }
}

/// Creates plans `from..to` (8 clients at once); their ids by whether they fire every minute.
async fn create_recurring(url: &str, from: u64, to: u64) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let (client, url) = (client.clone(), url.to_string());
        tasks.spawn(async move {
            let mut minutely = Vec::new();
            let mut n = from + t;
            while n < to {
                let response = client.post(format!("{url}/api/1/plans/")).json(&recurring_body(n)).send().await?;
                let created = response.status() == 201;
                // Read whole, so that the connection is kept for the next request (an
                // answer left unread closes it: a TCP connection per plan).
                let body = response.bytes().await?;
                if !created {
                    bail!("creating a recurring plan: {}", String::from_utf8_lossy(&body));
                }
                if n % 1_000 == 999 {
                    let doc: Value = serde_json::from_slice(&body)?;
                    minutely.push(doc["id"].as_str().context("plan id")?.to_string());
                }
                n += 8;
            }
            anyhow::Ok(minutely)
        });
    }
    let mut minutely = Vec::new();
    while let Some(done) = tasks.join_next().await {
        minutely.extend(done??);
    }
    Ok(minutely)
}

/// Recurring plans (mostly daily cron in eight zones, one in a thousand every minute): the
/// rate they are created at, the cost table as they grow (1,000, 10,000, 100,000 in a full
/// run), and with the most of them: start to ready, every horizon extended at once (with
/// firing lateness meanwhile), then idle CPU and RSS.
pub(crate) async fn recurring_plans(binary: &Path, s: &Settings, rows: &mut Rows) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cme.db");
    // `max_plans` is 100,000 by default: the largest step would leave no room for the
    // lateness probe's plans, so it is raised (the rows say so).
    let largest = s.recurring_steps.iter().copied().max().unwrap_or(0);
    let raised = largest >= DEFAULT_MAX_PLANS;
    if raised {
        std::fs::write(dir.path().join("cme.toml"), format!("max_plans = {}\n", 2 * largest))?;
    }
    let config: &[&str] = if raised { &["--config", "cme.toml"] } else { &[] };
    let engine = Engine::start(binary, dir.path(), config)?;
    let mut stored = 0u64;
    let mut minutely = Vec::new();
    let mut creating = Duration::ZERO;
    for &count in &s.recurring_steps {
        eprintln!("creating recurring plans up to {count}...");
        let began = Instant::now();
        minutely.extend(create_recurring(&engine.url, stored, count).await?);
        creating += began.elapsed();
        stored = count;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_mib(engine.pid());
        let (p50, p99) = lateness_at(&engine.url, s.firing_gap).await?;
        rows.push((
            format!(
                "cost with {count} recurring plans{}: RSS / firing lateness",
                if raised { format!(" (max_plans = {})", 2 * largest) } else { String::new() }
            ),
            format!("{rss:.1} MiB / p50 {p50:.2} ms, p99 {p99:.2} ms"),
            "RSS <= 300 MiB, p99 <= 5 ms".into(),
        ));
    }
    rows.push((
        format!("create {stored} recurring plans (cron, 8 clients)"),
        format!("{:.0} plans/s over {:.1} s", stored as f64 / creating.as_secs_f64(), creating.as_secs_f64()),
        ">= 1,000 plans/s".into(),
    ));
    engine.stop();
    // Every horizon a minute short of its lead: the next start extends every plan at once
    // (what happens to every plan once a day, spread over the day).
    let due = (chrono::Utc::now() + chrono::Duration::days(6) - chrono::Duration::minutes(1)).timestamp_micros();
    // The every-minute plans keep theirs: they hold a thousand executors ahead and wait
    // until half are used (`max_executors_ahead_per_plan`).
    let status = Command::new("sqlite3")
        .arg(&db)
        .arg(format!("UPDATE plans SET planned_until_us = {due} WHERE name LIKE 'daily %' AND deleted_at_us IS NULL;"))
        .status()?;
    if !status.success() {
        bail!("moving the horizons back failed");
    }
    let engine = Engine::start(binary, dir.path(), config)?;
    let started = Instant::now();
    let client = reqwest::Client::new();
    while !client.get(format!("{}/readyz", engine.url)).send().await.is_ok_and(|r| r.status().is_success()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_ms = (engine.started_to_ready + started.elapsed()).as_secs_f64() * 1000.0;
    // Executors due one at a time while the horizons are being extended.
    let during = {
        let url = engine.url.clone();
        let gap = s.firing_gap;
        tokio::spawn(async move { lateness_at(&url, gap).await })
    };
    let threshold = (chrono::Utc::now() + chrono::Duration::days(6) - chrono::Duration::seconds(30)).timestamp_micros();
    loop {
        let output = Command::new("sqlite3")
            .arg(&db)
            .arg(format!(
                "SELECT count(*) FROM plans WHERE name LIKE 'daily %' AND deleted_at_us IS NULL AND planned_until_us < {threshold};"
            ))
            .output()?;
        let left: u64 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(u64::MAX);
        if left == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{left} recurring plans still not extended after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let (p50, p99) = during.await??;
    rows.push((
        format!("{stored} recurring plans stored: start to ready"),
        format!("{ready_ms:.0} ms"),
        "<= 1 s".into(),
    ));
    rows.push((
        format!("every horizon of {stored} recurring plans extended at once (SQLite): time, firing lateness meanwhile"),
        format!(
            "{:.2} s ({:.3} ms a plan); lateness p50 {p50:.2} ms, p99 {p99:.2} ms",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / stored as f64
        ),
        "<= 20 s, p99 <= 5 ms".into(),
    ));
    // Idle: the every-minute plans paused, so that nothing is due.
    for id in &minutely {
        client.post(format!("{}/api/1/plans/{id}/pause", engine.url)).send().await?.error_for_status()?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cpu_ticks(engine.pid());
    tokio::time::sleep(Duration::from_secs(s.recurring_idle)).await;
    let ticks = cpu_ticks(engine.pid()) - before;
    rows.push((
        format!(
            "{stored} recurring plans stored: RSS / idle CPU over {} s (the every-minute ones paused)",
            s.recurring_idle
        ),
        format!("{:.1} MiB / {:.2} % ({ticks} ticks)", rss_mib(engine.pid()), ticks as f64 / s.recurring_idle as f64),
        "<= 300 MiB / 0".into(),
    ));
    engine.stop();
    Ok(())
}

/// A local HTTP/1.1 sink answering 200 at once and keeping connections alive (as the
/// APIs attacks call do), counting the requests to each path.
async fn counting_sink() -> anyhow::Result<(String, Arc<Mutex<HashMap<String, u32>>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let receipts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counted = receipts.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_sink_connection(socket, counted.clone()));
        }
    });
    Ok((format!("http://{addr}/"), receipts))
}

/// Answers one connection's requests in turn until the client closes it.
async fn serve_sink_connection(socket: tokio::net::TcpStream, counted: Arc<Mutex<HashMap<String, u32>>>) {
    use tokio::io::AsyncWriteExt;
    let mut reader = tokio::io::BufReader::new(socket);
    while let Some((path, _body)) = crate::sink_request::read_request(&mut reader).await {
        *counted.lock().unwrap().entry(path).or_default() += 1;
        if reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
            return;
        }
    }
}

/// The SQL that seeds `count` plans each with one pending executor, due evenly over the
/// `window_us` from `first_due_us`; plan `i` calls `{endpoint}e{i}`, so that the sink's
/// receipts name the executor. `series` is the backend's row generator for `i`.
fn burst_sql(count: u64, first_due_us: i64, window_us: i64, endpoint: &str, postgres: bool) -> String {
    let now = chrono::Utc::now().timestamp_micros();
    let (series, hex_plan, hex_executor, falsy) = if postgres {
        (
            format!("(SELECT generate_series(0::bigint, {count}::bigint - 1) AS i) AS n"),
            "'b' || lpad(to_hex(i), 31, '0')",
            "'e' || lpad(to_hex(i), 31, '0')",
            "false",
        )
    } else {
        (
            format!(
                "(WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < {count}) SELECT i FROM r) AS n"
            ),
            "printf('b%031x', i)",
            "printf('e%031x', i)",
            "0",
        )
    };
    let args = format!(
        "'{{\"endpoint\": \"{endpoint}e' || i || '\", \"method\": \"GET\", \"payload\": {{}}, \"headers\": {{}}}}'"
    );
    format!(
        "INSERT INTO plans (id, name, created_at_us, deleted_at_us, attack_ref, attack_plugin, attack_args, planner_ref, planner_plugin, planner_args, dry_run, timezone, seed, grace_ms)
           SELECT {hex_plan}, 'burst', {now}, NULL, 'api_request:ApiRequest', 'api-request@0.1.0', {args}, 'exact_planner:ExactPlanner', 'exact-planner@0.1.0', '{{}}', {falsy}, 'UTC', 1, 60000 FROM {series};
         INSERT INTO executors (id, plan_id, due_at_us, status, attempts, lease_owner, lease_expires_us, grace_ms, created_at_us, started_at_us, finished_at_us, summary, targets, details, error, log)
           SELECT {hex_executor}, {hex_plan}, {first_due_us} + i * {window_us} / {count}, 'pending', 0, NULL, NULL, 60000, {now}, NULL, NULL, NULL, '[]', NULL, NULL, '[]' FROM {series};"
    )
}

/// Sleeps until the burst's window has ended (`window_end_us`, epoch microseconds).
async fn past_window(window_end_us: i64) {
    let left = (window_end_us - chrono::Utc::now().timestamp_micros()).max(0);
    tokio::time::sleep(Duration::from_micros(left as u64)).await;
}

/// A burst's figure: what its run left in the database (read by `query`) and the sink's
/// receipts.
fn burst_figure(
    query: &dyn Fn(&str) -> anyhow::Result<String>,
    receipts: &Mutex<HashMap<String, u32>>,
    window_end_us: i64,
    count: u64,
) -> anyhow::Result<String> {
    let (last, p50, p99, statuses) = burst_outcome(query, window_end_us, count)?;
    let (once, missed, twice) = receipts_of(receipts, count);
    Ok(format!(
        "last started {last:.0} ms after the window; each late by p50 {p50:.0} ms, p99 {p99:.0} ms; \
         sink: {once} once, {missed} missed, {twice} twice; {statuses}"
    ))
}

/// Runs ended on the engine at `url`, from its `cme_runs_total` counters.
async fn runs_ended(url: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{url}/metrics")).await?.error_for_status()?.text().await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("cme_runs_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// What a burst's run left: (last start − window end in ms, lateness p50 and p99 in ms,
/// statuses), read from the database by `query`.
fn burst_outcome(
    query: &dyn Fn(&str) -> anyhow::Result<String>,
    window_end_us: i64,
    count: u64,
) -> anyhow::Result<(f64, f64, f64, String)> {
    let last: f64 = query(&format!("SELECT (MAX(started_at_us) - {window_end_us}) / 1000.0 FROM executors"))?
        .parse()
        .unwrap_or(f64::NAN);
    let late = |rank: f64| -> anyhow::Result<f64> {
        let sql = format!(
            "SELECT (started_at_us - due_at_us) / 1000.0 FROM executors WHERE started_at_us IS NOT NULL ORDER BY 1 LIMIT 1 OFFSET {}",
            ((count as f64 - 1.0) * rank) as u64
        );
        Ok(query(&sql)?.parse().unwrap_or(f64::NAN))
    };
    let statuses =
        query("SELECT status || '=' || COUNT(*) FROM executors GROUP BY status ORDER BY 1")?.replace('\n', ", ");
    Ok((last, late(0.5)?, late(0.99)?, statuses))
}

/// Waits until no executor of the engine at `url` is open (or two minutes pass).
async fn drained(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let wait_until = Instant::now() + Duration::from_secs(120);
    loop {
        let doc: Value = client.get(format!("{url}/api/1/executors/?size=1")).send().await?.json().await?;
        if doc["_embedded"]["executors"].as_array().map_or(0, Vec::len) == 0 || Instant::now() > wait_until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sink's receipts: (executors called once, missed, called more than once).
fn receipts_of(receipts: &Mutex<HashMap<String, u32>>, count: u64) -> (u64, u64, u64) {
    let receipts = receipts.lock().unwrap();
    let (mut once, mut twice) = (0, 0);
    for i in 0..count {
        match receipts.get(&format!("/e{i}")) {
            Some(1) => once += 1,
            Some(_) => twice += 1,
            None => {}
        }
    }
    (once, count - once - twice, twice)
}

/// `count` executors (of as many plans) due evenly over a 10-second window, each calling
/// the sink at a path of its own: on one engine (SQLite), then on two replicas sharing
/// PostgreSQL (with `CME_BENCH_POSTGRES_URL`).
pub(crate) async fn burst(binary: &Path, s: &Settings, rows: &mut Rows) -> anyhow::Result<()> {
    const WINDOW_US: i64 = 10_000_000;
    let count = s.burst;
    let target = "last started <= 10 s after the window, none missed, none twice";
    {
        let dir = tempfile::tempdir()?;
        create_schema(binary, dir.path())?;
        let (endpoint, receipts) = counting_sink().await?;
        let first = (chrono::Utc::now() + chrono::Duration::seconds(10)).timestamp_micros();
        let db = dir.path().join("cme.db");
        let sql = format!("PRAGMA journal_mode=WAL; {}", burst_sql(count, first, WINDOW_US, &endpoint, false));
        if !Command::new("sqlite3").arg(&db).arg(sql).status()?.success() {
            bail!("seeding the burst failed");
        }
        let engine = Engine::start(binary, dir.path(), &[])?;
        past_window(first + WINDOW_US).await;
        drained(&engine.url).await?;
        engine.stop();
        let query = |sql: &str| -> anyhow::Result<String> {
            let out = Command::new("sqlite3").arg(&db).arg(sql).output()?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        rows.push((
            format!("burst: {count} executors due in one 10 s window (api-request to a local sink), SQLite"),
            burst_figure(&query, &receipts, first + WINDOW_US, count)?,
            target.into(),
        ));
    }
    let Some(database) = BenchDatabase::create()? else {
        rows.push((
            format!("burst: {count} executors in a 10 s window on two replicas sharing PostgreSQL"),
            "not measured: set CME_BENCH_POSTGRES_URL".into(),
            "reported".into(),
        ));
        return Ok(());
    };
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    Engine::start_on(binary, dir_a.path(), &database.url, &[])?.stop();
    let (endpoint, receipts) = counting_sink().await?;
    let first = (chrono::Utc::now() + chrono::Duration::seconds(15)).timestamp_micros();
    let seeded = Command::new("psql")
        .arg(&database.url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", &burst_sql(count, first, WINDOW_US, &endpoint, true)])
        .status()?;
    if !seeded.success() {
        bail!("seeding the burst on PostgreSQL failed");
    }
    let a = Engine::start_on(binary, dir_a.path(), &database.url, &[])?;
    let b = Engine::start_on(binary, dir_b.path(), &database.url, &[])?;
    past_window(first + WINDOW_US).await;
    drained(&a.url).await?;
    let split = format!("{} / {}", runs_ended(&a.url).await?, runs_ended(&b.url).await?);
    a.stop();
    b.stop();
    let query = |sql: &str| -> anyhow::Result<String> {
        let out = Command::new("psql").arg(&database.url).args(["-qtA", "-c", sql]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    rows.push((
        format!("burst: {count} executors due in one 10 s window, two replicas sharing PostgreSQL"),
        format!("{}; runs per replica {split}", burst_figure(&query, &receipts, first + WINDOW_US, count)?),
        "reported".into(),
    ));
    Ok(())
}
