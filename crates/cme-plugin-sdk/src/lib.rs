//! # cme-plugin-sdk: write cme planners, attacks and probes
//!
//! A cme plugin is a WebAssembly component built from a Rust `cdylib` for the
//! `wasm32-wasip2` target. It implements one of three worlds of the `cme:plugin@0.4.0`
//! contract, whose WIT travels with this crate (`wit/cme-plugin.wit`, every field
//! documented; `wit/CHANGELOG.md` says which contract versions an engine loads):
//!
//! * a **planner** returns the instants at which an attack runs ([`planner::Planner`]);
//! * an **attack** does the damage through host capabilities ([`attack::Attack`]):
//!   [`http`], [`ec2`], [`ssh`], [`scripts`];
//! * a **probe** tells whether a system is healthy, through [`http`] ([`probe::Probe`]).
//!
//! Plugins run in a sandbox: no files, no environment, no sockets. All they can do is
//! call the capabilities the host grants them; every call is checked against what the
//! plugin declared in [`Describe`] and what the operator granted, and audited. A refused
//! call returns `HostError::Denied`, it does not trap. Limits (by default 64 MiB of
//! memory, a wall-clock deadline, 1,000 log lines and 1,000 host calls per call) end a
//! call that breaks them, with an error naming the limit.
//!
//! ## Start
//!
//! `cme plugins new my-attack --kind attack` (or `planner`, `probe`) writes a project
//! with this crate as a dependency, a test, a grant file and a plan file. By hand,
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
//! cme-plugin-sdk = { version = "0.1", features = ["attack"] }
//! serde = { version = "1", features = ["derive"] }
//! schemars = "1"
//!
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! strip = true
//! codegen-units = 1
//! panic = "abort"
//! ```
//!
//! `src/lib.rs` (the engine's own tests build, load and run this very file):
//!
#![doc = concat!("```ignore\n", include_str!("../doc/ping_attack.rs"), "```")]
//!
//! Build it (once: `rustup target add wasm32-wasip2`):
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! # target/wasm32-wasip2/release/ping_attack.wasm is the component
//! cme plugins check target/wasm32-wasip2/release/ping_attack.wasm   # the upload's checks, offline
//! cme plugins run target/wasm32-wasip2/release/ping_attack.wasm --args '{"url":"http://localhost:8080/"}' --grant-declared
//! ```
//!
//! ## Test it with `cargo test`
//!
//! Built for the machine running the tests, the capabilities call the
//! [`testing::MockHost`] running the plugin: it answers from fixtures, applies the host's
//! rules (schema, declaration, grant, URL patterns, instances the run described, dry
//! run) and records every call and log line, so `run`, `plan` and `check` are tested end
//! to end without an engine. [`testing::validate_describe`] checks what an upload would.
//!
//! A planner is the same shape with [`planner::Planner`], a `plan` returning a
//! [`planner::Schedule`] (one-shot, or recurring: asked again window after window), the
//! `planner` feature and [`export_planner!`]. Use [`planner::PlanContext::rng`] (one-shot)
//! or [`planner::PlanContext::rng_for`] (recurring, per day or tick) for randomness and
//! [`time::parse_datetime`] for dates, so that a plan is a pure function of its args and
//! context.
//!
//! ## Rules the host enforces
//!
//! * `name` is kebab-case, `version` is semver, the schema compiles and the example
//!   validates against it; refs are unique across the engine.
//! * Args reach `plan`/`run`/`check` already validated against the schema; [`args::parse`]
//!   still names the field on any mismatch.
//! * Enable exactly one of the features `planner`, `attack` or `probe`. (Documentation
//!   shows all three without any.)

#![warn(missing_docs)]

#[cfg(all(
    not(any(doc, test)),
    any(
        all(feature = "planner", feature = "attack"),
        all(feature = "planner", feature = "probe"),
        all(feature = "attack", feature = "probe")
    )
))]
compile_error!(
    "enable exactly one of the features `planner`, `attack` and `probe`: a component implements one world; \
     build each plugin as a crate of its own, with its own feature"
);

// The world bindings name the shared interfaces by this crate's public name (`with`), so
// that the paths hold both here and where the export macros expand, in a plugin's crate.
extern crate self as cme_plugin_sdk;

#[cfg(any(feature = "attack", doc, test))]
pub mod aim;
pub mod args;
#[cfg(not(target_arch = "wasm32"))]
pub mod build;
mod capabilities;
pub mod days;
mod describe;
mod error;
pub mod log;
mod names;
pub mod schema;
pub mod time;
#[doc(hidden)]
pub mod wit;

#[cfg(any(feature = "attack", doc, test))]
pub mod attack;
#[cfg(not(target_arch = "wasm32"))]
pub mod pattern;
#[cfg(any(feature = "planner", doc, test))]
pub mod planner;
#[cfg(any(feature = "probe", doc, test))]
pub mod probe;
pub mod targets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use capabilities::{compute, ec2, http, inventory, scripts, ssh, undo};
pub use chrono;
pub use chrono_tz;
pub use describe::{BuiltArgs, Capability, Describe};
pub use error::PluginError;
pub use names::is_plugin_name;
pub use serde;
pub use serde_json::{self, json};
pub use wit::cme::plugin::types::{HostError, KeyValue};
