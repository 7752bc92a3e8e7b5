//! No ambient browser authority: DNS-rebinding pages (a foreign `Host`) and cross-site
//! requests (a foreign `Origin`, `Sec-Fetch-Site: cross-site`) are refused before any
//! handler runs, with and without tokens, and change nothing.

use serde_json::json;

use crate::support::*;

struct Probe {
    what: &'static str,
    method: reqwest::Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    status: u16,
}

async fn send(engine: &Engine, token: Option<&str>, probe: &Probe) -> (u16, String) {
    let mut request = reqwest::Client::new().request(probe.method.clone(), format!("{}{}", engine.url, probe.path));
    for (name, value) in &probe.headers {
        request = request.header(*name, value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if probe.method == reqwest::Method::POST {
        request = request.header("content-type", "application/json").body(r#"{"reason": "probe"}"#);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_before_anything_changes() {
    for token in [None, Some("admin-secret-0123456789")] {
        let dir = tempfile::tempdir().unwrap();
        let env = token.map(|t| vec![("CME_TOKENS".to_string(), format!("admin:{t}"))]).unwrap_or_default();
        let engine = Engine::start(
            dir.path(),
            Backend::Sqlite,
            Options { env, config: Some("allowed_hosts = [\"cme.test\"]\n".into()), ..Options::default() },
        );
        let port = engine.url.rsplit(':').next().unwrap().to_string();
        let own = format!("http://127.0.0.1:{port}");
        let probes = vec![
            Probe {
                what: "a rebinding page reads",
                method: reqwest::Method::GET,
                path: "/api/1/credentials/",
                headers: vec![("host", format!("evil.example:{port}"))],
                status: 421,
            },
            Probe {
                what: "a rebinding page halts",
                method: reqwest::Method::POST,
                path: "/api/1/halt",
                headers: vec![("host", format!("evil.example:{port}"))],
                status: 421,
            },
            Probe {
                what: "a look-alike name",
                method: reqwest::Method::GET,
                path: "/api/1/",
                headers: vec![("host", format!("127.0.0.1.evil.example:{port}"))],
                status: 421,
            },
            Probe {
                what: "a cross-site form resumes",
                method: reqwest::Method::POST,
                path: "/api/1/resume",
                headers: vec![("origin", "http://evil.example".into())],
                status: 403,
            },
            Probe {
                what: "a sandboxed frame halts",
                method: reqwest::Method::POST,
                path: "/api/1/halt",
                headers: vec![("origin", "null".into())],
                status: 403,
            },
            Probe {
                what: "another port of this host",
                method: reqwest::Method::POST,
                path: "/api/1/halt",
                headers: vec![("origin", "http://127.0.0.1:1".into())],
                status: 403,
            },
            Probe {
                what: "a cross-site fetch",
                method: reqwest::Method::POST,
                path: "/api/1/plans/",
                headers: vec![("sec-fetch-site", "cross-site".into())],
                status: 403,
            },
            Probe {
                what: "a cross-site upload",
                method: reqwest::Method::POST,
                path: "/api/1/plugins/",
                headers: vec![("origin", "https://evil.example".into())],
                status: 403,
            },
            Probe {
                what: "a configured name",
                method: reqwest::Method::GET,
                path: "/api/1/",
                headers: vec![("host", format!("cme.test:{port}"))],
                status: 200,
            },
            Probe {
                what: "localhost",
                method: reqwest::Method::GET,
                path: "/api/1/",
                headers: vec![("host", format!("localhost:{port}"))],
                status: 200,
            },
            Probe {
                what: "a cross-site read (no state change)",
                method: reqwest::Method::GET,
                path: "/api/1/",
                headers: vec![("origin", "http://evil.example".into())],
                status: 200,
            },
        ];
        for probe in &probes {
            let (status, body) = send(&engine, token, probe).await;
            assert_eq!(status, probe.status, "{} (token: {}): {body}", probe.what, token.is_some());
            if status >= 400 {
                let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(doc["msg"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", probe.what);
            }
        }
        let api = engine.client();
        let api = match token {
            Some(t) => api.with_token(t),
            None => api,
        };
        assert_eq!(api.get("/api/1/halt").await.body["halted"], false, "no refused request halted the engine");
        let audit = api.get("/api/1/audit/").await.body;
        assert_eq!(audit["_embedded"]["audit"], json!([]), "nothing refused reached the engine: {audit}");
        // The engine's own origin may change things.
        let own_halt = Probe {
            what: "its own origin",
            method: reqwest::Method::POST,
            path: "/api/1/halt",
            headers: vec![("origin", own.clone())],
            status: 200,
        };
        assert_eq!(send(&engine, token, &own_halt).await.0, 200);
        assert_eq!(api.get("/api/1/halt").await.body["halted"], true);
    }
}

/// Sends `head` (request line and headers, without the blank line) on a fresh connection
/// and returns the status: what a client that writes its own bytes can send.
async fn raw_status(engine: &Engine, head: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = engine.url.strip_prefix("http://").unwrap().to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    socket.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// The Host check is total: a request whose `Host` is missing, empty, repeated, not plain
/// ASCII or malformed is refused like a foreign one, before any handler; the health probes
/// answer whatever the Host (orchestrators probe by IP address).
#[tokio::test]
async fn every_host_that_is_not_plainly_an_allowed_name_is_misdirected() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let port = engine.url.rsplit(':').next().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an allowed name", format!("GET /api/1/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n").into_bytes(), 200),
        ("one trailing dot", format!("GET /api/1/ HTTP/1.1\r\nHost: localhost.:{port}\r\n").into_bytes(), 200),
        ("a non-ASCII byte", b"GET /api/1/ HTTP/1.1\r\nHost: localhost\xe9\r\n".to_vec(), 421),
        ("a non-ASCII name", "GET /api/1/ HTTP/1.1\r\nHost: l\u{f6}calhost\r\n".as_bytes().to_vec(), 421),
        ("an empty Host", b"GET /api/1/ HTTP/1.1\r\nHost: \r\n".to_vec(), 421),
        ("no Host (HTTP/1.0)", b"GET /api/1/ HTTP/1.0\r\n".to_vec(), 421),
        // RFC 9112 §3.2: the HTTP layer answers 400 to these before any handler runs.
        (
            "two Hosts",
            format!("GET /api/1/ HTTP/1.1\r\nHost: localhost:{port}\r\nHost: evil.example\r\n").into_bytes(),
            400,
        ),
        ("no Host (HTTP/1.1)", b"GET /api/1/ HTTP/1.1\r\n".to_vec(), 400),
        ("two trailing dots", b"GET /api/1/ HTTP/1.1\r\nHost: localhost..\r\n".to_vec(), 421),
        ("a port that is not a number", b"GET /api/1/ HTTP/1.1\r\nHost: localhost:evil\r\n".to_vec(), 421),
        ("text after an IPv6 literal", b"GET /api/1/ HTTP/1.1\r\nHost: [::1]evil\r\n".to_vec(), 421),
        ("a state change without a Host", b"POST /api/1/halt HTTP/1.0\r\nContent-Length: 0\r\n".to_vec(), 421),
        ("/livez by any name", b"GET /livez HTTP/1.1\r\nHost: 10.1.2.3:5000\r\n".to_vec(), 200),
        ("/readyz without a Host", b"GET /readyz HTTP/1.0\r\n".to_vec(), 200),
        ("/healthz with a non-ASCII Host", b"GET /healthz HTTP/1.1\r\nHost: \xff\r\n".to_vec(), 200),
    ];
    for (what, head, status) in cases {
        assert_eq!(raw_status(&engine, &head).await, status, "{what}");
    }
    assert_eq!(engine.client().get("/api/1/halt").await.body["halted"], false, "nothing refused halted the engine");
}
