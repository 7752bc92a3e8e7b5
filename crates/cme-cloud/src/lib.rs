//! Capability backends: the only code that talks to the outside world on a plugin's
//! behalf. Each backend has the same three phases: a `*Config` built once from the
//! engine's configuration, a per-run client prepared with that run's grant, and the calls.
//!
//! Invariant: this crate knows nothing of WebAssembly; the runtime adapts its calls
//! to the WIT interfaces.

pub mod compute;
pub mod ec2;
pub mod http;
pub mod scripts;
pub mod ssh;
