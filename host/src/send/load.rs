//! Load mode: N connections, each sending one message at a time and waiting
//! for its ACK (as real MLLP senders do), until a message count or a
//! duration is reached. Every ACK is checked: MSA-1 AA/CA and MSA-2 equal to
//! the control ID sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{AckSummary, MllpClient, adt_a01};
use crate::tls::ClientTls;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub to: String,
    pub connections: usize,
    /// Stop after this many messages in all (if set).
    pub count: Option<u64>,
    /// Stop after this long (if set).
    pub duration: Option<Duration>,
    /// Size of the built-in ADT^A01 sample.
    pub size: usize,
    pub timeout: Duration,
    /// Connect over TLS with these settings.
    pub tls: Option<Arc<ClientTls>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub connections: usize,
    pub messages: u64,
    pub accepted: u64,
    /// ACKs other than AA/CA, or whose MSA-2 did not match.
    pub not_accepted: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub latency_us: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

struct Tally {
    latencies: Histogram<u64>,
    accepted: u64,
    not_accepted: u64,
    errors: u64,
}

pub async fn run_load(options: LoadOptions) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(options.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(options.count.is_some() || options.duration.is_some(), "load mode needs --count or --duration");
    // A run prefix keeps control IDs unique across runs (so none is a duplicate).
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() % 0xFFFF_FFFF);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = options.duration.map(|d| start + d);
    // Connections are spread over one single-threaded runtime per core: a
    // send and its ACK are handled on the same thread, so the generator adds
    // as few wake-ups as it can to the latency it measures.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(options.connections);
    let mut workers = Vec::new();
    for thread in 0..threads {
        let connections = (thread..options.connections).step_by(threads).count();
        let (options, next, run) = (options.clone(), next.clone(), run.clone());
        workers.push(std::thread::spawn(move || -> anyhow::Result<Vec<Tally>> {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async move {
                let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(worker(options.clone(), next.clone(), run.clone(), deadline))).collect();
                let mut tallies = Vec::new();
                for task in tasks {
                    tallies.push(task.await??);
                }
                Ok(tallies)
            })
        }));
    }
    let mut total = Tally { latencies: new_histogram(), accepted: 0, not_accepted: 0, errors: 0 };
    for worker in workers {
        let tallies = tokio::task::spawn_blocking(move || worker.join()).await?.map_err(|_| anyhow::anyhow!("a load worker panicked"))??;
        for tally in tallies {
            total.latencies.add(&tally.latencies)?;
            total.accepted += tally.accepted;
            total.not_accepted += tally.not_accepted;
            total.errors += tally.errors;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let messages = total.accepted + total.not_accepted;
    let h = &total.latencies;
    Ok(LoadReport {
        connections: options.connections,
        messages,
        accepted: total.accepted,
        not_accepted: total.not_accepted,
        errors: total.errors,
        seconds,
        per_second: messages as f64 / seconds,
        latency_us: Percentiles { p50: h.value_at_quantile(0.5), p90: h.value_at_quantile(0.9), p99: h.value_at_quantile(0.99), max: h.max() },
    })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

async fn worker(options: LoadOptions, next: Arc<AtomicU64>, run: String, deadline: Option<Instant>) -> anyhow::Result<Tally> {
    let mut tally = Tally { latencies: new_histogram(), accepted: 0, not_accepted: 0, errors: 0 };
    let mut client = MllpClient::connect_with(&options.to, options.tls.as_deref(), options.timeout).await?;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if options.count.is_some_and(|count| n >= count) {
            break;
        }
        let control_id = format!("L{run}-{n}");
        let message = adt_a01(&control_id, options.size);
        let sent = Instant::now();
        match client.send(&message).await {
            Ok(ack) => {
                tally.latencies.saturating_record(sent.elapsed().as_micros() as u64);
                match AckSummary::parse(&ack) {
                    Ok(summary) if summary.is_accept() && summary.control_id == control_id.as_bytes() => tally.accepted += 1,
                    _ => tally.not_accepted += 1,
                }
            }
            Err(err) => {
                tally.errors += 1;
                tracing::warn!(error = %err, "send failed; reconnecting");
                client = MllpClient::connect_with(&options.to, options.tls.as_deref(), options.timeout).await?;
            }
        }
    }
    Ok(tally)
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_us;
        writeln!(f, "connections  {}", self.connections)?;
        writeln!(f, "messages     {} ({} accepted, {} not accepted, {} errors)", self.messages, self.accepted, self.not_accepted, self.errors)?;
        writeln!(f, "duration     {:.2} s", self.seconds)?;
        writeln!(f, "throughput   {:.0} msg/s", self.per_second)?;
        write!(f, "ACK latency  p50 {} µs, p90 {} µs, p99 {} µs, max {} µs", l.p50, l.p90, l.p99, l.max)
    }
}
