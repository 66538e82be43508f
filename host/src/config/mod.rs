//! Configuration, layered with figment: built-in defaults < `--config` files
//! (TOML, later wins) < `SLUICE_*` environment < command-line flags. Unknown
//! keys and bad values are refused with the key and the reason.

mod byte_size;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use byte_size::ByteSize;

use crate::hl7::{Charset, CharsetPolicy};
use crate::mllp::Framing;

/// The whole configuration. Top-level listener settings form the interface
/// named `default`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the MLLP listener binds.
    pub listen: String,
    /// Directory of the RocksDB store.
    pub data_dir: PathBuf,
    /// Directory plugins are loaded from.
    pub plugins_dir: PathBuf,
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
    /// How long a shutdown waits for in-flight messages.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    pub charset: CharsetConfig,
    pub log: LogConfig,
    /// Destinations: every accepted message is queued in each one's outbox.
    pub connectors: BTreeMap<String, ConnectorConfig>,
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

/// A connector. Delivery plugins come later; the keys they will use are
/// accepted now so configurations need not change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorConfig {
    /// The plugin that delivers this connector's messages.
    pub plugin: Option<String>,
    /// Settings passed to the plugin.
    pub config: Option<BTreeMap<String, figment::value::Value>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:2575".into(),
            data_dir: "./data".into(),
            plugins_dir: "./plugins".into(),
            max_frame_size: ByteSize(2 * 1024 * 1024),
            frame_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_connections: 0,
            dedupe_window: Duration::from_secs(24 * 3600),
            shutdown_timeout: Duration::from_secs(30),
            charset: CharsetConfig::default(),
            log: LogConfig::default(),
            connectors: BTreeMap::new(),
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
            .merge(Env::prefixed("SLUICE_").split("__"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|err| ConfigError::Figment(Box::new(err)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| Err(ConfigError::Invalid { key: key.into(), reason });
        if let Err(err) = self.listen_addr() {
            return invalid("listen", format!("`{}` is not an address like 0.0.0.0:2575 ({err})", self.listen));
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
        for name in self.connectors.keys() {
            let ok = !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return invalid(&format!("connectors.{name}"), "connector names use letters, digits, `-`, `_` and `.` (at most 64)".into());
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }

    pub fn charset_policy(&self) -> CharsetPolicy {
        CharsetPolicy { default: self.charset.default, force: self.charset.force }
    }

    pub fn framing(&self) -> Framing {
        Framing::default()
    }

    pub fn connector_names(&self) -> Vec<String> {
        self.connectors.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
