//! Host bindings generated from `wit/`, one module per world. Only this module and the
//! `caps` modules name generated types.

/// The `attack` world of `cme:plugin@0.4.0`: its imports are every capability interface.
pub mod attack {
    wasmtime::component::bindgen!({
        world: "attack",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        // The 0.1.0 shim (`caps::legacy`) converts between the two versions' types,
        // which have the same shape, through serde.
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The `planner` world of `cme:plugin@0.4.0`, sharing the attack world's `types` and `log`.
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
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The `probe` world of `cme:plugin@0.4.0`, sharing the attack world's `types`, `log` and
/// `http` (a probe's requests take the attack's path: grant, fences, audit).
pub mod probe {
    wasmtime::component::bindgen!({
    world: "probe",
    path: "../../wit",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "cme:plugin/types": super::attack::cme::plugin::types,
        "cme:plugin/log": super::attack::cme::plugin::log,
        "cme:plugin/http": super::attack::cme::plugin::http,
    },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The three worlds of an older contract whose types keep the current ones' shape (the
/// host converts between them through serde), each world in a module of its own.
macro_rules! older_contract {
    ($path:literal) => {
        pub mod attack {
            wasmtime::component::bindgen!({
                world: "attack",
                path: $path,
                imports: { default: async | trappable },
                exports: { default: async },
                additional_derives: [serde::Serialize, serde::Deserialize],
            });
        }

        pub mod planner {
            wasmtime::component::bindgen!({
                world: "planner",
                path: $path,
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "cme:plugin/types": super::attack::cme::plugin::types,
                    "cme:plugin/log": super::attack::cme::plugin::log,
                },
                additional_derives: [serde::Serialize, serde::Deserialize],
            });
        }

        pub mod probe {
            wasmtime::component::bindgen!({
                world: "probe",
                path: $path,
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "cme:plugin/types": super::attack::cme::plugin::types,
                    "cme:plugin/log": super::attack::cme::plugin::log,
                    "cme:plugin/http": super::attack::cme::plugin::http,
                },
                additional_derives: [serde::Serialize, serde::Deserialize],
            });
        }
    };
}

/// `cme:plugin@0.3.0` (`wit/legacy/v0.3.0`), for components built against it: the same
/// worlds without 0.4.0's `compute`.
pub mod v0_3 {
    older_contract!("../../wit/legacy/v0.3.0");
}

/// `cme:plugin@0.2.0` (`wit/legacy/v0.2.0`), for components built against it: the same
/// worlds with the interfaces as they were before 0.3.0's reversible faults.
pub mod v0_2 {
    older_contract!("../../wit/legacy/v0.2.0");
}

/// `cme:plugin@0.1.0` (`wit/legacy/v0.1.0`), for components built against it: the same
/// interfaces under their 0.1.0 names, and the one-shot planner world.
pub mod legacy {
    pub mod attack {
        wasmtime::component::bindgen!({
            world: "attack",
            path: "../../wit/legacy/v0.1.0",
            imports: { default: async | trappable },
            exports: { default: async },
            additional_derives: [serde::Serialize, serde::Deserialize],
        });
    }

    pub mod planner {
        wasmtime::component::bindgen!({
            world: "planner",
            path: "../../wit/legacy/v0.1.0",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "cme:plugin/types": super::attack::cme::plugin::types,
                "cme:plugin/log": super::attack::cme::plugin::log,
            },
            additional_derives: [serde::Serialize, serde::Deserialize],
        });
    }
}

pub use attack::cme::plugin::types::{self as wit_types, HostError};
