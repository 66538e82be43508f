//! Writing to the engine's log. Lines are tagged with the plugin's name by
//! the host and end up in its tracing output; in unit tests they are
//! captured by [`crate::testing`] instead.
//!
//! Messages carry patient data: log what the plugin decided and why, not
//! field values, unless the level is `debug` or `trace`.

use crate::backend;

/// How much a line matters, from `trace` (noise) to `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

pub fn log(level: Level, text: impl AsRef<str>) {
    backend::log(level, text.as_ref());
}

pub fn trace(text: impl AsRef<str>) {
    log(Level::Trace, text);
}

pub fn debug(text: impl AsRef<str>) {
    log(Level::Debug, text);
}

pub fn info(text: impl AsRef<str>) {
    log(Level::Info, text);
}

pub fn warn(text: impl AsRef<str>) {
    log(Level::Warn, text);
}

pub fn error(text: impl AsRef<str>) {
    log(Level::Error, text);
}
