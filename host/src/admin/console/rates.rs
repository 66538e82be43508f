//! What the console's live chart draws: messages answered per second, by
//! what the sender got, over the last 15 minutes; and each connector's
//! delivery rate over the last minute. Sampled once a second from the
//! counters the server keeps anyway, so a page opened now still sees the
//! last 15 minutes, and the hot path pays nothing for it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::outbox::{Queues, now_ms};

/// What a sender can get: the six MSA-1 codes, nothing (`ack_mode = "none"`),
/// or a closed connection (`on_reject`/`on_error = "close"`).
pub const ANSWERS: [&str; 8] = ["AA", "AE", "AR", "CA", "CE", "CR", "none", "closed"];

/// Seconds the chart covers.
const WINDOW: usize = 15 * 60;

/// Seconds a connector's delivery rate is averaged over.
const DELIVERY_WINDOW: usize = 60;

/// The series, oldest second first; each holds one count per second.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerSeries {
    pub step_ms: u64,
    /// The end of the newest second sampled (Unix ms).
    pub end_ms: u64,
    pub answers: BTreeMap<&'static str, Vec<u32>>,
}

#[derive(Default)]
struct Samples {
    /// Counter values at the last sample, in [`ANSWERS`] order.
    last: Option<[u64; ANSWERS.len()]>,
    end_ms: u64,
    per_second: VecDeque<[u32; ANSWERS.len()]>,
    /// Each connector's delivered total at each of the last samples.
    delivered: VecDeque<BTreeMap<String, u64>>,
}

#[derive(Default)]
pub struct Rates {
    samples: Mutex<Samples>,
}

impl Rates {
    /// Samples every second until `stop`.
    pub fn start(self: &Arc<Self>, metrics: Arc<Metrics>, queues: Queues, stop: CancellationToken) {
        let rates = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // A late tick (a busy machine) is one longer second, not a burst of catch-up samples.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {
                        let delivered = queues.deliveries().into_iter().map(|d| (d.connector, d.delivered)).collect();
                        rates.sample(&metrics, delivered, now_ms());
                    }
                }
            }
        });
    }

    fn sample(&self, metrics: &Metrics, delivered: BTreeMap<String, u64>, now_ms: u64) {
        let mut counts = [0u64; ANSWERS.len()];
        for (slot, counter) in counts.iter_mut().zip(&metrics.acks) {
            *slot = counter.get();
        }
        counts[6] = metrics.acks_suppressed.get();
        counts[7] = metrics.nacks_closed.get();
        let mut samples = self.lock();
        if let Some(last) = samples.last {
            let mut second = [0u32; ANSWERS.len()];
            for ((slot, now), before) in second.iter_mut().zip(counts).zip(last) {
                *slot = u32::try_from(now.saturating_sub(before)).unwrap_or(u32::MAX);
            }
            if samples.per_second.len() == WINDOW {
                samples.per_second.pop_front();
            }
            samples.per_second.push_back(second);
        }
        samples.last = Some(counts);
        samples.end_ms = now_ms;
        if samples.delivered.len() > DELIVERY_WINDOW {
            samples.delivered.pop_front();
        }
        samples.delivered.push_back(delivered);
    }

    /// The last 15 minutes (less just after start-up).
    pub fn answers(&self) -> AnswerSeries {
        let samples = self.lock();
        let answers = ANSWERS.iter().enumerate().map(|(i, name)| (*name, samples.per_second.iter().map(|second| second[i]).collect())).collect();
        AnswerSeries { step_ms: 1000, end_ms: samples.end_ms, answers }
    }

    /// Messages per second `connector` delivered over the last minute
    /// (less just after start-up); 0 before two samples.
    pub fn delivery_rate(&self, connector: &str) -> f64 {
        let samples = self.lock();
        let (Some(first), Some(last)) = (samples.delivered.front(), samples.delivered.back()) else { return 0.0 };
        let seconds = samples.delivered.len().saturating_sub(1);
        if seconds == 0 {
            return 0.0;
        }
        let now = last.get(connector).copied().unwrap_or(0);
        let then = first.get(connector).copied().unwrap_or(0);
        now.saturating_sub(then) as f64 / seconds as f64
    }

    fn lock(&self) -> MutexGuard<'_, Samples> {
        self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckCode;

    #[test]
    fn each_second_counts_what_was_answered_in_it() {
        let (metrics, rates) = (Metrics::default(), Rates::default());
        rates.sample(&metrics, BTreeMap::new(), 1_000);
        for _ in 0..3 {
            metrics.record_ack(Some(AckCode::AA));
        }
        metrics.record_ack(Some(AckCode::AR));
        rates.sample(&metrics, BTreeMap::new(), 2_000);
        metrics.record_ack(None);
        metrics.nacks_closed.inc();
        rates.sample(&metrics, BTreeMap::new(), 3_000);
        let series = rates.answers();
        assert_eq!(series.end_ms, 3_000);
        assert_eq!(series.answers["AA"], [3, 0]);
        assert_eq!(series.answers["AR"], [1, 0]);
        assert_eq!(series.answers["none"], [0, 1]);
        assert_eq!(series.answers["closed"], [0, 1]);
        assert_eq!(series.answers["CE"], [0, 0]);
    }

    #[test]
    fn the_chart_keeps_fifteen_minutes() {
        let (metrics, rates) = (Metrics::default(), Rates::default());
        for second in 0..(WINDOW as u64 + 10) {
            metrics.record_ack(Some(AckCode::AA));
            rates.sample(&metrics, BTreeMap::new(), second * 1000);
        }
        let series = rates.answers();
        assert_eq!(series.answers["AA"].len(), WINDOW);
        assert!(series.answers["AA"].iter().all(|&n| n == 1));
    }

    #[test]
    fn the_delivery_rate_is_the_last_minutes_average() {
        let (metrics, rates) = (Metrics::default(), Rates::default());
        assert_eq!(rates.delivery_rate("lab"), 0.0, "no samples yet");
        for second in 0..=120u64 {
            // `lab` delivers 5 a second for the first minute, then 2.
            let lab = if second <= 60 { second * 5 } else { 300 + (second - 60) * 2 };
            rates.sample(&metrics, BTreeMap::from([("lab".to_string(), lab)]), second * 1000);
        }
        assert_eq!(rates.delivery_rate("lab"), 2.0);
        assert_eq!(rates.delivery_rate("archive"), 0.0, "a connector that never delivered");
    }
}
