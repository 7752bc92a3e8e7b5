//! Real peers for tests, started and stopped by the test that needs them. Only the
//! `[dev-dependencies]` of other crates use this crate.

pub mod schema_corpus;
pub mod skip;
pub mod sshd;

pub use skip::{missing_peer, peers_required};
