//! Starting engines, talking to them, and a local HTTP sink for attacks.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use cme_test_peers::Dates;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A database for one test: a SQLite file, or a fresh PostgreSQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run tests: SQLite always; PostgreSQL when `CME_TEST_POSTGRES_URL`
/// is set (and, under `CME_REQUIRE_PEERS=1`, it must be).
pub fn backends() -> Vec<Backend> {
    match std::env::var("CME_TEST_POSTGRES_URL") {
        Ok(_) => vec![Backend::Sqlite, Backend::Postgres],
        Err(_) => {
            cme_test_peers::missing_peer(
                "CME_TEST_POSTGRES_URL (a PostgreSQL server; .ci/run starts one)",
                "apt-get install postgresql; CME_TEST_POSTGRES_URL=postgres://...",
            );
            vec![Backend::Sqlite]
        }
    }
}

/// A database URL for a new, empty database on `backend`.
pub fn fresh_database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("cme.db").display()),
        Backend::Postgres => {
            let admin = std::env::var("CME_TEST_POSTGRES_URL").expect("checked by backends()");
            let name = format!("cme_test_{}", uuid_like());
            let status = Command::new("psql")
                .arg(&admin)
                .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
                .status()
                .expect("psql runs");
            assert!(status.success(), "creating database {name}");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        Instant::now().elapsed().as_nanos() % 1000
    )
}

/// One running `cme serve`.
pub struct Engine {
    child: Option<Child>,
    pub url: String,
    pub database_url: String,
    stderr: Arc<Mutex<String>>,
}

/// How to start an engine.
#[derive(Clone, Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Reuse this database (a restart, or a second replica).
    pub database_url: Option<String>,
    pub config: Option<String>,
    /// A command the engine runs under (its program, then its arguments; the engine's
    /// command line follows them): `unshare` and a mount for the disk fault tests.
    pub under: Vec<String>,
}

pub fn shared_cache_dir() -> PathBuf {
    std::env::temp_dir().join("cme-e2e-artifacts")
}

impl Engine {
    pub fn start(dir: &Path, backend: Backend, options: Options) -> Engine {
        let database_url = options.database_url.clone().unwrap_or_else(|| fresh_database(backend, dir));
        let mut command = match options.under.split_first() {
            None => Command::new(env!("CARGO_BIN_EXE_cme")),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_cme"));
                command
            }
        };
        command
            .arg("serve")
            .args(["--bind", "127.0.0.1:0", "--database-url", &database_url])
            .arg("--cache-dir")
            .arg(shared_cache_dir())
            .args(&options.args)
            .current_dir(dir)
            .env_remove("CME_TOKENS")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(config) = &options.config {
            let path = dir.join("cme.toml");
            std::fs::write(&path, config).unwrap();
            command.arg("--config").arg(path);
        }
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("cme starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.trim().strip_prefix("cme listening on ").map(str::to_string) else {
            // The engine refused to start: wait for it, so that its stderr says why.
            let status = child.wait().unwrap();
            let _ = reader.join();
            panic!("unexpected first line {line:?} ({status}); stderr:\n{}", stderr.lock().unwrap());
        };
        Engine { child: Some(child), url, database_url, stderr }
    }

    /// The engine's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe_kill(child.id(), "-TERM");
        child.wait().unwrap()
    }

    /// SIGKILL: the engine dies mid-whatever.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        unsafe_kill(child.id(), "-KILL");
        child.wait().unwrap();
    }

    pub fn client(&self) -> Api {
        Api { http: reqwest::Client::new(), base: self.url.clone(), token: None }
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill").args([signal, &pid.to_string()]).status().expect("kill runs");
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An API response: status, content type, JSON body, headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub fn with_token(&self, token: &str) -> Api {
        Api { token: Some(token.to_string()), ..self.clone() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.raw(reqwest::Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.raw(reqwest::Method::POST, path, Some(body.to_string().into_bytes()), Some("application/json")).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.raw(reqwest::Method::PUT, path, Some(body.to_string().into_bytes()), Some("application/json")).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.raw(reqwest::Method::DELETE, path, None, None).await
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the engine answers");
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, content_type, location, body }
    }

    /// Polls an executor until `done(doc)` or the timeout (events, not timing: the
    /// timeout is generous and only stops a broken test from hanging).
    pub async fn wait_executor(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self.get(&format!("/api/1/executors/{id}")).await;
            if done(&reply.body) {
                return reply.body;
            }
            assert!(Instant::now() < deadline, "executor {id} never reached the expected state: {}", reply.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// True once an executor document is terminal (succeeded, failed, missed, cancelled).
pub fn is_terminal(doc: &Value) -> bool {
    doc["executed"] == true
}

impl Api {
    /// Creates a plan running `attack` once, a second from now, and returns the
    /// creation reply; panics unless it is 201.
    pub async fn plan_once(&self, attack: Value, dry_run: bool) -> Reply {
        let body = serde_json::json!({
            "name": "once",
            "attack": attack,
            "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": in_seconds(1)}},
            "dry_run": dry_run,
        });
        let created = self.post("/api/1/plans/", &body).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created
    }

    /// Runs `attack` once and returns the executor when it is terminal.
    pub async fn run_once(&self, attack: Value, dry_run: bool) -> Value {
        let created = self.plan_once(attack, dry_run).await;
        let id = created.body["_embedded"]["executors"][0]["id"].as_str().unwrap().to_string();
        self.wait_executor(&id, is_terminal).await
    }
}

/// An RFC 3339 time `seconds` from now.
/// A date for a query string (`+` and `:` escaped).
pub fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

pub fn in_seconds(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// The original's api-request plan, verbatim, with `endpoint` and `date` filled in.
pub fn api_plan(name: &str, endpoint: &str, date: &str) -> Value {
    serde_json::json!({
        "name": name,
        "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": endpoint, "method": "POST", "payload": {"terminate": "1"}, "headers": {"X-CUSTOM-HEADER": "test"}}},
        "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": date}}
    })
}

/// Reads one HTTP/1.1 request from `socket`: its head (through the blank line) and its
/// body (`content-length` bytes); None when the peer goes away before the head ends.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head, body))
}

/// A local HTTP server that records requests (and their heads) and answers 200 (after
/// `delay`).
/// A request a sink captured: method, path and query, body.
pub type Captured = (String, String, Vec<u8>);

pub struct Sink {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    pub async fn start(delay: Duration) -> Sink {
        Sink::start_at("127.0.0.1:0".parse().unwrap(), delay).await
    }

    /// A sink on `addr` (a receiver that comes back where it was).
    pub async fn start_at(addr: SocketAddr, delay: Duration) -> Sink {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let seen_heads = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                let seen_heads = seen_heads.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut socket).await else { return };
                    let mut first = head.lines().next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_string();
                    let target = first.next().unwrap_or("").to_string();
                    // Under one lock order (requests, then heads): the nth head is the nth request's.
                    {
                        let mut requests = seen.lock().unwrap();
                        requests.push((method, target, body));
                        seen_heads.lock().unwrap().push(head);
                    }
                    tokio::time::sleep(delay).await;
                    let _ =
                        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                });
            }
        });
        Sink { addr, requests, heads }
    }

    /// Each request with the value of its header `name` (lower-case), if any.
    pub fn requests_with_header(&self, name: &str) -> Vec<(Captured, Option<String>)> {
        let requests = self.requests.lock().unwrap();
        let heads = self.heads.lock().unwrap();
        let value = |head: &String| {
            head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
        };
        requests.iter().cloned().zip(heads.iter().map(value)).collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<(String, String, Vec<u8>)> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (up to a minute) until `count` requests have reached the sink: attacks are
    /// in flight (an executor is `running` from its claim, a little before it starts).
    pub async fn until_requests(&self, count: usize) {
        let waiting = std::time::Instant::now();
        while self.requests.lock().unwrap().len() < count {
            assert!(waiting.elapsed() < Duration::from_secs(60), "{count} requests never reached the sink");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A local HTTP service whose health the test sets: every request is answered with the
/// current status (and a JSON body saying it).
pub struct Service {
    pub addr: SocketAddr,
    status: Arc<std::sync::atomic::AtomicU16>,
}

impl Service {
    pub async fn start(status: u16) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let current = Arc::new(std::sync::atomic::AtomicU16::new(status));
        let shared = current.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let status = shared.clone();
                tokio::spawn(async move {
                    if !read_request_head(&mut socket).await {
                        return;
                    }
                    let code = status.load(std::sync::atomic::Ordering::SeqCst);
                    let body = format!("{{\"status\":{code}}}");
                    let head = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        Service { addr, status: current }
    }

    pub fn set(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Reads a request's head (up to its blank line); false when the peer went away first.
pub async fn read_request_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// A program a test drives (the first of `paths` that exists), or None to skip the test;
/// under CI (`CME_REQUIRE_PEERS=1`) a missing one fails it, saying how to `install` it.
pub fn tool(paths: &[PathBuf], install: &str) -> Option<PathBuf> {
    let found = paths.iter().find(|p| p.exists()).cloned();
    if found.is_none() {
        cme_test_peers::missing_peer(&format!("{paths:?}"), install);
    }
    found
}

/// `tool` for programs at fixed paths.
pub fn system_tool(paths: &[&str], install: &str) -> Option<PathBuf> {
    tool(&paths.iter().map(PathBuf::from).collect::<Vec<_>>(), install)
}

/// The README's fenced block of `language` that contains `needle`.
pub fn readme_block(language: &str, needle: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    readme
        .split(&format!("```{language}\n"))
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains(needle))
        .unwrap_or_else(|| panic!("no {language} block with {needle} in the README"))
        .to_string()
}

/// Starts `cme serve` with the configuration `config`, expecting it to refuse: its stderr.
pub fn refused_start(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cme.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cme"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", "sqlite::memory:", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the engine started with:\n{config}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
