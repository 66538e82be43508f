//! The journal benchmark, in one run on one machine, against the real
//! `sluice serve` binary loaded by the `sluice send` load generator:
//! (a) durable throughput with the journal on and off (two servers, loads
//!     interleaved so both see the same disk), 1 and 32 connections;
//! (b) the journal-on server filled to `JOURNAL_MESSAGES` messages (default
//!     1 000 000), then 1 000 searches each by control ID and by patient
//!     (PID-3.1) through the admin API, latency p50/p99 as a client sees it
//!     (HTTP round trip included);
//! (c) the journal's bytes on disk per message.
//!
//! `BENCH_SECONDS` sets the measuring time per throughput run (default 10).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice::send::{LoadOptions, LoadReport, run_load};

struct Server {
    child: Child,
    mllp: String,
    admin: String,
}

fn start(dir: &Path, journal: bool) -> anyhow::Result<Server> {
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[journal]\nenabled = {journal}\n[connectors.lab]\n[connectors.archive]\n",
            dir.join("data").display().to_string()
        ),
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(&config).stdout(Stdio::piped()).spawn()?;
    let (mut mllp, mut admin) = (String::new(), String::new());
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("sluice admin on ") {
            admin = addr.to_string();
        }
        if let Some(addr) = line.strip_prefix("sluice listening on ") {
            mllp = addr.to_string();
            break;
        }
    }
    Ok(Server { child, mllp, admin })
}

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let total: u64 = std::env::var("JOURNAL_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let (on_dir, off_dir) = (scratch.path().join("on"), scratch.path().join("off"));
    std::fs::create_dir_all(&on_dir)?;
    std::fs::create_dir_all(&off_dir)?;
    let mut on = start(&on_dir, true)?;
    let mut off = start(&off_dir, false)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let load = |to: &str, connections: usize, duration: Option<Duration>, count: Option<u64>| LoadOptions {
        to: to.to_string(),
        connections,
        count,
        duration,
        size: 1024,
        timeout: Duration::from_secs(30),
        tls: None,
    };
    let run = |options: LoadOptions| -> anyhow::Result<LoadReport> {
        let report = runtime.block_on(run_load(options))?;
        anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
        Ok(report)
    };

    println!("## Durable ingest with the journal on and off (1 KB ADT^A01, 2 connectors, {seconds} s per run)\n");
    println!("| connections | journal off msg/s | journal on msg/s | ratio | off p50 / p99 | on p50 / p99 |");
    println!("|---|---|---|---|---|---|");
    let mut sent = 0u64;
    for connections in [1usize, 32] {
        run(load(&off.mllp, connections, Some(Duration::from_secs(1)), None))?;
        sent += run(load(&on.mllp, connections, Some(Duration::from_secs(1)), None))?.messages;
        let half = Some(Duration::from_secs(seconds.div_ceil(2)));
        let (f1, n1, f2, n2) = (
            run(load(&off.mllp, connections, half, None))?,
            run(load(&on.mllp, connections, half, None))?,
            run(load(&off.mllp, connections, half, None))?,
            run(load(&on.mllp, connections, half, None))?,
        );
        sent += n1.messages + n2.messages;
        let (f, n) = ((f1.per_second + f2.per_second) / 2.0, (n1.per_second + n2.per_second) / 2.0);
        println!(
            "| {connections} | {f:.0} | {n:.0} | {:.2} | {} / {} µs | {} / {} µs |",
            n / f,
            f1.latency_us.p50.max(f2.latency_us.p50),
            f1.latency_us.p99.max(f2.latency_us.p99),
            n1.latency_us.p50.max(n2.latency_us.p50),
            n1.latency_us.p99.max(n2.latency_us.p99)
        );
    }
    off.child.kill()?;
    off.child.wait()?;

    let fill_started = Instant::now();
    if total > sent {
        run(load(&on.mllp, 32, None, Some(total - sent)))?;
    }
    let fill = fill_started.elapsed();
    let http: ureq::Agent = ureq::Agent::config_builder().proxy(None).timeout_global(Some(Duration::from_secs(30))).build().into();
    let get = |path: &str| -> anyhow::Result<serde_json::Value> {
        let mut response = http.get(format!("http://{}{path}", on.admin)).call()?;
        Ok(serde_json::from_reader(response.body_mut().as_reader())?)
    };

    // Control IDs and patients to look for: one message at each of 1 000 random moments of the fill.
    let newest = get("/api/messages?limit=1")?["messages"][0]["received_at_ms"].as_u64().unwrap_or(0);
    let span_ms = fill.as_millis() as u64 + 4 * seconds * 1000;
    let mut samples = Vec::new();
    for _ in 0..1000 {
        let at = newest.saturating_sub(fastrand::u64(0..span_ms));
        let found = get(&format!("/api/messages?limit=1&to_ms={at}"))?;
        if let Some(m) = found["messages"].get(0) {
            samples.push((m["control_id"].as_str().unwrap_or("").to_string(), m["patient_id"].as_str().unwrap_or("").to_string()));
        }
    }
    anyhow::ensure!(!samples.is_empty(), "no messages found to search for");
    let timed = |key: &str, pick: fn(&(String, String)) -> &str| -> anyhow::Result<(Duration, Duration)> {
        let mut latencies = Vec::new();
        for sample in &samples {
            let started = Instant::now();
            let found = get(&format!("/api/messages?{key}={}&limit=10", pick(sample)))?;
            latencies.push(started.elapsed());
            anyhow::ensure!(found["messages"].as_array().is_some_and(|m| !m.is_empty()), "{key}={} found nothing", pick(sample));
        }
        latencies.sort();
        Ok((latencies[latencies.len() / 2], latencies[latencies.len() * 99 / 100]))
    };
    let (by_id_p50, by_id_p99) = timed("control_id", |s| &s.0)?;
    let (by_patient_p50, by_patient_p99) = timed("patient", |s| &s.1)?;
    let metrics = http.get(format!("http://{}/metrics", on.admin)).call()?.body_mut().read_to_string()?;
    let journal_bytes: f64 =
        metrics.lines().find(|l| l.starts_with("sluice_journal_bytes ")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0.0);
    let stored = total.max(sent);

    println!("\n## Search on a journal of {stored} messages (filled with 32 connections in {:.0} s; 1 000 searches each, over HTTP)\n", fill.as_secs_f64());
    println!("| search | p50 | p99 |\n|---|---|---|");
    println!("| by control ID | {} µs | {} µs |", by_id_p50.as_micros(), by_id_p99.as_micros());
    println!("| by patient (PID-3.1) | {} µs | {} µs |", by_patient_p50.as_micros(), by_patient_p99.as_micros());
    println!(
        "\njournal on disk: {:.0} MiB, {:.0} bytes per message (1 KB messages; the body is about 1.1 KB of it)",
        journal_bytes / 1048576.0,
        journal_bytes / stored as f64
    );
    on.child.kill()?;
    on.child.wait()?;
    Ok(())
}
