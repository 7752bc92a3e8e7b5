//! An engine over the real store (in-memory SQLite) and the fake host, and helpers to
//! wait for executors.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use cme_engine::testing::{Call, FakeHost, builtins, bytes, component};
use cme_engine::{
    AuditDecision, Engine, EngineConfig, Executor, ExecutorStatus, Misfire, NewPlan, Overlap, PluginCall, Ports,
};
use cme_store::{Store, StoreConfig};

/// One engine over an in-memory store, with a fake exact planner and noop attack built in.
pub struct Rig {
    pub engine: Arc<Engine>,
    pub store: Arc<Store>,
    pub host: Arc<FakeHost>,
}

pub fn config() -> EngineConfig {
    EngineConfig {
        run_deadline: Duration::from_secs(5),
        lease_margin: Duration::from_secs(1),
        ..EngineConfig::default()
    }
}

impl Rig {
    pub async fn new() -> Rig {
        Rig::with(config()).await
    }

    pub async fn with(config: EngineConfig) -> Rig {
        let store = Arc::new(Store::connect(&StoreConfig::in_memory()).await.expect("in-memory store"));
        Rig::over(store.clone(), Ports::of(store), config).await
    }

    /// An engine over `storage` (which may wrap `store`).
    pub async fn over(store: Arc<Store>, ports: Ports, config: EngineConfig) -> Rig {
        let host = Arc::new(FakeHost::default());
        let engine = Engine::with_ports(ports, host.clone(), builtins(&host).await, config);
        Rig { engine, store, host }
    }

    /// A second engine on the same database (another replica).
    pub async fn replica(&self) -> Rig {
        self.replica_with(config()).await
    }

    /// A second engine on the same database, configured so.
    pub async fn replica_with(&self, config: EngineConfig) -> Rig {
        let host = Arc::new(FakeHost::default());
        let config = EngineConfig { engine_id: "replica-b".into(), ..config };
        let engine = Engine::new(self.store.clone(), host.clone(), builtins(&host).await, config);
        Rig { engine, store: self.store.clone(), host }
    }

    pub fn runs(&self) -> Vec<Call> {
        self.host.runs.lock().unwrap().clone()
    }
}

pub fn plan(attack_args: Value, planner_args: Value) -> NewPlan {
    NewPlan {
        name: "test plan".into(),
        attack: PluginCall { reference: "noop:Noop".into(), args: attack_args },
        planner: PluginCall { reference: "exact_planner:ExactPlanner".into(), args: planner_args },
        dry_run: false,
        grace_seconds: None,
        timezone: None,
        seed: None,
        misfire: Misfire::Skip,
        overlap: Overlap::Allow,
        steady_state: Vec::new(),
        stop_conditions: Vec::new(),
        steps: Vec::new(),
        deadline_seconds: None,
    }
}

/// Waits (up to 10 s) until `done` answers true: for a state the engine reaches as time
/// passes, so that a test waits as long as the engine needs and no longer.
pub async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 10 s) until the executor is terminal.
pub async fn finished(engine: &Engine, id: &str) -> Executor {
    for _ in 0..500 {
        let (executor, _) = engine.executor(id).await.unwrap();
        if executor.status.is_terminal() {
            return executor;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("executor {id} did not finish in 10 s");
}

/// Waits (up to 10 s) until the executor has this status.
pub async fn reaches(engine: &Engine, id: &str, status: ExecutorStatus) -> Executor {
    for _ in 0..500 {
        let (executor, _) = engine.executor(id).await.unwrap();
        if executor.status == status {
            return executor;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("executor {id} did not become {status} in 10 s");
}

/// The actions in the audit log, oldest first.
pub async fn audited(engine: &Engine) -> Vec<(String, String, AuditDecision)> {
    let page = engine.audit(cme_engine::Page::first(1000).unwrap()).await.unwrap();
    page.items.into_iter().rev().map(|e| (e.event.action, e.event.target, e.event.decision)).collect()
}

/// The actor the tests create plans as.
pub fn operator() -> cme_engine::Actor {
    cme_engine::Actor::new("operator", "operator")
}

/// The actor the tests manage credentials as.
pub fn admin() -> cme_engine::Actor {
    cme_engine::Actor::new("admin", "admin")
}
