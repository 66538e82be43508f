//! The TLS benchmark: one `sluice serve` with a plain and a TLS listener
//! (certificates made here with rcgen), loaded by the `sluice send` load
//! generator with 1 and 32 connections on each in turn, 1 KB ADT^A01, every
//! ACK checked. Plain and TLS runs alternate per connection count so drift
//! on the machine weighs on both.
//!
//! `BENCH_SECONDS` sets the measuring time per run (default 10).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sluice::config::OutboundTlsConfig;
use sluice::send::{LoadOptions, LoadReport, run_load};
use sluice::tls::ClientTls;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let dir = scratch.path();

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), cert.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;

    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n[connectors.lab]\n[connectors.archive]\n",
            dir.join("data").display().to_string(),
            dir.join("server.pem").display().to_string(),
            dir.join("server.key").display().to_string()
        ),
    )?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(&config).stdout(Stdio::piped()).spawn()?;
    let (mut plain, mut tls) = (String::new(), String::new());
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("sluice tls on ") {
            tls = addr.to_string();
        }
        if let Some(addr) = line.strip_prefix("sluice listening on ") {
            plain = addr.to_string();
            break;
        }
    }
    anyhow::ensure!(!plain.is_empty() && !tls.is_empty(), "the server did not announce both listeners");
    let client_tls = Arc::new(ClientTls::for_address(
        &format!("localhost:{}", tls.rsplit(':').next().unwrap_or_default()),
        &OutboundTlsConfig { ca: Some(dir.join("ca.pem")), ..Default::default() },
    )?);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let run = |to: &str, tls: Option<Arc<ClientTls>>, connections: usize, seconds: u64| -> anyhow::Result<LoadReport> {
        let options = LoadOptions {
            to: to.to_string(),
            connections,
            count: None,
            duration: Some(Duration::from_secs(seconds)),
            size: 1024,
            timeout: Duration::from_secs(30),
            tls,
        };
        let report = runtime.block_on(run_load(options))?;
        anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
        Ok(report)
    };
    println!("## TLS versus plain TCP (1 KB ADT^A01, 2 connectors, durable, {seconds} s per run)\n");
    println!("| connections | plain msg/s | TLS msg/s | ratio | plain p50 / p99 | TLS p50 / p99 | p99 ratio |\n|---|---|---|---|---|---|---|");
    for connections in [1usize, 32] {
        run(&plain, None, connections, 1)?; // warm-up
        run(&tls, Some(client_tls.clone()), connections, 1)?;
        let p = run(&plain, None, connections, seconds)?;
        let t = run(&tls, Some(client_tls.clone()), connections, seconds)?;
        println!(
            "| {connections} | {:.0} | {:.0} | {:.2} | {} / {} µs | {} / {} µs | {:.2} |",
            p.per_second,
            t.per_second,
            t.per_second / p.per_second,
            p.latency_us.p50,
            p.latency_us.p99,
            t.latency_us.p50,
            t.latency_us.p99,
            t.latency_us.p99 as f64 / p.latency_us.p99 as f64
        );
    }
    server.kill()?;
    server.wait()?;
    Ok(())
}
