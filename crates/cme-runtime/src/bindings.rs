//! Host bindings generated from `wit/`, one module per world. Only this module and the
//! `caps` modules name generated types.

/// The `attack` world: its imports are every capability interface.
pub mod attack {
    wasmtime::component::bindgen!({
        world: "attack",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The `planner` world, sharing the attack world's `types` and `log`.
pub mod planner {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "cme:plugin/types": super::attack::cme::plugin::types,
            "cme:plugin/log": super::attack::cme::plugin::log,
        },
    });
}

pub use attack::cme::plugin::types::{self as wit_types, HostError};
