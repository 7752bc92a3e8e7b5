//! Runtime configuration: engine-wide settings and per-call limits.

use std::path::PathBuf;
use std::time::Duration;

use cme_cloud::http::HttpConfig;

/// Settings for the process-wide [`Runtime`](crate::Runtime).
///
/// By default: no artifact cache directory (components are compiled in memory at every
/// load), one wasm worker thread per core, at most 256 calls in flight, instances from a
/// pooling allocator sized for those calls, the default [`Limits`], the default
/// [`HttpConfig`], the default [`Fences`](cme_grant::Fences) (one termination and one SSH
/// session per run), and no own sockets.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where precompiled artifacts are kept, keyed by content hash and engine
    /// compatibility. Must be writable by the engine only: its files are loaded as
    /// native code.
    pub cache_dir: Option<PathBuf>,
    /// Threads of the tokio runtime that runs wasm (not the API's).
    pub worker_threads: usize,
    /// Calls (describe, plan, run) executing at once; further calls wait their turn.
    pub max_concurrent_calls: usize,
    /// Take instances from a pre-reserved pool instead of mapping fresh memory per call
    /// (no mmap/munmap and TLB shootdowns per call). Reserves virtual address space up
    /// front; falls back to on-demand allocation when the reservation is refused.
    pub pooling: bool,
    /// Limits for attack runs.
    pub run_limits: Limits,
    /// Limits for `describe` and `plan`: planners are pure, so they get less.
    pub plan_limits: Limits,
    /// HTTP capability settings.
    pub http: HttpConfig,
    /// An operator's script directory, added to (and overriding) the shipped scripts.
    pub scripts_dir: Option<PathBuf>,
    /// The EC2 backend; None answers `unavailable` to every ec2 call.
    pub ec2: Option<std::sync::Arc<cme_cloud::ec2::Ec2>>,
    /// The SSH backend; None answers `unavailable` to every ssh call.
    pub ssh: Option<crate::credentials::SshBackend>,
    /// The clouds `compute` reaches, by name (`[[clouds]]`); none answers `unavailable`.
    pub clouds: Vec<cme_cloud::compute::Cloud>,
    /// The operator's fences, intersected with every run's grant.
    pub fences: cme_grant::Fences,
    /// The sockets the engine's API listens on: no plugin request may reach them.
    pub own_sockets: Vec<std::net::SocketAddr>,
    /// The operator's blast-radius budgets over groups of instances.
    pub budgets: cme_grant::Budgets,
    /// Where budgets are charged; None refuses every termination a counting budget
    /// covers (fail closed).
    pub ledger: Option<std::sync::Arc<dyn crate::BudgetLedger>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            worker_threads: std::thread::available_parallelism().map(usize::from).unwrap_or(2),
            max_concurrent_calls: 256,
            pooling: true,
            run_limits: Limits::default(),
            plan_limits: Limits { deadline: Duration::from_secs(5), ..Limits::default() },
            http: HttpConfig::default(),
            scripts_dir: None,
            ec2: None,
            ssh: None,
            clouds: Vec::new(),
            fences: cme_grant::Fences::default(),
            own_sockets: Vec::new(),
            budgets: cme_grant::Budgets::default(),
            ledger: None,
        }
    }
}

/// Limits applied to every call into a plugin. A call that breaks one ends with a
/// [`CallError`](crate::CallError) naming the limit; the engine and other calls go on.
///
/// By default: 60 s wall-clock deadline (host calls included), 64 MiB of linear memory
/// per call (the sum over all of its memories),
/// 1,000 capability calls, 1,000 log lines of at most 4 KiB each, 64 KiB each of captured
/// stdout and stderr, and 1 MiB of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub max_host_calls: u32,
    pub max_log_lines: u32,
    pub max_log_line_bytes: usize,
    pub max_stdio_bytes: usize,
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(60),
            memory_bytes: 64 << 20,
            max_host_calls: 1_000,
            max_log_lines: 1_000,
            max_log_line_bytes: 4 << 10,
            max_stdio_bytes: 64 << 10,
            max_output_bytes: 1 << 20,
        }
    }
}
