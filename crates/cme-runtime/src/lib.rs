//! # cme-runtime: the wasmtime host for cme plugins
//!
//! Planners and attacks are WebAssembly components implementing the `planner` or
//! `attack` world of `cme:plugin@0.3.0` (`wit/`; 0.2.0 and 0.1.0 components too). This crate loads them and calls them
//! in sandboxes:
//!
//! * **one [`Runtime`] per process**: one wasmtime `Engine`, components compiled once per
//!   sha256 and kept as precompiled artifacts keyed by the engine's compatibility hash
//!   ([`RuntimeConfig::cache_dir`]), one `InstancePre` per plugin, a fresh `Store` per
//!   call, all calls on the runtime's own tokio threads with a concurrency bound;
//! * **limits on every call** ([`Limits`]): a wall-clock deadline enforced by epoch
//!   interruption (a ticker thread, 10 ms, running only while calls are in flight) and a
//!   tokio timeout that also covers host calls; memory; capability calls; log lines;
//!   captured stdout/stderr; report size. A call that breaks one fails with a
//!   [`CallError`] naming it; the engine and other calls carry on;
//! * **no ambient authority**: WASI with an empty context (no files, environment or
//!   sockets; stdout and stderr captured into the run's record); wasi:http is not linked;
//! * **capabilities** (`log`, `http`, `ec2`, `ssh`, `scripts`, `inventory`, `undo`): each call must fit what the
//!   plugin declared in `describe()` AND the operator's [`Grant`] (each interface's unit in
//!   `caps/` owns its rule), and
//!   produces an [`AuditEvent`]; in a dry run they record what they would do instead.
//!   HTTP and the script library always work; EC2 works when the runtime is given a
//!   backend ([`RuntimeConfig::ec2`]), binding terminations to what the same run described;
//!   SSH works when given a backend ([`RuntimeConfig::ssh`]) and reaches only addresses the
//!   same run described or listed from an inventory, with keys looked up host-side by
//!   credential name; undos are stored through the same backend before a run acts.
//!
//! Invariant: only this crate names wasmtime types.

mod audit;
mod bindings;
mod budget;
mod cache;
mod caps;
mod config;
mod credentials;
mod error;
pub mod grant;
mod info;
mod outcome;
mod plugin;
mod runtime;
mod state;
mod ticker;
mod undo;

pub use audit::{AuditDecision, AuditEvent, AuditSource, Decision};
pub use budget::BudgetLedger;
pub use cache::{Provenance, sha256_hex};
pub use cme_model::undo::{Undo, UndoAttempt, UndoState};
pub use config::{Limits, RuntimeConfig};
pub use credentials::{InventoryHost, RunOwner, SshBackend, SshCredential, SshStore, SshStoreError};
pub use error::{CallError, LoadError};
pub use grant::Grant;
pub use info::{Capability, PluginInfo, PluginKind, canonical_ref};
pub use outcome::{
    AttackReport, CallRecord, LogLevel, LogLine, PlanOutcome, Planned, ProbeOutcome, RunOutcome, Verdict,
};
pub use plugin::Plugin;
pub use runtime::{DESCRIBE_DEADLINE, PlanContext, ProbeRequest, RunRequest, Runtime};
pub use ticker::TICK;
pub use undo::UNDO_TIMEOUT;
