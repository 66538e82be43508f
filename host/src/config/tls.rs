//! TLS settings: the MLLP/TLS listener (`[tls]`) and outbound TLS per
//! destination (`[outbound_tls."host:port"]`). Files are only named here;
//! `crate::tls` reads them, at start and on SIGHUP.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The MLLP listener over TLS. Off unless `listen` is set; it runs beside the
/// plain listener (`listen = "off"` at the top level leaves TLS only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsConfig {
    /// Address of the TLS listener, e.g. `0.0.0.0:2576`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The server's certificate chain (PEM), leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: set,
    /// it turns on mutual TLS and a client without a valid one is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    pub min_version: TlsVersion,
}

/// The oldest TLS version a peer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// TLS to one outbound destination (`host:port`): MLLP forwarding to it is
/// wrapped in TLS, and HTTPS requests to it use these roots and client
/// certificate instead of the built-in public roots.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundTlsConfig {
    /// CA certificates (PEM) the server's certificate must chain to; unset:
    /// the operating system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for servers that ask for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; unset: the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub min_version: TlsVersion,
}

/// Outbound TLS settings by destination.
pub type OutboundTls = BTreeMap<String, OutboundTlsConfig>;

impl ServerTlsConfig {
    /// The first problem, as (key under `tls.`, reason).
    /// `for_interfaces`: an interface has `tls = "default"`, so the
    /// certificate is used without `tls.listen` (which checks it itself).
    pub(super) fn problem(&self, for_interfaces: bool) -> Option<(&'static str, String)> {
        let Some(listen) = &self.listen else {
            if for_interfaces {
                return None;
            }
            let stray = [("cert", self.cert.is_some()), ("key", self.key.is_some()), ("client_ca", self.client_ca.is_some())];
            return stray.iter().find(|(_, set)| *set).map(|(key, _)| {
                (
                    *key,
                    "is set but neither `tls.listen` nor an interface's `tls = \"default\"` uses it: name the TLS listener's address (e.g. 0.0.0.0:2576)"
                        .into(),
                )
            });
        };
        if let Err(err) = listen.parse::<std::net::SocketAddr>() {
            return Some(("listen", format!("`{listen}` is not an address like 0.0.0.0:2576 ({err})")));
        }
        if self.cert.is_none() {
            return Some(("cert", "the TLS listener needs a certificate chain (PEM file)".into()));
        }
        if self.key.is_none() {
            return Some(("key", "the TLS listener needs the certificate's private key (PEM file)".into()));
        }
        None
    }
}

impl OutboundTlsConfig {
    /// The first problem, as (key under the destination's table, reason).
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        match (&self.cert, &self.key) {
            (Some(_), None) => Some(("key", "a client certificate needs its private key".into())),
            (None, Some(_)) => Some(("cert", "a private key needs its client certificate".into())),
            _ => None,
        }
    }
}
