//! The bottom of cme: what every layer shares and nothing below it defines.
//!
//! The rules plugin authors must see exactly as the engine applies them (time: one rule
//! for dates, zones and wall times; URL patterns of HTTP grants; plugin names) are written
//! once, in the plugin SDK (and so is how a type's JSON Schema is derived: plugin args
//! and the API's request bodies follow one rule), which is published on its own and cannot depend on this
//! unpublished crate. This crate compiles those very files (`#[path]`), so the host and
//! the SDK share one copy that cannot drift, and the host never depends on the guest SDK
//! (whose `wit_bindgen::generate!` would otherwise build into the engine).

#[path = "../../cme-plugin-sdk/src/time.rs"]
pub mod time;

#[path = "../../cme-plugin-sdk/src/pattern.rs"]
pub mod pattern;

#[path = "../../cme-plugin-sdk/src/schema.rs"]
pub mod schema;

#[path = "../../cme-plugin-sdk/src/names.rs"]
mod names;

pub mod actor;
pub mod audit;
pub mod inventory;
pub mod lock;
pub mod log;
pub mod plugin;
pub mod text;
pub mod undo;

pub use actor::Actor;
pub use audit::{AuditDecision, AuditEvent, AuditSource};
pub use inventory::InventoryHost;
pub use lock::{Locked, RwLocked};
pub use log::{LogLevel, LogLine};
pub use names::is_plugin_name;
pub use pattern::{PatternError, UrlPattern};
pub use plugin::{Planned, PluginKind, Verdict};
pub use text::UnknownStatus;
