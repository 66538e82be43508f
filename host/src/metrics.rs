//! Process-wide counters: what the listener and the pipeline saw. Read by the
//! shutdown summary now and by the admin endpoint later.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ack::AckCode;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_open: Counter,
    pub connections_accepted: Counter,
    /// Closed at once because `max_connections` were open.
    pub connections_refused: Counter,
    pub frames: Counter,
    /// Bytes outside frames (and of abandoned frames), ignored.
    pub ignored_bytes: Counter,
    pub oversized_frames: Counter,
    pub frame_timeouts: Counter,
    pub idle_timeouts: Counter,
    pub duplicates: Counter,
    /// ACKs sent, by MSA-1 code, in [`AckCode`] order; and messages answered with none.
    pub acks: [Counter; 6],
    pub acks_suppressed: Counter,
}

impl Metrics {
    pub fn record_ack(&self, code: Option<AckCode>) {
        match code {
            Some(code) => self.acks[code as usize].inc(),
            None => self.acks_suppressed.inc(),
        }
    }

    pub fn ack_count(&self, code: AckCode) -> u64 {
        self.acks[code as usize].get()
    }
}

/// The outcome of one delivery attempt, as counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// The plugin asked for a retry.
    Retry,
    /// The plugin refused the message for good (dead-lettered).
    Rejected,
    /// The plugin trapped, ran out of time or memory, or the attempt timed out.
    Failed,
}

impl Metrics {
    pub fn record_attempt(&self, _connector: &str, _result: AttemptResult) {}

    /// Time from the message's ACK (its durable write) to its delivery.
    pub fn observe_delivery_latency(&self, _connector: &str, _latency: std::time::Duration) {}

    /// One call into a plugin, instantiation included. `world`: validator, router or connector.
    pub fn observe_plugin_call(&self, _plugin: &str, _world: &str, _elapsed: std::time::Duration) {}
}
