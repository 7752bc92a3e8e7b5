//! The engine's tests: the real store (in-memory SQLite) and a fake plugin host whose
//! "components" are JSON descriptions. No wasm, no network: they run in seconds.

mod calendars;
mod credentials;
mod experiments;
mod fuzz;
mod guards;
mod plans;
mod recurring;
mod registry;
mod scheduler;
mod slow;
mod support;
mod undos;
