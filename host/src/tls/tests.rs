use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::config::{OutboundTls, OutboundTlsConfig, ServerTlsConfig};

/// A self-signed certificate for `localhost` and its key, written to `dir` as NAME.pem / NAME.key.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

fn server_settings(cert: &Path, key: &Path) -> ServerTlsConfig {
    ServerTlsConfig { listen: Some("127.0.0.1:0".into()), cert: Some(cert.into()), key: Some(key.into()), ..Default::default() }
}

#[test]
fn bad_files_are_refused_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "one");
    let (_, other_key) = self_signed(dir.path(), "two");
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "hello").unwrap();

    let cases = [
        (server_settings(&dir.path().join("missing.pem"), &key), "missing.pem: cannot read it"),
        (server_settings(&not_pem, &key), "notes.txt: holds no PEM certificate"),
        (server_settings(&cert, &not_pem), "notes.txt: holds no usable PEM private key"),
        (server_settings(&cert, &other_key), "two.key: does not fit the certificate chain in"),
        (ServerTlsConfig { client_ca: Some(not_pem.clone()), ..server_settings(&cert, &key) }, "notes.txt: holds no PEM certificate"),
    ];
    for (settings, expected) in cases {
        let err = ServerTls::load(&settings).err().expect("refused").to_string();
        assert!(err.contains(expected), "{err}");
    }
    assert!(ServerTls::load(&server_settings(&cert, &key)).is_ok());
}

/// The listener's certificate is reloaded by the configuration reload
/// (tests/e2e/tls.rs: SIGHUP swaps it, and refuses a broken one).
#[test]
fn a_failed_reload_keeps_what_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "one");
    let mut outbound = OutboundTls::new();
    outbound.insert("LIS.example:6661".into(), OutboundTlsConfig { ca: Some(cert.clone()), ..Default::default() });
    let set = OutboundTlsSet::from_config(&outbound).unwrap();
    let first = set.for_host("lis.example", 6661).expect("hosts compare without case");
    std::fs::remove_file(&cert).unwrap();
    let err = set.reload().unwrap_err().to_string();
    assert!(err.contains("outbound_tls.\"LIS.example:6661\"") && err.contains("one.pem"), "{err}");
    assert!(std::sync::Arc::ptr_eq(&first, &set.for_host("lis.example", 6661).unwrap()), "the old settings still serve");
}
