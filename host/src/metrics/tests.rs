//! The exposed series: names, labels and values as Prometheus reads them.

use std::time::Duration;

use super::*;

#[test]
fn ack_codes_index_their_own_counter() {
    for (i, code) in ACK_CODES.into_iter().enumerate() {
        assert_eq!(code as usize, i, "{}", code.as_str());
    }
}

#[test]
fn every_series_is_exposed_with_help_and_labels() {
    let metrics = Metrics::default();
    metrics.record_ack(Some(AckCode::AA));
    metrics.record_ack(Some(AckCode::AA));
    metrics.record_ack(Some(AckCode::AR));
    metrics.record_ack(None);
    metrics.frames.inc();
    metrics.bytes_in.add(300);
    metrics.connections_open.inc();
    metrics.ack_latency.observe(Duration::from_micros(700));
    metrics.observe_plugin_call("require-fields", "validator", Duration::from_micros(40));
    metrics.record_attempt("lab", AttemptResult::Delivered);
    metrics.record_attempt("lab", AttemptResult::Retry);
    metrics.record_attempt("lab", AttemptResult::Retry);
    metrics.observe_delivery_latency("lab", Duration::from_millis(20));
    metrics.set_queue_depths(&[QueueDepth { connector: "lab".into(), outbox: 7, dead_letter: 2 }]);

    let text = metrics.encode();
    for line in [
        "# HELP sluice_acks ACKs sent, by MSA-1 code.",
        "sluice_acks_total{code=\"AA\"} 2",
        "sluice_acks_total{code=\"AR\"} 1",
        "sluice_acks_total{code=\"CR\"} 0",
        "sluice_messages_without_ack_total 1",
        "sluice_duplicates_total 0",
        "sluice_frames_total 1",
        "sluice_received_bytes_total 300",
        "sluice_sent_bytes_total 0",
        "sluice_ignored_bytes_total 0",
        "sluice_oversized_frames_total 0",
        "sluice_frame_timeouts_total 0",
        "sluice_idle_timeouts_total 0",
        "sluice_connections_open 1",
        "sluice_connections_accepted_total 0",
        "sluice_connections_refused_total 0",
        "# TYPE sluice_ack_latency_seconds histogram",
        "sluice_ack_latency_seconds_bucket{le=\"0.0005\"} 0",
        "sluice_ack_latency_seconds_bucket{le=\"0.001\"} 1",
        "sluice_ack_latency_seconds_bucket{le=\"+Inf\"} 1",
        "sluice_ack_latency_seconds_count 1",
        "sluice_plugin_call_duration_seconds_count{plugin=\"require-fields\",world=\"validator\"} 1",
        "sluice_delivery_attempts_total{connector=\"lab\",result=\"delivered\"} 1",
        "sluice_delivery_attempts_total{connector=\"lab\",result=\"retry\"} 2",
        "sluice_delivery_latency_seconds_count{connector=\"lab\"} 1",
        "sluice_outbox_depth{connector=\"lab\"} 7",
        "sluice_dead_letter_depth{connector=\"lab\"} 2",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }
    assert_eq!(metrics.ack_count(AckCode::AA), 2);
}
