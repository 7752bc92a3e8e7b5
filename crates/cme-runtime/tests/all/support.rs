//! Shared test fixtures: runtimes, plugins, a local HTTP server that records requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cme_runtime::{Grant, Limits, Plugin, RunOutcome, RunRequest, Runtime, RuntimeConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An artifact cache shared by the tests of this binary, so each component compiles once.
pub fn shared_cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("cme-runtime-tests-{}", std::process::id()))
}

/// A runtime with short run limits, so that hostile plugins end quickly.
pub fn runtime() -> Runtime {
    runtime_with(|_| {})
}

pub const RUN_DEADLINE: Duration = Duration::from_secs(2);

pub fn runtime_with(adjust: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        run_limits: Limits { deadline: RUN_DEADLINE, ..Limits::default() },
        ..RuntimeConfig::default()
    };
    adjust(&mut config);
    Runtime::new(config).expect("runtime starts")
}

pub async fn builtin(runtime: &Runtime, crate_name: &str) -> Plugin {
    let embedded = cme_plugins::builtin(crate_name).expect("a built-in plugin");
    runtime.load(embedded.wasm).await.expect("built-in plugin loads")
}

pub async fn hostile(runtime: &Runtime) -> Plugin {
    runtime.load(cme_plugins::test_plugins::HOSTILE.wasm).await.expect("hostile plugin loads")
}

pub fn run_request(args: Value, grant: Grant) -> RunRequest {
    RunRequest {
        run_id: "run-1".into(),
        now: Utc::now(),
        args,
        grant,
        dry_run: false,
        owner: Default::default(),
        step: None,
    }
}

pub async fn run_hostile(runtime: &Runtime, plugin: &Plugin, args: Value, grant: Grant) -> RunOutcome {
    runtime.run(plugin, run_request(args, grant)).await
}

/// After a hostile call, the same runtime must still work.
pub async fn assert_runtime_still_works(runtime: &Runtime, plugin: &Plugin) {
    let outcome = run_hostile(runtime, plugin, serde_json::json!({"mode": "noop"}), Grant::default()).await;
    assert_eq!(outcome.result.expect("noop after a hostile call succeeds").summary, "noop");
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: b"ok".to_vec() }
    }

    pub fn redirect(location: &str) -> Reply {
        Reply { status: 302, headers: vec![("Location".into(), location.into())], body: Vec::new() }
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 that records every request.
pub struct CaptureServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl CaptureServer {
    pub async fn start(reply: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> CaptureServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let Some(captured) = read_request(&mut socket).await else { return };
                    let answer = reply(&captured);
                    seen.lock().unwrap().push(captured);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    );
                    for (k, v) in &answer.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&answer.body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        CaptureServer { addr, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Captured> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured { method, target, headers, body })
}
