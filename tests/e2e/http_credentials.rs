//! Credentials the host adds to plugins' requests (`[[http.credentials]]`): seen by the
//! service, never by the plugin, an answer, a log or an audit row. A capture server here
//! plays the service: it records each request's head and echoes it back, as a hostile
//! or careless service might.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::*;

const BEARER: &str = "bearer-secret-1234";
const PASSWORD: &str = "basic-pass-9876";
const API_KEY: &str = "inline-key-5555";
const AWS_SECRET: &str = "aws-secret-key-7777";
const GCP_TOKEN: &str = "ya29.gcp-token-4242";

/// Records request heads (and bodies) and answers through a responder ([`echo`] by default).
struct Capture {
    base: String,
    heads: Arc<Mutex<Vec<(String, String)>>>,
}

/// What the capture server answers to a request (target, head): the whole HTTP answer.
type Responder = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

impl Capture {
    /// Echoes, as described above.
    async fn start() -> Capture {
        Capture::start_with(Arc::new(echo)).await
    }

    async fn start_with(respond: Responder) -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut socket).await else { return };
                    let target = head.split(' ').nth(1).unwrap_or("").to_string();
                    seen.lock().unwrap().push((head.clone(), String::from_utf8_lossy(&body).into_owned()));
                    let answer = respond(&target, &head);
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Capture { base, heads }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The heads of requests to `path_prefix`.
    fn heads(&self, path_prefix: &str) -> Vec<(String, String)> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|(head, _)| head.split(' ').nth(1).is_some_and(|t| t.starts_with(path_prefix)))
            .cloned()
            .collect()
    }
}

/// `/token` answers as Google's token endpoint, `/redirect?to=URL` redirects, anything
/// else echoes the request head (with the Authorization it saw in a header too).
fn echo(target: &str, head: &str) -> String {
    if target == "/token" {
        return json_answer(200, &json!({"access_token": GCP_TOKEN, "expires_in": 3600, "token_type": "Bearer"}));
    }
    if let Some((_, to)) = target.split_once("/redirect?to=") {
        return format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
    let authorization = header(head, "authorization").unwrap_or_default();
    format!(
        "HTTP/1.1 200 OK\r\nx-seen-authorization: {authorization}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
        head.len()
    )
}

fn json_answer(status: u16, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
    })
}

/// A service-account key as Google issues it, with a fresh RSA key (openssl) and the
/// capture server as its token endpoint.
fn service_account_key(dir: &std::path::Path, token_uri: &str) -> Option<String> {
    let pem = dir.join("sa.pem");
    let status = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| {
        json!({"type": "service_account", "client_email": "chaos@project.iam.gserviceaccount.com", "private_key_id": "k1",
               "private_key": std::fs::read_to_string(&pem).unwrap(), "token_uri": token_uri})
        .to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_credentials_reach_the_service_and_never_the_plugin_an_answer_a_log_or_the_audit() {
    let capture = Capture::start().await;
    let elsewhere = Capture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(key) = service_account_key(dir.path(), &capture.url("/token")) else {
        cme_test_peers::missing_peer("openssl", "apt-get install openssl");
        return;
    };
    std::fs::write(dir.path().join("sa.json"), &key).unwrap();
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = format!(
        r#"
[[http.credentials]]
name = "billing"
urls = ["{base}/bearer/*"]
kind = "bearer"
secret_env = "TEST_BILLING_TOKEN"
builtins = ["api-request"]

[[http.credentials]]
name = "legacy"
urls = ["{base}/basic/*"]
kind = "basic"
username = "ops"
secret_file = "password"
builtins = ["api-request"]

[[http.credentials]]
name = "apikey"
urls = ["{base}/header/*"]
kind = "header"
header = "X-Api-Key"
secret = "{API_KEY}"
builtins = ["api-request"]

[[http.credentials]]
name = "aws"
urls = ["{base}/aws/*"]
kind = "aws-sigv4"
service = "execute-api"
region = "eu-west-1"
builtins = ["api-request"]

[[http.credentials]]
name = "gce"
urls = ["{base}/gcp/*"]
kind = "gcp-service-account"
secret_file = "sa.json"
scopes = ["https://www.googleapis.com/auth/compute"]
builtins = ["api-request"]
"#,
        base = capture.base
    );
    let env = vec![
        ("TEST_BILLING_TOKEN".to_string(), BEARER.to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "AKIDCMETEST".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), AWS_SECRET.to_string()),
    ];
    let mut engine =
        Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), env, ..Options::default() });
    let api = engine.client();

    let call =
        |path: &str| json!({"ref": "api_request:ApiRequest", "args": {"endpoint": capture.url(path), "method": "GET"}});
    let mut executors = Vec::new();
    for path in ["/bearer/a", "/basic/a", "/header/a", "/aws/a", "/gcp/a", "/gcp/b", "/plain/a"] {
        let done = api.run_once(call(path), false).await;
        assert_eq!(done["status"], "succeeded", "{path}: {done}");
        executors.push(done);
    }

    // The service saw each credential, only where it applies.
    let seen = |prefix: &str, name: &str| header(&capture.heads(prefix)[0].0, name);
    assert_eq!(seen("/bearer/", "authorization").as_deref(), Some(format!("Bearer {BEARER}").as_str()));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ops:{PASSWORD}"));
    assert_eq!(seen("/basic/", "authorization").as_deref(), Some(format!("Basic {basic}").as_str()));
    assert_eq!(seen("/header/", "x-api-key").as_deref(), Some(API_KEY));
    let sigv4 = seen("/aws/", "authorization").expect("a SigV4 Authorization header");
    assert!(
        sigv4.starts_with("AWS4-HMAC-SHA256 Credential=AKIDCMETEST/")
            && sigv4.contains("/eu-west-1/execute-api/aws4_request"),
        "{sigv4}"
    );
    assert!(seen("/aws/", "x-amz-date").is_some());
    assert_eq!(seen("/gcp/", "authorization").as_deref(), Some(format!("Bearer {GCP_TOKEN}").as_str()));
    assert_eq!(seen("/plain/", "authorization"), None, "no credential outside its URLs");
    // The token was asked for once (cached), with a JWT signed for the key's account.
    let token_requests = capture.heads("/token");
    assert_eq!(token_requests.len(), 1, "the access token is cached: {token_requests:?}");
    let form = &token_requests[0].1;
    assert!(form.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"), "{form}");
    let assertion = form.split("assertion=").nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "chaos@project.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token", "Google's audience, whatever the token_uri");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/compute");

    // The echo came back to the plugin scrubbed: its report shows *** where the secret was.
    let bearer_report = executors[0]["result"]["details"]["body_excerpt"].as_str().unwrap();
    assert!(bearer_report.contains("Bearer ***"), "{bearer_report}");

    // A redirect that leaves the credential's URLs is refused, and nothing reaches there.
    let away = api.run_once(call(&format!("/bearer/redirect?to={}", elsewhere.url("/stolen"))), false).await;
    assert_eq!(away["status"], "failed", "{away}");
    assert!(away["error"].as_str().unwrap().contains("outside the URLs of credential billing"), "{away}");
    assert!(elsewhere.heads("/").is_empty(), "the redirect was not followed");

    // The audit names the credential; no answer, log or audit row carries a secret.
    let audit = api.get("/api/1/audit/?size=500").await.body;
    assert!(audit.to_string().contains("200 (credential billing)"), "{audit}");
    let mut everything = audit.to_string();
    for done in &executors {
        everything
            .push_str(&api.get(&format!("/api/1/executors/{}", done["id"].as_str().unwrap())).await.body.to_string());
    }
    everything.push_str(&api.get("/api/1/plugins/api-request@0.1.0").await.body.to_string());
    engine.stop();
    everything.push_str(&engine.stderr());
    for secret in [BEARER, PASSWORD, basic.as_str(), API_KEY, AWS_SECRET, GCP_TOKEN, "BEGIN PRIVATE KEY"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn a_grant_may_name_only_configured_credentials_and_uploaded_plugins_get_theirs() {
    let capture = Capture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[http.credentials]]\nname = \"billing\"\nurls = [\"{}/bearer/*\"]\nkind = \"bearer\"\nsecret = \"{BEARER}\"\n",
        capture.base
    );
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    let uploaded = api
        .raw(
            reqwest::Method::POST,
            "/api/1/plugins/",
            Some(cme_plugins::test_plugins::PING.wasm.to_vec()),
            Some("application/wasm"),
        )
        .await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);

    let unknown = api
        .put(
            "/api/1/plugins/ping-attack@0.1.0/grant",
            &json!({"http": {"urls": [capture.url("/*")], "credentials": ["nope"]}}),
        )
        .await;
    assert_eq!(unknown.status, 400, "{:?}", unknown.body);
    assert!(
        unknown.body["msg"].as_str().unwrap().contains("no HTTP credential \"nope\" is configured"),
        "{:?}",
        unknown.body
    );
    assert_eq!(
        api.get("/api/1/plugins/ping-attack@0.1.0").await.body["status"],
        "pending",
        "the refused grant changed nothing"
    );

    // Granted without the credential: the request goes out bare.
    let bare = api.put("/api/1/plugins/ping-attack@0.1.0/grant", &json!({"http": {"urls": [capture.url("/*")]}})).await;
    assert_eq!(bare.status, 200, "{:?}", bare.body);
    let done = api.run_once(json!({"ref": "ping:Ping", "args": {"url": capture.url("/bearer/bare")}}), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(header(&capture.heads("/bearer/bare")[0].0, "authorization"), None);

    let granted = api
        .put(
            "/api/1/plugins/ping-attack@0.1.0/grant",
            &json!({"http": {"urls": [capture.url("/*")], "credentials": ["billing"]}}),
        )
        .await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    let done = api.run_once(json!({"ref": "ping:Ping", "args": {"url": capture.url("/bearer/granted")}}), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        header(&capture.heads("/bearer/granted")[0].0, "authorization").as_deref(),
        Some(format!("Bearer {BEARER}").as_str())
    );

    // A dry run names the credential it would add, and sends nothing.
    let dry = api.run_once(json!({"ref": "ping:Ping", "args": {"url": capture.url("/bearer/dry")}}), true).await;
    assert!(dry["log"]["dry_run_actions"][0].as_str().unwrap().ends_with("with credential billing"), "{dry}");
    assert!(capture.heads("/bearer/dry").is_empty());
}

#[test]
fn a_misconfigured_credential_stops_the_engine_from_starting_with_its_name() {
    let both = "[[http.credentials]]\nname = \"billing\"\nurls = [\"https://billing.internal/*\"]\nkind = \"bearer\"\nsecret = \"x\"\nsecret_env = \"Y\"\n";
    assert!(refused_start(both).contains("\"billing\": give exactly one of secret, secret_env and secret_file"));
    let unset = "[[http.credentials]]\nname = \"billing\"\nurls = [\"https://billing.internal/*\"]\nkind = \"bearer\"\nsecret_env = \"CME_TEST_SURELY_UNSET\"\n";
    assert!(refused_start(unset).contains("CME_TEST_SURELY_UNSET is not set"));
    let builtin = "[[http.credentials]]\nname = \"billing\"\nurls = [\"https://billing.internal/*\"]\nkind = \"bearer\"\nsecret = \"x\"\nbuiltins = [\"nope\"]\n";
    assert!(refused_start(builtin).contains("\"nope\" is not a built-in plugin"));
    let no_urls = "[[http.credentials]]\nname = \"billing\"\nurls = []\nkind = \"bearer\"\nsecret = \"x\"\n";
    assert!(refused_start(no_urls).contains("urls is empty"));
}

/// The GCE example plugin against a local server playing the Compute Engine API and
/// Google's token endpoint (no GCE emulator exists): the server checks every request
/// carries the token the host obtained with the service account, and the plugin stops the
/// one running instance whose labels match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gce_example_stops_a_matching_instance_with_an_injected_service_account_token() {
    let gce: Responder = Arc::new(|target: &str, head: &str| {
        if target == "/token" {
            return json_answer(200, &json!({"access_token": GCP_TOKEN, "expires_in": 3600}));
        }
        if header(head, "authorization").as_deref() != Some(&format!("Bearer {GCP_TOKEN}")) {
            return json_answer(
                401,
                &json!({"error": {"code": 401, "message": "Request is missing required authentication credential."}}),
            );
        }
        let instances = "/compute/v1/projects/chaos-project-1/zones/europe-west1-b/instances";
        match target.split_once('?') {
            Some((path, query)) if path == instances && query == "filter=labels.chaos%20%3D%20%22true%22" => {
                json_answer(
                    200,
                    &json!({"kind": "compute#instanceList", "items": [
                    {"name": "web-1", "status": "RUNNING", "labels": {"chaos": "true"}},
                    {"name": "web-2", "status": "TERMINATED", "labels": {"chaos": "true"}}]}),
                )
            }
            None if target == format!("{instances}/web-1/stop") => json_answer(
                200,
                &json!({"kind": "compute#operation", "name": "operation-stop-web-1", "status": "RUNNING"}),
            ),
            _ => json_answer(404, &json!({"error": {"code": 404, "message": format!("unexpected {target}")}})),
        }
    });
    let google = Capture::start_with(gce).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(key) = service_account_key(dir.path(), &google.url("/token")) else {
        cme_test_peers::missing_peer("openssl", "apt-get install openssl");
        return;
    };
    std::fs::write(dir.path().join("sa.json"), key).unwrap();
    let config = format!(
        "[[http.credentials]]\nname = \"gce\"\nurls = [\"{}/compute/v1/*\"]\nkind = \"gcp-service-account\"\nsecret_file = \"sa.json\"\n",
        google.base
    );
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options { config: Some(config), ..Options::default() });
    let api = engine.client();
    let uploaded = api
        .raw(
            reqwest::Method::POST,
            "/api/1/plugins/",
            Some(cme_plugins::test_plugins::GCE_STOP.wasm.to_vec()),
            Some("application/wasm"),
        )
        .await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);
    let grant =
        json!({"http": {"urls": [google.url("/compute/v1/projects/chaos-project-1/*")], "credentials": ["gce"]}});
    assert_eq!(api.put("/api/1/plugins/gce-stop-instance@0.1.0/grant", &grant).await.status, 200);

    let args = json!({"project": "chaos-project-1", "zone": "europe-west1-b", "labels": {"chaos": "true"}, "endpoint": google.base});
    let done = api.run_once(json!({"ref": "gce_stop_instance:GceStopInstance", "args": args}), false).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["summary"], "stopping web-1");
    assert_eq!(done["result"]["details"]["operation"], "operation-stop-web-1");
    let stops = google.heads("/compute/v1/projects/chaos-project-1/zones/europe-west1-b/instances/web-1/stop");
    assert_eq!(stops.len(), 1, "one stop request");
    assert!(stops[0].0.starts_with("POST "));
    assert!(!done.to_string().contains(GCP_TOKEN));

    // Another project is outside the grant: refused before any request leaves.
    let other = json!({"project": "other-project-9", "zone": "europe-west1-b", "labels": {"chaos": "true"}, "endpoint": google.base});
    let denied = api.run_once(json!({"ref": "gce_stop_instance:GceStopInstance", "args": other}), false).await;
    assert_eq!(denied["status"], "failed", "{denied}");
    assert!(google.heads("/compute/v1/projects/other-project-9").is_empty());
}
