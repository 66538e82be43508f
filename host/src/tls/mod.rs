//! TLS with rustls (ring provider): the MLLP listener's server side,
//! reloadable on SIGHUP ([`ServerTls`]), and outbound client connections for
//! MLLP forwarding and HTTPS ([`ClientTls`]).

mod client;
mod pem;
mod server;
mod stream;

use std::path::PathBuf;
use std::sync::Arc;

pub use client::{ClientTls, OutboundTlsSet};
pub use server::ServerTls;
pub use stream::ClientStream;

use crate::config::TlsVersion;

/// Why TLS settings could not be turned into a working configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Setup(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions allowed from `min` up.
fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static FROM_1_2: [&rustls::SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static FROM_1_3: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match min {
        TlsVersion::Tls12 => &FROM_1_2,
        TlsVersion::Tls13 => &FROM_1_3,
    }
}

#[cfg(test)]
mod tests;
