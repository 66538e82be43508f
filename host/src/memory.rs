//! Gives memory freed after a connection storm back to the system. glibc's
//! allocator keeps freed pages in each thread's arena for reuse, so after a
//! thousand connections close the process would stay at its peak; trimming
//! once the open connections have fallen makes the resident size follow
//! the load down. Other allocators return memory themselves.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the open connection count is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Connections that must have closed since the last trim to trim again.
const CLOSED_BEFORE_TRIM: u64 = 32;

/// Trims once [`CLOSED_BEFORE_TRIM`] connections or more have closed since
/// the last trim (at most once per check, so a sender that connects for
/// each message costs a trim every 2 seconds at most), until `stop`.
pub fn trim_after_storms(metrics: Arc<Metrics>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closed = || metrics.connections_accepted.get().saturating_sub(metrics.connections_open.get().max(0) as u64);
        let mut closed_at_last_trim = closed();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let closed_now = closed();
            if closed_now.saturating_sub(closed_at_last_trim) >= CLOSED_BEFORE_TRIM {
                closed_at_last_trim = closed_now;
                // Walks the heap: off the runtime threads.
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
                metrics.memory_trims.inc();
            }
        }
    })
}

/// Returns free heap pages to the system (glibc only; elsewhere nothing to do).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps no padding.
    unsafe {
        libc::malloc_trim(0);
    }
}
