//! `sluice plugins list`: the plugins the running engine has loaded, from
//! the status file it rewrites on every load, reload and failure.
//! `sluice plugins check FILE.wasm`: whether this engine can run a file as
//! the configuration uses it, and what a call costs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::ConfigArgs;
use crate::plugin::{CheckReport, CheckRequest, PluginStatus, STATUS_FILE};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Name, world, WIT version, file hash, state and last error of each plugin.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check a plugin file: its world, WIT version and imports, whether this
    /// engine can run it with the configuration's grants, and a timed call on
    /// a sample message. Exits 1 when it cannot run.
    Check {
        /// The component to check.
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Its name in the configuration (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
        /// An HL7 message file to call it with (default: a generated ADT^A01).
        #[arg(long, value_name = "FILE")]
        message: Option<PathBuf>,
        /// Settings JSON for the call (default: those of its first use in the configuration).
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// Call a connector too: this delivers the sample message for real.
        #[arg(long)]
        deliver: bool,
        /// Compile the file even if the engine's cache has it.
        #[arg(long)]
        no_cache: bool,
        /// Calls timed after the first, for the medians.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List { config, json } => list(&config, json),
        PluginsCommand::Check { file, config, name, message, settings, deliver, no_cache, runs, json } => {
            let config = config.load()?;
            let message = message.map(|path| std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))).transpose()?;
            let report = crate::plugin::check(&config, &CheckRequest { file, name, message, settings, deliver, no_cache, runs })?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_check(&report);
            }
            Ok(if report.runnable() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn list(config: &ConfigArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = config.load()?;
    let file = config.data_dir.join(STATUS_FILE);
    let text = std::fs::read_to_string(&file).with_context(|| format!("no plugin status at {} (has `sluice serve` run with this data_dir?)", file.display()))?;
    let statuses: Vec<PluginStatus> = serde_json::from_str(&text).with_context(|| format!("{} is not a plugin status file", file.display()))?;
    if json {
        println!("{}", serde_json::to_string(&statuses)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<10} {:<8} {:<10} {:<8} origin / last error", "name", "world", "version", "hash", "state");
    for s in statuses {
        let state = serde_json::to_value(s.state)?.as_str().unwrap_or_default().to_string();
        let hash = s.hash.get(..8).unwrap_or(&s.hash);
        println!("{:<20} {:<10} {:<8} {:<10} {:<8} {}", s.name, s.world, s.wit_version, hash, state, s.origin);
        if let Some(err) = s.last_error {
            println!("{:<20} last error: {err}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_check(r: &CheckReport) {
    println!("file      {} ({}, xxh3 {})", r.file, size(r.bytes), r.hash.get(..16).unwrap_or(&r.hash));
    if let (Some(world), Some(version)) = (r.world, &r.wit_version) {
        println!("plugin    `{}`: {world} world of sluice:plugin@{version}", r.name);
    }
    if let Some(c) = &r.compile {
        match (&c.cache, c.from_cache) {
            (Some(dir), true) => println!("compile   {:.1} ms, precompiled, from {dir}", c.millis),
            (Some(dir), false) => println!("compile   {:.1} ms (now cached in {dir})", c.millis),
            (None, _) => println!("compile   {:.1} ms (no cache used)", c.millis),
        }
    }
    let width = r.imports.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for (i, import) in r.imports.iter().enumerate() {
        let label = if i == 0 { "imports" } else { "" };
        println!("{label:<9} {:<width$}  {}", import.name, import.grant);
    }
    if !r.exports.is_empty() {
        println!("exports   {}", r.exports.join(", "));
    }
    let limits = format!("deadline {}, memory_limit {}, keep_state {}", humantime::format_duration(r.policy.deadline), size(r.policy.memory_limit.0), r.policy.keep_state);
    match r.used_by.as_slice() {
        [] => println!("config    not used by the configuration; {limits}"),
        keys => println!("config    used by {}; {limits}", keys.join(", ")),
    }
    match (&r.call, r.world) {
        (Some(call), _) => {
            println!("call      {} on {} with settings {}", call.call, call.message, call.settings);
            println!("          answered: {}", call.answer);
            println!("          first: instantiate {:.0} µs + call {:.0} µs", call.first_instantiate_us, call.first_call_us);
            if let (Some(i), Some(c)) = (call.instantiate_us, call.call_us) {
                println!("          median of the next {}: instantiate {i:.0} µs + call {c:.0} µs (fresh instance each)", call.runs);
            }
            if let Some(kept) = call.kept_call_us {
                println!("          the same instance again (keep_state = true): call {kept:.0} µs");
            }
            println!("          memory: {} of its {} limit", size(call.peak_memory), size(r.policy.memory_limit.0));
        }
        (None, Some(crate::plugin::World::Connector)) if r.runnable() => {
            println!("call      not made: a connector's call delivers for real (pass --deliver to send the sample message)");
        }
        (None, _) => {}
    }
    if r.runnable() {
        println!("result    OK: this engine can run it as configured");
    } else {
        for (i, problem) in r.problems.iter().enumerate() {
            println!("{:<9} {problem}", if i == 0 { "result" } else { "" });
        }
        println!("{:<9} this engine cannot run it as configured", "");
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}
