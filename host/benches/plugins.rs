//! The plugin benchmark, in one run on one machine:
//! (a) the plugin path in-process: a message through two validators and a
//!     router for each of three connectors (the stock `require-fields` and
//!     `match`), against no plugins, for 1 KB and 100 KB messages; and one
//!     plugin call with and without instantiation (a validator that does
//!     nothing, fresh instance vs kept instance); medians;
//! (b) durable throughput of the real `sluice serve` binary with and without
//!     that plugin configuration, loaded by `sluice send`.
//!
//! `BENCH_SECONDS` sets the measuring time per load run (default 10; 0 skips
//! the load runs).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::hl7::Message;
use sluice::metrics::Metrics;
use sluice::pipeline::Rules;
use sluice::plugin::{Catalog, MessageScope};
use sluice::send::{LoadOptions, adt_a01, run_load};

const SAMPLES: usize = 5000;

/// Two validators and a router for each of three connectors.
const WITH_PLUGINS: &str = r#"
[[validate]]
plugin = "require-fields"
config = { paths = ["PID-3", "PID-5", "PV1-2"] }
[[validate]]
plugin = "require-fields"
config = { paths = ["MSH-9", "EVN-2", "PID-3.4"] }
[connectors.lab]
route = "match"
route_config = { types = ["ORU^R01"] }
[connectors.bedboard]
route = "match"
route_config = { types = ["ADT^*"] }
[connectors.archive]
route = "match"
route_config = { sending_application = ["SLUICE-*"] }
"#;

/// The same, with the two plugins keeping one instance between messages.
const KEEP_STATE: &str = "[plugins.require-fields]\nkeep_state = true\n[plugins.match]\nkeep_state = true\n";

const WITHOUT_PLUGINS: &str = "[connectors.lab]\n[connectors.bedboard]\n[connectors.archive]\n";

/// A validator that accepts without looking: the cost of the call itself.
const TRIVIAL: &str = "[[validate]]\nplugin = \"fresh\"\n[[validate]]\nplugin = \"kept\"\n[plugins.kept]\nkeep_state = true\n";

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    println!("## Plugin path in-process (medians of {SAMPLES} messages)\n");
    println!("| message | no plugins | 2 validators + 3 routers, fresh instances (default) | the same, kept instances (`keep_state`) |\n|---|---|---|---|");
    let (bare, bare_catalog) = setup(scratch.path(), "bare", WITHOUT_PLUGINS)?;
    let (full, catalog) = setup(scratch.path(), "full", WITH_PLUGINS)?;
    let (kept, kept_catalog) = setup(scratch.path(), "kept", &format!("{WITH_PLUGINS}{KEEP_STATE}"))?;
    for size in [1024, 100 * 1024] {
        let message = Arc::new(Message::parse(adt_a01("BENCH1", size).into(), Default::default())?);
        // The three set-ups take turns message by message, so a noisy
        // neighbour on the machine weighs on all of them alike.
        let setups = [(&bare, &bare_catalog, 0), (&full, &catalog, 2), (&kept, &kept_catalog, 2)];
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        // Plugin calls are timed into metrics, as in the server.
        let metrics = Metrics::default();
        for round in 0..SAMPLES + SAMPLES / 10 {
            for (i, (rules, catalog, routed)) in setups.iter().enumerate() {
                let took = runtime.block_on(time_rules(rules, catalog, &message, *routed, &metrics))?;
                // The first rounds warm the allocator's slots and are not counted.
                if round >= SAMPLES / 10 {
                    samples[i].push(took);
                }
            }
        }
        let [none, fresh, reused] = samples.map(median);
        println!("| {} KB | {:.1} µs | {:.1} µs | {:.1} µs |", size / 1024, micros(none), micros(fresh), micros(reused));
    }

    let plugins_dir = scratch.path().join("trivial-plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    for name in ["fresh", "kept"] {
        std::fs::copy(env!("PLUGIN_WASM_MISBEHAVE"), plugins_dir.join(format!("{name}.wasm")))?;
    }
    let config = config_for(scratch.path(), "trivial", TRIVIAL)?;
    let catalog = Arc::new(Catalog::open(Arc::new(config))?);
    let message = Arc::new(Message::parse(adt_a01("BENCH1", 1024).into(), Default::default())?);
    let plugins = catalog.snapshot();
    let (fresh_plugin, kept_plugin) = (plugins["fresh"].clone(), plugins["kept"].clone());
    let mut calls = [Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES)];
    runtime.block_on(async {
        for round in 0..SAMPLES + SAMPLES / 10 {
            for (i, plugin) in [&fresh_plugin, &kept_plugin].into_iter().enumerate() {
                let start = Instant::now();
                plugin.validate(&mut MessageScope::default(), message.clone(), Arc::from("{}")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                if round >= SAMPLES / 10 {
                    calls[i].push(start.elapsed());
                }
            }
        }
        anyhow::Ok(())
    })?;
    let [fresh, kept] = calls.map(median);
    println!("\n## One plugin call (trivial validator, medians of {SAMPLES})\n");
    println!("| what | median |\n|---|---|");
    println!("| instantiate + call (fresh instance, the default) | {:.1} µs |", micros(fresh));
    println!("| call only (kept instance) | {:.1} µs |", micros(kept));
    println!("| instantiation alone | {:.1} µs |", micros(fresh) - micros(kept));
    println!("| pooling allocator | {} |\n", catalog.engine().pooled);

    if seconds == 0 {
        return Ok(());
    }
    println!("## Durable throughput, real binary ({seconds} s per run)\n");
    println!("| connections | message | no plugins msg/s (p50) | fresh instances msg/s (p50) | ratio | kept instances msg/s (p50) | ratio |\n|---|---|---|---|---|---|---|");
    let kept_config = format!("{WITH_PLUGINS}{KEEP_STATE}");
    for (connections, size) in [(1usize, 1024usize), (8, 1024), (8, 100 * 1024)] {
        let without = load(scratch.path(), "load-bare", WITHOUT_PLUGINS, connections, size, seconds, &runtime)?;
        let fresh = load(scratch.path(), "load-full", WITH_PLUGINS, connections, size, seconds, &runtime)?;
        let kept = load(scratch.path(), "load-kept", &kept_config, connections, size, seconds, &runtime)?;
        println!(
            "| {connections} | {} KB | {:.0} ({} µs) | {:.0} ({} µs) | {:.2} | {:.0} ({} µs) | {:.2} |",
            size / 1024,
            without.per_second,
            without.latency_us.p50,
            fresh.per_second,
            fresh.latency_us.p50,
            fresh.per_second / without.per_second,
            kept.per_second,
            kept.latency_us.p50,
            kept.per_second / without.per_second,
        );
    }
    Ok(())
}

fn config_for(scratch: &std::path::Path, name: &str, body: &str) -> anyhow::Result<Config> {
    let file = scratch.join(format!("{name}.toml"));
    let data = scratch.join(format!("{name}-data"));
    let plugins = scratch.join(format!("{name}-plugins"));
    std::fs::write(&file, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins_dir = {:?}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n{body}", data, plugins))?;
    Ok(Config::load(&[file], &Default::default())?)
}

fn setup(scratch: &std::path::Path, name: &str, body: &str) -> anyhow::Result<(Rules, Arc<Catalog>)> {
    let config = Arc::new(config_for(scratch, name, body)?);
    let rules = Rules::from_config(&config);
    Ok((rules, Arc::new(Catalog::open(config)?)))
}

/// The validate and route steps for one message, as the pipeline runs them.
async fn time_rules(rules: &Rules, catalog: &Catalog, message: &Arc<Message>, routed_at_least: usize, metrics: &Metrics) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let plugins = catalog.snapshot();
    let mut scope = MessageScope::default();
    anyhow::ensure!(rules.validate(&plugins, &mut scope, message, metrics).await.is_none(), "a validator refused the benchmark message");
    let taken = rules.route(&plugins, &mut scope, message, metrics).await.map_err(|_| anyhow::anyhow!("routing failed"))?;
    drop(scope);
    anyhow::ensure!(taken.len() >= routed_at_least, "expected bedboard and archive, got {taken:?}");
    Ok(start.elapsed())
}

fn load(
    scratch: &std::path::Path,
    name: &str,
    body: &str,
    connections: usize,
    size: usize,
    seconds: u64,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<sluice::send::LoadReport> {
    let run = format!("{name}-{connections}-{size}");
    config_for(scratch, &run, body)?;
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(scratch.join(format!("{run}.toml"))).stdout(Stdio::piped()).spawn()?;
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("piped")).read_line(&mut ready)?;
    let addr = ready.trim().strip_prefix("sluice listening on ").ok_or_else(|| anyhow::anyhow!("unexpected: {ready}"))?.to_string();
    let options = |duration| LoadOptions { to: addr.clone(), connections, count: None, duration: Some(duration), size, timeout: Duration::from_secs(30) };
    runtime.block_on(run_load(options(Duration::from_secs(1))))?; // warm-up
    let report = runtime.block_on(run_load(options(Duration::from_secs(seconds))))?;
    server.kill()?;
    server.wait()?;
    anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
    Ok(report)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
