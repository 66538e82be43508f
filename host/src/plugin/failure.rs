//! Why a plugin call produced no answer. Each costs the message an AE (the
//! sender may retry) naming the plugin; none affects other messages.

use std::time::Duration;

use super::limiter::MemoryLimitExceeded;
use crate::logging::Phi;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginFailure {
    #[error("plugin `{plugin}` ran past its deadline of {}", humantime::format_duration(*.limit))]
    Deadline { plugin: String, limit: Duration },
    #[error("plugin `{plugin}` {cause}")]
    Memory { plugin: String, cause: MemoryLimitExceeded },
    /// `said`: what the plugin wrote to stderr before it failed (a panic
    /// message), which may quote the message; empty when nothing.
    #[error("plugin `{plugin}` trapped: {detail}{}", parenthesised(said))]
    Trap { plugin: String, detail: String, said: String },
}

fn parenthesised(said: &str) -> String {
    if said.is_empty() { String::new() } else { format!(" ({said})") }
}

/// Marks an epoch deadline reached, so it is told apart from other traps.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("deadline reached")]
pub(super) struct DeadlineReached;

impl PluginFailure {
    /// Classifies the error of a failed call. `stderr` is what the plugin
    /// wrote before failing (a Rust panic message, for instance).
    pub(super) fn from_error(plugin: &str, limit: Duration, err: &wasmtime::Error, stderr: String) -> PluginFailure {
        let plugin = plugin.to_string();
        if err.downcast_ref::<DeadlineReached>().is_some() {
            return PluginFailure::Deadline { plugin, limit };
        }
        if let Some(cause) = err.downcast_ref::<MemoryLimitExceeded>() {
            return PluginFailure::Memory { plugin, cause: *cause };
        }
        let detail = match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        };
        // A Rust panic writes "thread '..' panicked at FILE:LINE:COL:" and
        // then its message on the next line: keep both, on one line.
        let said = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect::<Vec<_>>().join(" ");
        PluginFailure::Trap { plugin, detail, said }
    }

    /// The failure as a log line: whole, but for what the plugin said,
    /// which is patient data as far as the engine knows ([`Phi`]). The
    /// sender's AE carries it all ([`std::fmt::Display`]).
    pub fn for_log(&self) -> String {
        match self {
            PluginFailure::Trap { plugin, detail, said } if !said.is_empty() => format!("plugin `{plugin}` trapped: {detail} ({})", Phi(said)),
            other => other.to_string(),
        }
    }
}
