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
        let engine = Engine::start(dir.path(), Backend::Sqlite, Options { env, config: Some("allowed_hosts = [\"cme.test\"]\n".into()), ..Options::default() });
        let port = engine.url.rsplit(':').next().unwrap().to_string();
        let own = format!("http://127.0.0.1:{port}");
        let probes = vec![
            Probe { what: "a rebinding page reads", method: reqwest::Method::GET, path: "/api/1/credentials/", headers: vec![("host", format!("evil.example:{port}"))], status: 421 },
            Probe { what: "a rebinding page halts", method: reqwest::Method::POST, path: "/api/1/halt", headers: vec![("host", format!("evil.example:{port}"))], status: 421 },
            Probe { what: "a look-alike name", method: reqwest::Method::GET, path: "/api/1/", headers: vec![("host", format!("127.0.0.1.evil.example:{port}"))], status: 421 },
            Probe { what: "a cross-site form resumes", method: reqwest::Method::POST, path: "/api/1/resume", headers: vec![("origin", "http://evil.example".into())], status: 403 },
            Probe { what: "a sandboxed frame halts", method: reqwest::Method::POST, path: "/api/1/halt", headers: vec![("origin", "null".into())], status: 403 },
            Probe { what: "another port of this host", method: reqwest::Method::POST, path: "/api/1/halt", headers: vec![("origin", "http://127.0.0.1:1".into())], status: 403 },
            Probe { what: "a cross-site fetch", method: reqwest::Method::POST, path: "/api/1/plans/", headers: vec![("sec-fetch-site", "cross-site".into())], status: 403 },
            Probe { what: "a cross-site upload", method: reqwest::Method::POST, path: "/api/1/plugins/", headers: vec![("origin", "https://evil.example".into())], status: 403 },
            Probe { what: "a configured name", method: reqwest::Method::GET, path: "/api/1/", headers: vec![("host", format!("cme.test:{port}"))], status: 200 },
            Probe { what: "localhost", method: reqwest::Method::GET, path: "/api/1/", headers: vec![("host", format!("localhost:{port}"))], status: 200 },
            Probe { what: "a cross-site read (no state change)", method: reqwest::Method::GET, path: "/api/1/", headers: vec![("origin", "http://evil.example".into())], status: 200 },
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
        let own_halt = Probe { what: "its own origin", method: reqwest::Method::POST, path: "/api/1/halt", headers: vec![("origin", own.clone())], status: 200 };
        assert_eq!(send(&engine, token, &own_halt).await.0, 200);
        assert_eq!(api.get("/api/1/halt").await.body["halted"], true);
    }
}
