//! The MLLP listener's TLS side: certificate, key and (for mutual TLS) the
//! client CA, read from PEM files. A reload (SIGHUP) loads a new `ServerTls`
//! and swaps it into the interfaces' settings (`crate::reload`); one that
//! fails changes nothing, and handshakes already done are never touched.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::{TlsError, pem, provider, versions};
use crate::config::ServerTlsConfig;

pub struct ServerTls {
    acceptor: TlsAcceptor,
    mutual: bool,
}

impl ServerTls {
    /// Reads the files `settings` names; fails naming the file and the problem.
    pub fn load(settings: &ServerTlsConfig) -> Result<ServerTls, TlsError> {
        Ok(ServerTls { acceptor: TlsAcceptor::from(build(settings)?), mutual: settings.client_ca.is_some() })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.mutual
    }
}

fn build(settings: &ServerTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&settings.cert, &settings.key) else {
        return Err(TlsError::Setup("the TLS listener needs `tls.cert` and `tls.key`".into()));
    };
    let chain = pem::certificates(cert)?;
    let key_der = pem::private_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(settings.min_version))
        .map_err(|err| TlsError::Setup(format!("tls.min_version: {err}")))?;
    let builder = match &settings.client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(pem::roots(ca)?), provider())
                .build()
                .map_err(|err| TlsError::File { path: ca.clone(), reason: format!("cannot verify clients with it ({err})") })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key_der)
        .map_err(|err| TlsError::File { path: key.clone(), reason: format!("does not fit the certificate chain in {} ({err})", cert.display()) })?;
    Ok(Arc::new(config))
}
