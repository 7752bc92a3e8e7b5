//! The process-wide runtime: one wasmtime Engine, its linkers, the artifact cache, the
//! epoch ticker, and a tokio runtime of its own on which every call runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cme_cloud::scripts::ScriptLibrary;
use serde_json::Value;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap, UpdateDeadline,
};

use crate::bindings::attack::{Attack, AttackPre, RunContext};
use crate::bindings::planner::{PlanContext as WitPlanContext, Planner, PlannerPre, Window as WitWindow};
use crate::bindings::probe::{Probe, ProbeContext, ProbePre};
use crate::bindings::wit_types::{self, Timestamp};
use crate::bindings::{legacy, v0_2, v0_3};
use crate::cache::{ArtifactCache, sha256_hex};
use crate::caps::{Backends, Capabilities};
use crate::config::{Limits, RuntimeConfig};
use crate::error::{CallError, LimitBreach, LoadError};
use crate::grant::Grant;
use crate::info::{Capability, PluginInfo};
use crate::outcome::{AttackReport, CallRecord, PlanOutcome, Planned, ProbeOutcome, RunOutcome, Verdict};
use crate::plugin::{Plugin, PluginInner, Pre};
use crate::state::{CallState, breach};
use crate::ticker::Ticker;

/// The call body of `describe` for a component of an older contract (0.2.0, 0.3.0): its
/// answer converted to the current types.
macro_rules! converted_describe {
    ($pre:ident) => {
        Box::new(move |store| {
            Box::pin(async move {
                convert_version($pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await?)
            })
        })
    };
}

/// The call body of `plan` for a planner of an older contract (0.2.0, 0.3.0).
macro_rules! converted_plan {
    ($pre:ident, $version:ident, $ctx:ident, $window:ident, $args:ident) => {
        Box::new(move |store| {
            Box::pin(async move {
                let (ctx, window): ($version::planner::PlanContext, $version::planner::Window) =
                    (convert_version($ctx)?, convert_version($window)?);
                let answer =
                    $pre.instantiate_async(&mut *store).await?.call_plan(&mut *store, &ctx, &$args, window).await?;
                Ok(match answer {
                    Ok(schedule) => Ok((convert_version(schedule.instants)?, schedule.recurring)),
                    Err(e) => Err(convert_version(e)?),
                })
            })
        })
    };
}

/// The call body of `run` or `check` for a component of an older contract (0.2.0,
/// 0.3.0): the context converted to its version's, the answer back to the current one.
macro_rules! converted_call {
    ($pre:ident, $context:ty, $call:ident, $ctx:ident, $args:ident) => {
        Box::new(move |store| {
            Box::pin(async move {
                let ctx: $context = convert_version($ctx)?;
                let answer = $pre.instantiate_async(&mut *store).await?.$call(&mut *store, &ctx, &$args).await?;
                convert_version(answer)
            })
        })
    };
}

/// `describe()` must answer within this, in a sandbox without capabilities.
pub const DESCRIBE_DEADLINE: Duration = Duration::from_secs(1);

/// The input of a planner call.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub now: DateTime<Utc>,
    /// IANA zone name, e.g. `Europe/Madrid`.
    pub timezone: String,
    pub seed: u64,
    /// The span asked about, `[from, until)` (a 0.1.0 planner is not told).
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

/// The input of an attack run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The executor id.
    pub run_id: String,
    pub now: DateTime<Utc>,
    pub args: Value,
    pub grant: Grant,
    /// Record what capabilities would do instead of doing it.
    pub dry_run: bool,
    /// On whose behalf it runs (what credential lookups are checked against).
    pub owner: crate::credentials::RunOwner,
    /// The experiment step it runs (None: a one-attack run): the undos it arms revert
    /// that step's fault.
    pub step: Option<String>,
}

/// A probe check to make.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// Unique per check (audit rows name it).
    pub check_id: String,
    pub now: DateTime<Utc>,
    pub args: Value,
    pub grant: Grant,
    /// At most this long (never beyond the run deadline).
    pub deadline: std::time::Duration,
    /// On whose behalf it checks.
    pub owner: crate::credentials::RunOwner,
    /// A dry run: only GET and HEAD are sent (see [`cme_grant::ProbeFence`]).
    pub dry_run: bool,
}

/// The wasm runtime. Cheap to clone; all clones share one Engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    /// Unique in the process: marks the worker threads of this runtime's executor.
    id: u64,
    engine: Engine,
    attack_linker: Linker<CallState>,
    planner_linker: Linker<CallState>,
    probe_linker: Linker<CallState>,
    /// The same capabilities under their `cme:plugin@0.2.0` names.
    v03_attack_linker: Linker<CallState>,
    v03_planner_linker: Linker<CallState>,
    v03_probe_linker: Linker<CallState>,
    v02_attack_linker: Linker<CallState>,
    v02_planner_linker: Linker<CallState>,
    v02_probe_linker: Linker<CallState>,
    /// The same capabilities under their `cme:plugin@0.1.0` names.
    legacy_attack_linker: Linker<CallState>,
    legacy_planner_linker: Linker<CallState>,
    cache: ArtifactCache,
    executor: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    permits: Arc<Semaphore>,
    ticker: Ticker,
    config: RuntimeConfig,
    backends: Arc<Backends>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.stop();
        // Dropping a tokio runtime from inside another one panics; let it wind down.
        if let Some(executor) = self.executor.take() {
            executor.shutdown_background();
        }
    }
}

type CallBody<R> = Box<
    dyn for<'a> FnOnce(&'a mut Store<CallState>) -> Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>
        + Send,
>;

impl Runtime {
    /// Creates the engine, links the WIT worlds and WASI (p2, with an empty context per
    /// call), starts the epoch ticker and the wasm worker threads.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let host = |e: wasmtime::Error| LoadError::Compile(format!("engine setup: {e:#}"));
        let engine = new_engine(&config).map_err(host)?;

        let wasi_linker = || -> wasmtime::Result<Linker<CallState>> {
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            Ok(linker)
        };
        let mut attack_linker = wasi_linker().map_err(host)?;
        Attack::add_to_linker::<_, HasSelf<_>>(&mut attack_linker, |s| s).map_err(host)?;
        let mut planner_linker = wasi_linker().map_err(host)?;
        Planner::add_to_linker::<_, HasSelf<_>>(&mut planner_linker, |s| s).map_err(host)?;
        let mut probe_linker = wasi_linker().map_err(host)?;
        Probe::add_to_linker::<_, HasSelf<_>>(&mut probe_linker, |s| s).map_err(host)?;
        let mut v03_attack_linker = wasi_linker().map_err(host)?;
        v0_3::attack::Attack::add_to_linker::<_, HasSelf<_>>(&mut v03_attack_linker, |s| s).map_err(host)?;
        let mut v03_planner_linker = wasi_linker().map_err(host)?;
        v0_3::planner::Planner::add_to_linker::<_, HasSelf<_>>(&mut v03_planner_linker, |s| s).map_err(host)?;
        let mut v03_probe_linker = wasi_linker().map_err(host)?;
        v0_3::probe::Probe::add_to_linker::<_, HasSelf<_>>(&mut v03_probe_linker, |s| s).map_err(host)?;
        let mut v02_attack_linker = wasi_linker().map_err(host)?;
        v0_2::attack::Attack::add_to_linker::<_, HasSelf<_>>(&mut v02_attack_linker, |s| s).map_err(host)?;
        let mut v02_planner_linker = wasi_linker().map_err(host)?;
        v0_2::planner::Planner::add_to_linker::<_, HasSelf<_>>(&mut v02_planner_linker, |s| s).map_err(host)?;
        let mut v02_probe_linker = wasi_linker().map_err(host)?;
        v0_2::probe::Probe::add_to_linker::<_, HasSelf<_>>(&mut v02_probe_linker, |s| s).map_err(host)?;
        let mut legacy_attack_linker = wasi_linker().map_err(host)?;
        legacy::attack::Attack::add_to_linker::<_, HasSelf<_>>(&mut legacy_attack_linker, |s| s).map_err(host)?;
        let mut legacy_planner_linker = wasi_linker().map_err(host)?;
        legacy::planner::Planner::add_to_linker::<_, HasSelf<_>>(&mut legacy_planner_linker, |s| s).map_err(host)?;

        let cache = ArtifactCache::new(&engine, config.cache_dir.as_deref())?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let executor = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("cme-wasm")
            .on_thread_start(move || RUNTIME_OF_THREAD.set(id))
            .enable_all()
            .build()
            .map_err(|e| LoadError::Compile(format!("starting the wasm worker threads: {e}")))?;
        let handle = executor.handle().clone();
        let ticker = Ticker::start(&engine);
        let mut backends = Backends::new(config.http.clone(), ScriptLibrary::new(config.scripts_dir.clone()));
        backends.ec2 = config.ec2.clone();
        backends.ssh = config.ssh.clone();
        backends.clouds = config.clouds.clone();
        backends.fences = config.fences.clone();
        backends.own_sockets = config.own_sockets.clone();
        backends.budgets = config.budgets.clone();
        backends.ledger = config.ledger.clone();
        let backends = Arc::new(backends);
        Ok(Runtime {
            inner: Arc::new(Inner {
                id,
                engine,
                attack_linker,
                planner_linker,
                probe_linker,
                v03_attack_linker,
                v03_planner_linker,
                v03_probe_linker,
                v02_attack_linker,
                v02_planner_linker,
                v02_probe_linker,
                legacy_attack_linker,
                legacy_planner_linker,
                cache,
                executor: Some(executor),
                handle,
                permits: Arc::new(Semaphore::new(config.max_concurrent_calls.max(1))),
                ticker,
                config,
                backends,
            }),
        })
    }

    /// The host-held HTTP credentials (`[[http.credentials]]`) this runtime adds to the
    /// requests of plugins granted them.
    pub(crate) fn backends(&self) -> &Backends {
        &self.inner.backends
    }

    pub fn http_credentials(&self) -> &[Arc<cme_cloud::http::HttpCredential>] {
        &self.inner.backends.http.credentials
    }

    /// The artifact cache's engine key (`wasmtime-<hash>`).
    pub fn engine_key(&self) -> &str {
        self.inner.cache.engine_key()
    }

    /// Loads a component: checks that it is a component of a known world, compiles it
    /// (or maps its cached artifact), pre-instantiates it, runs `describe()` in a
    /// sandbox without capabilities, and validates the answer.
    pub async fn load(&self, wasm: &[u8]) -> Result<Plugin, LoadError> {
        check_header(wasm)?;
        let sha256 = sha256_hex(wasm);
        let inner = self.inner.clone();
        let bytes = wasm.to_vec();
        let digest = sha256.clone();
        // Cranelift is CPU-bound: keep it off the async workers.
        let (component, provenance) = self
            .inner
            .handle
            .spawn_blocking(move || inner.cache.component(&inner.engine, &digest, &bytes))
            .await
            .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))??;

        let pre = self.pre_instantiate(&component)?;
        let limits = Limits { deadline: DESCRIBE_DEADLINE, ..self.inner.config.plan_limits };
        let state = CallState::new(format!("sha256:{}", &sha256[..12]), String::new(), limits, None);
        let body: CallBody<wit_types::PluginInfo> = match pre.clone() {
            Pre::Planner(pre) => Box::new(move |store| {
                Box::pin(async move { pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await })
            }),
            Pre::Attack(pre) => Box::new(move |store| {
                Box::pin(async move { pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await })
            }),
            Pre::Probe(pre) => Box::new(move |store| {
                Box::pin(async move { pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await })
            }),
            Pre::V03Planner(pre) => converted_describe!(pre),
            Pre::V02Planner(pre) => converted_describe!(pre),
            Pre::V03Attack(pre) => converted_describe!(pre),
            Pre::V02Attack(pre) => converted_describe!(pre),
            Pre::V03Probe(pre) => converted_describe!(pre),
            Pre::V02Probe(pre) => converted_describe!(pre),
            Pre::LegacyPlanner(pre) => Box::new(move |store| {
                Box::pin(async move {
                    legacy_info(pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await?)
                })
            }),
            Pre::LegacyAttack(pre) => Box::new(move |store| {
                Box::pin(async move {
                    legacy_info(pre.instantiate_async(&mut *store).await?.call_describe(&mut *store).await?)
                })
            }),
        };
        let (described, _) = self.call(state, body, Box::pin(std::future::pending())).await;
        let info = convert_info(described.map_err(LoadError::Describe)?)?;
        let validator = info.validate().map_err(LoadError::InvalidInfo)?;
        Ok(Plugin { inner: Arc::new(PluginInner { sha256, info, validator, pre, provenance }) })
    }

    /// Pre-instantiates a component for its world (by exports) and contract version: the
    /// 0.4.0 linker first, then the 0.3.0, 0.2.0 and 0.1.0 ones (their imports differ, and
    /// 0.1.0's `plan` signature); when none links, the 0.4.0 linker's complaint is the one
    /// to read.
    fn pre_instantiate(&self, component: &Component) -> Result<Pre, LoadError> {
        let exports: Vec<String> =
            component.component_type().exports(&self.inner.engine).map(|(name, _)| name.to_string()).collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let mismatch = |e: wasmtime::Error| LoadError::Imports(format!("{:#}", e));
        let inner = &self.inner;
        if has("describe") && has("run") {
            inner.attack_linker.instantiate_pre(component).and_then(AttackPre::new).map(Pre::Attack).or_else(|e| {
                inner
                    .v03_attack_linker
                    .instantiate_pre(component)
                    .and_then(v0_3::attack::AttackPre::new)
                    .map(Pre::V03Attack)
                    .or_else(|_| {
                        inner
                            .v02_attack_linker
                            .instantiate_pre(component)
                            .and_then(v0_2::attack::AttackPre::new)
                            .map(Pre::V02Attack)
                    })
                    .or_else(|_| {
                        inner
                            .legacy_attack_linker
                            .instantiate_pre(component)
                            .and_then(legacy::attack::AttackPre::new)
                            .map(Pre::LegacyAttack)
                    })
                    .map_err(|_| mismatch(e))
            })
        } else if has("describe") && has("plan") {
            inner.planner_linker.instantiate_pre(component).and_then(PlannerPre::new).map(Pre::Planner).or_else(|e| {
                inner
                    .v03_planner_linker
                    .instantiate_pre(component)
                    .and_then(v0_3::planner::PlannerPre::new)
                    .map(Pre::V03Planner)
                    .or_else(|_| {
                        inner
                            .v02_planner_linker
                            .instantiate_pre(component)
                            .and_then(v0_2::planner::PlannerPre::new)
                            .map(Pre::V02Planner)
                    })
                    .or_else(|_| {
                        inner
                            .legacy_planner_linker
                            .instantiate_pre(component)
                            .and_then(legacy::planner::PlannerPre::new)
                            .map(Pre::LegacyPlanner)
                    })
                    .map_err(|_| mismatch(e))
            })
        } else if has("describe") && has("check") {
            inner.probe_linker.instantiate_pre(component).and_then(ProbePre::new).map(Pre::Probe).or_else(|e| {
                inner
                    .v03_probe_linker
                    .instantiate_pre(component)
                    .and_then(v0_3::probe::ProbePre::new)
                    .map(Pre::V03Probe)
                    .or_else(|_| {
                        inner
                            .v02_probe_linker
                            .instantiate_pre(component)
                            .and_then(v0_2::probe::ProbePre::new)
                            .map(Pre::V02Probe)
                    })
                    .map_err(|_| mismatch(e))
            })
        } else {
            Err(LoadError::UnknownWorld { exports })
        }
    }

    /// Asks a planner to plan a window. Args are validated against the plugin's schema
    /// first. A 0.1.0 planner is asked without the window and is one-shot.
    pub async fn plan(&self, plugin: &Plugin, ctx: PlanContext, args: &Value) -> PlanOutcome {
        if !matches!(
            plugin.inner.pre,
            Pre::Planner(_) | Pre::V03Planner(_) | Pre::V02Planner(_) | Pre::LegacyPlanner(_)
        ) {
            return PlanOutcome { result: Err(wrong_kind(plugin, "planner")), record: CallRecord::default() };
        }
        if let Err(e) = plugin.validate_args(args) {
            return PlanOutcome { result: Err(e), record: CallRecord::default() };
        }
        let limits = self.inner.config.plan_limits;
        let max_instants = limits.max_output_bytes / std::mem::size_of::<Timestamp>();
        let state = CallState::new(plugin.id(), String::new(), limits, None);
        let wit_ctx = WitPlanContext { now: timestamp(ctx.now), timezone: ctx.timezone, seed: ctx.seed };
        let window = WitWindow { from: timestamp(ctx.window.0), until: timestamp(ctx.window.1) };
        let args = args.to_string();
        let body: CallBody<Result<(Vec<Timestamp>, bool), wit_types::PluginError>> = match plugin.inner.pre.clone() {
            Pre::LegacyPlanner(pre) => Box::new(move |store| {
                Box::pin(async move {
                    let legacy_ctx = legacy::planner::PlanContext {
                        now: legacy_timestamp(wit_ctx.now),
                        timezone: wit_ctx.timezone,
                        seed: wit_ctx.seed,
                    };
                    let answer =
                        pre.instantiate_async(&mut *store).await?.call_plan(&mut *store, &legacy_ctx, &args).await?;
                    Ok(match answer {
                        Ok(instants) => Ok((
                            instants
                                .into_iter()
                                .map(|t| Timestamp { seconds: t.seconds, nanoseconds: t.nanoseconds })
                                .collect(),
                            false,
                        )),
                        Err(e) => Err(crate::caps::convert_version(e)?),
                    })
                })
            }),
            Pre::Planner(pre) => Box::new(move |store| {
                Box::pin(async move {
                    let answer = pre
                        .instantiate_async(&mut *store)
                        .await?
                        .call_plan(&mut *store, &wit_ctx, &args, window)
                        .await?;
                    Ok(answer.map(|schedule| (schedule.instants, schedule.recurring)))
                })
            }),
            Pre::V03Planner(pre) => converted_plan!(pre, v0_3, wit_ctx, window, args),
            Pre::V02Planner(pre) => converted_plan!(pre, v0_2, wit_ctx, window, args),
            Pre::Attack(_)
            | Pre::V03Attack(_)
            | Pre::V02Attack(_)
            | Pre::LegacyAttack(_)
            | Pre::Probe(_)
            | Pre::V03Probe(_)
            | Pre::V02Probe(_) => {
                unreachable!("checked above")
            }
        };
        let (result, record) = self.call_here(state, body).await;
        let result = result.and_then(|r| r.map_err(plugin_error)).and_then(|(instants, recurring)| {
            if instants.len() > max_instants {
                return Err(CallError::OutputLimit { what: "the plan", limit: max_instants });
            }
            let instants = instants
                .into_iter()
                .map(|t| {
                    DateTime::from_timestamp(t.seconds, t.nanoseconds).ok_or_else(|| {
                        CallError::Contract(format!("instant {}s {}ns is out of range", t.seconds, t.nanoseconds))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if recurring && let Some(early) = instants.iter().find(|t| **t < ctx.window.0) {
                return Err(CallError::Contract(format!(
                    "a recurring planner answered {early}, before its window's start {}",
                    ctx.window.0
                )));
            }
            Ok(Planned { instants, recurring })
        });
        PlanOutcome { result, record }
    }

    /// Runs an attack with the given grant. Args are validated against the plugin's
    /// schema first.
    pub async fn run(&self, plugin: &Plugin, request: RunRequest) -> RunOutcome {
        self.run_until(plugin, request, std::future::pending()).await
    }

    /// [`Runtime::run`], ended early when `cancel` completes (with the reason): the call
    /// then fails with [`CallError::Cancelled`] and its record keeps everything done so
    /// far (log lines, audit events of the calls it made, output).
    pub async fn run_until(
        &self,
        plugin: &Plugin,
        request: RunRequest,
        cancel: impl Future<Output = String> + Send + 'static,
    ) -> RunOutcome {
        if !matches!(plugin.inner.pre, Pre::Attack(_) | Pre::V03Attack(_) | Pre::V02Attack(_) | Pre::LegacyAttack(_)) {
            return RunOutcome { result: Err(wrong_kind(plugin, "attack")), record: CallRecord::default() };
        }
        if let Err(e) = plugin.validate_args(&request.args) {
            return RunOutcome { result: Err(e), record: CallRecord::default() };
        }
        let limits = self.inner.config.run_limits;
        let caps = Capabilities::new(
            plugin.info().capabilities.clone(),
            request.grant,
            request.dry_run,
            self.inner.backends.clone(),
            request.owner,
        );
        let mut state = CallState::new(plugin.id(), request.run_id.clone(), limits, Some(caps));
        state.step = request.step;
        let ctx = RunContext {
            run_id: request.run_id,
            now: timestamp(request.now),
            dry_run: request.dry_run,
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
        };
        let args = request.args.to_string();
        let body: CallBody<Result<crate::bindings::attack::AttackReport, wit_types::PluginError>> =
            match plugin.inner.pre.clone() {
                Pre::Attack(pre) => Box::new(move |store| {
                    Box::pin(async move {
                        pre.instantiate_async(&mut *store).await?.call_run(&mut *store, &ctx, &args).await
                    })
                }),
                Pre::V03Attack(pre) => converted_call!(pre, v0_3::attack::RunContext, call_run, ctx, args),
                Pre::V02Attack(pre) => converted_call!(pre, v0_2::attack::RunContext, call_run, ctx, args),
                Pre::LegacyAttack(pre) => Box::new(move |store| {
                    Box::pin(async move {
                        let legacy_ctx = legacy::attack::RunContext {
                            run_id: ctx.run_id,
                            now: legacy_timestamp(ctx.now),
                            dry_run: ctx.dry_run,
                            deadline_ms: ctx.deadline_ms,
                        };
                        let answer =
                            pre.instantiate_async(&mut *store).await?.call_run(&mut *store, &legacy_ctx, &args).await?;
                        crate::caps::convert_version(answer)
                    })
                }),
                Pre::Planner(_)
                | Pre::V03Planner(_)
                | Pre::V02Planner(_)
                | Pre::LegacyPlanner(_)
                | Pre::Probe(_)
                | Pre::V03Probe(_)
                | Pre::V02Probe(_) => {
                    unreachable!("checked above")
                }
            };
        let (result, record) = self.call(state, body, Box::pin(cancel)).await;
        let result = result.and_then(|r| r.map_err(plugin_error)).and_then(|report| {
            let size =
                report.summary.len() + report.details.len() + report.targets.iter().map(String::len).sum::<usize>();
            if size > limits.max_output_bytes {
                return Err(CallError::OutputLimit { what: "the report", limit: limits.max_output_bytes });
            }
            let details: Value = serde_json::from_str(&report.details)
                .map_err(|e| CallError::Contract(format!("report details are not JSON: {e}")))?;
            if !details.is_object() {
                return Err(CallError::Contract("report details are not a JSON object".into()));
            }
            Ok(AttackReport { summary: report.summary, targets: report.targets, details })
        });
        RunOutcome { result, record }
    }

    /// Asks a probe whether its system is healthy, with the given grant, under the run
    /// limits. A probe observes: its `http` capability sends only GET and HEAD, or a
    /// method the operator's `[probes] allow_methods` allows (not under a dry run, where
    /// such a request is recorded, not sent). Args are validated against the plugin's
    /// schema first.
    pub async fn check(&self, plugin: &Plugin, request: ProbeRequest) -> ProbeOutcome {
        if !matches!(plugin.inner.pre, Pre::Probe(_) | Pre::V03Probe(_) | Pre::V02Probe(_)) {
            return ProbeOutcome { result: Err(wrong_kind(plugin, "probe")), record: CallRecord::default() };
        }
        if let Err(e) = plugin.validate_args(&request.args) {
            return ProbeOutcome { result: Err(e), record: CallRecord::default() };
        }
        let limits = Limits {
            deadline: request.deadline.min(self.inner.config.run_limits.deadline),
            ..self.inner.config.run_limits
        };
        let mut caps = Capabilities::new(
            plugin.info().capabilities.clone(),
            request.grant,
            false,
            self.inner.backends.clone(),
            request.owner,
        );
        caps.probe = Some(crate::caps::ProbeMode { dry_run: request.dry_run });
        let state = CallState::new(plugin.id(), request.check_id.clone(), limits, Some(caps));
        let ctx = ProbeContext {
            check_id: request.check_id,
            now: timestamp(request.now),
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX),
        };
        let args = request.args.to_string();
        let body: CallBody<Result<crate::bindings::probe::Verdict, wit_types::PluginError>> =
            match plugin.inner.pre.clone() {
                Pre::Probe(pre) => Box::new(move |store| {
                    Box::pin(async move {
                        pre.instantiate_async(&mut *store).await?.call_check(&mut *store, &ctx, &args).await
                    })
                }),
                Pre::V03Probe(pre) => converted_call!(pre, v0_3::probe::ProbeContext, call_check, ctx, args),
                Pre::V02Probe(pre) => converted_call!(pre, v0_2::probe::ProbeContext, call_check, ctx, args),
                _ => unreachable!("checked above"),
            };
        let (result, record) = self.call(state, body, Box::pin(std::future::pending())).await;
        let result = result.and_then(|r| r.map_err(plugin_error)).and_then(|verdict| {
            if verdict.reason.len() + verdict.values.len() > limits.max_output_bytes {
                return Err(CallError::OutputLimit { what: "the verdict", limit: limits.max_output_bytes });
            }
            let values: Value = serde_json::from_str(&verdict.values)
                .map_err(|e| CallError::Contract(format!("verdict values are not JSON: {e}")))?;
            if !values.is_object() {
                return Err(CallError::Contract("verdict values are not a JSON object".into()));
            }
            Ok(Verdict { healthy: verdict.healthy, reason: verdict.reason, values })
        });
        ProbeOutcome { result, record }
    }

    /// Runs one call in a fresh Store on the wasm runtime, under the call's limits, and
    /// returns its result with everything it recorded. A caller already on the runtime's
    /// threads (a task started with [`Runtime::spawn`]) runs it on its own task: the hop
    /// to another task and back (a spawn and two cross-thread wake-ups) cost more than
    /// instantiating and calling a small plugin.
    async fn call<R: Send + 'static>(
        &self,
        state: CallState,
        body: CallBody<R>,
        cancel: Pin<Box<dyn Future<Output = String> + Send>>,
    ) -> (Result<R, CallError>, CallRecord) {
        if self.on_own_threads() {
            return run_call(self.inner.clone(), state, body, cancel).await;
        }
        let task = self.inner.handle.spawn(run_call(self.inner.clone(), state, body, cancel));
        // Dropping this future (a halted run, a shutdown) must end the call too: the task
        // runs on another runtime, so abort it rather than let it finish unobserved.
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(outcome) => outcome,
            Err(e) => (Err(CallError::Host(format!("the call's task failed: {e}"))), CallRecord::default()),
        }
    }

    /// Whether the current thread is one of this runtime's workers: there, capabilities
    /// (HTTP connection tasks, SSH sessions, the AWS SDK) start their background work on
    /// the runtime that outlives every call.
    fn on_own_threads(&self) -> bool {
        RUNTIME_OF_THREAD.get() == self.inner.id
    }

    /// Starts a task on the runtime's worker threads. Calls made from such a task run on
    /// it, without a hop: the engine starts its runs this way.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.handle.spawn(task)
    }

    /// [`Runtime::call`] on the caller's own task, for planner calls: a planner is a pure
    /// function of its input (it imports `log` and in-memory WASI only, nothing that starts
    /// work elsewhere), and the hop to the runtime's threads and back cost about three times
    /// the call itself. The same permits, deadline and limits apply; epoch ticks make a
    /// looping planner yield every tick, and dropping the caller's future ends the call.
    async fn call_here<R: Send + 'static>(
        &self,
        state: CallState,
        body: CallBody<R>,
    ) -> (Result<R, CallError>, CallRecord) {
        run_call(self.inner.clone(), state, body, Box::pin(std::future::pending())).await
    }
}

/// One call: a permit, a fresh store under the limits, the body under the deadline (or
/// until cancelled), and the call's record.
async fn run_call<R: Send + 'static>(
    inner: Arc<Inner>,
    mut state: CallState,
    body: CallBody<R>,
    cancel: Pin<Box<dyn Future<Output = String> + Send>>,
) -> (Result<R, CallError>, CallRecord) {
    let _permit = inner.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
    let _active = inner.ticker.activate();
    let limits = state.limits;
    // The deadline starts when the call starts, not while it queued.
    let started = Instant::now();
    state.deadline = started + limits.deadline;
    let mut store = Store::new(&inner.engine, state);
    store.limiter(|s| s as &mut dyn ResourceLimiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        if Instant::now() >= state.deadline {
            return Err(breach(CallError::Deadline(state.limits.deadline)));
        }
        if let Some(what) = state.full_stdio() {
            return Err(breach(CallError::OutputLimit { what, limit: state.limits.max_stdio_bytes }));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    // The timeout also ends host calls (an HTTP request), which epochs cannot; a
    // cancellation ends the call the same way, keeping what the store recorded.
    let ended = tokio::select! {
        ended = tokio::time::timeout(limits.deadline, body(&mut store)) => Ended::Call(ended),
        reason = cancel => Ended::Cancelled(reason),
    };
    let result = match ended {
        Ended::Call(Ok(Ok(value))) => Ok(value),
        Ended::Call(Ok(Err(error))) => Err(classify(&error, store.data())),
        Ended::Call(Err(_)) => Err(CallError::Deadline(limits.deadline)),
        Ended::Cancelled(reason) => Err(CallError::Cancelled(reason)),
    };
    let mut state = store.into_data();
    state.end_in_flight();
    let record = CallRecord {
        log: state.log,
        audit: state.audit,
        stdout: String::from_utf8_lossy(&state.stdout.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&state.stderr.contents()).into_owned(),
        dry_run_actions: state.caps.map(|c| c.actions).unwrap_or_default(),
        elapsed: started.elapsed(),
    };
    (result, record)
}

thread_local! {
    /// The id of the runtime whose executor this thread works for (0: none).
    static RUNTIME_OF_THREAD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How a call's body ended.
enum Ended<T> {
    Call(Result<wasmtime::Result<T>, tokio::time::error::Elapsed>),
    Cancelled(String),
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bytes of a pooled linear memory kept resident and reset in place between calls.
const KEEP_RESIDENT_MEMORY: usize = 4 << 20;
/// Bytes of a pooled table kept resident.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;
/// Decommits (of what is beyond the resident part) batched into one flush.
const DECOMMIT_BATCH: usize = 16;

/// The process's Engine: epoch interruption for deadlines; a pooling allocator sized for
/// the concurrent calls when configured and the address space can be reserved.
fn new_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut engine_config = Config::new();
    engine_config.epoch_interruption(true);
    if config.pooling {
        let slots = u32::try_from(config.max_concurrent_calls.max(1)).unwrap_or(u32::MAX / 16).saturating_add(8);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(16))
            .total_memories(slots.saturating_mul(4))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_core_instances_per_component(16)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_memory_size(config.run_limits.memory_bytes.max(config.plan_limits.memory_bytes))
            // A slot given back is reset by zeroing the pages the call dirtied (found with
            // PAGEMAP_SCAN where the kernel has it, else the lowest ones) instead of
            // `madvise`: every madvise is a TLB shootdown across all cores, which was most of
            // an instantiation's cost here. Beyond these sizes the rest is still decommitted.
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .decommit_batch_size(DECOMMIT_BATCH);
        let mut pooled = engine_config.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok(engine),
            Err(e) => tracing::warn!(error = %e, "cannot reserve the instance pool; allocating instances on demand"),
        }
    }
    Engine::new(&engine_config)
}

fn legacy_info(info: legacy::attack::cme::plugin::types::PluginInfo) -> wasmtime::Result<wit_types::PluginInfo> {
    convert_version(info)
}

use crate::caps::convert_version;

fn legacy_timestamp(t: Timestamp) -> legacy::attack::cme::plugin::types::Timestamp {
    legacy::attack::cme::plugin::types::Timestamp { seconds: t.seconds, nanoseconds: t.nanoseconds }
}

fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    // Preamble: magic, then a 16-bit version and a 16-bit layer (0 core module, 1 component).
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    if wasm[6..8] == [0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// Turns a failed call into what users should read: the limit that was hit, the panic
/// message, or the trap.
fn classify(error: &wasmtime::Error, state: &CallState) -> CallError {
    for cause in error.chain() {
        if let Some(LimitBreach(e)) = cause.downcast_ref::<LimitBreach>() {
            return e.clone();
        }
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(Trap::Interrupt) => CallError::Deadline(state.limits.deadline),
        Some(Trap::UnreachableCodeReached) => {
            let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
            match panic_message(&stderr) {
                Some(message) => CallError::Panicked(message),
                None if stderr.trim().is_empty() => {
                    CallError::Trap("the plugin aborted (wasm `unreachable` executed)".into())
                }
                None => CallError::Trap(format!("the plugin aborted; its stderr: {}", stderr.trim())),
            }
        }
        Some(Trap::MemoryOutOfBounds) => CallError::Trap(format!(
            "{} (a Rust plugin that recursed too deep overflows its in-memory stack this way)",
            Trap::MemoryOutOfBounds
        )),
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Host(error.root_cause().to_string()),
    }
}

/// Extracts `message (at file:line:col)` from Rust's panic output.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    let (location, message) = rest.split_once('\n')?;
    let message = message.split("\nnote:").next().unwrap_or(message).trim();
    Some(format!("{message} (at {})", location.trim_end_matches(':')))
}

fn plugin_error(e: wit_types::PluginError) -> CallError {
    match e {
        wit_types::PluginError::InvalidArgs(message) => CallError::InvalidArgs { pointer: None, message },
        wit_types::PluginError::Denied(m) => CallError::Denied(m),
        wit_types::PluginError::Failed(m) => CallError::Failed(m),
    }
}

fn wrong_kind(plugin: &Plugin, expected: &str) -> CallError {
    CallError::Host(format!("{} is a {}, not a {expected}", plugin.id(), plugin.kind()))
}

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanoseconds: t.timestamp_subsec_nanos() }
}

/// The most a plugin may say about itself in describe(), in bytes of text: the engine
/// keeps every loaded plugin's description in memory and renders it in lists.
pub const MAX_DESCRIBE_BYTES: usize = 256 << 10;

fn convert_info(info: wit_types::PluginInfo) -> Result<PluginInfo, LoadError> {
    let size = info.name.len()
        + info.version.len()
        + info.description.len()
        + info.args_schema.len()
        + info.example_args.len()
        + info.refs.iter().map(String::len).sum::<usize>();
    if size > MAX_DESCRIBE_BYTES {
        return Err(LoadError::InvalidInfo(format!(
            "describe() answered with {size} bytes of text; at most {MAX_DESCRIBE_BYTES} are accepted (keep the description and schema short)"
        )));
    }
    let json = |field: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| LoadError::InvalidInfo(format!("{field} is not JSON: {e}")))
    };
    Ok(PluginInfo {
        args_schema: json("args-schema", &info.args_schema)?,
        example_args: json("example-args", &info.example_args)?,
        name: info.name,
        version: info.version,
        refs: info.refs,
        description: info.description,
        capabilities: info
            .capabilities
            .into_iter()
            .map(|c| match c {
                wit_types::Capability::Http(urls) => Capability::Http { urls },
                wit_types::Capability::Ec2Describe(regions) => Capability::Ec2Describe { regions },
                wit_types::Capability::Ec2Terminate(regions) => Capability::Ec2Terminate { regions },
                wit_types::Capability::Ssh => Capability::Ssh,
                wit_types::Capability::Scripts => Capability::Scripts,
                wit_types::Capability::Ec2Disrupt(regions) => Capability::Ec2Disrupt { regions },
                wit_types::Capability::Compute(used) => {
                    Capability::Compute { clouds: used.clouds, operations: used.operations }
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_output_becomes_a_message_with_its_location() {
        let stderr = "\nthread '<unnamed>' (1) panicked at src/lib.rs:14:13:\nplugin panicked on purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(stderr).as_deref(), Some("plugin panicked on purpose (at src/lib.rs:14:13)"));
        assert_eq!(panic_message("no panic here"), None);
    }

    #[test]
    fn headers_tell_modules_from_components() {
        assert!(matches!(check_header(b"garbage!"), Err(LoadError::NotWasm)));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule)));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
