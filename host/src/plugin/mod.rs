//! Plugins: sandboxed WebAssembly components (the `sluice:plugin` WIT
//! package in `wit/`) that validate, route and deliver messages. `catalog`
//! holds what is loaded, `loader` compiles and type-checks, `instance` runs
//! one call under its deadline and memory limit, `watch` hot-reloads.

mod bindings;
mod builtin;
mod catalog;
mod engine;
mod failure;
mod instance;
mod limiter;
mod loaded;
mod loader;
mod state;
mod watch;

pub use bindings::types::{Delivery, Issue as PluginIssue, Verdict};
pub use catalog::{Catalog, LoadState, PluginSet, PluginStatus, STATUS_FILE, plugin_name};
pub use engine::PluginEngine;
pub use failure::PluginFailure;
pub use loaded::{MessageScope, Origin, Plugin, World};
pub use watch::watch;

#[cfg(test)]
mod tests;
