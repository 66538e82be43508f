//! Outbound TLS, per destination: the roots a server's certificate must
//! chain to (a CA file, or the operating system's), an optional client
//! certificate, and the name to verify.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{TlsError, pem, provider, versions};
use crate::config::{OutboundTls, OutboundTlsConfig};
use crate::plugin::Destination;

/// How to open TLS to one destination.
pub struct ClientTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl ClientTls {
    pub fn new(host: &str, settings: &OutboundTlsConfig) -> Result<ClientTls, TlsError> {
        let roots = match &settings.ca {
            Some(ca) => pem::roots(ca)?,
            None => system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(settings.min_version))
            .map_err(|err| TlsError::Setup(format!("min_version: {err}")))?
            .with_root_certificates(roots);
        let config = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(pem::certificates(cert)?, pem::private_key(key)?)
                .map_err(|err| TlsError::File { path: key.clone(), reason: format!("does not fit the client certificate in {} ({err})", cert.display()) })?,
            _ => builder.with_no_client_auth(),
        };
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name =
            ServerName::try_from(name.to_string()).map_err(|err| TlsError::Setup(format!("server_name `{name}` is not a DNS name or IP address ({err})")))?;
        Ok(ClientTls { config: Arc::new(config), server_name })
    }

    /// The handshake over an open TCP connection.
    pub async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(self.config.clone()).connect(self.server_name.clone(), tcp).await
    }

    /// A client's TLS from the command line (`sluice send --tls`).
    pub fn for_address(address: &str, settings: &OutboundTlsConfig) -> Result<ClientTls, TlsError> {
        let dest = Destination::parse(address).ok_or_else(|| TlsError::Setup(format!("`{address}` is not an address like host:port")))?;
        ClientTls::new(dest.host(), settings)
    }

    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// The operating system's trust store (rustls-native-certs).
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found.errors.first().map(|err| format!(" ({err})")).unwrap_or_default();
        return Err(TlsError::Setup(format!("no CA certificates found in the operating system's trust store{why}; set `ca` to a PEM file")));
    }
    Ok(roots)
}

/// Every configured outbound destination's TLS, by destination; reread on
/// SIGHUP (connections already open keep their session).
#[derive(Default, Clone)]
pub struct OutboundTlsSet {
    current: Arc<RwLock<Arc<ByDestination>>>,
    config: Arc<OutboundTls>,
}

type ByDestination = HashMap<Destination, Arc<ClientTls>>;

impl OutboundTlsSet {
    /// Reads every `[outbound_tls."host:port"]` table's files; the error names the table.
    pub fn from_config(config: &OutboundTls) -> anyhow::Result<OutboundTlsSet> {
        let by_destination = read_all(config)?;
        Ok(OutboundTlsSet { current: Arc::new(RwLock::new(Arc::new(by_destination))), config: Arc::new(config.clone()) })
    }

    /// Reads the files again; on failure nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(read_all(&self.config)?);
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
    }

    pub fn get(&self, dest: &Destination) -> Option<Arc<ClientTls>> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(dest).cloned()
    }

    /// The TLS for `host` and `port`, host compared without case.
    pub fn for_host(&self, host: &str, port: u16) -> Option<Arc<ClientTls>> {
        self.get(&Destination::new(host, port))
    }
}

fn read_all(config: &OutboundTls) -> anyhow::Result<ByDestination> {
    let mut by_destination = HashMap::new();
    for (key, settings) in config {
        let dest = Destination::parse(key).ok_or_else(|| anyhow::anyhow!("configuration key `outbound_tls.\"{key}\"`: not a destination like host:port"))?;
        let tls = ClientTls::new(dest.host(), settings).map_err(|err| anyhow::anyhow!("configuration key `outbound_tls.\"{key}\"`: {err}"))?;
        by_destination.insert(dest, Arc::new(tls));
    }
    Ok(by_destination)
}
