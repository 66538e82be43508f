//! Per-plugin memory limit. Growing past it traps at once with a typed error,
//! so the AE and the log can say "memory limit" rather than a bare trap.

use wasmtime::ResourceLimiter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("exceeded its memory limit: asked for {requested} bytes, the limit is {limit}")]
pub struct MemoryLimitExceeded {
    pub requested: usize,
    pub limit: usize,
}

/// Table elements a plugin may have (function references; a pointer each).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

pub struct MemoryLimiter {
    limit: usize,
    /// The most linear memory granted so far (summed over the instance's
    /// memories would be more exact; plugins have one).
    peak: usize,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> MemoryLimiter {
        MemoryLimiter { limit, peak: 0 }
    }

    /// The largest linear memory the instance has had, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested: desired, limit: self.limit }));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
