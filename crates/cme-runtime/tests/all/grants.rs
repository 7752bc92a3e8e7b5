//! Capabilities: declaration AND grant, egress rules after DNS, audit of every call.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cme_cloud::http::DnsResolver;
use cme_runtime::grant::{Ec2Grant, HttpGrant, SshGrant};
use cme_runtime::{AuditDecision, CallError, Grant, SshBackend, SshCredential, SshStore};
use serde_json::json;

use crate::support::*;

fn http_grant(urls: &[&str]) -> Grant {
    Grant {
        http: Some(HttpGrant { urls: urls.iter().map(|u| u.to_string()).collect(), ..HttpGrant::default() }),
        ..Grant::default()
    }
}

fn get(url: &str) -> serde_json::Value {
    json!({"mode": "http", "method": "GET", "url": url})
}

#[tokio::test]
async fn an_ungranted_capability_is_denied_and_audited() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let outcome = run_hostile(&runtime, &plugin, get(&server.url("/")), Grant::default()).await;
    match outcome.result {
        Err(CallError::Denied(message)) => assert_eq!(message, "http is not granted to this plugin"),
        other => panic!("expected denied, got {other:?}"),
    }
    let event = &outcome.record.audit[0];
    assert_eq!(event.action, "http.send");
    assert_eq!(event.actor, "hostile@0.1.0");
    assert_eq!(event.run_id.as_deref(), Some("run-1"));
    assert_eq!(event.target, format!("GET {}", server.url("/")));
    assert_eq!(
        (event.decision, event.reason.as_deref()),
        (AuditDecision::Denied, Some("http is not granted to this plugin"))
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_url_outside_the_grant_is_denied_and_one_inside_is_sent() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let grant = http_grant(&[&format!("http://{}/allowed/*", server.addr)]);
    let outcome = run_hostile(&runtime, &plugin, get(&server.url("/forbidden")), grant.clone()).await;
    match outcome.result {
        Err(CallError::Denied(message)) => {
            assert!(message.contains("matches none of the granted URL patterns"), "{message}")
        }
        other => panic!("expected denied, got {other:?}"),
    }
    assert!(outcome.record.audit[0].decision == AuditDecision::Denied);
    let outcome = run_hostile(&runtime, &plugin, get(&server.url("/allowed/x")), grant).await;
    assert_eq!(outcome.result.unwrap().summary, "status 200");
    assert_eq!(outcome.record.audit[0].decision, AuditDecision::Allowed);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].target, "/allowed/x");
}

#[tokio::test]
async fn a_granted_but_undeclared_capability_is_denied() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    // The grant allows any region; the plugin declared only two.
    let grant = Grant {
        ec2: Some(Ec2Grant {
            regions: vec![],
            required_tags: Default::default(),
            terminate: true,
            disrupt: false,
            max_terminations_per_run: 1,
        }),
        ..Grant::default()
    };
    match run_hostile(&runtime, &plugin, json!({"mode": "ec2", "region": "us-west-1"}), grant).await.result {
        Err(CallError::Denied(message)) => {
            assert!(
                message.contains("in region us-west-1 is not among the capabilities the plugin declared"),
                "{message}"
            )
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

/// Credentials for the SSH tests: every name resolves to nothing.
struct NoCredentials;

#[async_trait::async_trait]
impl SshStore for NoCredentials {
    async fn ssh_credential(
        &self,
        _name: &str,
        _owner: &cme_runtime::RunOwner,
    ) -> Result<Option<SshCredential>, cme_runtime::SshStoreError> {
        Ok(None)
    }
}

#[tokio::test]
async fn ssh_to_an_address_the_run_did_not_describe_is_denied_and_audited() {
    let runtime = runtime_with(|config| {
        config.ssh = Some(SshBackend { config: Default::default(), store: Arc::new(NoCredentials) });
    });
    let plugin = hostile(&runtime).await;
    let grant =
        Grant { ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }), ..Grant::default() };
    let outcome = run_hostile(&runtime, &plugin, json!({"mode": "ssh", "address": "127.0.0.1"}), grant.clone()).await;
    match outcome.result {
        Err(CallError::Denied(message)) => {
            assert_eq!(
                message,
                "address 127.0.0.1 was not returned by this run's ec2.describe-instances or inventory.hosts and is in no granted ssh network"
            )
        }
        other => panic!("expected denied, got {other:?}"),
    }
    assert_eq!(outcome.record.audit[0].action, "ssh.exec");
    assert!(outcome.record.audit[0].decision == AuditDecision::Denied);
    // A network the grant names explicitly is reachable without discovery (here the
    // call gets as far as looking the credential up).
    let network = Grant {
        ssh: Some(SshGrant { max_sessions: 1, hosts: vec!["127.0.0.0/8".into()], inventories: vec![] }),
        ..Grant::default()
    };
    match run_hostile(&runtime, &plugin, json!({"mode": "ssh", "address": "127.0.0.1"}), network).await.result {
        Err(CallError::Failed(message)) => {
            assert_eq!(message, "invalid argument: no credential named \"none\" is stored on this engine")
        }
        other => panic!("expected the credential lookup to fail, got {other:?}"),
    }
    // Without the grant: denied by the grant check before anything else.
    let outcome =
        run_hostile(&runtime, &plugin, json!({"mode": "ssh", "address": "127.0.0.1"}), Grant::default()).await;
    match outcome.result {
        Err(CallError::Denied(message)) => assert!(message.contains("ssh is not granted"), "{message}"),
        other => panic!("expected denied, got {other:?}"),
    }
}

#[tokio::test]
async fn ssh_answers_unavailable_on_an_engine_without_it() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let grant =
        Grant { ssh: Some(SshGrant { max_sessions: 1, hosts: vec![], inventories: vec![] }), ..Grant::default() };
    match run_hostile(&runtime, &plugin, json!({"mode": "ssh", "address": "127.0.0.1"}), grant).await.result {
        Err(CallError::Failed(message)) => assert_eq!(message, "unavailable: ssh is not available on this engine"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn ec2_answers_unavailable_on_an_engine_without_it() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let grant = Grant {
        ec2: Some(Ec2Grant {
            regions: vec![],
            required_tags: Default::default(),
            terminate: false,
            disrupt: false,
            max_terminations_per_run: 1,
        }),
        ..Grant::default()
    };
    let outcome = run_hostile(&runtime, &plugin, json!({"mode": "ec2", "region": "eu-west-1"}), grant).await;
    match outcome.result {
        Err(CallError::Failed(message)) => assert_eq!(message, "unavailable: ec2 is not available on this engine"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(
        (outcome.record.audit[0].decision, outcome.record.audit[0].reason.as_deref()),
        (AuditDecision::Unavailable, Some("ec2 is not available on this engine"))
    );
    // Without the grant, the same call is denied, not unavailable.
    let outcome = run_hostile(&runtime, &plugin, json!({"mode": "ec2", "region": "eu-west-1"}), Grant::default()).await;
    assert!(matches!(outcome.result, Err(CallError::Denied(_))));
}

/// A DNS server under the test's control: answers `first` once, then `later`.
struct FlippingResolver {
    first: IpAddr,
    later: IpAddr,
    calls: Arc<AtomicUsize>,
}

impl DnsResolver for FlippingResolver {
    fn resolve(&self, _host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = if n == 0 { self.first } else { self.later };
        Box::pin(async move { Ok(vec![answer]) })
    }
}

fn runtime_resolving(first: &str, later: &str) -> (cme_runtime::Runtime, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let resolver =
        FlippingResolver { first: first.parse().unwrap(), later: later.parse().unwrap(), calls: calls.clone() };
    let runtime = runtime_with(|config| config.http.resolver = Arc::new(resolver));
    (runtime, calls)
}

#[tokio::test]
async fn a_name_resolving_to_the_metadata_address_is_refused() {
    let (runtime, _) = runtime_resolving("169.254.169.254", "169.254.169.254");
    let plugin = hostile(&runtime).await;
    let outcome =
        run_hostile(&runtime, &plugin, get("http://metadata.test/latest/meta-data/"), http_grant(&["*"])).await;
    match outcome.result {
        Err(CallError::Denied(message)) => {
            assert!(message.contains("metadata.test resolves to no permitted address"), "{message}");
            assert!(message.contains("169.254.169.254 is a link-local or cloud metadata address"), "{message}");
        }
        other => panic!("expected denied, got {other:?}"),
    }
    assert!(outcome.record.audit[0].decision == AuditDecision::Denied);
}

#[tokio::test]
async fn dns_rebinding_cannot_swap_the_checked_address() {
    // The first answer (checked) is the local server; a rebinding DNS server then answers
    // the metadata address. The connection must go to the address that was checked.
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let (runtime, calls) = runtime_resolving("127.0.0.1", "169.254.169.254");
    let plugin = hostile(&runtime).await;
    let url = format!("http://rebind.test:{}/x", server.addr.port());
    let outcome = run_hostile(&runtime, &plugin, get(&url), http_grant(&["*"])).await;
    assert_eq!(outcome.result.expect("the checked address is used").summary, "status 200");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the name is resolved once, where it is checked");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_refused() {
    let server = CaptureServer::start(|_| Reply::redirect("http://169.254.169.254/latest/meta-data/")).await;
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    match run_hostile(&runtime, &plugin, get(&server.url("/start")), http_grant(&["*"])).await.result {
        Err(CallError::Denied(message)) => {
            assert!(message.starts_with("redirect refused"), "{message}");
            assert!(message.contains("link-local"), "{message}");
        }
        other => panic!("expected denied, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_outside_the_grant_is_refused_and_one_inside_is_followed() {
    let server = CaptureServer::start(|req| match req.target.as_str() {
        "/inside" => Reply::redirect("/ok/landed"),
        "/outside" => Reply::redirect("/elsewhere"),
        _ => Reply::status(200),
    })
    .await;
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let grant = http_grant(&[
        &format!("http://{}/inside", server.addr),
        &format!("http://{}/ok/*", server.addr),
        &format!("http://{}/outside", server.addr),
    ]);
    let report = run_hostile(&runtime, &plugin, get(&server.url("/inside")), grant.clone()).await.result.unwrap();
    assert_eq!(report.targets, vec![server.url("/ok/landed")]);
    match run_hostile(&runtime, &plugin, get(&server.url("/outside")), grant).await.result {
        Err(CallError::Denied(message)) => assert!(message.contains("granted URL patterns"), "{message}"),
        other => panic!("expected denied, got {other:?}"),
    }
    assert!(server.requests().iter().all(|r| r.target != "/elsewhere"));
}

#[tokio::test]
async fn the_request_budget_of_a_grant_is_enforced() {
    let server = CaptureServer::start(|_| Reply::status(200)).await;
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let mut grant = http_grant(&["*"]);
    grant.http.as_mut().unwrap().max_requests = Some(0);
    match run_hostile(&runtime, &plugin, get(&server.url("/")), grant).await.result {
        Err(CallError::Failed(message)) => {
            assert_eq!(message, "budget exhausted: the grant allows 0 HTTP requests per run")
        }
        other => panic!("expected the budget to stop the call, got {other:?}"),
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn scripts_are_read_from_the_library_only_when_granted() {
    let runtime = runtime();
    let plugin = hostile(&runtime).await;
    let granted = Grant { scripts: true, ..Grant::default() };
    let outcome =
        run_hostile(&runtime, &plugin, json!({"mode": "script", "name": "script_attacks/s_empty.sh"}), granted.clone())
            .await;
    let report = outcome.result.expect("a granted read succeeds");
    assert_eq!(report.details["first_line"], "#!/bin/sh");
    assert_eq!(outcome.record.audit[0].decision, AuditDecision::Allowed);
    for name in ["../../etc/passwd", "/etc/passwd"] {
        match run_hostile(&runtime, &plugin, json!({"mode": "script", "name": name}), granted.clone()).await.result {
            Err(CallError::Denied(message)) => assert!(message.contains("is refused"), "{message}"),
            other => panic!("{name}: expected denied, got {other:?}"),
        }
    }
    match run_hostile(&runtime, &plugin, json!({"mode": "script", "name": "s_empty.sh"}), Grant::default()).await.result
    {
        Err(CallError::Denied(message)) => assert_eq!(message, "scripts is not granted to this plugin"),
        other => panic!("expected denied, got {other:?}"),
    }
}
