//! Host bindings for the three worlds of `sluice:plugin` (wit/). The shared
//! interfaces (types, message, host) are generated once, with the validator
//! world, and reused by the router and connector worlds.

pub mod validator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "validator",
        imports: { default: trappable },
        exports: { default: async },
        with: { "sluice:plugin/message.message": crate::plugin::state::MessageRef },
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "router",
        imports: { default: trappable },
        exports: { default: async },
        with: { "sluice:plugin": super::validator::sluice::plugin },
    });
}

pub mod connector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        imports: { default: trappable, "sluice:plugin/mllp.send": async | trappable },
        exports: { default: async },
        with: {
            "sluice:plugin/types": super::validator::sluice::plugin::types,
            "sluice:plugin/message": super::validator::sluice::plugin::message,
            "sluice:plugin/host": super::validator::sluice::plugin::host,
        },
    });
}

pub use connector::sluice::plugin::mllp;
pub use validator::sluice::plugin::{host, message, types};
