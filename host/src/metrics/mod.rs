//! Process-wide metrics: what the listener, the pipeline, the plugins and
//! the delivery workers saw, exposed as Prometheus series `sluice_*` by the
//! admin endpoint and read by the shutdown summary. Counters on the message
//! path are single atomics (no lock, no allocation); labelled series are
//! looked up by `&str` once they exist.

mod family;
mod histogram;

use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::ack::AckCode;
use crate::outbox::QueueDepth;

pub use family::Family;
pub use histogram::{ACK_BUCKETS, DELIVERY_BUCKETS, Histogram, PLUGIN_BUCKETS};

/// A monotonic count, shared with the registry that exposes it.
#[derive(Debug, Clone, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter);

impl Counter {
    pub fn inc(&self) {
        self.0.inc();
    }

    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for Counter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Counter {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// ACK codes in declaration order, so that `code as usize` indexes [`Metrics::acks`].
const ACK_CODES: [AckCode; 6] = [AckCode::AA, AckCode::AE, AckCode::AR, AckCode::CA, AckCode::CE, AckCode::CR];

#[derive(Debug)]
pub struct Metrics {
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
    /// Closed at once because `max_connections` were open.
    pub connections_refused: Counter,
    /// TLS handshakes that failed or timed out (a client without a valid
    /// certificate under mutual TLS, plain TCP on the TLS port, ...).
    pub tls_handshake_failures: Counter,
    /// Certificate reloads (SIGHUP) refused because the new files were bad.
    pub tls_reload_failures: Counter,
    /// Configuration reloads applied, and refused (the running one stayed).
    pub config_reloads: Counter,
    pub config_reload_failures: Counter,
    pub frames: Counter,
    /// Bytes read from peers.
    pub bytes_in: Counter,
    /// Bytes of ACKs written (MLLP envelope included).
    pub bytes_out: Counter,
    /// Bytes outside frames (and of abandoned frames), ignored.
    pub ignored_bytes: Counter,
    pub oversized_frames: Counter,
    pub frame_timeouts: Counter,
    pub idle_timeouts: Counter,
    pub duplicates: Counter,
    /// ACKs sent, by MSA-1 code, in [`AckCode`] order; and messages answered with none.
    pub acks: [Counter; 6],
    pub acks_suppressed: Counter,
    /// Messages not accepted whose connection was closed instead of a NACK (sender policy).
    pub nacks_closed: Counter,
    /// Times freed memory was returned to the system after connections closed.
    pub memory_trims: Counter,
    /// Bytes the journal takes on disk (set at scrape time).
    pub journal_bytes: Gauge,
    /// From a frame's last byte read to its ACK written.
    pub ack_latency: Histogram,
    plugin_calls: Family<Histogram>,
    attempts: Family<Counter>,
    delivery_latency: Family<Histogram>,
    outbox_depth: Family<Gauge>,
    dead_letter_depth: Family<Gauge>,
    interface_messages: Family<Counter>,
    interface_bytes: Family<Counter>,
    interface_connections: Family<Gauge>,
    interface_refused: Family<Counter>,
    interface_last_message: Family<Gauge>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sluice");
        let acks_by_code: Family<Counter> = Family::new(&["code"], Counter::default);
        // The per-code counters are the family's own series, so counting an ACK is one atomic add.
        let acks = ACK_CODES.map(|code| acks_by_code.with(code.as_str(), "", Counter::clone));
        let metrics = Metrics {
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
            tls_handshake_failures: Counter::default(),
            tls_reload_failures: Counter::default(),
            config_reloads: Counter::default(),
            config_reload_failures: Counter::default(),
            frames: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            ignored_bytes: Counter::default(),
            oversized_frames: Counter::default(),
            frame_timeouts: Counter::default(),
            idle_timeouts: Counter::default(),
            duplicates: Counter::default(),
            acks,
            acks_suppressed: Counter::default(),
            nacks_closed: Counter::default(),
            memory_trims: Counter::default(),
            journal_bytes: Gauge::default(),
            ack_latency: Histogram::new(ACK_BUCKETS),
            plugin_calls: Family::new(&["plugin", "world"], || Histogram::new(PLUGIN_BUCKETS)),
            attempts: Family::new(&["connector", "result"], Counter::default),
            delivery_latency: Family::new(&["connector"], || Histogram::new(DELIVERY_BUCKETS)),
            outbox_depth: Family::new(&["connector"], Gauge::default),
            dead_letter_depth: Family::new(&["connector"], Gauge::default),
            interface_messages: Family::new(&["interface", "sender", "answer"], Counter::default),
            interface_bytes: Family::new(&["interface", "sender", "answer"], Counter::default),
            interface_connections: Family::new(&["interface"], Gauge::default),
            interface_refused: Family::new(&["interface"], Counter::default),
            interface_last_message: Family::new(&["interface"], Gauge::default),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("acks", "ACKs sent, by MSA-1 code", acks_by_code);
        r.register("messages_without_ack", "Messages answered with no ACK (ACK policy or MSH-15/16)", metrics.acks_suppressed.clone());
        r.register("duplicates", "Retransmissions answered with the stored ACK instead of being stored again", metrics.duplicates.clone());
        r.register("frames", "MLLP frames received", metrics.frames.clone());
        r.register_with_unit("received", "Bytes read from MLLP peers", Unit::Bytes, metrics.bytes_in.clone());
        r.register_with_unit("sent", "Bytes of ACKs written to MLLP peers", Unit::Bytes, metrics.bytes_out.clone());
        r.register_with_unit("ignored", "Bytes outside MLLP frames, ignored", Unit::Bytes, metrics.ignored_bytes.clone());
        r.register("oversized_frames", "Frames refused for exceeding max_frame_size", metrics.oversized_frames.clone());
        r.register("frame_timeouts", "Frames not completed within frame_timeout", metrics.frame_timeouts.clone());
        r.register("idle_timeouts", "Connections closed after idle_timeout without a frame", metrics.idle_timeouts.clone());
        r.register("connections_open", "MLLP connections open now", metrics.connections_open.clone());
        r.register("connections_accepted", "MLLP connections accepted", metrics.connections_accepted.clone());
        r.register("connections_refused", "MLLP connections refused because max_connections were open", metrics.connections_refused.clone());
        r.register("tls_handshake_failures", "TLS handshakes on the MLLP listener that failed or timed out", metrics.tls_handshake_failures.clone());
        r.register(
            "tls_reload_failures",
            "Certificate reloads refused because the new files were bad (the old ones keep serving)",
            metrics.tls_reload_failures.clone(),
        );
        r.register("config_reloads", "Configuration reloads applied (SIGHUP or a config file change)", metrics.config_reloads.clone());
        r.register("config_reload_failures", "Configuration reloads refused; the running configuration stayed", metrics.config_reload_failures.clone());
        r.register_with_unit("ack_latency", "Time from a frame's last byte read to its ACK written", Unit::Seconds, metrics.ack_latency.clone());
        r.register_with_unit("plugin_call_duration", "One plugin call, instantiation included", Unit::Seconds, metrics.plugin_calls.clone());
        r.register("delivery_attempts", "Delivery attempts by connector and result (delivered, retry, rejected, failed)", metrics.attempts.clone());
        r.register_with_unit("delivery_latency", "Time from a message's ACK to its delivery", Unit::Seconds, metrics.delivery_latency.clone());
        r.register("outbox_depth", "Messages waiting in a connector's outbox", metrics.outbox_depth.clone());
        r.register("dead_letter_depth", "Messages in a connector's dead-letter queue", metrics.dead_letter_depth.clone());
        r.register_with_unit("journal", "Bytes the message journal takes on disk (files and memtables)", Unit::Bytes, metrics.journal_bytes.clone());
        r.register("nacks_closed", "Messages not accepted whose connection was closed instead of a NACK (sender policy)", metrics.nacks_closed.clone());
        r.register("memory_trims", "Times freed memory was returned to the system after connections closed", metrics.memory_trims.clone());
        r.register(
            "interface_messages",
            "Messages per interface and sender (MSH-3^MSH-4), by what the sender got: the ACK code, none, closed",
            metrics.interface_messages.clone(),
        );
        r.register_with_unit(
            "interface_received",
            "Message bytes per interface and sender, by what the sender got",
            Unit::Bytes,
            metrics.interface_bytes.clone(),
        );
        r.register("interface_connections_open", "MLLP connections open now, per interface", metrics.interface_connections.clone());
        r.register("interface_connections_refused", "Connections refused because the interface's max_connections were open", metrics.interface_refused.clone());
        r.register(
            "interface_last_message_timestamp_seconds",
            "When the interface last received a message (Unix time)",
            metrics.interface_last_message.clone(),
        );
        Metrics { registry, ..metrics }
    }
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

    /// Sets the queue depth gauges; called just before a scrape encodes them.
    pub fn set_queue_depths(&self, depths: &[QueueDepth]) {
        for depth in depths {
            self.outbox_depth.with(&depth.connector, "", |g| g.set(clamp(depth.outbox)));
            self.dead_letter_depth.with(&depth.connector, "", |g| g.set(clamp(depth.dead_letter)));
        }
    }

    /// Every series in the OpenMetrics text format (which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; the encoders only pass on the writer's errors.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// An open connection, counted in its interface's gauge while it lives.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

impl AttemptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Delivered => "delivered",
            AttemptResult::Retry => "retry",
            AttemptResult::Rejected => "rejected",
            AttemptResult::Failed => "failed",
        }
    }
}

impl Metrics {
    pub fn record_attempt(&self, connector: &str, result: AttemptResult) {
        self.attempts.with(connector, result.as_str(), Counter::inc);
    }

    /// Time from the message's ACK (its durable write) to its delivery.
    pub fn observe_delivery_latency(&self, connector: &str, latency: Duration) {
        self.delivery_latency.with(connector, "", |h| h.observe(latency));
    }

    /// One message on an interface: counted by sender and by what the sender got.
    pub fn record_interface_message(&self, interface: &str, sender: &str, answer: &str, bytes: usize) {
        self.interface_messages.with3(interface, sender, answer, Counter::inc);
        self.interface_bytes.with3(interface, sender, answer, |c| c.add(bytes as u64));
        let now = crate::outbox::now_ms() as i64 / 1000;
        self.interface_last_message.with(interface, "", |g| g.set(now));
    }

    pub fn interface_refused(&self, interface: &str) {
        self.interface_refused.with(interface, "", Counter::inc);
    }

    /// Counts an open connection of `interface` until the guard is dropped.
    pub fn interface_connected(&self, interface: &str) -> OpenConnection {
        let gauge = self.interface_connections.with(interface, "", Gauge::clone);
        gauge.inc();
        OpenConnection(gauge)
    }

    /// One call into a plugin, instantiation included. `world`: validator, router or connector.
    pub fn observe_plugin_call(&self, plugin: &str, world: &str, elapsed: Duration) {
        self.plugin_calls.with(plugin, world, |h| h.observe(elapsed));
    }
}

#[cfg(test)]
mod tests;
