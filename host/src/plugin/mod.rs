//! Plugins: sandboxed WebAssembly components (the `sluice:plugin` WIT
//! package in `wit/`) that validate, route and deliver messages. `catalog`
//! holds what is loaded, `loader` compiles and type-checks, `instance` runs
//! one call under its deadline and memory limit, `watch` hot-reloads, `check` inspects a file for `sluice plugins check`.
//! `http` gates wasi:http by `allow.http`; `mllp_client` forwards for
//! connectors to the destinations in `allow.mllp`.

mod bindings;
mod builtin;
mod catalog;
mod check;
mod engine;
mod failure;
mod http;
mod https;
mod instance;
mod limiter;
mod loaded;
mod loader;
mod mllp_client;
mod priority;
mod state;
mod watch;

pub use bindings::types::{Delivery, Issue as PluginIssue, Verdict};
pub use check::{CheckReport, CheckRequest, check};
pub use catalog::{Catalog, LoadState, PluginSet, PluginStatus, STATUS_FILE, plugin_name};
pub use engine::PluginEngine;
pub use failure::PluginFailure;
pub use loaded::{MessageScope, Origin, Plugin, World};
pub use mllp_client::{Destination, MllpPool};
pub use watch::watch;

#[cfg(test)]
mod tests;
