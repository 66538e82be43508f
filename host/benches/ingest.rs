//! The ingest benchmark, in one run on one machine:
//! (a) the cost of one small append + fdatasync and of one loopback round
//!     trip (1 KB out, 100 B back), medians;
//! (b) the real `sluice serve` binary with 2 connectors, loaded by the
//!     `sluice send` load generator (same machine) with 1, 8 and 32
//!     connections sending 1 KB ADT^A01 messages, each waiting for its ACK.
//! Each figure is printed beside its physical bound:
//! N connections / (fsync + round trip), since one fsync can commit one
//! message per connection at best.
//!
//! `BENCH_SECONDS` sets the measuring time per run (default 10).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice::send::{LoadOptions, run_load};

const SAMPLES: usize = 2000;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;

    let fsync = median(fsync_samples(scratch.path())?);
    let rtt = median(round_trip_samples()?);
    println!("## Physical bounds (medians of {SAMPLES})\n");
    println!("| what | median |\n|---|---|");
    println!("| append 100 B + fdatasync | {} µs |", fsync.as_micros());
    println!("| loopback round trip (1 KB → 100 B) | {} µs |", rtt.as_micros());
    let per_message = fsync + rtt;
    println!("| bound for 1 connection: 1/(fsync + round trip) | {:.0} msg/s |\n", 1.0 / per_message.as_secs_f64());

    let data = scratch.path().join("data");
    let config = scratch.path().join("bench.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n[connectors.lab]\n[connectors.archive]\n", data.display().to_string()))?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(&config).stdout(Stdio::piped()).spawn()?;
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("piped")).read_line(&mut ready)?;
    let addr = ready.trim().strip_prefix("sluice listening on ").ok_or_else(|| anyhow::anyhow!("unexpected: {ready}"))?.to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("## Sluice durable ingest (1 KB ADT^A01, 2 connectors, {seconds} s per run)\n");
    println!("| connections | msg/s | bound msg/s | ratio | ACK p50 | ACK p99 | p50 / (fsync + rtt) |");
    println!("|---|---|---|---|---|---|---|");
    for connections in [1usize, 8, 32] {
        let load = |duration| LoadOptions { to: addr.clone(), connections, count: None, duration: Some(duration), size: 1024, timeout: Duration::from_secs(30), tls: None };
        runtime.block_on(run_load(load(Duration::from_secs(1))))?; // warm-up
        let report = runtime.block_on(run_load(load(Duration::from_secs(seconds))))?;
        anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
        let bound = connections as f64 / per_message.as_secs_f64();
        println!(
            "| {connections} | {:.0} | {:.0} | {:.2} | {} µs | {} µs | {:.2} |",
            report.per_second,
            bound,
            report.per_second / bound,
            report.latency_us.p50,
            report.latency_us.p99,
            report.latency_us.p50 as f64 / per_message.as_micros() as f64
        );
    }
    server.kill()?;
    server.wait()?;
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Appends 100 bytes and fdatasyncs, as the store's WAL does for each group commit.
fn fsync_samples(dir: &std::path::Path) -> anyhow::Result<Vec<Duration>> {
    let mut file = std::fs::File::create(dir.join("fsync-probe"))?;
    let record = [b'x'; 100];
    (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&record)?;
            file.sync_data()?;
            Ok(start.elapsed())
        })
        .collect()
}

/// 1 KB to a loopback peer and 100 bytes back, the shape of a message and its ACK.
fn round_trip_samples() -> anyhow::Result<Vec<Duration>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut peer, _) = listener.accept()?;
        peer.set_nodelay(true)?;
        let mut message = [0u8; 1024];
        for _ in 0..SAMPLES {
            peer.read_exact(&mut message)?;
            peer.write_all(&message[..100])?;
        }
        Ok(())
    });
    let mut client = TcpStream::connect(addr)?;
    client.set_nodelay(true)?;
    let message = [b'm'; 1024];
    let mut reply = [0u8; 100];
    let samples = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            client.write_all(&message)?;
            client.read_exact(&mut reply)?;
            Ok(start.elapsed())
        })
        .collect();
    echo.join().expect("echo thread")?;
    samples
}
