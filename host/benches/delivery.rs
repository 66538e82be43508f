//! The delivery benchmark, in one run on one machine (`cargo bench --bench delivery`):
//! (a) drain rate: a backlog of `BENCH_BACKLOG` messages (default 100 000)
//!     is queued with no delivery plugin, then the server restarts with the
//!     stock `http` (or `mllp`) connector pointed at a local sink, and the
//!     time until the sink has them all is measured;
//! (b) latency from ACK to delivery at a steady 1 000 messages per second
//!     for `BENCH_SECONDS` (default 10), p50 and p99.
//! The sinks run in this process; the server is the real `sluice serve`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use hdrhistogram::Histogram;
use sluice::send::{LoadOptions, MllpClient, adt_a01, run_load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a sink saw: how many messages, and when each control ID arrived.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    arrivals: Mutex<HashMap<String, Instant>>,
}

impl Received {
    fn record(&self, message: &[u8]) {
        if let Some(id) = control_id(message) {
            self.arrivals.lock().unwrap().entry(id).or_insert_with(Instant::now);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// MSH-10 of a message with `|` fields.
fn control_id(message: &[u8]) -> Option<String> {
    let msh = message.split(|&b| b == b'\r').next()?;
    let field = msh.split(|&b| b == b'|').nth(9)?;
    Some(String::from_utf8_lossy(field).into_owned())
}

async fn http_sink(received: Arc<Received>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/hl7",
        post(move |body: Bytes| {
            let received = received.clone();
            async move {
                received.record(&body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Answers every frame with an AA whose MSA-2 is the message's MSH-10.
async fn mllp_sink(received: Arc<Received>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(8192);
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                        let frame: Vec<u8> = buf.drain(..end + 2).collect();
                        let message = &frame[1..frame.len() - 2];
                        received.record(message);
                        let id = control_id(message).unwrap_or_default();
                        let ack = format!("\x0bMSH|^~\\&|SINK|BENCH|||20260101||ACK^A01^ACK|A{id}|P|2.5\rMSA|AA|{id}\r\x1c\r");
                        if stream.write_all(ack.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(scratch: &std::path::Path, name: &str, connector: &str) -> anyhow::Result<Server> {
        let file = scratch.join(format!("{name}.toml"));
        let data = scratch.join(format!("{name}-data"));
        let plugins = scratch.join("plugins");
        std::fs::write(
            &file,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins_dir = {:?}\ndedupe_window = \"0s\"\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n{connector}",
                data, plugins
            ),
        )?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(&file).stdout(Stdio::piped()).spawn()?;
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut ready)?;
        let addr = ready.trim().strip_prefix("sluice listening on ").ok_or_else(|| anyhow::anyhow!("unexpected: {ready}"))?.to_string();
        Ok(Server { child, addr })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        Ok(())
    }
}

fn connector(plugin: &str, sink: SocketAddr) -> String {
    match plugin {
        "http" => format!("[connectors.sink]\nplugin = \"http\"\nconfig = {{ url = \"http://{sink}/hl7\" }}\n[plugins.http]\nallow = {{ http = [\"{sink}\"] }}\n"),
        _ => format!("[connectors.sink]\nplugin = \"mllp\"\nconfig = {{ destination = \"{sink}\" }}\n[plugins.mllp]\nallow = {{ mllp = [\"{sink}\"] }}\n"),
    }
}

/// Queues `backlog` messages with no plugin, then times the restart's drain.
fn drain(scratch: &std::path::Path, plugin: &str, sink: SocketAddr, received: &Received, backlog: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<f64> {
    let name = format!("drain-{plugin}");
    let server = Server::start(scratch, &name, "[connectors.sink]\n")?;
    let options = LoadOptions { to: server.addr.clone(), connections: 16, count: Some(backlog), duration: None, size: 1024, timeout: Duration::from_secs(30), tls: None };
    let report = runtime.block_on(run_load(options))?;
    anyhow::ensure!(report.accepted == backlog, "queueing the backlog failed: {report:?}");
    server.stop()?;

    let before = received.count.load(Ordering::Relaxed);
    let start = Instant::now();
    let server = Server::start(scratch, &name, &connector(plugin, sink))?;
    while received.count.load(Ordering::Relaxed) - before < backlog {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(600), "the backlog did not drain in 10 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = start.elapsed().as_secs_f64();
    server.stop()?;
    Ok(backlog as f64 / seconds)
}

/// Sends at a steady `rate` for `seconds` and measures ACK-to-delivery latency.
fn latency(scratch: &std::path::Path, sink: SocketAddr, received: Arc<Received>, rate: u64, seconds: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<(u64, u64, u64)> {
    let server = Server::start(scratch, "latency", &connector("http", sink))?;
    let acked: Vec<(String, Instant)> = runtime.block_on(async {
        let mut client = MllpClient::connect(&server.addr, Duration::from_secs(10)).await?;
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate as u32);
        let mut acked = Vec::new();
        for i in 0..rate * seconds {
            ticks.tick().await;
            let id = format!("LAT{i}");
            let ack = client.send(&adt_a01(&id, 1024)).await?;
            acked.push((id, Instant::now()));
            anyhow::ensure!(ack.windows(3).any(|w| w == b"|AA"), "not accepted: {}", String::from_utf8_lossy(&ack));
        }
        anyhow::Ok(acked)
    })?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.iter().any(|(id, _)| !received.arrivals.lock().unwrap().contains_key(id)) {
        anyhow::ensure!(Instant::now() < deadline, "not every message was delivered");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.stop()?;
    let arrivals = received.arrivals.lock().unwrap();
    let mut histogram = Histogram::<u64>::new(3)?;
    for (id, at) in &acked {
        // A delivery may even beat the ACK to the client: counted as 0.
        histogram.record(arrivals[id].saturating_duration_since(*at).as_micros() as u64)?;
    }
    Ok((histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99), histogram.max()))
}

/// Durable ACK throughput with 8 connections for `seconds`, after queueing
/// `backlog` messages first.
fn ack_throughput(scratch: &std::path::Path, name: &str, connector: &str, backlog: u64, seconds: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<f64> {
    let server = Server::start(scratch, name, connector)?;
    let options = |count, duration| LoadOptions { to: server.addr.clone(), connections: 8, count, duration, size: 1024, timeout: Duration::from_secs(30), tls: None };
    if backlog > 0 {
        runtime.block_on(run_load(options(Some(backlog), None)))?;
    }
    let report = runtime.block_on(run_load(options(None, Some(Duration::from_secs(seconds)))))?;
    server.stop()?;
    anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
    Ok(report.per_second)
}

fn main() -> anyhow::Result<()> {
    let backlog: u64 = std::env::var("BENCH_BACKLOG").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (to_http, to_mllp) = (Arc::new(Received::default()), Arc::new(Received::default()));
    let http = runtime.block_on(http_sink(to_http.clone()))?;
    let mllp = runtime.block_on(mllp_sink(to_mllp.clone()))?;

    println!("## Delivery\n");
    println!("| backlog of {backlog} 1 KB messages | drain rate |\n|---|---|");
    for (plugin, sink, received) in [("http", http, &to_http), ("mllp", mllp, &to_mllp)] {
        let rate = drain(scratch.path(), plugin, sink, received, backlog, &runtime)?;
        println!("| `{plugin}` connector to a local sink | {rate:.0} msg/s |");
    }
    let (p50, p99, max) = latency(scratch.path(), http, to_http, 1000, seconds, &runtime)?;
    println!("\nACK to delivery (`http` connector, 1 000 msg/s for {seconds} s): p50 {p50} µs, p99 {p99} µs, max {max} µs");

    // A receiver that is down: a port nothing listens on any more.
    let down = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let quiet = ack_throughput(scratch.path(), "ack-no-plugin", "[connectors.sink]\n", 0, seconds, &runtime)?;
    let stuck = ack_throughput(scratch.path(), "ack-down", &connector("http", down), 10_000, seconds, &runtime)?;
    println!(
        "\nACK throughput, 8 connections, {seconds} s: connector without a plugin {quiet:.0} msg/s; `http` connector retrying against a receiver that is down, 10 000 queued {stuck:.0} msg/s (ratio {:.2})",
        stuck / quiet
    );
    Ok(())
}
