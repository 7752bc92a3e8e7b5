//! Real peers for tests, started and stopped by the test that needs them (a private sshd,
//! a private PostgreSQL cluster, fake cloud APIs where no emulator runs here). Only the `[dev-dependencies]` of other crates and the
//! xtask harnesses use this crate.

pub mod clouds;
pub mod containers;
pub mod dates;
pub mod postgres;
pub mod schema_corpus;
pub mod skip;
pub mod sshd;
pub mod testhost;

pub use dates::Dates;
pub use skip::{missing_peer, peers_required};
