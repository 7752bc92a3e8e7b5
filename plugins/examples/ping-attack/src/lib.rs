// The SDK documentation's example: its source lives in the SDK crate (so the published
// crate carries it) and is built from here by the engine's tests.
include!("../../../../crates/cme-plugin-sdk/doc/ping_attack.rs");
