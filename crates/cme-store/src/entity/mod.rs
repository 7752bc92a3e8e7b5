//! Tables as sea-orm entities. Times are microseconds since the Unix epoch (UTC) in
//! 64-bit integers: the same type, ordering and index behaviour on SQLite and PostgreSQL.

pub mod audit_event;
pub mod blackout;
pub mod budget_entry;
pub mod calendar_feed;
pub mod credential;
pub mod delivery;
pub mod executor;
pub mod inventory;
pub mod plan;
pub mod plugin;
pub mod setting;
pub mod undo;
