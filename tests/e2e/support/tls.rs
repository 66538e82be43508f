//! Certificates made for a test (rcgen): a CA, server certificates for
//! `localhost` and 127.0.0.1, and a client certificate; and a blocking
//! rustls client for the MLLP/TLS listener.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::client::MllpConn;

/// A CA and the files of what it signed, in a directory of the test's.
pub struct Pki {
    pub dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and key as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its certificate written to `DIR/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki { dir: dir.join(name), ca };
        std::fs::create_dir_all(&pki.dir).unwrap();
        std::fs::write(pki.ca_file(), pki.ca.pem()).unwrap();
        pki
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `localhost` and 127.0.0.1 named `cn`.
    pub fn server(&self, cn: &str) -> CertFiles {
        self.issue(cn, vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate named `cn`.
    pub fn client(&self, cn: &str) -> CertFiles {
        self.issue(cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, cn: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> CertFiles {
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let files = CertFiles { cert: self.dir.join(format!("{cn}.pem")), key: self.dir.join(format!("{cn}.key")) };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

/// The `[tls]` table of a server listening for TLS on a free port.
pub fn tls_config(server: &CertFiles, client_ca: Option<&Path>) -> String {
    let mut config = format!("[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n", server.cert.display().to_string(), server.key.display().to_string());
    if let Some(ca) = client_ca {
        config += &format!("client_ca = {:?}\n", ca.display().to_string());
    }
    config
}

/// An MLLP connection over TLS, made with rustls.
pub type TlsClient = MllpConn<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// Connects to `addr` trusting `ca`, with a client certificate if given, and
/// completes the handshake (a refusal shows here, or at the first read
/// under TLS 1.3, where the server judges the client's certificate after
/// the client has finished).
pub fn tls_connect(addr: SocketAddr, ca: &Path, client: Option<&CertFiles>) -> std::io::Result<TlsClient> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(files) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(&files.cert).unwrap().map(Result::unwrap).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(&files.key).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(MllpConn::new(rustls::StreamOwned::new(conn, tcp)))
}

/// The subject CN of the certificate the server presented.
pub fn peer_common_name(client: &TlsClient) -> String {
    let certs = client.stream.conn.peer_certificates().expect("the server sent a certificate");
    let der = certs[0].as_ref();
    // The CN is a UTF8String/PrintableString after the CN OID (2.5.4.3);
    // enough to tell our own test certificates apart.
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = der.windows(oid.len()).rposition(|w| w == oid).expect("a CN in the certificate");
    let len = der[at + oid.len() + 1] as usize;
    let start = at + oid.len() + 2;
    String::from_utf8_lossy(&der[start..start + len]).into_owned()
}
