//! The plugin benchmark, in one run on one machine:
//! (a) the plugin path in-process: a message through two validators and a
//!     router for each of three connectors (the stock `require-fields` and
//!     `match`), against no plugins, for 1 KB and 100 KB messages; and one
//!     plugin call with and without instantiation (a validator that does
//!     nothing, fresh instance vs kept instance); medians;
//! (b) durable throughput of the real `sluice serve` binary with and without
//!     that plugin configuration, loaded by `sluice send`;
//! (c) plugins in Python and JavaScript (`examples/`) next to the same logic
//!     in Rust: size, compile time with and without the cache, per-message
//!     cost and memory, and durable throughput; and the ACKs of one
//!     connection while the Python plugin compiles cold.
//!
//! `BENCH_SECONDS` sets the measuring time per load run (default 10; 0 skips
//! the load runs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::hl7::Message;
use sluice::metrics::Metrics;
use sluice::pipeline::Rules;
use sluice::plugin::{Catalog, CheckRequest, MessageScope};
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

    if seconds > 0 {
        durable_throughput(scratch.path(), seconds, &runtime)?;
    }
    languages(scratch.path(), seconds, &runtime)
}

/// Section (b).
fn durable_throughput(scratch: &Path, seconds: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    println!("## Durable throughput, real binary ({seconds} s per run)\n");
    println!("| connections | message | no plugins msg/s (p50) | fresh instances msg/s (p50) | ratio | kept instances msg/s (p50) | ratio |\n|---|---|---|---|---|---|---|");
    let kept_config = format!("{WITH_PLUGINS}{KEEP_STATE}");
    for (connections, size) in [(1usize, 1024usize), (8, 1024), (8, 100 * 1024)] {
        let without = load(scratch, "load-bare", WITHOUT_PLUGINS, &[], connections, size, seconds, runtime)?;
        let fresh = load(scratch, "load-full", WITH_PLUGINS, &[], connections, size, seconds, runtime)?;
        let kept = load(scratch, "load-kept", &kept_config, &[], connections, size, seconds, runtime)?;
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
    std::fs::write(&file, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugins_dir = {:?}\n{body}\n[log]\nlevel = \"warn\"\n[admin]\nlisten = \"off\"\n", data, plugins))?;
    Ok(Config::load(&[file], &Default::default())?)
}

fn setup(scratch: &std::path::Path, name: &str, body: &str) -> anyhow::Result<(Rules, Arc<Catalog>)> {
    let config = Arc::new(config_for(scratch, name, body)?);
    // The default interface's rules, as the server builds them.
    let specs = config.interface_specs().map_err(|(key, reason)| anyhow::anyhow!("{key}: {reason}"))?;
    let rules = Rules::for_interface(&specs[0], &config);
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

#[allow(clippy::too_many_arguments)]
fn load(
    scratch: &std::path::Path,
    name: &str,
    body: &str,
    plugins: &[(&str, &Path)],
    connections: usize,
    size: usize,
    seconds: u64,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<sluice::send::LoadReport> {
    let server = Server::start(scratch, &format!("{name}-{connections}-{size}"), body, plugins)?;
    server.load(connections, size, seconds, runtime, |_| Ok(()))
}

/// A `sluice serve` of the benchmark's own, killed when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
    plugins_dir: PathBuf,
}

impl Server {
    fn start(scratch: &Path, run: &str, body: &str, plugins: &[(&str, &Path)]) -> anyhow::Result<Server> {
        config_for(scratch, run, body)?;
        let plugins_dir = scratch.join(format!("{run}-plugins"));
        std::fs::create_dir_all(&plugins_dir)?;
        for (plugin, wasm) in plugins {
            std::fs::copy(wasm, plugins_dir.join(format!("{plugin}.wasm")))?;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["serve", "--config"]).arg(scratch.join(format!("{run}.toml"))).stdout(Stdio::piped()).spawn()?;
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut ready)?;
        let addr = ready.trim().strip_prefix("sluice listening on ").ok_or_else(|| anyhow::anyhow!("unexpected: {ready}"))?.to_string();
        Ok(Server { child, addr, plugins_dir })
    }

    /// A warm-up second, then `seconds` of load; `during` runs as the
    /// measured load starts.
    fn load(
        &self,
        connections: usize,
        size: usize,
        seconds: u64,
        runtime: &tokio::runtime::Runtime,
        during: impl FnOnce(&Server) -> anyhow::Result<()>,
    ) -> anyhow::Result<sluice::send::LoadReport> {
        let options = |duration| LoadOptions { to: self.addr.clone(), connections, count: None, duration: Some(duration), size, timeout: Duration::from_secs(30), tls: None };
        runtime.block_on(run_load(options(Duration::from_secs(1))))?; // warm-up
        let measured = runtime.spawn(run_load(options(Duration::from_secs(seconds))));
        during(self)?;
        let report = runtime.block_on(measured)??;
        anyhow::ensure!(report.errors == 0 && report.not_accepted == 0, "load run had failures: {report:?}");
        Ok(report)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plugin of section (c): its language, its file, and how it is used.
struct Contender {
    language: &'static str,
    name: &'static str,
    wasm: PathBuf,
    /// The configuration that uses it on the benchmark's ADT^A01.
    config: &'static str,
}

const PATIENT_ID: &str = "[[validate]]\nplugin = \"patient-id\"\nconfig = { authority = \"HOSP\" }\n[connectors.adt]\n";
const ADT_TYPES_JS: &str = "[connectors.adt]\nroute = \"message-types\"\nroute_config = { types = [\"ADT^A0?\"] }\n";
const ADT_TYPES_MATCH: &str = "[connectors.adt]\nroute = \"match\"\nroute_config = { types = [\"ADT^A0?\"] }\n";

/// Section (c). The Python and JavaScript plugins are built by their
/// scripts in `examples/`; each is set against the same rule in Rust.
fn languages(scratch: &Path, seconds: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let contenders = [
        Contender { language: "Python", name: "patient-id", wasm: build_example("python-validator")?, config: PATIENT_ID },
        Contender { language: "Rust", name: "patient-id", wasm: env!("PLUGIN_WASM_PATIENT_ID").into(), config: PATIENT_ID },
        Contender { language: "JavaScript", name: "message-types", wasm: build_example("js-router")?, config: ADT_TYPES_JS },
        Contender { language: "Rust", name: "match", wasm: env!("PLUGIN_WASM_MATCH").into(), config: ADT_TYPES_MATCH },
    ];
    let cache = scratch.join("language-cache");
    println!("\n## Plugins in Python and JavaScript next to the same logic in Rust\n");
    println!("`patient-id` (validator: PID-3 must hold an MR identifier from HOSP) in Python and Rust; `message-types` in JavaScript and the stock `match` in Rust, both routing on `types = [\"ADT^A0?\"]`. Medians of {SAMPLES} calls on the generated 1 KB ADT^A01.\n");
    println!("| plugin | language | size | compile, no cache | load from cache | fresh instance: instantiate + call | kept instance: call | peak linear memory |\n|---|---|---|---|---|---|---|---|");
    for c in &contenders {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache)?;
        let config = config_for(scratch, "language", &format!("plugin_cache_dir = {cache:?}\n{}", c.config))?;
        let request = |runs| CheckRequest { file: c.wasm.clone(), name: Some(c.name.into()), message: None, settings: None, deliver: false, no_cache: false, runs };
        let cold = sluice::plugin::check(&config, &request(0))?;
        anyhow::ensure!(cold.runnable() && cold.compile.as_ref().is_some_and(|c| !c.from_cache), "{}: {:?}", c.name, cold.problems);
        let mut loads = Vec::new();
        for _ in 0..5 {
            let warm = sluice::plugin::check(&config, &request(0))?;
            loads.push(Duration::from_secs_f64(warm.compile.as_ref().map_or(0.0, |c| c.millis) / 1e3));
        }
        let timed = sluice::plugin::check(&config, &request(SAMPLES))?;
        let call = timed.call.as_ref().ok_or_else(|| anyhow::anyhow!("{}: no call made", c.name))?;
        anyhow::ensure!(call.answer == "accept" || call.answer == "takes the message", "{}: answered {}", c.name, call.answer);
        let (instantiate, fresh_call, kept) = (call.instantiate_us.unwrap_or_default(), call.call_us.unwrap_or_default(), call.kept_call_us.unwrap_or_default());
        println!(
            "| `{}` | {} | {:.1} MB | {:.2} s | {:.1} ms | {:.0} + {:.0} = {:.0} µs | {:.0} µs | {:.1} MiB |",
            c.name,
            c.language,
            timed.bytes as f64 / 1e6,
            cold.compile.as_ref().map_or(0.0, |c| c.millis) / 1e3,
            median(loads).as_secs_f64() * 1e3,
            instantiate,
            fresh_call,
            instantiate + fresh_call,
            kept,
            call.peak_memory as f64 / (1024.0 * 1024.0),
        );
    }
    if seconds == 0 {
        return Ok(());
    }
    println!("\n### Durable throughput with each, real binary ({seconds} s per run, 1 KB ADT^A01)\n");
    println!("Each cell: msg/s (p50 ACK latency), ratio to no plugin. `kept`: the same plugin with `keep_state = true`.\n");
    println!("| connections | no plugin | `patient-id` Python | Python, kept | `patient-id` Rust | `message-types` JavaScript | JavaScript, kept | `match` Rust |\n|---|---|---|---|---|---|---|---|");
    // Every server shares the cache filled above: none compiles at start.
    let shared = format!("plugin_cache_dir = {cache:?}\n");
    for connections in [1usize, 8] {
        let mut cells = Vec::new();
        let bare = load(scratch, "lang-none", &format!("{shared}[connectors.adt]\n"), &[], connections, 1024, seconds, runtime)?;
        for (i, c) in contenders.iter().enumerate() {
            // The interpreted ones again with one kept instance.
            let kept = (c.language != "Rust").then(|| format!("[plugins.{}]\nkeep_state = true\n", c.name));
            for (j, extra) in [Some(String::new()), kept].into_iter().flatten().enumerate() {
                let config = format!("{shared}{}{extra}", c.config);
                let report = load(scratch, &format!("lang-{i}-{j}"), &config, &[(c.name, &c.wasm)], connections, 1024, seconds, runtime)?;
                cells.push(format!("{:.0} ({} µs), {:.2}", report.per_second, report.latency_us.p50, report.per_second / bare.per_second));
            }
        }
        println!("| {connections} | {:.0} ({} µs) | {} |", bare.per_second, bare.latency_us.p50, cells.join(" | "));
    }
    compile_under_load(scratch, &contenders[0].wasm, seconds, runtime)
}

/// ACKs on one connection while nothing compiles, then while the Python
/// plugin, dropped into the folder as the load starts, compiles cold.
fn compile_under_load(scratch: &Path, python: &Path, seconds: u64, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    println!("\n### ACKs while a large plugin compiles (1 connection, {seconds} s, no plugin in the message path)\n");
    println!("| while | msg/s | p50 | p99 | max |\n|---|---|---|---|---|");
    let body = "[connectors.adt]\n";
    let quiet = Server::start(scratch, "compile-quiet", body, &[])?.load(1, 1024, seconds, runtime, |_| Ok(()))?;
    // Its own empty cache: the compile is cold.
    let cold = format!("plugin_cache_dir = {:?}\n{body}", scratch.join("compile-cold-cache"));
    let server = Server::start(scratch, "compile-busy", &cold, &[])?;
    let busy = server.load(1, 1024, seconds, runtime, |server| {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::copy(python, server.plugins_dir.join("new-plugin.wasm"))?;
        Ok(())
    })?;
    for (what, r) in [("nothing compiles", &quiet), ("the Python plugin compiles cold (hot reload)", &busy)] {
        println!("| {what} | {:.0} | {} µs | {} µs | {} µs |", r.per_second, r.latency_us.p50, r.latency_us.p99, r.latency_us.max);
    }
    Ok(())
}

/// Builds `examples/<example>` with its own script (which installs its
/// toolchain on first use).
fn build_example(example: &str) -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(example).join("build.sh");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples").join(format!("{example}.wasm"));
    let status = Command::new("bash").arg(&script).arg(&out).stdout(Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "{} failed", script.display());
    Ok(out)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
