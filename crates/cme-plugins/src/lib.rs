//! The built-in plugins, compiled from `plugins/` to WebAssembly components at build
//! time and embedded, so that the engine needs no plugin directory.

/// One embedded component.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// The crate name in `plugins/`, e.g. `api-request`.
    pub crate_name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

macro_rules! embed {
    ($crate_name:literal, $file:literal) => {
        EmbeddedPlugin { crate_name: $crate_name, wasm: include_bytes!(concat!(env!("OUT_DIR"), "/", $file)) }
    };
}

/// Every built-in plugin: the planners `exact-planner`, `simple-planner` and the attacks
/// `api-request`, `terminate-ec2-instance`, `terminate-ec2-instance-not-excluded` and
/// `run-script`.
pub const BUILTINS: &[EmbeddedPlugin] = &[
    embed!("exact-planner", "exact_planner.wasm"),
    embed!("simple-planner", "simple_planner.wasm"),
    embed!("api-request", "api_request.wasm"),
    embed!("terminate-ec2-instance", "terminate_ec2_instance.wasm"),
    embed!("terminate-ec2-instance-not-excluded", "terminate_ec2_instance_not_excluded.wasm"),
    embed!("run-script", "run_script.wasm"),
];

/// Looks a built-in up by its crate name.
pub fn builtin(crate_name: &str) -> Option<&'static EmbeddedPlugin> {
    BUILTINS.iter().find(|p| p.crate_name == crate_name)
}

/// Plugins for tests and benchmarks only (feature `test-plugins`); never shipped.
#[cfg(feature = "test-plugins")]
pub mod test_plugins {
    use super::EmbeddedPlugin;

    /// An attack that misbehaves on request: `{"mode": "loop" | "memory-bomb" | ...}`.
    pub const HOSTILE: EmbeddedPlugin = embed!("hostile", "hostile.wasm");

    /// The SDK documentation's example attack (`plugins/examples/ping-attack`).
    pub const PING: EmbeddedPlugin = embed!("ping-attack", "ping_attack.wasm");

    /// The same example built as version 0.2.0 (`ping-attack@0.2.0`).
    pub const PING_V2: EmbeddedPlugin = embed!("ping-v2", "ping_v2.wasm");

    /// An attack whose describe() never returns.
    pub const DESCRIBE_LOOP: EmbeddedPlugin = embed!("describe-loop", "describe_loop.wasm");

    /// An attack whose args schema is not a JSON Schema.
    pub const BAD_SCHEMA: EmbeddedPlugin = embed!("bad-schema", "bad_schema.wasm");

    /// An attack claiming the built-in `api_request:ApiRequest` ref.
    pub const REF_THIEF: EmbeddedPlugin = embed!("ref-thief", "ref_thief.wasm");

    /// An attack taking the built-in `api-request`'s name with a newer version.
    pub const IMPOSTOR: EmbeddedPlugin = embed!("impostor", "impostor.wasm");

    /// A plain WASI command (exports wasi:cli/run): a component of another world.
    pub const COMMAND: EmbeddedPlugin = embed!("command", "command.wasm");
}
