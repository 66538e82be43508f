//! Reading PEM files, with errors that name the file and what was wrong.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn file_error(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads the whole file first, so a missing or unreadable file says so
/// rather than "no certificate".
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| file_error(path, format!("cannot read it ({err})")))
}

/// Every certificate in the file, in order; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<_> =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>().map_err(|err| file_error(path, format!("not a PEM certificate file ({err})")))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// The first private key in the file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| file_error(path, format!("holds no usable PEM private key ({err})")))
}

/// The certificates of a CA file as trust anchors.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|err| file_error(path, format!("holds a certificate that cannot be a trust anchor ({err})")))?;
    }
    Ok(roots)
}
