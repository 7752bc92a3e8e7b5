//! # cme-plugin-sdk: write cme planners and attacks
//!
//! A cme plugin is a WebAssembly component built from a Rust `cdylib` for the
//! `wasm32-wasip2` target. It implements one of two worlds of the `cme:plugin@0.2.0`
//! contract (the WIT files in the repository's `wit/` directory are the reference):
//!
//! * a **planner** returns the instants at which an attack runs ([`planner::Planner`]);
//! * an **attack** does the damage through host capabilities ([`attack::Attack`]):
//!   [`attack::http`], [`attack::ec2`], [`attack::ssh`], [`attack::scripts`].
//!
//! Plugins run in a sandbox: no files, no environment, no sockets. All they can do is
//! call the capabilities the host grants them; every call is checked against what the
//! plugin declared in [`Describe`] and what the operator granted, and audited. A refused
//! call returns `HostError::Denied`, it does not trap. Limits (by default 64 MiB of
//! memory, a wall-clock deadline, 1,000 log lines and 1,000 host calls per call) end a
//! call that breaks them, with an error naming the limit.
//!
//! ## A complete attack
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "ping-attack"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! # a path to your cme checkout (the SDK is not on crates.io yet)
//! cme-plugin-sdk = { path = "../cme/crates/cme-plugin-sdk", features = ["attack"] }
//! serde = { version = "1", features = ["derive"] }
//!
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! strip = true
//! codegen-units = 1
//! panic = "abort"
//! ```
//!
//! `src/lib.rs` (this is `plugins/examples/ping-attack`, which the engine's tests build,
//! load and run):
//!
#![doc = concat!("```ignore\n", include_str!("../../../plugins/examples/ping-attack/src/lib.rs"), "```")]
//!
//! Build it (once: `rustup target add wasm32-wasip2`):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! # target/wasm32-wasip2/release/ping_attack.wasm is the component
//! ```
//!
//! A planner is the same shape with [`planner::Planner`], a `plan` returning a
//! [`planner::Schedule`] (one-shot, or recurring: asked again window after window), the
//! `planner` feature and [`export_planner!`]. Use [`planner::PlanContext::rng`] (one-shot)
//! or [`planner::PlanContext::rng_for`] (recurring, per day or tick) for randomness and [`time::parse_datetime`] for dates, so
//! that a plan is a pure function of its args and context. The built-in plugins in
//! `plugins/` (`exact-planner`, `simple-planner`, `api-request`) are complete examples.
//!
//! ## Rules the host enforces
//!
//! * `name` is kebab-case, `version` is semver, the schema compiles and the example
//!   validates against it; refs are unique across the engine.
//! * Args reach `plan`/`run` already validated against the schema; [`args::parse`]
//!   still names the field on any mismatch.
//! * Enable exactly one of the features `planner` or `attack`.

#[cfg(any(all(feature = "planner", feature = "attack"), all(feature = "planner", feature = "probe"), all(feature = "attack", feature = "probe")))]
compile_error!(
    "enable exactly one of the features `planner`, `attack` and `probe`: a component implements one world; \
     build each plugin as a crate of its own, with its own feature"
);

pub mod args;
pub mod days;
mod describe;
mod error;
pub mod log;
pub mod time;

#[cfg(feature = "attack")]
pub mod attack;
#[cfg(feature = "planner")]
pub mod planner;
#[cfg(feature = "probe")]
pub mod probe;
#[cfg(any(feature = "attack", test))]
pub mod targets;

pub use chrono;
pub use chrono_tz;
pub use describe::{Capability, Describe};
pub use error::PluginError;
pub use serde;
pub use serde_json::{self, json};
