//! Configuration, layered with figment: built-in defaults < `--config` files
//! (TOML, later wins) < `SLUICE_*` environment < command-line flags. Unknown
//! keys and bad values are refused with the key and the reason.

mod byte_size;
mod interface;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use byte_size::ByteSize;
pub use interface::{AckModeSetting, AckPolicyConfig, DEFAULT_INTERFACE, FramingConfig, InterfaceConfig, InterfaceSpec, ListenerSpec, OnNack, SenderRule};
pub use tls::{OutboundTls, OutboundTlsConfig, ServerTlsConfig, TlsVersion};

use crate::hl7::{Charset, CharsetPolicy};

/// The whole configuration. Top-level listener settings form the interface
/// named `default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the plain-TCP MLLP listener binds, or `off` (TLS only).
    pub listen: String,
    /// The MLLP listener over TLS, beside the plain one.
    pub tls: ServerTlsConfig,
    /// Longest a new connection may take to complete its TLS handshake.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Directory of the RocksDB store.
    pub data_dir: PathBuf,
    /// Directory plugins are loaded from.
    pub plugins_dir: PathBuf,
    /// Where compiled plugins are kept between starts (`<data_dir>/plugin-cache`
    /// when unset). Engines may share one: entries are keyed by content and
    /// engine build, and written atomically.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Largest MLLP frame accepted; larger ones are refused with AR.
    pub max_frame_size: ByteSize,
    /// Longest time from a frame's start byte to its end.
    #[serde(with = "humantime_serde")]
    pub frame_timeout: Duration,
    /// A connection with no complete frame for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open connections at most; further ones are closed at once. 0: unlimited.
    pub max_connections: usize,
    /// How long a message is remembered to answer retransmissions; 0 turns it off.
    #[serde(with = "humantime_serde")]
    pub dedupe_window: Duration,
    /// After SIGTERM/SIGINT, how long the engine keeps accepting while
    /// `/readyz` already answers 503, so load balancers can take it out of
    /// rotation before it stops listening.
    #[serde(with = "humantime_serde")]
    pub pre_shutdown_delay: Duration,
    /// How long a shutdown waits for in-flight messages.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Let patient data (message text, plugin and peer reasons that may
    /// quote it) into the logs, capped in length. Off: such text is logged
    /// as its length only.
    pub log_phi: bool,
    pub charset: CharsetConfig,
    pub log: LogConfig,
    /// Validators of the default interface, run in this order; the first
    /// that does not accept decides the ACK.
    pub validate: Vec<PluginUse>,
    /// Destinations: an accepted message is queued in the outbox of each
    /// connector whose router takes it (every connector without a router).
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Sandbox limits and capability grants per plugin name.
    pub plugins: BTreeMap<String, PluginPolicy>,
    /// The admin HTTP endpoint: health, metrics, and the API the CLI uses.
    pub admin: AdminConfig,
    /// TLS for outbound connections, by destination `host:port`.
    pub outbound_tls: OutboundTls,
    /// Further inbound interfaces, each on its own port with its own rules.
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    /// How long refused messages (AR/AE, kept in their wire form with the
    /// reason) are kept in the rejected store; 0 keeps them until purged.
    #[serde(with = "humantime_serde")]
    pub rejected_retention: Duration,
    /// Below this much free space on the data directory's filesystem new
    /// messages get AE and `/readyz` says not ready, so the store never runs
    /// out of space mid-write (0: no check).
    pub min_free_disk: ByteSize,
    /// The message journal: what arrived, what the sender got, each connector's history.
    pub journal: crate::journal::JournalConfig,
}

/// Where the admin endpoint listens unless configured otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9275";

/// The admin HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address to bind (loopback by default), or `off`.
    pub listen: String,
    /// When set, every request but `/healthz` and `/readyz` needs
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: DEFAULT_ADMIN_LISTEN.into(), token: None }
    }
}

impl AdminConfig {
    /// The address to bind, or `None` when the endpoint is off.
    pub fn listen_addr(&self) -> Option<Result<SocketAddr, std::net::AddrParseError>> {
        (self.listen != "off").then(|| self.listen.parse())
    }
}

/// One use of a plugin: which one, and the settings it reads with
/// `host.settings()` (as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginUse {
    pub plugin: String,
    #[serde(default)]
    pub config: Settings,
}

/// A plugin's settings table, passed through as JSON.
pub type Settings = BTreeMap<String, figment::value::Value>;

/// How a plugin is sandboxed. Nothing is granted unless listed here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginPolicy {
    /// Largest linear memory the plugin may grow to; beyond it the call traps.
    pub memory_limit: ByteSize,
    /// Longest a single call (instantiation included) may run, counting
    /// only the plugin's own execution, in ticks of about a millisecond: a
    /// plugin that computes past it traps. Time spent suspended in an async
    /// host call (waiting for an MLLP ACK, an HTTP response, a pollable) is
    /// not counted; a connector's whole attempt, waiting included, is
    /// bounded by its connector's `attempt_timeout` instead.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// Keep one instance between messages instead of a fresh one per message.
    /// Calls are then serialised and state (a cache, a counter) survives;
    /// leave it off for anything that holds patient data.
    pub keep_state: bool,
    pub allow: Grants,
}

/// Host capabilities a plugin may use.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Environment variables passed through (by name) from the engine's.
    pub env: Vec<String>,
    /// Directories the plugin may read, mounted at the same path.
    pub read_dirs: Vec<PathBuf>,
    /// Directories the plugin may read and write, mounted at the same path.
    pub write_dirs: Vec<PathBuf>,
    /// Hosts the plugin may send HTTP requests to through wasi:http, as
    /// `host` (any port) or `host:port` (the request's port defaulting to
    /// 80 for http, 443 for https). Hosts compare without case; a request
    /// to any other host fails with `HTTP-request-denied`.
    pub http: Vec<String>,
    /// MLLP destinations (`host:port`, host without case) the plugin may
    /// forward to.
    pub mllp: Vec<String>,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy { memory_limit: ByteSize(64 * 1024 * 1024), deadline: Duration::from_millis(250), keep_state: false, allow: Grants::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CharsetConfig {
    /// Used when MSH-18 is empty (or always, with `force`).
    pub default: Charset,
    /// Ignore MSH-18 and use `default` for every message.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `sluice=debug,warn`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A connector: an outbox, the plugin that delivers from it, and how
/// failed deliveries are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorConfig {
    /// The plugin that delivers this connector's messages. Without one,
    /// messages wait in the outbox.
    pub plugin: Option<String>,
    /// Settings passed to the plugin.
    pub config: Settings,
    /// The router plugin deciding which messages this connector takes;
    /// without one it takes every message.
    pub route: Option<String>,
    /// Settings passed to the router.
    pub route_config: Settings,
    pub retry: RetryPolicy,
    /// After `retry.max_attempts`, move the message to the dead-letter
    /// queue; `false` retries forever (the connector waits on it).
    pub dead_letter: bool,
    /// Longest one delivery attempt may take, waiting on the network
    /// included; past it the attempt counts as a retry.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            plugin: None,
            config: Settings::new(),
            route: None,
            route_config: Settings::new(),
            retry: RetryPolicy::default(),
            dead_letter: true,
            attempt_timeout: Duration::from_secs(60),
        }
    }
}

/// Exponential back-off between delivery attempts of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts before the message is dead-lettered (with `dead_letter`).
    pub max_attempts: u32,
    /// Wait after the first failure.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Each further failure multiplies the wait by this.
    pub multiplier: f64,
    /// The wait never exceeds this.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Up to this fraction is added at random, so that connectors failing
    /// together do not retry in lock-step.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, initial_backoff: Duration::from_secs(1), multiplier: 2.0, max_backoff: Duration::from_secs(300), jitter: 0.25 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:2575".into(),
            tls: ServerTlsConfig::default(),
            connect_timeout: Duration::from_secs(10),
            data_dir: "./data".into(),
            plugins_dir: "./plugins".into(),
            plugin_cache_dir: None,
            max_frame_size: ByteSize(2 * 1024 * 1024),
            frame_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_connections: 0,
            dedupe_window: Duration::from_secs(24 * 3600),
            pre_shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            log_phi: false,
            charset: CharsetConfig::default(),
            log: LogConfig::default(),
            validate: Vec::new(),
            connectors: BTreeMap::new(),
            plugins: BTreeMap::new(),
            admin: AdminConfig::default(),
            outbound_tls: OutboundTls::new(),
            interfaces: BTreeMap::new(),
            rejected_retention: Duration::from_secs(30 * 24 * 3600),
            min_free_disk: ByteSize(256 * 1024 * 1024),
            journal: crate::journal::JournalConfig::default(),
        }
    }
}

impl Default for CharsetConfig {
    fn default() -> Self {
        CharsetConfig { default: Charset::Utf8, force: false }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

/// Settings given as command-line flags, the top layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins_dir: Option<PathBuf>,
    /// `admin.listen`, from `--admin-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminOverride>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AdminOverride {
    pub listen: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// figment's message names the key and where its value came from.
    #[error("configuration: {0}")]
    Figment(Box<figment::Error>),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl Config {
    /// Builds the configuration from its layers and checks it.
    pub fn load(files: &[PathBuf], overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        for file in files {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("SLUICE_").filter(|key| !is_service_link(&key.as_str().to_ascii_lowercase())).split("__"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|err| ConfigError::Figment(Box::new(err)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| Err(ConfigError::Invalid { key: key.into(), reason });
        if let Some(Err(err)) = self.listen_addr() {
            return invalid("listen", format!("`{}` is not an address like 0.0.0.0:2575, or `off` ({err})", self.listen));
        }
        if let Some((key, reason)) = self.tls.problem(self.interfaces.values().any(|i| i.tls.is_some())) {
            return invalid(&format!("tls.{key}"), reason);
        }
        if let Some((key, reason)) = self.interface_problem() {
            return invalid(&key, reason);
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be greater than zero".into());
        }
        for (destination, tls) in &self.outbound_tls {
            if crate::plugin::Destination::parse(destination).is_none() {
                return invalid(&format!("outbound_tls.\"{destination}\""), "is not a destination like lis.example.org:6661".into());
            }
            if let Some((key, reason)) = tls.problem() {
                return invalid(&format!("outbound_tls.\"{destination}\".{key}"), reason);
            }
        }
        if self.max_frame_size.0 < 1024 {
            return invalid("max_frame_size", format!("{} bytes is too small; at least 1 KiB", self.max_frame_size.0));
        }
        for (key, value) in [("frame_timeout", self.frame_timeout), ("idle_timeout", self.idle_timeout)] {
            if value.is_zero() {
                return invalid(key, "must be greater than zero".into());
            }
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return invalid("log.level", format!("`{}` is not a log filter ({err})", self.log.level));
        }
        for (name, connector) in &self.connectors {
            if !is_name(name) {
                return invalid(&format!("connectors.{name}"), "connector names use letters, digits, `-`, `_` and `.` (at most 64)".into());
            }
            let retry = &connector.retry;
            if retry.max_attempts == 0 {
                return invalid(&format!("connectors.{name}.retry.max_attempts"), "at least 1".into());
            }
            if !(retry.multiplier >= 1.0 && retry.multiplier <= 100.0) {
                return invalid(&format!("connectors.{name}.retry.multiplier"), format!("{} is not between 1 and 100", retry.multiplier));
            }
            if !(0.0..=1.0).contains(&retry.jitter) {
                return invalid(&format!("connectors.{name}.retry.jitter"), format!("{} is not a fraction between 0 and 1", retry.jitter));
            }
            if retry.max_backoff < retry.initial_backoff {
                return invalid(&format!("connectors.{name}.retry.max_backoff"), "must not be shorter than retry.initial_backoff".into());
            }
            if connector.attempt_timeout.is_zero() {
                return invalid(&format!("connectors.{name}.attempt_timeout"), "must be greater than zero".into());
            }
        }
        if let Some(Err(err)) = self.admin.listen_addr() {
            return invalid("admin.listen", format!("`{}` is not an address like 127.0.0.1:9275, or `off` ({err})", self.admin.listen));
        }
        if self.admin.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return invalid("admin.token", "must not be empty (leave it out to need no token)".into());
        }
        // The API lists and replays patient messages: beyond this host, never without a token.
        if let Some(Ok(addr)) = self.admin.listen_addr()
            && !addr.ip().is_loopback()
            && self.admin.token.is_none()
        {
            return invalid(
                "admin.listen",
                format!("{addr} is reachable from other hosts: set `admin.token` (e.g. SLUICE_ADMIN__TOKEN) or bind a loopback address"),
            );
        }
        for (name, policy) in &self.plugins {
            if !is_name(name) {
                return invalid(&format!("plugins.{name}"), "plugin names use letters, digits, `-`, `_` and `.` (at most 64)".into());
            }
            if policy.deadline.is_zero() {
                return invalid(&format!("plugins.{name}.deadline"), "must be greater than zero".into());
            }
            if policy.memory_limit.0 < 64 * 1024 {
                return invalid(&format!("plugins.{name}.memory_limit"), "at least 64 KiB (one Wasm page)".into());
            }
        }
        let uses = self.validator_uses().into_iter().map(|(key, u)| (key, &u.plugin));
        let routes = self.connectors.iter().filter_map(|(c, cfg)| Some((format!("connectors.{c}.route"), cfg.route.as_ref()?)));
        let delivery = self.connectors.iter().filter_map(|(c, cfg)| Some((format!("connectors.{c}.plugin"), cfg.plugin.as_ref()?)));
        for (key, plugin) in uses.chain(routes).chain(delivery) {
            if !is_name(plugin) {
                return invalid(&key, format!("`{plugin}` is not a plugin name (the file name without `.wasm`)"));
            }
        }
        Ok(())
    }

    /// The sandbox policy of a plugin: its `[plugins.NAME]` table or the defaults.
    /// The folder of precompiled plugins.
    pub fn plugin_cache(&self) -> PathBuf {
        self.plugin_cache_dir.clone().unwrap_or_else(|| self.data_dir.join("plugin-cache"))
    }

    pub fn plugin_policy(&self, plugin: &str) -> PluginPolicy {
        self.plugins.get(plugin).cloned().unwrap_or_default()
    }

    /// The plain listener's address, or `None` when `listen` is `off`.
    pub fn listen_addr(&self) -> Option<Result<SocketAddr, std::net::AddrParseError>> {
        (self.listen != "off").then(|| self.listen.parse())
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_listen_addr(&self) -> Option<SocketAddr> {
        self.tls.listen.as_ref().and_then(|addr| addr.parse().ok())
    }

    pub fn charset_policy(&self) -> CharsetPolicy {
        CharsetPolicy { default: self.charset.default, force: self.charset.force }
    }

    /// Every validator use of every interface, with the key that names it.
    pub fn validator_uses(&self) -> Vec<(String, &PluginUse)> {
        // `[interfaces.default] validate` replaces the top-level list.
        let overridden = self.interfaces.get(DEFAULT_INTERFACE).is_some_and(|d| d.validate.is_some());
        let top = self.validate.iter().filter(|_| !overridden).enumerate().map(|(i, u)| (format!("validate[{i}].plugin"), u));
        let named = self.interfaces.iter().flat_map(|(name, interface)| {
            interface.validate.iter().flatten().enumerate().map(move |(i, u)| (format!("interfaces.{name}.validate[{i}].plugin"), u))
        });
        top.chain(named).collect()
    }

    pub fn connector_names(&self) -> Vec<String> {
        self.connectors.keys().cloned().collect()
    }
}

/// Whether an environment key (after `SLUICE_`, lowercase) is one of the
/// variables Kubernetes injects for a Service named `sluice…`
/// (`SLUICE_SERVICE_HOST`, `SLUICE_PORT_2575_TCP_ADDR`, ...): not ours, so
/// not refused as an unknown key. No configuration key has these shapes.
fn is_service_link(key: &str) -> bool {
    if key.contains("__") {
        return false;
    }
    let words: Vec<&str> = key.split('_').collect();
    let is_port = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    // [NAME_]SERVICE_HOST, [NAME_]SERVICE_PORT[_PORTNAME]
    if let Some(at) = words.iter().position(|w| *w == "service")
        && matches!(words.get(at + 1), Some(&"host") | Some(&"port"))
        && (words[at + 1] == "port" || words.len() == at + 2)
    {
        return true;
    }
    // [NAME_]PORT, [NAME_]PORT_<n>_<proto>[_PROTO|_PORT|_ADDR]
    let is_proto = |w: &str| matches!(w, "tcp" | "udp" | "sctp");
    (0..words.len()).filter(|&at| words[at] == "port").any(|at| match &words[at + 1..] {
        [] => true,
        [n, proto] => is_port(n) && is_proto(proto),
        [n, proto, part] => is_port(n) && is_proto(proto) && matches!(*part, "proto" | "port" | "addr"),
        _ => false,
    })
}

/// Names of connectors and plugins: letters, digits, `-`, `_`, `.`; at most 64.
fn is_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests;
