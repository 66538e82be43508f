//! Why a plugin call produced no answer. Each costs the message an AE (the
//! sender may retry) naming the plugin; none affects other messages.

use std::time::Duration;

use super::limiter::MemoryLimitExceeded;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginFailure {
    #[error("plugin `{plugin}` ran past its deadline of {}", humantime::format_duration(*.limit))]
    Deadline { plugin: String, limit: Duration },
    #[error("plugin `{plugin}` {cause}")]
    Memory { plugin: String, cause: MemoryLimitExceeded },
    #[error("plugin `{plugin}` trapped: {detail}")]
    Trap { plugin: String, detail: String },
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
        let mut detail = match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        };
        // A Rust panic writes "thread '..' panicked at FILE:LINE:COL:" and
        // then its message on the next line: keep both, on one line.
        let said: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect();
        if !said.is_empty() {
            detail = format!("{detail} ({})", said.join(" "));
        }
        PluginFailure::Trap { plugin, detail }
    }
}
