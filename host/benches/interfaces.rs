//! The interfaces benchmark, in one run on one machine, against the real
//! `sluice serve` binary loaded by the `sluice send` load generator:
//! (a) durable throughput and ACK latency on the `default` interface (no
//!     rules) and on a named interface whose ACK policy has three sender
//!     rules to match (globs on MSH-3/MSH-4) and per-sender counting, with
//!     1 and 8 connections, interleaved so both see the same disk;
//! (b) one connection's throughput and ACK latency while the configuration
//!     is reloaded (SIGHUP) 20 times a second, against a quiet run.
//!
//! `BENCH_SECONDS` sets the measuring time per run (default 10).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluice::send::{LoadOptions, LoadReport, run_load};

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let data = scratch.path().join("data");
    let config = scratch.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n[connectors.lab]\n[connectors.archive]\n\
             [interfaces.ruled]\nlisten = \"127.0.0.1:0\"\n\
             [[interfaces.ruled.senders]]\nsending_application = \"OLDDEV*\"\non_reject = \"close\"\n\
             [[interfaces.ruled.senders]]\nsending_application = \"PUMP?\"\nsending_facility = \"ICU*\"\nack_mode = \"none\"\n\
             [[interfaces.ruled.senders]]\nsending_application = \"[A-Z]*\"\nack_mode = \"original\"\n",
            data.display().to_string()
        ),
    )?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(&config).stdout(Stdio::piped()).spawn()?;
    let (mut default, mut ruled) = (String::new(), String::new());
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("sluice interface ruled on ") {
            ruled = addr.to_string();
        }
        if let Some(addr) = line.strip_prefix("sluice listening on ") {
            default = addr.to_string();
            break;
        }
    }
    anyhow::ensure!(!default.is_empty() && !ruled.is_empty(), "the server did not announce both interfaces");

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let load = |to: &str, connections, duration| LoadOptions {
        to: to.to_string(),
        connections,
        count: None,
        duration: Some(duration),
        size: 1024,
        timeout: Duration::from_secs(30),
        tls: None,
    };
    let run = |options: LoadOptions| -> anyhow::Result<LoadReport> {
        let report = runtime.block_on(run_load(options))?;
        anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
        Ok(report)
    };

    println!("## Interfaces: the default interface against one with three sender rules (1 KB ADT^A01, {seconds} s per run)\n");
    println!("| connections | default msg/s | ruled msg/s | ratio | default p50 / p99 | ruled p50 / p99 |");
    println!("|---|---|---|---|---|---|");
    for connections in [1usize, 8] {
        run(load(&default, connections, Duration::from_secs(1)))?;
        run(load(&ruled, connections, Duration::from_secs(1)))?;
        // Halves, interleaved, so a slow patch of the disk falls on both.
        let half = Duration::from_secs(seconds.div_ceil(2));
        let (d1, r1, d2, r2) = (
            run(load(&default, connections, half))?,
            run(load(&ruled, connections, half))?,
            run(load(&default, connections, half))?,
            run(load(&ruled, connections, half))?,
        );
        let (d, r) = ((d1.per_second + d2.per_second) / 2.0, (r1.per_second + r2.per_second) / 2.0);
        println!(
            "| {connections} | {d:.0} | {r:.0} | {:.2} | {} / {} µs | {} / {} µs |",
            r / d,
            d1.latency_us.p50.max(d2.latency_us.p50),
            d1.latency_us.p99.max(d2.latency_us.p99),
            r1.latency_us.p50.max(r2.latency_us.p50),
            r1.latency_us.p99.max(r2.latency_us.p99)
        );
    }

    println!("\n## One connection while the configuration is reloaded 20 times a second (SIGHUP)\n");
    println!("| run | msg/s | ACK p50 | ACK p99 | ACK max | reloads |");
    println!("|---|---|---|---|---|---|");
    let quiet = run(load(&default, 1, Duration::from_secs(seconds)))?;
    println!("| quiet | {:.0} | {} µs | {} µs | {} µs | 0 |", quiet.per_second, quiet.latency_us.p50, quiet.latency_us.p99, quiet.latency_us.max);
    let stop = Arc::new(AtomicBool::new(false));
    let pid = server.id().to_string();
    let reloader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let _ = Command::new("kill").args(["-HUP", &pid]).status();
                sent += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            sent
        })
    };
    let reloading = run(load(&default, 1, Duration::from_secs(seconds)))?;
    stop.store(true, Ordering::SeqCst);
    let reloads = reloader.join().expect("reloader thread");
    println!(
        "| reloading | {:.0} | {} µs | {} µs | {} µs | {reloads} |",
        reloading.per_second, reloading.latency_us.p50, reloading.latency_us.p99, reloading.latency_us.max
    );
    println!("\nratio reloading / quiet: {:.2}", reloading.per_second / quiet.per_second);
    server.kill()?;
    server.wait()?;
    Ok(())
}
