//! `sluice plugins check`: what a `.wasm` file is, whether this engine can
//! run it as the configuration uses it, and what one call costs. Nothing is
//! installed: the file is compiled (through the cache when the engine has
//! one), type-checked, and called on a sample message in a throwaway
//! instance.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::bindings::types::{Delivery, Issue, Verdict};
use super::engine::PluginEngine;
use super::instance::{Answer, Call, Live, check_net_grants, wasi_grants};
use super::loaded::World;
use super::loader::{Compiled, Loader, Typed, content_hash, wit_version};
use crate::config::{Config, PluginPolicy, Settings};
use crate::hl7::Message;

/// What to check, besides the configuration.
pub struct CheckRequest {
    pub file: PathBuf,
    /// The plugin's name in the configuration; the file stem by default.
    pub name: Option<String>,
    /// The message to call the plugin with; a generated ADT^A01 by default.
    pub message: Option<Vec<u8>>,
    /// Settings JSON for the call, instead of the configuration's.
    pub settings: Option<String>,
    /// Also call a connector, which delivers the sample message for real.
    pub deliver: bool,
    /// Compile from the bytes even when the cache has the plugin.
    pub no_cache: bool,
    /// Timed calls after the first one, for the medians.
    pub runs: usize,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub file: String,
    pub bytes: u64,
    /// xxh3-128, as `sluice plugins list` shows it.
    pub hash: String,
    pub name: String,
    pub world: Option<World>,
    /// The `sluice:plugin` version it was built against.
    pub wit_version: Option<String>,
    pub compile: Option<Compile>,
    pub imports: Vec<Import>,
    pub exports: Vec<String>,
    /// The configuration keys that use the plugin.
    pub used_by: Vec<String>,
    pub policy: PluginPolicy,
    pub call: Option<CallReport>,
    /// Why this engine cannot run it as configured; empty when it can.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Compile {
    pub millis: f64,
    pub from_cache: bool,
    /// The cache folder, when one was used.
    pub cache: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Import {
    pub name: String,
    /// What the engine gives this plugin through it.
    pub grant: String,
}

#[derive(Debug, Serialize)]
pub struct CallReport {
    /// `validate`, `route for connector X`, `deliver`.
    pub call: String,
    pub settings: String,
    /// The message's type and control ID.
    pub message: String,
    /// What the first call answered.
    pub answer: String,
    pub first_instantiate_us: f64,
    pub first_call_us: f64,
    /// Medians of the runs after the first (none for a connector).
    pub instantiate_us: Option<f64>,
    pub call_us: Option<f64>,
    /// Median of as many calls again on one instance, as with `keep_state`.
    pub kept_call_us: Option<f64>,
    pub runs: usize,
    pub peak_memory: u64,
}

impl CheckReport {
    pub fn runnable(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn check(config: &Config, request: &CheckRequest) -> anyhow::Result<CheckReport> {
    let bytes = std::fs::read(&request.file).with_context(|| format!("cannot read {}", request.file.display()))?;
    let name = match &request.name {
        Some(name) => name.clone(),
        None => request.file.file_stem().and_then(|s| s.to_str()).context("the file name is not a plugin name; pass --name")?.to_string(),
    };
    let policy = config.plugin_policy(&name);
    let mut report = CheckReport {
        file: request.file.display().to_string(),
        bytes: bytes.len() as u64,
        hash: content_hash(&bytes),
        name,
        world: None,
        wit_version: None,
        compile: None,
        imports: Vec::new(),
        exports: Vec::new(),
        used_by: Vec::new(),
        policy,
        call: None,
        problems: Vec::new(),
    };
    if let Err(problem) = component_layer(&bytes) {
        report.problems.push(problem);
        return Ok(report);
    }

    let outbound_tls = crate::tls::OutboundTlsSet::from_config(&config.outbound_tls)?;
    let engine =
        PluginEngine::new(report.policy.memory_limit.0 as usize, outbound_tls).map_err(anyhow::Error::from).context("cannot start the plugin engine")?;
    // The engine's own cache when it exists, so the timing is what `serve`
    // would see; never created here.
    let cache = Some(config.plugin_cache()).filter(|dir| dir.is_dir() && !request.no_cache);
    let loader = Loader::new(engine.clone(), cache.clone());
    let started = Instant::now();
    let compiled = match loader.compile(&bytes, &report.hash) {
        Ok(compiled) => compiled,
        Err(err) => {
            report.problems.push(format!("{err:#}"));
            return Ok(report);
        }
    };
    report.compile = Some(Compile { millis: millis(started.elapsed()), from_cache: compiled.from_cache, cache: cache.map(|dir| dir.display().to_string()) });
    let Compiled { component, .. } = compiled;
    let ty = component.component_type();
    report.imports = ty.imports(&engine.engine).map(|(import, _)| Import { grant: grant_of(import, &report.policy), name: import.to_string() }).collect();
    report.exports = ty.exports(&engine.engine).map(|(export, _)| export.to_string()).collect();
    report.wit_version = Some(wit_version(report.imports.iter().map(|i| i.name.as_str())));

    let uses = uses_of(config, &report.name);
    report.used_by = uses.iter().map(|u| u.key.clone()).collect();
    let typed = match loader.type_check(&component) {
        Ok(typed) => typed,
        Err(err) => {
            report.problems.push(format!("{err:#}"));
            return Ok(report);
        }
    };
    report.world = Some(typed.world);
    for wrong in uses.iter().filter(|u| u.world != typed.world) {
        report.problems.push(format!("`{}` uses `{}` as a {}, but this file is a {} plugin", wrong.key, report.name, wrong.world, typed.world));
    }
    if let Err(err) = wasi_grants(&report.policy) {
        report.problems.push(format!("[plugins.{}] a granted directory cannot be opened: {err:#}", report.name));
    }
    if let Err(err) = check_net_grants(&report.policy) {
        report.problems.push(format!("[plugins.{}] {err:#}", report.name));
    }
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let message = match &request.message {
        Some(bytes) => {
            Message::parse(bytes.clone().into(), config.charset_policy()).map_err(|err| anyhow::anyhow!("the sample message does not parse: {err}"))?
        }
        None => Message::parse(crate::send::adt_a01("CHECK0001", 1024).into(), config.charset_policy()).map_err(|err| anyhow::anyhow!("{err}"))?,
    };
    let use_ = uses.iter().find(|u| u.world == typed.world);
    let settings = match (&request.settings, use_) {
        (Some(json), _) => json.clone(),
        (None, Some(use_)) => serde_json::to_string(&use_.settings)?,
        (None, None) => "{}".to_string(),
    };
    let connector = use_.and_then(|u| u.connector.clone()).unwrap_or_else(|| "check".to_string());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let calls = Calls {
        engine: &engine,
        name: Arc::from(report.name.as_str()),
        typed: &typed,
        policy: &report.policy,
        message: Arc::new(message),
        settings: Arc::from(settings.as_str()),
    };
    let result = match typed.world {
        World::Validator => runtime.block_on(calls.time(Call::Validate, request.runs)),
        World::Router => runtime.block_on(calls.time(Call::Route { connector: &connector }, request.runs)),
        World::Connector if request.deliver => runtime.block_on(calls.time(Call::Deliver { attempt: 1 }, 0)),
        World::Connector => return Ok(report),
    };
    match result {
        Ok(call) => report.call = Some(call),
        Err(problem) => report.problems.push(problem),
    }
    Ok(report)
}

/// Refuses what is not a component before wasmtime's less direct errors.
fn component_layer(bytes: &[u8]) -> Result<(), String> {
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err("this is a core WebAssembly module, not a component: build it for wasm32-wasip2 (Rust), with componentize-py or componentize-js, or wrap it with `wasm-tools component new`".into()),
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(()),
        [0, b'a', b's', b'm', ..] => Err("this is WebAssembly of an unknown kind (neither a core module nor a component)".into()),
        _ => Err("this is not WebAssembly: it does not start with `\\0asm`".into()),
    }
}

/// One configuration key that uses the plugin.
struct Use {
    key: String,
    world: World,
    settings: Settings,
    /// The connector, for routers and connectors.
    connector: Option<String>,
}

fn uses_of(config: &Config, name: &str) -> Vec<Use> {
    let validators = config.validator_uses().into_iter().filter(|(_, step)| step.plugin == name).map(|(key, step)| Use {
        key,
        world: World::Validator,
        settings: step.config.clone(),
        connector: None,
    });
    let routers = config.connectors.iter().filter(|(_, c)| c.route.as_deref() == Some(name)).map(|(connector, c)| Use {
        key: format!("connectors.{connector}.route"),
        world: World::Router,
        settings: c.route_config.clone(),
        connector: Some(connector.clone()),
    });
    let delivery = config.connectors.iter().filter(|(_, c)| c.plugin.as_deref() == Some(name)).map(|(connector, c)| Use {
        key: format!("connectors.{connector}.plugin"),
        world: World::Connector,
        settings: c.config.clone(),
        connector: Some(connector.clone()),
    });
    validators.chain(routers).chain(delivery).collect()
}

/// What the plugin gets through one of its imports, under its grants.
fn grant_of(import: &str, policy: &PluginPolicy) -> String {
    let interface = import.split('@').next().unwrap_or(import);
    let listed = |what: &str, items: Vec<String>| match items.as_slice() {
        [] => format!("refused: nothing granted in {what}"),
        items => format!("{what}: {}", items.join(", ")),
    };
    let dirs = |dirs: &[PathBuf]| dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>();
    match interface {
        "wasi:http/outgoing-handler" => listed("allow.http", policy.allow.http.clone()),
        "sluice:plugin/mllp" => listed("allow.mllp", policy.allow.mllp.clone()),
        "wasi:filesystem/preopens" | "wasi:filesystem/types" => {
            let mut granted = dirs(&policy.allow.read_dirs).into_iter().map(|d| format!("{d} (read)")).collect::<Vec<_>>();
            granted.extend(dirs(&policy.allow.write_dirs).into_iter().map(|d| format!("{d} (read, write)")));
            listed("allow.read_dirs / allow.write_dirs", granted)
        }
        "wasi:cli/environment" => match policy.allow.env.as_slice() {
            [] => "empty environment (allow.env is empty)".into(),
            names => format!("allow.env: {}", names.join(", ")),
        },
        "wasi:cli/stdout" => "discarded".into(),
        "wasi:cli/stderr" => "kept for the log when a call fails".into(),
        "wasi:cli/stdin" => "empty".into(),
        other if other.starts_with("wasi:sockets/") => "no network: sockets are never granted (use wasi:http or MLLP)".into(),
        _ => "provided".into(),
    }
}

/// Runs calls of one plugin, each on a fresh instance, timing both halves.
struct Calls<'a> {
    engine: &'a PluginEngine,
    name: Arc<str>,
    typed: &'a Typed,
    policy: &'a PluginPolicy,
    message: Arc<Message>,
    settings: Arc<str>,
}

impl Calls<'_> {
    async fn time(&self, call: Call<'_>, runs: usize) -> Result<CallReport, String> {
        let (answer, first_instantiate, first_call, mut peak) = self.once(&call).await?;
        let (mut instantiate, mut calls) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for _ in 0..runs {
            let (_, i, c, p) = self.once(&call).await?;
            instantiate.push(i);
            calls.push(c);
            peak = peak.max(p);
        }
        let kept = self.kept(&call, runs).await?;
        let header = self.message.header();
        Ok(CallReport {
            call: match call {
                Call::Validate => "validate".into(),
                Call::Route { connector } => format!("route for connector `{connector}`"),
                Call::Deliver { .. } => "deliver (attempt 1)".into(),
            },
            settings: self.settings.to_string(),
            message: format!("{} {}", String::from_utf8_lossy(&header.message_type), String::from_utf8_lossy(&header.control_id)),
            answer: describe(&answer),
            first_instantiate_us: micros(first_instantiate),
            first_call_us: micros(first_call),
            instantiate_us: median(instantiate).map(micros),
            call_us: median(calls).map(micros),
            kept_call_us: median(kept).map(micros),
            runs,
            peak_memory: peak as u64,
        })
    }

    /// `runs` calls on one instance, after a first untimed one.
    async fn kept(&self, call: &Call<'_>, runs: usize) -> Result<Vec<Duration>, String> {
        if runs == 0 {
            return Ok(Vec::new());
        }
        let mut live = Live::start(self.engine, &self.name, &self.typed.pre, self.policy).await.map_err(|err| format!("instantiating failed: {err}"))?;
        let mut took = Vec::with_capacity(runs);
        for run in 0..=runs {
            let started = Instant::now();
            live.call(self.policy, self.message.clone(), self.settings.clone(), same(call)).await.map_err(|err| format!("the call failed: {err}"))?;
            if run > 0 {
                took.push(started.elapsed());
            }
        }
        Ok(took)
    }

    async fn once(&self, call: &Call<'_>) -> Result<(Answer, Duration, Duration, usize), String> {
        let call = same(call);
        let started = Instant::now();
        let mut live = Live::start(self.engine, &self.name, &self.typed.pre, self.policy).await.map_err(|err| format!("instantiating failed: {err}"))?;
        let instantiated = started.elapsed();
        let started = Instant::now();
        let answer = live.call(self.policy, self.message.clone(), self.settings.clone(), call).await.map_err(|err| format!("the call failed: {err}"))?;
        Ok((answer, instantiated, started.elapsed(), live.peak_memory()))
    }
}

/// Another call of the same kind (`Call` is not `Clone`: it borrows).
fn same<'a>(call: &Call<'a>) -> Call<'a> {
    match call {
        Call::Validate => Call::Validate,
        Call::Route { connector } => Call::Route { connector },
        Call::Deliver { attempt } => Call::Deliver { attempt: *attempt },
    }
}

fn describe(answer: &Answer) -> String {
    let issue = |issue: &Issue| {
        let at = issue.location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default();
        format!("{} \"{}\"{at}", issue.code, issue.text)
    };
    match answer {
        Answer::Verdict(Verdict::Accept) => "accept".into(),
        Answer::Verdict(Verdict::Reject(i)) => format!("reject (AR): {}", issue(i)),
        Answer::Verdict(Verdict::Error(i)) => format!("error (AE): {}", issue(i)),
        Answer::Route(Ok(true)) => "takes the message".into(),
        Answer::Route(Ok(false)) => "does not take the message".into(),
        Answer::Route(Err(i)) => format!("error (AE): {}", issue(i)),
        Answer::Delivery(Delivery::Delivered) => "delivered".into(),
        Answer::Delivery(Delivery::Retry(why)) => format!("retry: {why}"),
        Answer::Delivery(Delivery::Reject(why)) => format!("reject (dead letter): {why}"),
    }
}

fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    samples.sort();
    samples.get(samples.len() / 2).copied()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
